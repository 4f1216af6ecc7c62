// crash_loop.test.mjs — kill -9 at random moments under load, again and
// again, and check the two promises a crash must not break:
//
//   money: after every restart the user's spend, as the rebuilt budgets
//   count it, is at least what was delivered to the client before the
//   crash (calls in flight may be overcounted, never undercounted);
//
//   audit: every user and key that exists after the crashes has its
//   user.create / key.create entry (the act and its entry are one
//   transaction), and `brigade audit verify` finds the chain intact.
//
// Each cycle is bounded (load for 150-450 ms, then SIGKILL); the number of
// cycles is CRASH_CYCLES (default 20).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { auditEntries, runBrigade, sleep, useStack } from './lib/harness.mjs';
import { restartBrigade } from './lib/agents.mjs';

const CYCLES = Number(process.env.CRASH_CYCLES || 20);
// local-model's prices (tests/e2e/lib/harness.mjs), in USD per token
const IN_USD = 0.5 / 1e6;
const OUT_USD = 1.5 / 1e6;

let tenant;
let user;
let userKey;
// Traces off: their batches would carry the usage rows to disk within
// milliseconds; without them a row waits up to the writer's flush bound
// (100-200 ms), the widest window a crash can fall in.
const stack = useStack({ extraYaml: 'observability:\n  traces: {enabled: false}\n' }, async (s) => {
  tenant = await s.makeTenant();
  ({ user, key: userKey } = await s.makeUserWithKey(tenant.admin_key));
  // a budget far above what the test spends: counted, never refusing
  const p = await s.api(tenant.admin_key, 'PATCH', `/v1/users/${user.id}`,
    { limits: { monthly_budget_usd: 1000 } });
  assert.equal(p.status, 200, p.text);
});

/** One chat call; its delivered cost (USD) if the client got a whole answer, else 0. */
async function oneCall(i) {
  try {
    const r = await fetch(`${stack.brigadeUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${userKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'local-model',
        max_tokens: 64,
        messages: [{ role: 'user', content: `call ${i} [[tokens:${8 + (i % 24)}]] [[latency:${i % 40}]]` }],
      }),
    });
    if (r.status !== 200) return 0;
    const body = await r.json();
    const u = body.usage;
    return u.prompt_tokens * IN_USD + u.completion_tokens * OUT_USD;
  } catch {
    return 0;   // the server died under it: nothing was delivered
  }
}

async function monthSpent() {
  const r = await stack.api(userKey, 'GET', '/v1/usage');
  assert.equal(r.status, 200, r.text);
  return r.body.budget.month.spent_usd;
}

describe('kill -9 in a loop under load', () => {
  test(`money: after each of ${CYCLES} crashes the rebuilt spend covers what was delivered`,
    { timeout: 240_000 }, async () => {
      let delivered = 0;
      let calls = 0;
      let reconciled = 0;
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        const until = Date.now() + 150 + Math.floor(Math.random() * 300);
        const workers = [];
        for (let w = 0; w < 6; w++) {
          workers.push((async () => {
            while (Date.now() < until) {
              const cost = await oneCall(calls++);   // not "delivered += await": that reads before the await
              delivered += cost;
            }
          })());
        }
        await sleep(until - Date.now());
        const info = await restartBrigade(stack, 'SIGKILL');
        assert.equal(info.signal, 'SIGKILL');
        await Promise.all(workers);
        if (/charged \$[0-9.]+ at their reservations/.test(stack.brigade.output())) reconciled++;
        const spent = await monthSpent();
        if (process.env.CRASH_DEBUG) console.log(`cycle ${cycle}: calls ${calls} delivered ${delivered} spent ${spent}`);
        // nano-USD rounding per call is far below this slack
        assert.ok(spent + 1e-9 * calls >= delivered,
          `cycle ${cycle}: the restarted budgets count $${spent}, the client got $${delivered}`);
      }
      assert.ok(calls > CYCLES, `load was made (${calls} calls)`);
      // the reconciliation is audited when it charged something
      const rec = await auditEntries(stack, stack.adminToken, '&action=budget.reconcile');
      assert.equal(rec.length >= reconciled, true, `${rec.length} budget.reconcile entries, ${reconciled} logged`);
      for (const e of rec) {
        assert.ok(e.details.reservations >= 1);
        assert.ok(e.details.charged_usd > 0);
      }
    });

  test(`audit: ${Math.ceil(CYCLES / 2)} crashes during admin changes; every act has its entry, verify intact`,
    { timeout: 240_000 }, async () => {
      const t = await stack.makeTenant();
      for (let cycle = 0; cycle < Math.ceil(CYCLES / 2); cycle++) {
        const until = Date.now() + 150 + Math.floor(Math.random() * 300);
        const workers = [];
        for (let w = 0; w < 4; w++) {
          workers.push((async () => {
            while (Date.now() < until) {
              try {
                const u = await stack.api(t.admin_key, 'POST', '/v1/users', { external_id: `crash-${cycle}-${w}-${Math.random()}` });
                if (u.status !== 201) continue;
                await stack.api(t.admin_key, 'POST', `/v1/users/${u.body.id}/keys`, {});
                await stack.api(t.admin_key, 'PATCH', `/v1/users/${u.body.id}`, { limits: { daily_budget_usd: 5 } });
              } catch { /* the server died under it */ }
            }
          })());
        }
        await sleep(until - Date.now());
        await restartBrigade(stack, 'SIGKILL');
        await Promise.all(workers);
      }
      // every user and key present has its creation entry
      const users = [];
      for (let after = ''; ;) {
        const r = await stack.api(t.admin_key, 'GET', `/v1/users?limit=100${after ? `&after=${after}` : ''}`);
        assert.equal(r.status, 200, r.text);
        users.push(...r.body.data);
        if (!r.body.has_more) break;
        after = r.body.data[r.body.data.length - 1].id;
      }
      assert.ok(users.length > 0, 'users were created between the crashes');
      const entries = await auditEntries(stack, t.admin_key);
      const targets = (action) => new Set(entries.filter((e) => e.action === action).map((e) => e.target));
      const userCreated = targets('user.create');
      const keyCreated = targets('key.create');
      let keys = 0;
      for (const u of users) {
        assert.ok(userCreated.has(u.id), `user ${u.id} exists without its user.create entry`);
        const ks = await stack.api(t.admin_key, 'GET', `/v1/users/${u.id}/keys`);
        assert.equal(ks.status, 200, ks.text);
        for (const k of ks.body.data) {
          keys++;
          assert.ok(keyCreated.has(k.id), `key ${k.id} exists without its key.create entry`);
        }
      }
      assert.ok(keys > 0, 'keys were created between the crashes');
      // and no entry names an act that is not there
      const userIds = new Set(users.map((u) => u.id));
      for (const id of userCreated) assert.ok(userIds.has(id), `user.create ${id} without its user`);
      const v = await runBrigade(['audit', 'verify', '--json', '--data-dir', stack.dataDir]);
      const j = JSON.parse(v.stdout);
      assert.equal(j.intact, true, v.stdout);
    });
});
