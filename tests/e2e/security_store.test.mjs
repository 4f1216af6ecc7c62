// security_store.test.mjs — the storage defences of issue 10, end to end:
// memory search order that no other user's writes can move (no per-word
// "does anyone store this?" oracle), erasure that takes the user's spans and
// leaves none of their words in brigade.db or its WAL, span attributes that
// hold the route pattern rather than user-chosen path segments, per-tier
// storage quotas (the 300 × 64 KiB attack, sessions, messages, parallel
// writes, the agents' memory tool), and data files private to their owner.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { Child, E2E_ON_POSTGRES, errorOf, eventually, freePort, runBrigade, storeSql, tempDir, useStack } from './lib/harness.mjs';
import { newSession, postMessage, toolMarker, transcript } from './lib/agents.mjs';

const KIB = 1024;
// Small quotas, so that filling them is quick.
const TIERS = [
  { name: 'default', memory_bytes: 1024 * KIB, sessions: 5, messages_per_session: 4 },
  { name: 'small', memory_bytes: 4 * KIB, memory_entries: 5 },
  { name: 'gold' },
];

let tenant;
let other;       // another tenant
const stack = useStack({
  tiers: TIERS,
  limits: { max_body_bytes: 1 << 20 },
  extraYaml: 'agents:\n  - {name: keeper, model: local-model, tools: [memory]}\n',
}, async (s) => {
  tenant = await s.makeTenant();
  other = await s.makeTenant();
});

const enc = encodeURIComponent;

function traceIdOf(r) {
  const tp = r.headers.get('traceparent');
  assert.ok(tp, 'a traceparent in the response');
  return tp.split('-')[1];
}

async function searchKeys(key, q) {
  const r = await stack.api(key, 'GET', `/v1/memory?q=${enc(q)}&limit=100`);
  assert.equal(r.status, 200, r.text);
  return r.body.data.map((m) => m.key);
}

async function putAll(key, entries, concurrency = 8) {
  const queue = [...entries];
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (queue.length) {
      const [k, v] = queue.shift();
      const r = await stack.api(key, 'PUT', `/v1/memory/${enc(k)}`, { value: v });
      assert.equal(r.status, 200, r.text);
    }
  }));
}

describe('memory search ranking depends only on the caller\'s own entries', () => {
  test('another tenant\'s and another user\'s writes never change a user\'s result order', async () => {
    const { key: alice } = await stack.makeUserWithKey(tenant.admin_key);
    const { key: carol } = await stack.makeUserWithKey(tenant.admin_key);
    const { key: mallory } = await stack.makeUserWithKey(other.admin_key);
    await putAll(alice, [
      ['garden', 'orchid seeds in the blue pot by the window'],
      ['zoo', 'walrus facts from the old zoo trip'],
      ['mixed', 'an orchid and a walrus and a parrot'],
      ['long', 'walrus ' + 'and some other words about the weekend plans '.repeat(4)],
      ...Array.from({ length: 8 }, (_, i) => [`filler-${i}`, `unrelated note number ${i} about groceries`]),
    ], 1);
    const queries = ['orchid walrus', 'walrus', 'orchid parrot weekend'];
    const before = [];
    for (const q of queries) before.push(await searchKeys(alice, q));
    assert.ok(before[0].length >= 4, JSON.stringify(before));

    // The probe: another tenant writes the query's words many times over.
    await putAll(mallory, Array.from({ length: 120 }, (_, i) => [`m-${i}`, i % 2 ? 'orchid orchid orchid' : 'walrus parrot']));
    for (let i = 0; i < queries.length; i++) assert.deepEqual(await searchKeys(alice, queries[i]), before[i], queries[i]);
    // And a user of Alice's own tenant.
    await putAll(carol, Array.from({ length: 120 }, (_, i) => [`c-${i}`, i % 3 ? 'walrus walrus weekend' : 'orchid']));
    for (let i = 0; i < queries.length; i++) assert.deepEqual(await searchKeys(alice, queries[i]), before[i], queries[i]);
    // Their deletions neither.
    for (let i = 0; i < 60; i++) assert.equal((await stack.api(mallory, 'DELETE', `/v1/memory/m-${i}`)).status, 200);
    for (let i = 0; i < queries.length; i++) assert.deepEqual(await searchKeys(alice, queries[i]), before[i], queries[i]);
  });
});

