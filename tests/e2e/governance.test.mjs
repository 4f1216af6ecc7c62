// governance.test.mjs — budgets by reservation, rate limits, concurrency
// limits, fair queueing and loop guards, end to end (docs/governance.md).
//
// The central property: however concurrent the requests, spend never passes
// a budget. Bursts are barrier-synchronised (every request is written before
// any answer can come back: the model answers after a delay) and the spend
// is checked exactly against the usage ledger.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { newSession, openStream, postMessage, restartBrigade, toolMarker } from './lib/agents.mjs';
import { eventually as poll, errorOf, sleep, useStack } from './lib/harness.mjs';

// Retry a block of assertions until it passes (or the time is up).
const eventually = (fn, opts) => poll(async () => { await fn(); return true; }, opts);

// gpt-test: 1 USD per million input tokens, 2 per million output
// (harness.mjs); 1 USD/Mtok = 1000 nano-USD a token.
const NUSD = 1e-9;

// The gate's worst case for a gateway call (docs/governance.md):
// prompt = ceil(bytes / 3) + 16, output = max_tokens, priced at gpt-test.
function worstCaseNusd(bodyText, maxTokens, inPrice = 1000, outPrice = 2000) {
  const bytes = Buffer.byteLength(bodyText);
  const prompt = Math.ceil(bytes / 3) + 16;
  return prompt * inPrice + maxTokens * outPrice;
}

const stack = useStack({
  upstreamTimeoutMs: 10000,   // the burst below holds its answers for 3 s
  extraProviders: [
    // Two upstream slots: the fair queue's capacity for fair-model.
    { name: 'narrow', kind: 'openai', base_url: '{mock}/v1', api_key: 'k', max_concurrent: 2, timeout_ms: 10000 },
  ],
  extraModels: [
    { name: 'fair-model', provider: 'narrow', upstream_model: 'mock-fair', input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0 },
  ],
  tiers: [{ name: 'default' }, { name: 'gold', weight: 4 }],
  extraYaml: [
    'governance: {queue_per_user: 6, queue_global: 100}',
    'agents:',
    '  - {name: looper, model: local-model, tools: [clock], max_repeated_tool_calls: 2, max_steps: 10}',
    '  - {name: capped, model: gpt-test, max_cost_usd_per_run: 0.000001}',
    '  - {name: sessioncapped, model: local-model, max_cost_usd_per_session: 0.000001}',
    '  - {name: degrader, model: gpt-test, max_output_tokens: 100, degrade: {model: local-model, threshold: 0.5}}',
    '  - {name: plain, model: local-model}',
    '  - {name: fairagent, model: fair-model}',
  ].join('\n'),
}, async (s) => {
  s.tenant = await s.makeTenant();
});

async function userWithLimits(limits, extra = {}) {
  const u = await stack.makeUserWithKey(stack.tenant.admin_key, undefined, extra);
  if (limits) {
    stack.must(await stack.api(stack.tenant.admin_key, 'PATCH', `/v1/users/${u.user.id}`, { limits }), 200, 'PATCH limits');
  }
  return u;
}

function chatBody(content, { stream = false, maxTokens = 50, model = 'gpt-test', pad = 0 } = {}) {
  const body = { model, max_tokens: maxTokens, stream, messages: [{ role: 'user', content: content + ' '.repeat(pad) }] };
  return JSON.stringify(body);
}

function chat(key, bodyText, headers = {}) {
  return fetch(stack.brigadeUrl + '/v1/chat/completions', {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: bodyText,
  });
}

async function usageTotalNusd(key) {
  const r = await stack.api(key, 'GET', '/v1/usage?group_by=model');
  assert.equal(r.status, 200, r.text);
  let total = 0;
  for (const row of r.body.data) total += Math.round(row.cost_usd / NUSD);
  return total;
}

