// mcp_sandbox.test.mjs — issue 13, items 4 and 5, for stdio MCP servers:
// every server runs in the sandbox unless the operator opts out, and what
// a hostile server (lib/mcp_hostile.mjs) tries from inside fails:
//   - reading another user's directory, the data directory, brigade's
//     configuration, the secrets directory, /etc/shadow; writing outside
//     its own directory;
//   - /proc/1/environ and every environment it can see: only PATH and what
//     its configuration declares, never brigade's canary secret;
//   - a TCP connection to a loopback listener, unless `network: true`;
//   - a fork bomb: bounded by the pids limit, the call ends, the run goes
//     on, brigade and other users' instances are fine;
//   - a process it leaves behind in a session of its own: gone when the
//     instance is reaped for idleness, and at shutdown.
// Arguments naming a file of the data directory or of /etc do not make
// that directory visible. And @modelcontextprotocol/server-filesystem allowed "/" by its own
// arguments still sees only its user's directory of brigade's data; a
// server with `sandbox: false` (the operator's opt-out) is warned about and
// does see the host — which is what the sandbox takes away.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { eventually, noteSecret, useStack } from './lib/harness.mjs';
import { newSession, streamMessage, toolMarker } from './lib/agents.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const hostile = path.join(here, 'lib', 'mcp_hostile.mjs');
const fsServer = path.join(here, 'node_modules', '@modelcontextprotocol', 'server-filesystem', 'dist', 'index.js');
const node = JSON.stringify(process.execPath);
const CANARY = 'mcp-sandbox-canary-' + process.pid;
noteSecret(CANARY);
const SECRETS_DIR = process.env.BRIGADE_E2E_SECRETS_DIR || '';

const server = (name, extra = []) => [
  `  - name: ${name}`,
  `    command: ${node}`,
  `    args: [${JSON.stringify(hostile)}, "{workdir}"]`,
  '    env: {DECLARED: declared-value}',
  '    call_timeout_ms: 15000',
  ...extra.map((l) => '    ' + l),
];

let tenant, alice, bob;
const stack = useStack({
  extraYaml: [
    'mcp_servers:',
    ...server('hostile', ['sandbox: {limits: {processes: 24}}']),
    ...server('hostile-net', ['sandbox: {network: true}']),
    ...server('idlehost', ['idle_timeout_s: 1']),
    ...server('open', ['sandbox: false']),
    // an operator's slip: arguments naming a file of the data directory
    // (brigade.yaml, through {workdir}/..) and one of /etc — neither may
    // make its directory visible
    '  - name: leaky',
    `    command: ${node}`,
    `    args: [${JSON.stringify(hostile)}, "{workdir}/../../../../brigade.yaml", /etc/hostname]`,
    '  - name: wide',
    `    command: ${node}`,
    `    args: [${JSON.stringify(fsServer)}, "{workdir}", /]`,
    'agents:',
    '  - {name: h, model: local-model, tools: ["hostile__*", "hostile-net__*", "idlehost__*", "open__*", "leaky__*"], max_steps: 4}',
    '  - {name: fs, model: local-model, tools: ["wide__*"], max_steps: 4}',
  ].join('\n'),
  env: { BRIGADE_CANARY_SECRET: CANARY },
}, async (s) => {
  tenant = await s.makeTenant();
  alice = await s.makeUserWithKey(tenant.admin_key, s.unique('alice'));
  bob = await s.makeUserWithKey(tenant.admin_key, s.unique('bob'));
});

/** One tool call in a run of its own: {ok, text, last} (the text is what the model read). */
async function call(user, agent, tool, args = {}) {
  const s = await newSession(stack, user.key, agent);
  const res = await streamMessage(stack, user.key, s.id, `Go. ${toolMarker(tool, args)}`);
  const tr = res.events.find((e) => e.event === 'tool.result');
  assert.ok(tr, res.text.slice(-600));
  const m = await stack.api(user.key, 'GET', `/v1/sessions/${s.id}/messages`);
  const text = m.body.data.filter((x) => x.role === 'tool').at(-1)?.content ?? '';
  return { ok: tr.data.ok, text, last: res.events.at(-1).event };
}

const dirOf = (srv, user) => path.join(stack.dataDir, 'mcp', srv, tenant.id, user.user.id);

/** Processes whose command line names `needle`. */
function processesNaming(needle) {
  return execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(needle));
}

let listener, port, accepted = 0;
before(async () => {
  listener = net.createServer((c) => { accepted++; c.destroy(); });
  await new Promise((r) => listener.listen(0, '127.0.0.1', r));
  port = listener.address().port;
});
after(() => listener.close());