describe('span attributes hold route patterns, not user-chosen identifiers', () => {
  test('PUT /v1/memory/{key}: the span names the pattern; the key appears nowhere in the trace', async () => {
    const { key } = await stack.makeUserWithKey(tenant.admin_key);
    const secretKey = 'diary-' + randomBytes(6).toString('hex');
    const r = await stack.api(key, 'PUT', `/v1/memory/${secretKey}?x=${secretKey}`, { value: 'v' });
    assert.equal(r.status, 200, r.text);
    const tid = traceIdOf(r);
    const trace = await eventually(async () => {
      const t = await stack.api(key, 'GET', `/v1/traces/${tid}`);
      return t.status === 200 ? t : null;
    }, { timeoutMs: 5000 });
    const server = trace.body.spans.find((s) => s.kind === 'server');
    assert.equal(server.name, 'PUT /v1/memory/{key}');
    assert.equal(server.attributes['http.route'], '/v1/memory/{key}');
    assert.equal(server.attributes['url.path'], undefined);
    assert.ok(!trace.text.includes(secretKey), `the key leaked into the trace: ${trace.text}`);
    const metrics = await fetch(stack.brigadeUrl + '/metrics').then((x) => x.text());
    assert.ok(!metrics.includes(secretKey), 'the key leaked into a metric label');
  });
});

describe('erasing a user leaves no trace', () => {
  test('spans are erased (404 for the tenant admin) and brigade.db / -wal keep none of the user\'s words', async () => {
    const { user, key } = await stack.makeUserWithKey(tenant.admin_key);
    const canaryMem = 'zyxmemorycanary' + randomBytes(5).toString('hex');
    const canaryMsg = 'zyxmessagecanary' + randomBytes(5).toString('hex');
    const canarySpan = 'zyxspancanary' + randomBytes(5).toString('hex');
    const put = await stack.api(key, 'PUT', '/v1/memory/diary', { value: `remember ${canaryMem} for me` },
      { 'x-request-id': canarySpan });
    assert.equal(put.status, 200, put.text);
    const tid = traceIdOf(put);
    const s = await newSession(stack, key, 'keeper');
    const m = await postMessage(stack, key, s.id, `hello ${canaryMsg}`);
    assert.equal(m.status, 200, m.text);
    // The span with the canary (a request id the client chose) is stored.
    const trace = await eventually(async () => {
      const t = await stack.api(tenant.admin_key, 'GET', `/v1/traces/${tid}`);
      return t.status === 200 && t.text.includes(canarySpan) ? t : null;
    }, { timeoutMs: 5000 });
    assert.ok(trace);
    const db = path.join(stack.dataDir, 'brigade.db');
    const files = [db, db + '-wal'];
    // SQLite: the bytes of its files. PostgreSQL keeps dead row versions
    // until VACUUM (docs/scale-out.md, a known difference): there, the rows
    // of every table that holds the user's words, read as text.
    const inRows = (word) => Number(storeSql(stack,
      `SELECT (SELECT count(*) FROM memory r WHERE r::text LIKE '%${word}%')`
      + ` + (SELECT count(*) FROM messages r WHERE r::text LIKE '%${word}%')`
      + ` + (SELECT count(*) FROM traces WHERE position(convert_to('${word}', 'UTF8') IN spans) > 0)`)) > 0;
    const onDisk = (word) => (E2E_ON_POSTGRES ? inRows(word)
      : files.some((f) => fs.existsSync(f) && fs.readFileSync(f).includes(word)));
    for (const c of [canaryMem, canaryMsg, canarySpan]) assert.ok(onDisk(c), `${c} not on disk before: the check would prove nothing`);

    const del = await stack.api(tenant.admin_key, 'DELETE', `/v1/users/${user.id}`);
    assert.equal(del.status, 200, del.text);
    // Read at once: the answer comes after the scrub.
    for (const c of [canaryMem, canaryMsg, canarySpan]) assert.ok(!onDisk(c), `${c} survived the erasure on disk`);
    const gone = await stack.api(tenant.admin_key, 'GET', `/v1/traces/${tid}`);
    assert.equal(gone.status, 404, gone.text);
    // Spans still queued in the tracer when the user went are not written after.
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal((await stack.api(tenant.admin_key, 'GET', `/v1/traces/${tid}`)).status, 404);
    for (const c of [canaryMem, canaryMsg, canarySpan]) assert.ok(!onDisk(c), `${c} came back`);
  });
});

