// cli.test.mjs — the command line: --version and --help, refusal of bad
// flags and bad configs (with file:line), graceful stop on SIGTERM/SIGINT,
// embedded defaults, the data-dir lock, state kept across a restart, and a
// smoke test of `brigade admin`.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import { Child, freePort, readResponse, runBrigade, sleep, tempDir } from './lib/harness.mjs';

const dirs = [];
const children = [];
after(async () => {
  for (const c of children) await c.stop(2000);
  if (!process.env.BRIGADE_E2E_KEEP) for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function newDir() {
  const d = tempDir('brigade-cli-');
  dirs.push(d);
  return d;
}

/** Start `brigade serve` with the given extra args; wait for its listening line. */
async function serve(args, env = {}) {
  const c = new Child('brigade serve', ['serve', ...args], { env });
  children.push(c);
  const m = await c.waitFor(/listening on (http:\/\/[^\s]+)/);
  c.url = m[1].replace(/\/$/, '');
  return c;
}

/** A minimal valid config with only the in-process mock provider. */
function minimalConfig(port, dataDir) {
  return [
    'server:',
    `  listen: "127.0.0.1:${port}"`,
    `  data_dir: ${JSON.stringify(dataDir)}`,
    'providers:',
    '  - {name: local, kind: mock}',
    'models:',
    '  - {name: local-model, provider: local, input_usd_per_mtok: 0.5, output_usd_per_mtok: 1.5}',
    '',
  ].join('\n');
}

describe('version and help', () => {
  test('--version prints the version and exits 0', async () => {
    const r = await runBrigade(['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /brigade \d+\.\d+\.\d+/);
  });

  test('--help names the subcommands and exits 0', async () => {
    const r = await runBrigade(['--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const w of ['serve', 'mock-llm', 'admin']) assert.match(r.stdout, new RegExp(w), `--help lacks ${w}`);
  });

  for (const [sub, flags] of [['serve', ['--config', '--listen', '--data-dir']], ['mock-llm', ['--listen', '--latency-ms']], ['admin', ['--data-dir']]]) {
    test(`${sub} --help describes its flags and exits 0`, async () => {
      const r = await runBrigade([sub, '--help']);
      assert.equal(r.code, 0, `${sub} --help exit ${r.code}: ${r.stderr}`);
      for (const f of flags) assert.ok(r.stdout.includes(f), `${sub} --help lacks ${f}:\n${r.stdout}`);
    });
  }
});

describe('bad command lines', () => {
  test('unknown subcommand -> non-zero with a message', async () => {
    const r = await runBrigade(['frobnicate']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /frobnicate/);
  });

  test('unknown flag -> non-zero naming it', async () => {
    const r = await runBrigade(['serve', '--bogus-flag']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--bogus-flag/);
  });

  test('flag missing its value -> non-zero', async () => {
    const r = await runBrigade(['serve', '--listen']);
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.length > 0, 'no message');
  });

  test('bad --listen address -> non-zero with a message', async () => {
    for (const bad of ['not-an-address', '127.0.0.1:99999', '127.0.0.1:']) {
      const r = await runBrigade(['mock-llm', '--listen', bad]);
      assert.notEqual(r.code, 0, `mock-llm --listen ${bad} exited 0`);
      assert.ok(r.stderr.length > 0, `--listen ${bad}: no message`);
    }
  });

  test('bad --latency-ms -> non-zero', async () => {
    const r = await runBrigade(['mock-llm', '--listen', '127.0.0.1:0', '--latency-ms', 'soon']);
    assert.notEqual(r.code, 0);
  });
});

describe('bad configs are refused with FILE:LINE', () => {
  // Each case: YAML lines and the 1-based line the error must name.
  const cases = [
    ['unknown key', (p, d) => minimalConfig(p, d).replace('server:\n', 'server:\n  colour: blue\n'), 2, /colour/],
    ['wrong type', (p, d) => minimalConfig(p, d).replace('input_usd_per_mtok: 0.5', 'input_usd_per_mtok: cheap'), 7, /input_usd_per_mtok/],
    ['model with an unknown provider', (p, d) => minimalConfig(p, d).replace('provider: local,', 'provider: nowhere,'), 7, /nowhere|provider/],
    ['YAML syntax error', (p, d) => minimalConfig(p, d).replace('providers:\n', 'providers:\n  - {name: local, kind: mock\n'), 5, null],
    ['negative limit', (p, d) => minimalConfig(p, d).replace('server:\n', 'server:\n  limits: {max_body_bytes: -5}\n'), 2, /max_body_bytes/],
  ];
  for (const [name, make, line, re] of cases) {
    test(`${name} -> non-zero exit, message names brigade.yaml:${line}`, async () => {
      const dir = newDir();
      const file = path.join(dir, 'brigade.yaml');
      fs.writeFileSync(file, make(await freePort(), dir));
      const r = await runBrigade(['serve', '--config', file]);
      assert.notEqual(r.code, 0, `started with a bad config:\n${r.stdout}`);
      const msg = r.stderr + r.stdout;
      // A YAML parser may report a syntax error where it noticed it, later
      // than the broken line: there any line of the file will do.
      const ok = name === 'YAML syntax error' ? /brigade\.yaml:\d+/.test(msg) : msg.includes(`brigade.yaml:${line}`);
      assert.ok(ok, `message should name brigade.yaml:${line}:\n${msg}`);
      if (re) assert.match(msg, re);
      assert.ok(!msg.includes('listening on'), 'it must not start listening');
    });
  }

  test('missing config file -> non-zero naming the file', async () => {
    const r = await runBrigade(['serve', '--config', '/nonexistent/brigade-e2e.yaml']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /brigade-e2e\.yaml/);
  });

  test('${VAR} naming an unset variable -> non-zero naming it', async () => {
    const dir = newDir();
    const file = path.join(dir, 'brigade.yaml');
    const cfg = minimalConfig(await freePort(), dir).replace('  - {name: local, kind: mock}',
      '  - {name: local, kind: mock}\n  - {name: up, kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: "${BRIGADE_E2E_UNSET_VAR}"}');
    fs.writeFileSync(file, cfg);
    assert.equal(process.env.BRIGADE_E2E_UNSET_VAR, undefined);
    const r = await runBrigade(['serve', '--config', file]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /BRIGADE_E2E_UNSET_VAR/);
  });
});

describe('running and stopping', () => {
  test('serve with no config: embedded defaults, --listen and --data-dir; SIGTERM -> exit 0', async () => {
    const port = await freePort();
    const dir = newDir();
    const token = 'tok-' + randomBytes(8).toString('hex');
    const c = await serve(['--listen', `127.0.0.1:${port}`, '--data-dir', dir], { BRIGADE_ADMIN_TOKEN: token });
    assert.equal(c.url, `http://127.0.0.1:${port}`);
    const h = await fetch(c.url + '/healthz');
    assert.equal(h.status, 200);
    const t = await readResponse(await fetch(c.url + '/v1/tenants', { headers: { authorization: `Bearer ${token}` } }));
    assert.equal(t.status, 200, 'BRIGADE_ADMIN_TOKEN is the admin token');
    const info = await c.stop();
    assert.equal(info.killed, undefined, 'needed SIGKILL');
    assert.equal(info.code, 0, `exit ${JSON.stringify(info)}\n${c.output()}`);
  });

  test('--listen overrides the config file', async () => {
    const dir = newDir();
    const file = path.join(dir, 'brigade.yaml');
    fs.writeFileSync(file, minimalConfig(await freePort(), dir));
    const port = await freePort();
    const c = await serve(['--config', file, '--listen', `127.0.0.1:${port}`]);
    assert.equal(new URL(c.url).port, String(port));
    assert.equal((await fetch(c.url + '/healthz')).status, 200);
    assert.equal((await c.stop()).code, 0);
  });

  test('SIGINT also stops serve with exit 0', async () => {
    const c = await serve(['--listen', `127.0.0.1:${await freePort()}`, '--data-dir', newDir()]);
    c.proc.kill('SIGINT');
    const info = await Promise.race([c.exited, sleep(5000).then(() => 'timeout')]);
    assert.notEqual(info, 'timeout', 'did not stop within 5 s of SIGINT');
    assert.equal(info.code, 0);
  });

  test('mock-llm: prints its URL, answers, SIGTERM -> exit 0', async () => {
    const port = await freePort();
    const c = new Child('mock-llm', ['mock-llm', '--listen', `127.0.0.1:${port}`]);
    children.push(c);
    const m = await c.waitFor(/mock-llm listening on (http:\/\/[^\s]+)/);
    assert.equal(m[1].replace(/\/$/, ''), `http://127.0.0.1:${port}`);
    const r = await readResponse(await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi [[tokens:3]]' }] }),
    }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.usage.completion_tokens, 3);
    const s = await readResponse(await fetch(`http://127.0.0.1:${port}/mock/stats`));
    assert.equal(s.status, 200);
    const info = await c.stop();
    assert.equal(info.code, 0, JSON.stringify(info));
  });

  test('SIGTERM lets an in-flight request finish, then exits 0', { timeout: 20_000 }, async () => {
    const port = await freePort();
    const dir = newDir();
    const token = 'tok-' + randomBytes(8).toString('hex');
    const c = await serve(['--listen', `127.0.0.1:${port}`, '--data-dir', dir], { BRIGADE_ADMIN_TOKEN: token });
    const api = async (key, method, p, body) => readResponse(await fetch(c.url + p, {
      method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body),
    }));
    const t = (await api(token, 'POST', '/v1/tenants', { name: 'graceful' })).body;
    const u = (await api(t.admin_key, 'POST', '/v1/users', { external_id: 'g' })).body;
    const k = (await api(t.admin_key, 'POST', `/v1/users/${u.id}/keys`, {})).body;
    const models = (await api(k.key, 'GET', '/v1/models')).body.data.map((m) => m.id);
    const pending = api(k.key, 'POST', '/v1/chat/completions', { model: models[0], messages: [{ role: 'user', content: 'slow [[latency:1000]] [[tokens:2]]' }] });
    await sleep(300);
    c.proc.kill('SIGTERM');
    const r = await pending;
    assert.equal(r.status, 200, `in-flight request: ${r.status} ${r.text}`);
    const info = await Promise.race([c.exited, sleep(8000).then(() => 'timeout')]);
    assert.notEqual(info, 'timeout');
    assert.equal(info.code, 0);
  });

  test('a second serve on the same data dir is refused', async () => {
    const dir = newDir();
    const c = await serve(['--listen', `127.0.0.1:${await freePort()}`, '--data-dir', dir]);
    const r = await runBrigade(['serve', '--listen', `127.0.0.1:${await freePort()}`, '--data-dir', dir], { timeoutMs: 5000 })
      .catch((e) => ({ code: 'hung', stderr: String(e) }));
    assert.notEqual(r.code, 0, 'second server on one data dir started');
    assert.notEqual(r.code, 'hung', 'second server on one data dir kept running');
    assert.ok(r.stderr.length > 0);
    assert.equal((await c.stop()).code, 0);
  });

  test('a port already in use -> non-zero with a message', async () => {
    const port = await freePort();
    const c = await serve(['--listen', `127.0.0.1:${port}`, '--data-dir', newDir()]);
    const r = await runBrigade(['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', newDir()], { timeoutMs: 5000 })
      .catch((e) => ({ code: 'hung', stderr: String(e) }));
    assert.notEqual(r.code, 0);
    assert.notEqual(r.code, 'hung');
    assert.ok(r.stderr.length > 0);
    await c.stop();
  });

  test('state survives a restart: tenant, user and key still work', { timeout: 20_000 }, async () => {
    const dir = newDir();
    const token = 'tok-' + randomBytes(8).toString('hex');
    const port = await freePort();
    const args = ['--listen', `127.0.0.1:${port}`, '--data-dir', dir];
    let c = await serve(args, { BRIGADE_ADMIN_TOKEN: token });
    const call = async (key, method, p, body) => readResponse(await fetch(c.url + p, {
      method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body),
    }));
    const t = (await call(token, 'POST', '/v1/tenants', { name: 'durable' })).body;
    const u = (await call(t.admin_key, 'POST', '/v1/users', { external_id: 'd1' })).body;
    const k = (await call(t.admin_key, 'POST', `/v1/users/${u.id}/keys`, {})).body;
    const k2 = (await call(t.admin_key, 'POST', `/v1/users/${u.id}/keys`, {})).body;
    assert.equal((await call(t.admin_key, 'DELETE', `/v1/keys/${k2.id}`)).status, 200);
    assert.equal((await c.stop()).code, 0);
    c = await serve(args, { BRIGADE_ADMIN_TOKEN: token });
    const me = await call(k.key, 'GET', '/v1/me');
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.user.id, u.id);
    assert.equal((await call(k2.key, 'GET', '/v1/me')).status, 401, 'revocation survives a restart');
    assert.equal((await call(t.admin_key, 'GET', '/v1/users')).body.data.length, 1);
    assert.equal((await c.stop()).code, 0);
  });
});

describe('brigade admin', () => {
  test('tenant/user/key create offline, then the key works in serve', { timeout: 20_000 }, async () => {
    const dir = newDir();
    const run = async (args) => {
      const r = await runBrigade(['admin', '--data-dir', dir, ...args]);
      assert.equal(r.code, 0, `admin ${args.join(' ')}: ${r.stderr}`);
      return JSON.parse(r.stdout);
    };
    const t = await run(['tenant', 'create', 'offline-co']);
    assert.equal(t.name, 'offline-co');
    assert.match(t.admin_key, /^bk_adm_/);
    const u = await run(['user', 'create', '--tenant', t.id, 'off-user']);
    assert.equal(u.external_id, 'off-user');
    const k = await run(['key', 'create', '--tenant', t.id, '--user', u.id]);
    assert.match(k.key, /^bk_usr_/);
    const c = await serve(['--listen', `127.0.0.1:${await freePort()}`, '--data-dir', dir]);
    const me = await readResponse(await fetch(c.url + '/v1/me', { headers: { authorization: `Bearer ${k.key}` } }));
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.user.external_id, 'off-user');
    const users = await readResponse(await fetch(c.url + '/v1/users', { headers: { authorization: `Bearer ${t.admin_key}` } }));
    assert.equal(users.status, 200);
    assert.equal(users.body.data.length, 1);
    assert.equal((await c.stop()).code, 0);
  });
});

