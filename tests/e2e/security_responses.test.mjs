// security_responses.test.mjs — attacks on POST /v1/responses and the
// responses it stores: another user's response id (read, delete, continue),
// a repeated JSON key, inputs too large or too many, a conversation chained
// past its bound, the storage quota, a burst against a small budget, a rate
// limit, and the wrong role. Each is refused at its root; the owner's data
// stays whole.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { errorOf, eventually, useStack } from './lib/harness.mjs';


const stack = useStack({
  limits: { max_body_bytes: 262144 },
  upstreamTimeoutMs: 10000,
  tiers: [{ name: 'default' }, { name: 'gold' }, { name: 'tiny', memory_bytes: 6000 }],
}, async (s) => {
  s.tenant = await s.makeTenant();
  s.other = await s.makeTenant();
  s.alice = await s.makeUserWithKey(s.tenant.admin_key);
  s.bob = await s.makeUserWithKey(s.tenant.admin_key);        // same tenant
  s.carol = await s.makeUserWithKey(s.other.admin_key);       // another tenant
});

const post = (key, body, headers) => stack.api(key, 'POST', '/v1/responses', body, headers);

async function usageRequests(key) {
  const r = stack.must(await stack.api(key, 'GET', '/v1/usage?group_by=model'), 200, 'usage');
  return r.data.reduce((n, row) => n + row.requests, 0);
}

describe('isolation: a response belongs to its user', () => {
  test('another user\'s response id is 404 to read, to delete and to continue (previous_response_id); nothing leaks', async () => {
    const secret = `the vault code is ${stack.unique('code')}`;
    const mine = stack.must(await post(stack.alice.key, { model: 'local-model', input: `Remember: ${secret}` }), 200, 'alice');
    for (const intruder of [stack.bob, stack.carol]) {
      const before = await usageRequests(intruder.key);
      const get = await stack.api(intruder.key, 'GET', `/v1/responses/${mine.id}`);
      assert.equal(get.status, 404);
      assert.equal(errorOf(get).type, 'not_found_error');
      const del = await stack.api(intruder.key, 'DELETE', `/v1/responses/${mine.id}`);
      assert.equal(del.status, 404);
      for (const stream of [false, true]) {
        const cont = await post(intruder.key, { model: 'local-model', input: 'What was the code?', previous_response_id: mine.id, stream });
        assert.equal(cont.status, 404, cont.text);
        assert.equal(errorOf(cont).param, 'previous_response_id');
        assert.ok(!cont.text.includes(secret));
      }
      // refused before any model call: nothing charged to the intruder
      assert.equal(await usageRequests(intruder.key), before);
    }
    // a missing id answers the same as another user's
    const missing = await stack.api(stack.bob.key, 'GET', '/v1/responses/resp_000000000000000000000000');
    assert.equal(missing.status, 404);
    assert.equal(missing.text, (await stack.api(stack.bob.key, 'GET', `/v1/responses/${mine.id}`)).text);
    // the owner's response is intact and continues
    const got = stack.must(await stack.api(stack.alice.key, 'GET', `/v1/responses/${mine.id}`), 200, 'owner get');
    assert.equal(got.id, mine.id);
    const next = stack.must(await post(stack.alice.key, { model: 'local-model', input: 'go on', previous_response_id: mine.id }), 200, 'owner continues');
    assert.equal(next.previous_response_id, mine.id);
  });

  test('a tenant admin key may not call the route (403), and ids that are not response ids are 404', async () => {
    const r = await post(stack.tenant.admin_key, { model: 'local-model', input: 'x' });
    assert.equal(r.status, 403);
    for (const id of ['sess_1', "resp_' OR 1=1 --", 'resp_../../etc']) {
      const g = await stack.api(stack.alice.key, 'GET', `/v1/responses/${encodeURIComponent(id)}`);
      assert.equal(g.status, 404, id);
      const c = await post(stack.alice.key, { model: 'local-model', input: 'x', previous_response_id: id });
      assert.equal(c.status, 404, id);
    }
  });
});