describe('storage quotas', () => {
  test('300 × 64 KiB memory entries: stopped at the tier\'s memory_bytes with 429 insufficient_quota', async () => {
    const { key } = await stack.makeUserWithKey(tenant.admin_key);
    const value = 'x'.repeat(64 * KIB);
    let ok = 0;
    let refused = null;
    let refusedCount = 0;
    for (let i = 0; i < 300; i++) {
      const r = await stack.api(key, 'PUT', `/v1/memory/big-${i}`, { value });
      if (r.status === 200) ok++;
      else {
        assert.equal(r.status, 429, r.text);
        refused = refused || r;
        refusedCount++;
      }
    }
    // 1 MiB holds 15 entries of 64 KiB plus their keys, not 16.
    assert.equal(ok, 15);
    assert.equal(refusedCount, 285);
    const e = errorOf(refused);
    assert.equal(e.type, 'insufficient_quota');
    assert.equal(e.code, 'storage_quota_exceeded');
    assert.match(e.message, /memory_bytes quota of tier "default" is 1048576 bytes/);
    assert.equal(refused.headers.get('retry-after'), null, 'waiting does not free a quota');
    // Deleting makes room again.
    assert.equal((await stack.api(key, 'DELETE', '/v1/memory/big-0')).status, 200);
    assert.equal((await stack.api(key, 'PUT', '/v1/memory/again', { value })).status, 200);
    assert.equal((await stack.api(key, 'PUT', '/v1/memory/again2', { value })).status, 429);
  });

  test('one value larger than the whole quota: 413 request_too_large', async () => {
    const { key } = await stack.makeUserWithKey(tenant.admin_key, undefined, { tier: 'small' });
    const r = await stack.api(key, 'PUT', '/v1/memory/huge', { value: 'y'.repeat(5 * KIB) });
    assert.equal(r.status, 413, r.text);
    const e = errorOf(r);
    assert.equal(e.type, 'request_too_large');
    assert.equal(e.code, 'larger_than_quota');
    assert.match(e.message, /memory_bytes quota of tier "small" is 4096 bytes/);
  });

  test('parallel writes never pass the memory_entries quota', async () => {
    const { key } = await stack.makeUserWithKey(tenant.admin_key, undefined, { tier: 'small' });
    const rs = await Promise.all(Array.from({ length: 40 }, (_, i) =>
      stack.api(key, 'PUT', `/v1/memory/p-${i}`, { value: `v${i}` })));
    const codes = rs.map((r) => r.status);
    assert.equal(codes.filter((c) => c === 200).length, 5, codes.join(','));
    assert.equal(codes.filter((c) => c === 429).length, 35, codes.join(','));
    const refused = rs.find((r) => r.status === 429);
    assert.match(errorOf(refused).message, /memory_entries quota of tier "small" is 5 entries/);
    const all = await stack.api(key, 'GET', '/v1/memory?limit=100');
    assert.equal(all.body.data.length, 5);
  });

  test('sessions: the tier\'s sessions quota, parallel creations included', async () => {
    const { key } = await stack.makeUserWithKey(tenant.admin_key);
    const rs = await Promise.all(Array.from({ length: 12 }, () =>
      stack.api(key, 'POST', '/v1/sessions', { agent: 'keeper' })));
    const made = rs.filter((r) => r.status === 201);
    assert.equal(made.length, 5, rs.map((r) => r.status).join(','));
    const refused = rs.find((r) => r.status === 429);
    const e = errorOf(refused);
    assert.equal(e.code, 'storage_quota_exceeded');
    assert.match(e.message, /sessions quota of tier "default" is 5 sessions/);
    assert.equal((await stack.api(key, 'DELETE', `/v1/sessions/${made[0].body.id}`)).status, 200);
    assert.equal((await stack.api(key, 'POST', '/v1/sessions', { agent: 'keeper' })).status, 201);
  });

  test('messages per session: a new message past the quota is refused, nothing stored', async () => {
    const { key } = await stack.makeUserWithKey(tenant.admin_key);
    const s = await newSession(stack, key, 'keeper');
    for (let i = 0; i < 2; i++) assert.equal((await postMessage(stack, key, s.id, `turn ${i}`)).status, 200);
    const r = await postMessage(stack, key, s.id, 'one too many');
    assert.equal(r.status, 429, r.text);
    const e = errorOf(r);
    assert.equal(e.type, 'insufficient_quota');
    assert.equal(e.code, 'storage_quota_exceeded');
    assert.match(e.message, /messages_per_session quota of tier "default" is 4 messages/);
    assert.equal(r.headers.get('retry-after'), null);
    const t = await transcript(stack, key, s.id);
    assert.equal(t.length, 4);
    assert.ok(!t.some((m) => m.content === 'one too many'));
  });

  test('the agents\' memory tool has the same quota, and the model is told which', async () => {
    const { key } = await stack.makeUserWithKey(tenant.admin_key, undefined, { tier: 'small' });
    for (let i = 0; i < 5; i++) assert.equal((await stack.api(key, 'PUT', `/v1/memory/k${i}`, { value: 'v' })).status, 200);
    const s = await newSession(stack, key, 'keeper');
    const r = await postMessage(stack, key, s.id, `Save it. ${toolMarker('memory', { action: 'save', key: 'one-more', value: 'x' })}`);
    assert.equal(r.status, 200, r.text);
    const tool = (await transcript(stack, key, s.id)).find((m) => m.role === 'tool');
    assert.ok(tool, 'a tool result');
    assert.match(tool.content, /nothing was saved: the memory_entries quota of tier \\"small\\" is 5 entries/);
    assert.match(tool.content, /Delete memories that are no longer needed first/);
    assert.equal((await stack.api(key, 'GET', '/v1/memory/one-more')).status, 404);
  });
});