describe('budgets by reservation', () => {
  test('a barrier-synchronised burst of 64 (streamed and not) never overspends a budget that admits 10', async () => {
    // Same byte length for both kinds, so each reserves the same worst case.
    // Each answer takes 3 s, so all 64 are in before the first settles and
    // frees what it over-reserved, even on a loaded machine where sending
    // 64 requests takes a second or more (with 600 ms, late ones fitted).
    const content = 'burst [[latency:3000]]';
    // ("stream":false is one byte longer than "stream":true)
    const plainBody = chatBody(content, { stream: false });
    const streamBody = chatBody(content, { stream: true, pad: Buffer.byteLength(plainBody) - Buffer.byteLength(chatBody(content, { stream: true })) });
    assert.equal(Buffer.byteLength(plainBody), Buffer.byteLength(streamBody));
    const each = worstCaseNusd(streamBody, 50);
    const budgetNusd = each * 10 + Math.floor(each / 2);   // 10 fit, the 11th does not
    const { key } = await userWithLimits({ daily_budget_usd: budgetNusd * NUSD });

    const bodies = Array.from({ length: 64 }, (_, i) => (i % 2 ? streamBody : plainBody));
    const responses = await Promise.all(bodies.map((b) => chat(key, b)));
    const results = await Promise.all(responses.map(async (res) => ({ status: res.status, text: await res.text(), headers: res.headers })));
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 429);
    assert.equal(ok.length, 10, `admitted ${ok.length}: ${results.map((r) => r.status).join(',')}`);
    assert.equal(refused.length, 54);
    for (const r of refused) {
      const e = JSON.parse(r.text).error;
      assert.equal(e.type, 'insufficient_quota');
      assert.match(e.message, /user\.daily_budget/);
      assert.ok(Number(r.headers.get('retry-after')) >= 1, 'a budget refusal says when the day resets');
    }
    for (const r of ok.filter((x) => x.headers.get('content-type').startsWith('text/event-stream'))) {
      assert.match(r.text, /data: \[DONE\]/);
    }
    // Exactly from the ledger: settled spend within the budget, nothing left reserved.
    await eventually(async () => {
      const spent = await usageTotalNusd(key);
      assert.ok(spent > 0 && spent <= budgetNusd, `spent ${spent} nUSD of ${budgetNusd}`);
      const me = stack.must(await stack.api(key, 'GET', '/v1/me'), 200, 'me');
      assert.equal(me.usage.day.reserved_usd, 0);
      assert.ok(Math.abs(me.usage.day.spent_usd - spent * NUSD) < 1e-12, `me ${me.usage.day.spent_usd} vs ledger ${spent * NUSD}`);
    }, { timeoutMs: 5000 });
  });

  test('settling frees what the estimate over-reserved, so later calls fit again', async () => {
    const body = chatBody('small');
    const each = worstCaseNusd(body, 50);
    const { key } = await userWithLimits({ daily_budget_usd: (each * 2) * NUSD });
    // One at a time: each settles far below its worst case, so many more than 2 pass.
    let passed = 0;
    for (let i = 0; i < 6; i++) if ((await chat(key, body)).status === 200) passed++;
    assert.ok(passed >= 4, `only ${passed} passed`);
  });

  test('a stream cut mid-way settles to what was delivered and releases the rest', async () => {
    const { key } = await userWithLimits({ daily_budget_usd: 1 });
    const res = await chat(key, chatBody('cut me [[fault:truncate]] [[tokens:20]]', { stream: true }));
    await res.text();
    await eventually(async () => {
      const me = stack.must(await stack.api(key, 'GET', '/v1/me'), 200, 'me');
      assert.equal(me.usage.day.reserved_usd, 0);
      const spent = await usageTotalNusd(key);
      assert.ok(Math.abs(me.usage.day.spent_usd - spent * NUSD) < 1e-12);
    });
  });

  test('/v1/me shows spend, reservations in flight and the budget', async () => {
    const { key } = await userWithLimits({ daily_budget_usd: 2, monthly_budget_usd: 30 });
    const pending = chat(key, chatBody('hold [[latency:800]]'));
    await eventually(async () => {
      const me = stack.must(await stack.api(key, 'GET', '/v1/me'), 200, 'me');
      assert.ok(me.usage.day.reserved_usd > 0, 'a call in flight holds a reservation');
      assert.equal(me.usage.day.budget_usd, 2);
      assert.equal(me.usage.month.budget_usd, 30);
    }, { timeoutMs: 700, intervalMs: 50 });
    assert.equal((await pending).status, 200);
    await eventually(async () => {
      const me = stack.must(await stack.api(key, 'GET', '/v1/me'), 200, 'me');
      assert.equal(me.usage.day.reserved_usd, 0);
      assert.ok(me.usage.day.spent_usd > 0);
      assert.ok(me.usage.day.remaining_usd < 2);
      assert.ok(me.usage.day.resets_at.endsWith('T00:00:00Z'));
      // /v1/usage carries the same live budget next to the ledger's rows
      const u = stack.must(await stack.api(key, 'GET', '/v1/usage'), 200, 'usage');
      assert.equal(u.budget.scope, 'user');
      assert.equal(u.budget.day.budget_usd, 2);
      assert.equal(u.budget.month.budget_usd, 30);
      assert.ok(Math.abs(u.budget.day.spent_usd - me.usage.day.spent_usd) < 1e-12);
    });
  });

  test('tenant limits: only the server admin sets them, and they cap the tenant as a whole', async () => {
    const t = await stack.makeTenant();
    let r = await stack.api(t.admin_key, 'PATCH', `/v1/tenants/${t.id}`, { limits: { rpm: 3 } });
    assert.equal(r.status, 403);
    r = await stack.admin('PATCH', `/v1/tenants/${t.id}`, { limits: { rpm: 3 } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.limits.rpm, 3);
    const a = await stack.makeUserWithKey(t.admin_key);
    const b = await stack.makeUserWithKey(t.admin_key);
    const body = chatBody('tenant-wide', { model: 'local-model' });
    const statuses = [];
    for (const k of [a.key, b.key, a.key, b.key]) statuses.push((await chat(k, body)).status);
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    const last = await chat(b.key, body);
    assert.match(errorOf({ body: await last.json() }).message, /tenant/);
  });

  test('a key with limits of its own is held to them', async () => {
    const u = await stack.makeUser(stack.tenant.admin_key);
    const k = stack.must(await stack.api(stack.tenant.admin_key, 'POST', `/v1/users/${u.id}/keys`, { limits: { rpm: 2 } }), 201, 'key');
    assert.equal(k.limits.rpm, 2);
    const body = chatBody('per key', { model: 'local-model' });
    assert.equal((await chat(k.key, body)).status, 200);
    assert.equal((await chat(k.key, body)).status, 200);
    const third = await chat(k.key, body);
    assert.equal(third.status, 429);
    assert.match((await third.json()).error.message, /key/);
    // The user's other key is not affected.
    const other = stack.must(await stack.api(stack.tenant.admin_key, 'POST', `/v1/users/${u.id}/keys`, {}), 201, 'key');
    assert.equal((await chat(other.key, body)).status, 200);
    const bad = await stack.api(stack.tenant.admin_key, 'POST', `/v1/users/${u.id}/keys`, { limits: { rpm: -1 } });
    assert.equal(bad.status, 400);
    assert.equal(errorOf(bad).param, 'limits.rpm');
  });
});