describe('hostile bodies', () => {
  test('a repeated JSON key, at the top or deep in an item or a tool, is 400 duplicate_key', async () => {
    const bodies = [
      '{"model":"local-model","input":"a","input":"b"}',
      '{"model":"local-model","model":"gpt-test","input":"a"}',
      '{"model":"local-model","input":[{"role":"user","content":"a","content":"b"}]}',
      '{"model":"local-model","input":"a","tools":[{"type":"function","name":"f","type":"web_search"}]}',
      '{"model":"local-model","input":"a","max_output_tokens":5,"max_output_tokens":500000}',
    ];
    for (const b of bodies) {
      const r = await post(stack.alice.key, b);
      assert.equal(r.status, 400, b);
      assert.equal(errorOf(r).code, 'duplicate_key', b);
    }
  });

  test('a body over the server limit is 413; more than 4096 items is 400; a non-object is 400', async () => {
    const huge = await post(stack.alice.key, { model: 'local-model', input: 'x'.repeat(300000) });
    assert.equal(huge.status, 413);
    const items = Array.from({ length: 4097 }, () => ({ role: 'user', content: '' }));
    const many = await post(stack.alice.key, { model: 'local-model', input: items });
    assert.equal(many.status, 400);
    assert.equal(errorOf(many).code, 'too_many_items');
    for (const b of ['[]', '"x"', '{"model":"local-model","input":"a"} {}', '{"model":"local-model","input":"\\u0000"}']) {
      const r = await post(stack.alice.key, b);
      assert.equal(r.status, 400, b);
    }
  });

  test('a conversation chained past 64 responses cannot be continued', async () => {
    const u = await stack.makeUserWithKey(stack.tenant.admin_key);
    let prev = null;
    for (let i = 0; i < 64; i++) {
      const r = stack.must(await post(u.key, { model: 'local-model', input: `t${i} [[tokens:1]]`, ...(prev ? { previous_response_id: prev } : {}) }), 200, `turn ${i}`);
      prev = r.id;
    }
    const before = await usageRequests(u.key);
    const r = await post(u.key, { model: 'local-model', input: 'one more', previous_response_id: prev });
    assert.equal(r.status, 400);
    assert.equal(errorOf(r).code, 'conversation_too_long');
    assert.equal(errorOf(r).param, 'previous_response_id');
    assert.equal(await usageRequests(u.key), before);
  });
});

describe('governance on the route', () => {
  test('stored responses fill the memory_bytes quota: then 429 before the model is called; store:false still answers', async () => {
    const u = await stack.makeUserWithKey(stack.tenant.admin_key, undefined, { tier: 'tiny' });
    let refused;
    for (let i = 0; i < 20 && !refused; i++) {
      const r = await post(u.key, { model: 'local-model', input: `keep this turn ${i} ${'y'.repeat(400)}` });
      if (r.status !== 200) refused = r;
      // an answer that tipped the quota over is delivered, marked as not kept
      else if (r.body.store === false) assert.equal((await stack.api(u.key, 'GET', `/v1/responses/${r.body.id}`)).status, 404);
      else assert.equal((await stack.api(u.key, 'GET', `/v1/responses/${r.body.id}`)).status, 200);
    }
    assert.ok(refused, 'the quota never refused');
    assert.equal(refused.status, 429);
    assert.equal(errorOf(refused).code, 'storage_quota_exceeded');
    assert.match(errorOf(refused).message, /memory_bytes/);
    assert.match(errorOf(refused).message, /DELETE \/v1\/responses/);
    const before = await usageRequests(u.key);
    for (const stream of [false, true]) {
      const again = await post(u.key, { model: 'local-model', input: 'again '.repeat(80), stream });
      assert.equal(again.status, 429);
    }
    assert.equal(await usageRequests(u.key), before, 'a turn that cannot be kept is refused before the model call');
    // memory shares the quota
    const mem = await stack.api(u.key, 'PUT', '/v1/memory/note', { value: 'z'.repeat(3000) });
    assert.equal(mem.status, 429);
    stack.must(await post(u.key, { model: 'local-model', input: 'not kept', store: false }), 200, 'store false');
  });

  test('a burst against a small daily budget: the reservations admit what fits, the rest is 429, spend stays within', async () => {
    const u = await stack.makeUserWithKey(stack.tenant.admin_key);
    // local-model output costs 1.5 USD per million tokens: a 1000-token cap
    // reserves 0.0015 USD; a budget of 0.004 admits two at once.
    const budgetUsd = 0.004;
    stack.must(await stack.api(stack.tenant.admin_key, 'PATCH', `/v1/users/${u.user.id}`, { limits: { daily_budget_usd: budgetUsd } }), 200, 'limits');
    const body = (i) => ({ model: 'local-model', input: `burst ${i % 10} [[latency:1500]]`, max_output_tokens: 1000, stream: i % 2 === 1 });
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => post(u.key, body(i))));
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 429);
    assert.ok(ok.length >= 1 && ok.length <= 2, results.map((r) => r.status).join(','));
    assert.equal(ok.length + refused.length, 12);
    for (const r of refused) {
      assert.equal(errorOf(r).type, 'insufficient_quota');
      assert.match(errorOf(r).message, /daily_budget/);
    }
    await eventually(async () => {
      const me = stack.must(await stack.api(u.key, 'GET', '/v1/me'), 200, 'me');
      assert.equal(me.usage.day.reserved_usd, 0);
      assert.ok(me.usage.day.spent_usd > 0 && me.usage.day.spent_usd <= budgetUsd, String(me.usage.day.spent_usd));
      return true;
    }, { timeoutMs: 5000 });
  });

  test('a key\'s rate limit applies to the route', async () => {
    const u = await stack.makeUser(stack.tenant.admin_key);
    const k = stack.must(await stack.api(stack.tenant.admin_key, 'POST', `/v1/users/${u.id}/keys`, { limits: { rpm: 2 } }), 201, 'key');
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await post(k.key, { model: 'local-model', input: 'hi', store: false })).status);
    assert.deepEqual(statuses.slice(0, 2), [200, 200]);
    assert.ok(statuses.slice(2).every((s) => s === 429), statuses.join(','));
  });
});