describe('a hostile server in the sandbox', () => {
  test('another user\'s directory, the data directory, the config, the secrets: not there', async () => {
    const w = await call(bob, 'h', 'hostile__write', { path: path.join(dirOf('hostile', bob), 'bob-secret.txt') });
    assert.match(w.text, /^OK written/, w.text);
    assert.ok(fs.existsSync(path.join(dirOf('hostile', bob), 'bob-secret.txt')), 'Bob\'s own directory is writable');
    // Alice's instance, by Bob's host path
    const r = await call(alice, 'h', 'hostile__read', { path: path.join(dirOf('hostile', bob), 'bob-secret.txt') });
    assert.equal(r.last, 'run.completed');
    assert.match(r.text, /^ERR ENOENT/, r.text);
    // the tenant's directory shows Alice's only; the data directory only the way to it
    const tdir = await call(alice, 'h', 'hostile__list', { path: path.dirname(dirOf('hostile', alice)) });
    assert.equal(tdir.text, `OK ${JSON.stringify([alice.user.id])}`);
    const data = await call(alice, 'h', 'hostile__list', { path: stack.dataDir });
    assert.equal(data.text, 'OK ["mcp"]', 'nothing of the data directory but the way to her own');
    for (const p of [stack.configPath, path.join(stack.dataDir, 'mcp', 'open'), '/etc/shadow', '/root']) {
      const x = await call(alice, 'h', p === '/root' ? 'hostile__list' : 'hostile__read', { path: p });
      assert.match(x.text, /^ERR (ENOENT|EACCES)/, `${p}: ${x.text}`);
    }
    if (SECRETS_DIR) {
      const sec = await call(alice, 'h', 'hostile__list', { path: SECRETS_DIR });
      assert.match(sec.text, /^ERR ENOENT/, sec.text);
    }
  });

  test('writing outside its own directory fails: its program files, the system', async () => {
    for (const p of [path.join(here, 'lib', 'escaped.txt'), '/usr/escaped.txt']) {
      const x = await call(alice, 'h', 'hostile__write', { path: p });
      assert.match(x.text, /^ERR (EROFS|EACCES|EPERM)/, `${p}: ${x.text}`);
      assert.ok(!fs.existsSync(p), p);
    }
    // beside its directory: refused, or (when the data directory lies under
    // /tmp) written into the sandbox's own /tmp, which is gone with it
    const beside = path.join(path.dirname(dirOf('hostile', alice)), 'escaped.txt');
    const x = await call(alice, 'h', 'hostile__write', { path: beside });
    if (!stack.dataDir.startsWith('/tmp/')) assert.match(x.text, /^ERR (EROFS|EACCES|EPERM)/, x.text);
    assert.ok(!fs.existsSync(beside), 'written beside the instance\'s directory on the host');
  });

  test('/proc/1/environ and every environment it can see: PATH and the declared variable, no canary', async () => {
    const r = await call(alice, 'h', 'hostile__environ');
    assert.ok(!r.text.includes(CANARY), 'brigade\'s secret reached the sandbox');
    assert.ok(!r.text.includes('BRIGADE_'), r.text.slice(0, 600));
    const env = JSON.parse(r.text.slice(3));
    // /proc/1 is bubblewrap's first process in the pid namespace: not
    // readable (it is not dumpable), or the same declared environment
    for (const [pid, e] of Object.entries(env)) {
      if (typeof e === 'string') assert.match(e, /^ERR (EACCES|ENOENT|ESRCH|EPERM)/, `${pid}: ${e}`);
      else assert.deepEqual(e.map((v) => v.split('=')[0]).sort(), ['DECLARED', 'PATH'], `${pid}: ${e}`);
    }
    assert.deepEqual(env.self.map((e) => e.split('=')[0]).sort(), ['DECLARED', 'PATH']);
    const procs = JSON.parse((await call(alice, 'h', 'hostile__procs')).text.slice(3));
    assert.ok(procs.pids.length < 6, `it sees ${procs.pids.length} processes: not brigade's or the machine's`);
    assert.equal(procs.hostname, 'sandbox');
    assert.equal(procs.cwd, dirOf('hostile', alice));
    // what the server writes on stderr still reaches brigade's log
    assert.ok(stack.brigade.stderr.includes(`mcp hostile stderr: hostile: up in ${dirOf('hostile', alice)}`));
  });

  test('a socket to a loopback listener fails when the network is not granted, and connects when it is', async () => {
    const before = accepted;
    const r = await call(alice, 'h', 'hostile__connect', { port });
    assert.match(r.text, /^ERR (ECONNREFUSED|ENETUNREACH|EACCES|EPERM)/, r.text);
    assert.equal(accepted, before, 'the listener saw a connection');
    const granted = await call(alice, 'h', 'hostile-net__connect', { port });
    assert.equal(granted.text, 'OK connected');
    await eventually(() => accepted === before + 1, { timeoutMs: 2000 });
  });

  test('a fork bomb is bounded by the pids limit; the run goes on, brigade and the other users are fine', async () => {
    const r = await call(alice, 'h', 'hostile__forkbomb');
    assert.equal(r.last, 'run.completed');
    const seen = Number((r.text.match(/seen=(\d+)/) || [])[1]);
    // processes: 24 counts threads too (Node's own), and bwrap's two
    assert.ok(r.text.startsWith('OK') && seen >= 5 && seen <= 24, r.text);
    const health = await fetch(`${stack.brigadeUrl}/healthz`);
    assert.equal(health.status, 200);
    const other = await call(bob, 'h', 'hostile__procs');
    assert.match(other.text, /^OK /, other.text);
    // Alice's instance answers again (the bomb is gone, or the instance was restarted)
    await eventually(async () => (await call(alice, 'h', 'hostile__procs')).text.startsWith('OK '), { timeoutMs: 15000, intervalMs: 500 });
  });

  test('idle reaping leaves no process behind, not even one in a session of its own', async () => {
    const marker = 'idle-marker-' + process.pid;
    const r = await call(alice, 'h', 'idlehost__sleeper', { marker });
    assert.match(r.text, /^OK pid \d+/, r.text);
    assert.equal(processesNaming(marker).length, 1, 'the sleeper runs');
    await eventually(() => processesNaming(marker).length === 0 && processesNaming(dirOf('idlehost', alice)).length === 0,
      { timeoutMs: 8000, intervalMs: 200 });
  });
});

