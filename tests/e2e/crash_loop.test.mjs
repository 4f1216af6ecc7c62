// crash_loop.test.mjs — kill -9 at random moments under mixed load, again
// and again (CRASH_CYCLES, default 20), each time restarting on the same data
// dir and checking what the test client logged before the crash:
//
//   - every acknowledged write is there: users and keys answered 201, memory
//     saved by runs that answered "completed";
//   - money: the user's spend, as the restarted budgets count it, is at least
//     what was delivered to the client (calls in flight may be overcounted,
//     never undercounted);
//   - no budget is over: a user whose small budget the load keeps hitting
//     has spent no more than it. This holds at every restart because a
//     call whose usage row was committed just before the kill, its journal
//     record not yet closed, is charged once (the row keeps its
//     reservation's id and the reconciliation skips it); before that fix
//     it was charged twice, and this check failed in 2 runs in 24 of 30
//     crashes on a busy machine;
//   - the audit: every user and key present has its creation entry (the act
//     and its entry are one transaction), and `brigade audit verify` finds
//     the chain intact;
//   - no run is left `running`.
//
// The load: gateway calls (plain and streamed), agent runs with a tool call,
// and admin writes, from several concurrent workers, for 150-450 ms a cycle.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { auditEntries, runBrigade, sleep, storeCliArgs, useStack } from './lib/harness.mjs';
import { newSession, postMessage, restartBrigade, toolMarker } from './lib/agents.mjs';

const CYCLES = Number(process.env.CRASH_CYCLES || 20);
// local-model's prices (tests/e2e/lib/harness.mjs), in USD per token
const IN_USD = 0.5 / 1e6;
const OUT_USD = 1.5 / 1e6;
const SMALL_BUDGET_USD = 0.002;

let tenant;
let payer;       // the user whose spend is checked against what was delivered
let capped;      // the user whose small budget the load keeps hitting
// Traces off: their batches would carry the usage rows to disk within
// milliseconds; without them a row waits up to the writer's flush bound
// (100-200 ms), the widest window a crash can fall in.
const stack = useStack({
  extraYaml: [
    'observability:',
    '  traces: {enabled: false}',
    'agents:',
    '  - {name: keeper, model: local-model, tools: [memory]}',
  ].join('\n'),
}, async (s) => {
  tenant = await s.makeTenant();
  payer = await s.makeUserWithKey(tenant.admin_key);
  capped = await s.makeUserWithKey(tenant.admin_key);
  for (const [u, usd] of [[payer, 1000], [capped, SMALL_BUDGET_USD]]) {
    const p = await s.api(tenant.admin_key, 'PATCH', `/v1/users/${u.user.id}`, { limits: { monthly_budget_usd: usd } });
    assert.equal(p.status, 200, p.text);
  }
});

const log = {
  delivered: 0,        // USD the payer's client received whole answers for
  calls: 0,
  users: new Set(),    // ids answered 201
  keys: new Set(),
  memory: new Map(),   // key → value, saved by a run that completed
  runs: new Set(),
};

function chatBody(i, extra = {}) {
  return JSON.stringify({
    model: 'local-model',
    max_tokens: 64,
    messages: [{ role: 'user', content: `call ${i} [[tokens:${8 + (i % 24)}]] [[latency:${i % 40}]]` }],
    ...extra,
  });
}

const headers = (key) => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });
const costOf = (u) => u.prompt_tokens * IN_USD + u.completion_tokens * OUT_USD;

/** A plain call: its cost if the client got the whole answer, else 0. */
async function plainCall(key, i) {
  const r = await fetch(`${stack.brigadeUrl}/v1/chat/completions`, { method: 'POST', headers: headers(key), body: chatBody(i) });
  if (r.status !== 200) return 0;
  return costOf((await r.json()).usage);
}

/** A streamed call: its cost if the stream ended with its usage and [DONE]. */
async function streamedCall(key, i) {
  const r = await fetch(`${stack.brigadeUrl}/v1/chat/completions`, {
    method: 'POST', headers: headers(key),
    body: chatBody(i, { stream: true, stream_options: { include_usage: true } }),
  });
  if (r.status !== 200) return 0;
  const text = await r.text();
  if (!/data: \[DONE\]/.test(text)) return 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('data: {')) continue;
    const chunk = JSON.parse(line.slice(6));
    if (chunk.usage) return costOf(chunk.usage);
  }
  return 0;
}

/** An agent run that saves a memory entry with the memory tool. */
async function agentRun(i) {
  const s = await stack.api(payer.key, 'POST', '/v1/sessions', { agent: 'keeper' });
  if (s.status !== 201) return 0;
  const k = `crash-${i}`;
  const v = `value-${i}-${Math.random().toString(36).slice(2)}`;
  const r = await postMessage(stack, payer.key, s.body.id,
    `Keep it. ${toolMarker('memory', { action: 'save', key: k, value: v })}`);
  if (r.status !== 200 || !r.body.run) return 0;
  log.runs.add(r.body.run.id);
  if (r.body.run.status !== 'completed') return 0;
  log.memory.set(k, v);
  return r.body.run.usage.cost_usd;
}

async function adminWrites(cycle, w) {
  const u = await stack.api(tenant.admin_key, 'POST', '/v1/users', { external_id: `crash-${cycle}-${w}-${Math.random()}` });
  if (u.status !== 201) return;
  log.users.add(u.body.id);
  const k = await stack.api(tenant.admin_key, 'POST', `/v1/users/${u.body.id}/keys`, {});
  if (k.status === 201) log.keys.add(k.body.id);
  await stack.api(tenant.admin_key, 'PATCH', `/v1/users/${u.body.id}`, { limits: { daily_budget_usd: 5 } });
}