describe('rate limits', () => {
  test('rpm: the limit passes at once, then 429 with a Retry-After that is right to the second', async () => {
    const { key } = await userWithLimits({ rpm: 60 });    // one more request every second
    const body = chatBody('rate', { model: 'local-model' });
    const t0 = Date.now();
    const first = await chat(key, body);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-ratelimit-limit-requests'), '60');
    assert.equal(first.headers.get('x-ratelimit-remaining-requests'), '59');
    assert.ok(first.headers.get('x-ratelimit-reset-requests'));
    const burst = await Promise.all(Array.from({ length: 69 }, () => chat(key, body)));
    const elapsed = Date.now() - t0;
    const passed = 1 + burst.filter((r) => r.status === 200).length;
    // GCRA: 60 at once, then one per second elapsed — accurate within one.
    assert.ok(passed >= 60 && passed <= 60 + Math.floor(elapsed / 1000) + 1,
      `${passed} passed in ${elapsed} ms`);
    const refused = burst.filter((r) => r.status === 429);
    assert.ok(refused.length >= 1);
    const e = (await refused[0].json()).error;
    assert.equal(e.type, 'rate_limit_error');
    assert.match(e.message, /user\.rpm/);
    assert.equal(refused[0].headers.get('retry-after'), '1', 'one request frees every second at 60 rpm');
    // Right to the second: refused now, admitted once Retry-After has passed.
    let over;
    while ((over = await chat(key, body)).status === 200) { /* drain what refilled meanwhile */ }
    assert.equal(over.status, 429);
    const ra = Number(over.headers.get('retry-after'));
    assert.ok(ra >= 1 && ra <= 1);
    await sleep(ra * 1000 + 20);
    assert.equal((await chat(key, body)).status, 200, 'admitted again once Retry-After has passed');
    assert.equal((await chat(key, body)).status, 429, 'and only that one');
  });

  test('tpm: a request asking more tokens than the limit can never pass', async () => {
    const { key } = await userWithLimits({ tpm: 100 });
    const r = await chat(key, chatBody('too big', { model: 'local-model', maxTokens: 500 }));
    assert.equal(r.status, 429);
    const e = (await r.json()).error;
    assert.equal(e.code, 'tokens_exceed_limit');
    assert.equal(r.headers.get('retry-after'), null);
  });

  test('the OpenAI SDK sees a RateLimitError', async () => {
    const { key } = await userWithLimits({ rpm: 1 });
    const client = stack.openaiClient(key);
    await client.chat.completions.create({ model: 'local-model', messages: [{ role: 'user', content: 'one' }] });
    await assert.rejects(
      client.chat.completions.create({ model: 'local-model', messages: [{ role: 'user', content: 'two' }] }),
      (err) => err.status === 429 && err.error?.type === 'rate_limit_error',
    );
  });
});