describe('read-only paths found from the arguments', () => {
  test('a file of the data directory or of /etc given as an argument shows neither directory', async () => {
    const cfg = await call(alice, 'h', 'leaky__read', { path: stack.configPath });
    assert.match(cfg.text, /^ERR ENOENT/, cfg.text);
    const data = await call(alice, 'h', 'leaky__list', { path: stack.dataDir });
    assert.equal(data.text, 'OK ["mcp"]');
    const etc = await call(alice, 'h', 'leaky__read', { path: '/etc/hostname' });
    assert.match(etc.text, /^ERR ENOENT/, etc.text);
    const out = stack.brigade.stderr;
    assert.match(out, /mcp leaky: \S+ is not shown in the sandbox: it is, holds or lies in brigade's data directory/);
    assert.match(out, /mcp leaky: \/etc is not shown in the sandbox automatically/);
  });
});

describe('server-filesystem allowed "/" by its own arguments', () => {
  test('still sees nothing of brigade\'s data but its user\'s directory, and no secret', async () => {
    const w = await call(bob, 'fs', 'wide__write_file', { path: path.join(dirOf('wide', bob), 'bob-notes.txt'), content: 'bob private' });
    assert.equal(w.ok, true, w.text);
    const listData = await call(alice, 'fs', 'wide__list_directory', { path: stack.dataDir });
    assert.equal(listData.ok, true, listData.text);
    assert.doesNotMatch(listData.text, /brigade\.yaml|\.db|hostile|sandbox/);
    const listTenant = await call(alice, 'fs', 'wide__list_directory', { path: path.dirname(dirOf('wide', alice)) });
    assert.doesNotMatch(listTenant.text, new RegExp(bob.user.id));
    for (const p of [path.join(dirOf('wide', bob), 'bob-notes.txt'), stack.configPath]) {
      const x = await call(alice, 'fs', 'wide__read_text_file', { path: p });
      assert.equal(x.ok, false, `${p}: ${x.text}`);
      assert.doesNotMatch(x.text, /bob private|admin_token/);
    }
    const env = await call(alice, 'fs', 'wide__read_text_file', { path: '/proc/1/environ' });
    assert.ok(!env.text.includes(CANARY));
  });
});

describe('sandbox: false, the operator\'s opt-out', () => {
  test('is warned about at start, and sees the host as brigade does', async () => {
    assert.match(stack.brigade.stderr, /mcp open: runs WITHOUT the sandbox \(sandbox: false\)/);
    const r = await call(alice, 'h', 'open__list', { path: stack.dataDir });
    assert.match(r.text, /brigade\.yaml/, 'unsandboxed, the data directory is visible: what the sandbox takes away');
  });
});

describe('shutdown', () => {
  test('no process of any sandbox outlives brigade', async () => {
    const marker = 'shutdown-marker-' + process.pid;
    const r = await call(bob, 'h', 'hostile__sleeper', { marker });
    assert.match(r.text, /^OK pid/, r.text);
    assert.equal(processesNaming(marker).length, 1);
    const info = await stack.brigade.stop();
    assert.equal(info.code, 0, stack.brigade.output().slice(-2000));
    assert.doesNotMatch(stack.brigade.stderr + stack.brigade.stdout, /Sanitizer|cgroup .* not removed/);
    await eventually(() => processesNaming(marker).length === 0 && processesNaming(path.join(stack.dataDir, 'mcp')).length === 0,
      { timeoutMs: 6000 });
  });
});