describe('backups and a clean stop', () => {
  test('admin backup while serving: a new 0600 file, never over an old one; restored, it serves the same state', { timeout: 30_000 }, async () => {
    const dir = newDir();
    const token = 'tok-' + randomBytes(8).toString('hex');
    const c = await serve(['--listen', `127.0.0.1:${await freePort()}`, '--data-dir', dir], { BRIGADE_ADMIN_TOKEN: token });
    const call = async (key, method, p, body) => readResponse(await fetch(c.url + p, {
      method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body),
    }));
    const t = (await call(token, 'POST', '/v1/tenants', { name: 'backed-up' })).body;
    const u = (await call(t.admin_key, 'POST', '/v1/users', { external_id: 'b1' })).body;
    const k = (await call(t.admin_key, 'POST', `/v1/users/${u.id}/keys`, {})).body;
    // writes go on during the copy
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing && i < 200; i++) await call(t.admin_key, 'POST', '/v1/users', { external_id: `w${i}` });
    })();
    const out = path.join(newDir(), 'copy.db');
    const b = await runBrigade(['admin', '--data-dir', dir, 'backup', out]);
    writing = false;
    await writer;
    assert.equal(b.code, 0, b.stderr);
    const info = JSON.parse(b.stdout);
    assert.equal(info.object, 'backup');
    assert.ok(info.pages > 0 && info.bytes > 0);
    assert.equal(fs.statSync(out).mode & 0o777, 0o600, 'the copy holds every tenant: owner only');
    const again = await runBrigade(['admin', '--data-dir', dir, 'backup', out]);
    assert.notEqual(again.code, 0, 'an existing file is never overwritten');
    assert.match(again.stderr, /choose a new file name/);
    assert.equal(fs.statSync(out).size, info.bytes, 'the first copy is untouched');
    const none = await runBrigade(['admin', '--data-dir', path.join(dir, 'nope'), 'backup', out + '.2']);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /no database/);
    assert.equal((await c.stop()).code, 0);

    // restored: the copy as brigade.db, the key files beside it (docs/operations.md)
    const restored = newDir();
    fs.copyFileSync(out, path.join(restored, 'brigade.db'));
    for (const f of fs.readdirSync(dir)) {
      // files only: mcp/ (MCP servers' per-user directories) is not the database's, nor a key
      if (fs.statSync(path.join(dir, f)).isFile() && !/^brigade\.db|^serve\.lock$|^reservations\.journal$/.test(f)) fs.copyFileSync(path.join(dir, f), path.join(restored, f));
    }
    const r = await serve(['--listen', `127.0.0.1:${await freePort()}`, '--data-dir', restored], { BRIGADE_ADMIN_TOKEN: token });
    const me = await readResponse(await fetch(r.url + '/v1/me', { headers: { authorization: `Bearer ${k.key}` } }));
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.user.id, u.id);
    assert.equal((await r.stop()).code, 0);
  });

  test('a clean stop leaves the data in brigade.db, not in its WAL', { timeout: 20_000 }, async () => {
    const dir = newDir();
    const token = 'tok-' + randomBytes(8).toString('hex');
    const c = await serve(['--listen', `127.0.0.1:${await freePort()}`, '--data-dir', dir], { BRIGADE_ADMIN_TOKEN: token });
    for (let i = 0; i < 20; i++) {
      const r = await fetch(c.url + '/v1/tenants', {
        method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `t${i}` }),
      });
      assert.equal(r.status, 201);
    }
    assert.equal((await c.stop()).code, 0);
    const wal = path.join(dir, 'brigade.db-wal');
    assert.ok(!fs.existsSync(wal) || fs.statSync(wal).size === 0, `WAL left with ${fs.existsSync(wal) && fs.statSync(wal).size} bytes`);
    assert.ok(fs.statSync(path.join(dir, 'brigade.db')).size > 4096);
  });
});
