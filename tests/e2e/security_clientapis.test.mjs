// security_clientapis.test.mjs — attacks on the client-API routes
// (POST /v1/messages, /v1/completions, /v1/embeddings): each is governed
// like /v1/chat/completions, so a credential reaches only its own scope,
// a revoked key is refused on the very next request whichever header
// carries it, the body is read strictly (a repeated key is refused, never
// resolved), every input is bounded, and a burst against a small budget
// never overspends it, on each route.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { eventually as poll, useStack } from './lib/harness.mjs';

const eventually = (fn, opts) => poll(async () => { await fn(); return true; }, opts);
const NUSD = 1e-9;

let tA;
let tB;
let userA;
let userB;
const stack = useStack({
  upstreamTimeoutMs: 10000,
  limits: { max_body_bytes: 262144 },
  extraProviders: [{ name: 'slow', kind: 'mock', latency_ms: 1500 }],
  extraModels: [
    { name: 'slow-chat', provider: 'slow', input_usd_per_mtok: 1, output_usd_per_mtok: 2, max_output_tokens: 50 },
    { name: 'slow-embed', provider: 'slow', kind: 'embedding', input_usd_per_mtok: 1 },
  ],
}, async (s) => {
  tA = await s.makeTenant();
  tB = await s.makeTenant();
  userA = await s.makeUserWithKey(tA.admin_key);
  userB = await s.makeUserWithKey(tB.admin_key);
});

function post(path, body, headers) {
  return fetch(stack.brigadeUrl + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, headers: r.headers, text: await r.text() }));
}

const MSG = { model: 'local-model', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] };

async function usageByModel(key) {
  const r = await stack.api(key, 'GET', '/v1/usage?group_by=model');
  assert.equal(r.status, 200, r.text);
  return r.body.data;
}

describe('credentials on the Anthropic route', () => {
  test('x-api-key of another tenant\'s user: charged to that user only, never to the first', async () => {
    const before = await usageByModel(userA.key);
    const r = await post('/v1/messages', MSG, { 'x-api-key': userB.key });
    assert.equal(r.status, 200, r.text);
    await eventually(async () => {
      const b = await usageByModel(userB.key);
      assert.ok(b.some((x) => x.group === 'local-model' && x.requests >= 1), JSON.stringify(b));
    });
    assert.deepEqual(await usageByModel(userA.key), before);
    // and B's tenant admin sees it; A's does not
    const ua = await stack.api(tA.admin_key, 'GET', '/v1/usage?group_by=user');
    assert.ok(!JSON.stringify(ua.body).includes(userB.user.id));
  });

  test('Authorization wins over x-api-key: a second header cannot switch identity', async () => {
    const r = await post('/v1/messages', MSG, { authorization: 'Bearer sk-wrong', 'x-api-key': userA.key });
    assert.equal(r.status, 401);
    assert.equal(JSON.parse(r.text).error.type, 'authentication_error');
  });

  test('a revoked key is refused through x-api-key on the next request, in Anthropic\'s shape', async () => {
    const u = await stack.makeUserWithKey(tA.admin_key);
    assert.equal((await post('/v1/messages', MSG, { 'x-api-key': u.key })).status, 200);
    const del = await stack.api(tA.admin_key, 'DELETE', `/v1/keys/${u.keyObj.id}`);
    assert.equal(del.status, 200, del.text);
    const r = await post('/v1/messages', MSG, { 'x-api-key': u.key });
    assert.equal(r.status, 401);
    const e = JSON.parse(r.text);
    assert.equal(e.type, 'error');
    assert.equal(e.error.type, 'authentication_error');
    assert.match(e.error.message, /revoked/);
    // and on the other routes through Bearer, of course
    for (const p of ['/v1/completions', '/v1/embeddings']) {
      assert.equal((await post(p, { model: 'local-model', prompt: 'x' }, { authorization: `Bearer ${u.key}` })).status, 401);
    }
  });

  test('a tenant admin key is not a user credential on these routes (403, Anthropic\'s permission_error)', async () => {
    const r = await post('/v1/messages', MSG, { 'x-api-key': tA.admin_key });
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.text).error.type, 'permission_error');
    assert.equal((await post('/v1/embeddings', { model: 'slow-embed', input: 'x' }, { authorization: `Bearer ${tA.admin_key}` })).status, 403);
  });

  test('an oversized x-api-key is a malformed credential, not a crash', async () => {
    const r = await post('/v1/messages', MSG, { 'x-api-key': 'k'.repeat(9000) });
    assert.ok([401, 431].includes(r.status), String(r.status));
  });
});