/** Run `step` in a loop until the deadline; a failure (the server died) ends nothing. */
async function worker(until, step) {
  while (Date.now() < until) {
    try {
      await step();
    } catch { /* the server died under it: nothing was delivered */ }
  }
}

async function budgetOf(key) {
  const r = await stack.api(key, 'GET', '/v1/usage');
  assert.equal(r.status, 200, r.text);
  return r.body.budget.month;
}

async function checkAfterRestart(cycle) {
  const where = `after crash ${cycle + 1}`;
  // money
  const spent = (await budgetOf(payer.key)).spent_usd;
  assert.ok(spent + 1e-9 * log.calls >= log.delivered,
    `${where}: the restarted budgets count $${spent}, the client got $${log.delivered}`);
  const c = await budgetOf(capped.key);
  assert.ok(c.spent_usd <= SMALL_BUDGET_USD + 1e-9,
    `${where}: a $${SMALL_BUDGET_USD} budget has $${c.spent_usd} spent`);
  // acknowledged writes
  for (const id of log.users) {
    const r = await stack.api(tenant.admin_key, 'GET', `/v1/users/${id}`);
    assert.equal(r.status, 200, `${where}: user ${id} was acknowledged, then lost`);
  }
  for (const [k, v] of log.memory) {
    const r = await stack.api(payer.key, 'GET', `/v1/memory/${k}`);
    assert.equal(r.status, 200, `${where}: memory ${k} was saved by a completed run, then lost`);
    assert.equal(r.body.value, v);
  }
  // no run left running
  for (const id of log.runs) {
    const r = await stack.api(payer.key, 'GET', `/v1/runs/${id}`);
    assert.equal(r.status, 200, r.text);
    assert.notEqual(r.body.status, 'running', `${where}: run ${id} is still "running"`);
  }
  // the audit chain
  const v = await runBrigade(['audit', 'verify', '--json', '--data-dir', stack.dataDir, ...storeCliArgs(stack)]);
  const j = JSON.parse(v.stdout);
  assert.equal(j.intact, true, `${where}: ${v.stdout}`);
}

describe('kill -9 in a loop under mixed load', () => {
  test(`${CYCLES} crashes: acknowledged writes kept, spend covers what was delivered, no budget over, audit intact, no run stuck`,
    { timeout: 600_000 }, async () => {
      let reconciled = 0;
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        const until = Date.now() + 150 + Math.floor(Math.random() * 300);
        const charge = async (p) => { const cost = await p; log.delivered += cost; };  // never "+= await"
        const workers = [
          worker(until, () => charge(plainCall(payer.key, log.calls++))),
          worker(until, () => charge(plainCall(payer.key, log.calls++))),
          worker(until, () => charge(streamedCall(payer.key, log.calls++))),
          worker(until, () => charge(agentRun(log.calls++))),
          worker(until, () => plainCall(capped.key, log.calls++)),
          worker(until, () => adminWrites(cycle, 0)),
          worker(until, () => adminWrites(cycle, 1)),
        ];
        await sleep(Math.max(0, until - Date.now()));
        const info = await restartBrigade(stack, 'SIGKILL');
        assert.equal(info.signal, 'SIGKILL');
        await Promise.all(workers);
        if (/charged \$([0-9.]+) at their reservations/.test(stack.brigade.output())) reconciled++;
        await checkAfterRestart(cycle);
      }
      assert.ok(log.calls > CYCLES * 4, `load was made (${log.calls} calls)`);
      assert.ok(log.users.size > 0 && log.keys.size > 0, 'admin writes were made');
      assert.ok(log.memory.size > 0, 'runs completed between the crashes');

      // the reconciliation is audited whenever it charged something
      const rec = await auditEntries(stack, stack.adminToken, '&action=budget.reconcile');
      assert.ok(rec.length >= reconciled, `${rec.length} budget.reconcile entries, ${reconciled} logged`);
      for (const e of rec) {
        assert.ok(e.details.reservations >= 1);
        assert.ok(e.details.charged_usd > 0);
      }

      // every user and key present has its creation entry, and no entry
      // names a user that is not there
      const entries = await auditEntries(stack, tenant.admin_key);
      const targets = (action) => new Set(entries.filter((e) => e.action === action).map((e) => e.target));
      const userCreated = targets('user.create');
      const keyCreated = targets('key.create');
      const users = [];
      for (let after = ''; ;) {
        const r = await stack.api(tenant.admin_key, 'GET', `/v1/users?limit=100${after ? `&after=${after}` : ''}`);
        assert.equal(r.status, 200, r.text);
        users.push(...r.body.data);
        if (!r.body.has_more) break;
        after = r.body.data[r.body.data.length - 1].id;
      }
      for (const u of users) {
        assert.ok(userCreated.has(u.id), `user ${u.id} exists without its user.create entry`);
        const ks = await stack.api(tenant.admin_key, 'GET', `/v1/users/${u.id}/keys`);
        assert.equal(ks.status, 200, ks.text);
        for (const k of ks.body.data) assert.ok(keyCreated.has(k.id), `key ${k.id} exists without its key.create entry`);
      }
      const userIds = new Set(users.map((u) => u.id));
      for (const id of userCreated) assert.ok(userIds.has(id), `a user.create entry for ${id}, which does not exist`);
    });
});