describe('fair queueing', () => {
  test('a flooding user cannot starve a quiet one; past the queue bound the flood is shed with 503', async () => {
    const flood = await userWithLimits(null);
    const quiet = await userWithLimits(null);
    // an agent run on the same model waits too, and says so in its events;
    // its session is made before the flood, so that nothing slow (a store
    // write on a loaded machine) stands between the flood and the quiet call
    const runner = await userWithLimits(null);
    const sess = await newSession(stack, runner.key, 'fairagent');
    const slow = chatBody('flood [[latency:1000]]', { model: 'fair-model' });
    // 2 slots: 2 run, 6 wait (queue_per_user), the other 4 are shed.
    const floodAll = Promise.all(Array.from({ length: 12 }, () => chat(flood.key, slow).then(async (r) => ({ status: r.status, ra: r.headers.get('retry-after'), body: await r.text(), at: Date.now() }))));
    await sleep(150);
    const t0 = Date.now();
    const run = openStream(stack, runner.key, sess.id, 'queued run [[latency:100]]');
    const q = await chat(quiet.key, chatBody('quiet [[latency:400]]', { model: 'fair-model' }));
    const quietAt = Date.now();
    const quietMs = quietAt - t0;
    const queued = await run.next('model.queued');
    assert.ok(queued.data.wait_ms > 0);
    assert.equal(queued.data.model, 'fair-model');
    const runDone = await run.done;
    assert.ok(runDone.events.some((e) => e.event === 'run.completed'), runDone.text.slice(-300));
    assert.equal(q.status, 200, await q.text());
    // The quiet user waits for one slot (the first flood answers, at 1 s)
    // plus its own 400 ms, while the flood's queue alone is 6 × 1000 / 2 =
    // 3 s deep. On a loaded machine every latency stretches, so the order is
    // what is checked: served in FIFO order the quiet request would finish
    // after all 8 admitted flood requests; served fairly, most of the flood's
    // queue is still waiting when it is done.
    const fl = await floodAll;
    const floodAfterQuiet = fl.filter((r) => r.status === 200 && r.at > quietAt).length;
    assert.ok(floodAfterQuiet >= 4, `the quiet user waited ${quietMs} ms, behind ${8 - floodAfterQuiet} of 8 flood requests`);
    const shed = fl.filter((r) => r.status === 503);
    assert.equal(fl.filter((r) => r.status === 200).length, 8, fl.map((r) => r.status).join(','));
    assert.equal(shed.length, 4);
    for (const r of shed) {
      assert.equal(JSON.parse(r.body).error.type, 'overloaded_error');
      assert.ok(Number(r.ra) >= 1);
    }
  });
});