describe('data files are private', () => {
  test('brigade.db, -wal and -shm are 0600', { skip: E2E_ON_POSTGRES && 'SQLite\'s files (a PostgreSQL store has none)' }, async () => {
    await stack.api(null, 'GET', '/healthz');
    for (const f of ['brigade.db', 'brigade.db-wal', 'brigade.db-shm', 'secret']) {
      const p = path.join(stack.dataDir, f);
      assert.ok(fs.existsSync(p), `${f} exists`);
      assert.equal(fs.statSync(p).mode & 0o777, 0o600, f);
    }
  });

  test('a data directory open to others is refused with the chmod that fixes it', async () => {
    const dir = tempDir('brigade-sec-dir-');
    try {
      fs.chmodSync(dir, 0o755);
      const r = await runBrigade(['serve', '--listen', `127.0.0.1:${await freePort()}`, '--data-dir', dir], { timeoutMs: 5000 });
      assert.notEqual(r.code, 0, r.stdout);
      assert.match(r.stderr, new RegExp(`data directory ${dir} has permissions 755.*chmod 700 ${dir}`));
      assert.ok(!fs.existsSync(path.join(dir, 'brigade.db')), 'nothing created');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a readable secret file is refused; an existing 0644 database is narrowed to 0600', async () => {
    const dir = tempDir('brigade-sec-files-');
    try {
      const secret = path.join(dir, 'secret');
      fs.writeFileSync(secret, randomBytes(32), { mode: 0o644 });
      fs.chmodSync(secret, 0o644);
      const r = await runBrigade(['serve', '--listen', `127.0.0.1:${await freePort()}`, '--data-dir', dir], { timeoutMs: 5000 });
      assert.notEqual(r.code, 0, r.stdout);
      assert.match(r.stderr, /secret has permissions 644.*chmod 600/);

      fs.chmodSync(secret, 0o600);
      fs.writeFileSync(path.join(dir, 'brigade.db'), '', { mode: 0o644 });
      fs.chmodSync(path.join(dir, 'brigade.db'), 0o644);
      const c = new Child('brigade serve', ['serve', '--listen', `127.0.0.1:${await freePort()}`, '--data-dir', dir]);
      try {
        await c.waitFor(/listening on/);
        assert.equal(fs.statSync(path.join(dir, 'brigade.db')).mode & 0o777, 0o600);
      } finally {
        await c.stop();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