describe('strict bodies and bounded inputs', () => {
  const auth = () => ({ authorization: `Bearer ${userA.key}` });
  test('a repeated JSON key is refused on every route (never first-wins or last-wins)', async () => {
    for (const [p, raw] of [
      ['/v1/messages', '{"model":"local-model","max_tokens":8,"max_tokens":100000,"messages":[{"role":"user","content":"hi"}]}'],
      ['/v1/messages', '{"model":"local-model","max_tokens":8,"messages":[{"role":"user","content":"hi","role":"assistant"}]}'],
      ['/v1/completions', '{"model":"local-model","prompt":"x","max_tokens":5,"max_tokens":99999}'],
      ['/v1/embeddings', '{"model":"slow-embed","input":"x","model":"local-model"}'],
    ]) {
      const r = await post(p, raw, auth());
      assert.equal(r.status, 400, `${p}: ${r.text}`);
      assert.match(JSON.parse(r.text).error.message, /repeat|twice|duplicate/i);
    }
  });

  test('huge inputs: too many embeddings inputs, an input past the context window, too many blocks, a body past the limit', async () => {
    let r = await post('/v1/embeddings', { model: 'slow-embed', input: Array(2049).fill('a') }, auth());
    assert.equal(r.status, 400);
    r = await post('/v1/embeddings', { model: 'slow-embed', input: 'word '.repeat(8000) }, auth());
    assert.equal(r.status, 400);
    assert.match(JSON.parse(r.text).error.message, /at most 8192/);
    const blocks = Array(4097).fill({ type: 'text', text: 'a' });
    r = await post('/v1/messages', { ...MSG, messages: [{ role: 'user', content: blocks }] }, auth());
    assert.equal(r.status, 400);
    assert.equal(JSON.parse(r.text).error.type, 'invalid_request_error');
    r = await post('/v1/messages', { ...MSG, tools: Array(257).fill({ name: 'f', input_schema: { type: 'object' } }) }, auth());
    assert.equal(r.status, 400);
    r = await post('/v1/completions', { model: 'local-model', prompt: 'x'.repeat(300000) }, auth());
    assert.equal(r.status, 413);
    r = await post('/v1/messages', { ...MSG, max_tokens: 1e12 }, auth());
    assert.equal(r.status, 400);
  });
});

describe('budgets on each new route', () => {
  // A burst of 24 concurrent calls (each answered after 1.5 s, so all are
  // in before any settles) against a budget that admits a few: the
  // reservation refuses the rest with 429 in the route's error shape, and
  // what was spent stays within the budget with nothing left reserved.
  const routes = [
    ['/v1/messages', (i) => ({ model: 'slow-chat', max_tokens: 50, messages: [{ role: 'user', content: `burst ${i}` }] }),
      (e) => e.type === 'error' && e.error.type === 'rate_limit_error'],
    ['/v1/completions', (i) => ({ model: 'slow-chat', max_tokens: 50, prompt: `burst ${i}` }),
      (e) => e.error.type === 'insufficient_quota'],
    ['/v1/embeddings', (i) => ({ model: 'slow-embed', input: `burst ${i} `.repeat(40) }),
      (e) => e.error.type === 'insufficient_quota'],
  ];
  for (const [path, body, shape] of routes) {
    test(`a burst on ${path} never overspends a small budget`, async () => {
      const budget = 0.0006;
      const u = await stack.makeUserWithKey(tA.admin_key);
      stack.must(await stack.api(tA.admin_key, 'PATCH', `/v1/users/${u.user.id}`, { limits: { daily_budget_usd: budget } }), 200, 'PATCH');
      const results = await Promise.all(Array.from({ length: 24 }, (_, i) => post(path, body(i), { authorization: `Bearer ${u.key}` })));
      const ok = results.filter((r) => r.status === 200);
      const refused = results.filter((r) => r.status === 429);
      assert.equal(ok.length + refused.length, 24, results.map((r) => `${r.status} ${r.text.slice(0, 120)}`).join('\n'));
      assert.ok(ok.length >= 1 && refused.length >= 1, `admitted ${ok.length}`);
      for (const r of refused) {
        assert.ok(shape(JSON.parse(r.text)), r.text);
        assert.ok(Number(r.headers.get('retry-after')) >= 1, 'a budget refusal says when to retry');
      }
      await eventually(async () => {
        const rows = await usageByModel(u.key);
        const spent = rows.reduce((a, x) => a + x.cost_usd, 0);
        assert.ok(spent > 0 && spent <= budget + 1e-12, `spent ${spent} of ${budget}`);
        const me = stack.must(await stack.api(u.key, 'GET', '/v1/me'), 200, 'me');
        assert.equal(me.usage.day.reserved_usd, 0);
        assert.ok(Math.abs(me.usage.day.spent_usd - spent) < 1e-12 + NUSD);
      }, { timeoutMs: 6000 });
    });
  }
});
