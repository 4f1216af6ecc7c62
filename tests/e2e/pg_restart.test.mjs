// pg_restart.test.mjs — PostgreSQL stopped and started again under a
// running brigade (docs/scale-out.md, "Failure behaviour"): while it is
// away every call that needs the store answers at once with a clear error
// (never a hang, never a crash: creating a session used to free an
// uninitialised agent and kill the process), /readyz says the store is
// unreachable, and the gateway keeps serving with usage queued; once it is
// back brigade carries on without a restart of its own, and the usage of
// the calls answered meanwhile is in the ledger, not lost.
//
// The test starts a PostgreSQL of its own (scripts/pg-test.sh, from the
// Debian package), whatever store the rest of the suite runs on, because it
// stops that server.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';

import { eventually, tempDir, useStack } from './lib/harness.mjs';

const pgTest = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/pg-test.sh');
const pgDir = tempDir('brigade-pg-restart-');
const pg = (cmd) => execFileSync(pgTest, [cmd, pgDir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

let alice;
const stack = useStack(async () => {
  const url = pg('start');
  return {
    storeYaml: `store: {kind: postgres, url: ${JSON.stringify(url)}}`,
    extraYaml: 'agents:\n  - {name: helper, model: local-model}',
  };
}, async (s) => {
  const tenant = await s.makeTenant();
  alice = await s.makeUserWithKey(tenant.admin_key);
});
after(() => {
  try { pg('stop'); } catch { /* already stopped */ }
  fs.rmSync(pgDir, { recursive: true, force: true });
});

/** A call timed: {status, body, ms}; a hang is a failure of its own. */
async function timed(key, method, p, body) {
  const t0 = Date.now();
  const r = await fetch(stack.brigadeUrl + p, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON: asserted by the caller */ }
  return { status: r.status, body: json, text, ms: Date.now() - t0 };
}

const chatBody = { model: 'local-model', messages: [{ role: 'user', content: 'while the store is away' }] };

describe('PostgreSQL stopped and started under a running brigade', () => {
  test('away: clear errors at once, no crash, the gateway serves; back: no restart needed, nothing lost', async () => {
    assert.equal((await timed(alice.key, 'POST', '/v1/chat/completions', chatBody)).status, 200);
    pg('stop');

    // the gateway needs no store on its path: answered, usage queued
    let answered = 1;
    for (let i = 0; i < 5; i++) {
      const r = await timed(alice.key, 'POST', '/v1/chat/completions', chatBody);
      assert.equal(r.status, 200, r.text);
      answered++;
    }
    // what needs the store: a clear error, quickly, and the process lives on
    for (const [method, p, body] of [
      ['GET', '/v1/usage'],
      ['POST', '/v1/sessions', { agent: 'helper' }],
      ['GET', '/v1/sessions'],
      ['PUT', '/v1/memory/note', { value: 'x' }],
    ]) {
      const r = await timed(alice.key, method, p, body);
      assert.ok(r.status >= 500 && r.status < 600, `${method} ${p}: ${r.status} ${r.text}`);
      assert.equal(r.body?.error?.code, 'store_error', `${method} ${p}: ${r.text}`);
      assert.ok(r.ms < 10_000, `${method} ${p} took ${r.ms} ms`);
    }
    const ready = await fetch(stack.brigadeUrl + '/readyz', { headers: { authorization: `Bearer ${stack.adminToken}` } });
    assert.equal(ready.status, 503);
    assert.equal((await ready.json()).checks.store, 'unreachable');
    assert.equal(stack.brigade.proc.exitCode, null, 'brigade is still running');

    pg('start');
    // back, without a restart of brigade: the store answers again ...
    await eventually(async () => (await timed(alice.key, 'POST', '/v1/sessions', { agent: 'helper' })).status === 201,
      { timeoutMs: 15_000, intervalMs: 250 });
    assert.equal((await fetch(stack.brigadeUrl + '/readyz')).status, 200);
    // ... and every call answered while it was away is in the ledger
    await eventually(async () => {
      const u = await timed(alice.key, 'GET', '/v1/usage');
      const requests = (u.body?.data ?? []).reduce((n, row) => n + row.requests, 0);
      return u.status === 200 && requests >= answered;
    }, { timeoutMs: 15_000, intervalMs: 250 });
    assert.equal(stack.brigade.proc.exitCode, null);
  });
});