describe('metrics', () => {
  test('/metrics shows the fair queue, the refusals and the governor (after the tests above)', async () => {
    const r = await stack.admin('GET', '/metrics');
    assert.equal(r.status, 200);
    const value = (re) => {
      const line = r.text.split('\n').find((l) => re.test(l));
      assert.ok(line, `no line matching ${re}`);
      return Number(line.split(' ').pop());
    };
    assert.ok(value(/^brigade_upstream_queue_shed_total\{model="fair-model"\} /) >= 4);
    assert.ok(value(/^brigade_upstream_queue_wait_seconds_count\{model="fair-model"\} /) >= 8);
    assert.equal(value(/^brigade_upstream_queue_depth\{model="fair-model"\} /), 0);
    assert.ok(value(/^brigade_refusals_total\{tenant="[^"]+",reason="overload"\} /) >= 4);
    assert.ok(value(/^brigade_refusals_total\{tenant="[^"]+",reason="budget"\} /) >= 54);
    assert.ok(value(/^brigade_governance_refused_total\{limit="daily_budget"\} /) >= 54);
    assert.ok(value(/^brigade_governance_admits_total /) > 0);
    assert.equal(value(/^brigade_governance_reserved_nanodollars /), 0, 'nothing in flight, nothing reserved');
    assert.ok(value(/^brigade_tokens_total\{tenant="[^"]+",model="gpt-test",direction="output"\} /) > 0);
    assert.match(r.text, /^brigade_deployment_breaker_state\{model="fair-model",deployment="narrow\/mock-fair"\} 0$/m);
  });
});

describe('concurrency', () => {
  test('max_concurrent_runs: a second run is refused while the first is going, then allowed', async () => {
    const { key } = await userWithLimits({ max_concurrent_runs: 1 });
    const s1 = await newSession(stack, key, 'plain');
    const s2 = await newSession(stack, key, 'plain');
    const long = openStream(stack, key, s1.id, 'wait [[latency:1200]]');
    await long.next('run.started');
    const r = await postMessage(stack, key, s2.id, 'me too');
    assert.equal(r.status, 429, r.text);
    assert.equal(errorOf(r).code, 'concurrency_limit');
    assert.equal(r.headers.get('retry-after'), '1');
    await long.done;
    const again = await postMessage(stack, key, s2.id, 'now');
    assert.equal(again.status, 200, again.text);
    const me = stack.must(await stack.api(key, 'GET', '/v1/me'), 200, 'me');
    assert.equal(me.usage.active_runs, 0);
  });
});

describe('loop guards and caps', () => {
  test('the same tool call repeated ends the run failed with a clear reason', async () => {
    const { key } = await userWithLimits(null);
    const s = await newSession(stack, key, 'looper');
    const r = await postMessage(stack, key, s.id, `again and again ${toolMarker('clock', {})} [[tool_loop]]`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.run.status, 'failed');
    assert.equal(r.body.run.error.code, 'repeated_tool_call');
    assert.match(r.body.run.error.message, /clock/);
  });

  test('a per-run cost cap stops the run before the call that would pass it', async () => {
    const { key } = await userWithLimits(null);
    const s = await newSession(stack, key, 'capped');
    const r = await postMessage(stack, key, s.id, 'expensive');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.run.status, 'failed');
    assert.equal(r.body.run.error.code, 'run_budget_exceeded');
  });

  test('a per-session cost cap stops the run before the call that would pass it', async () => {
    const { key } = await userWithLimits(null);
    const s = await newSession(stack, key, 'sessioncapped');
    const r = await postMessage(stack, key, s.id, 'expensive session');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.run.status, 'failed');
    assert.equal(r.body.run.error.code, 'session_budget_exceeded');
    assert.match(r.body.run.error.message, /per session/);
  });

  test('graceful degradation: a nearly spent budget answers with the cheaper model', async () => {
    const { key, user } = await userWithLimits(null);
    // Spend about 4,000,000 nUSD through the gateway on gpt-test.
    const spend = await chat(key, chatBody('spend [[tokens:2000]]', { maxTokens: 2000 }));
    assert.equal(spend.status, 200);
    let spent = 0;
    await eventually(async () => { spent = await usageTotalNusd(key); assert.ok(spent > 3_000_000); });
    // Budget: spent is 2/3 of it (over the 0.5 threshold), and the rest still
    // fits local-model's worst case.
    const budget = Math.ceil(spent * 1.5);
    stack.must(await stack.api(stack.tenant.admin_key, 'PATCH', `/v1/users/${user.id}`, { limits: { daily_budget_usd: budget * NUSD } }), 200, 'PATCH');
    const s = await newSession(stack, key, 'degrader');
    const r = await postMessage(stack, key, s.id, 'hello');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.run.status, 'completed', r.text);
    await eventually(async () => {
      const u = stack.must(await stack.api(key, 'GET', '/v1/usage?group_by=model'), 200, 'usage');
      assert.ok(u.data.some((row) => row.group === 'local-model'), JSON.stringify(u.data));
    });
  });
});

describe('restart', () => {
  test('spend survives a restart (rebuilt from the ledger)', async () => {
    const { key } = await userWithLimits({ daily_budget_usd: 5 });
    assert.equal((await chat(key, chatBody('remember me [[tokens:200]]', { maxTokens: 300 }))).status, 200);
    let before;
    await eventually(async () => { before = await usageTotalNusd(key); assert.ok(before > 0); });
    await restartBrigade(stack, 'SIGTERM');
    const me = stack.must(await stack.api(key, 'GET', '/v1/me'), 200, 'me');
    assert.ok(Math.abs(me.usage.day.spent_usd - before * NUSD) < 1e-12, `after restart ${me.usage.day.spent_usd} vs ${before * NUSD}`);
  });
});
