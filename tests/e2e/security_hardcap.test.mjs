// security_hardcap.test.mjs — the reservation is a hard cap (docs/resilience.md,
// "The reservation is a hard cap").
//
// The attack: a provider that ignores max_tokens answers far past it, and
// brigade — which reserved the call's worst case on max_tokens — charged what
// the provider reported, so spend could pass a budget by the excess. The mock
// plays that provider with its fault `ignore_max_tokens` (the marker
// [[fault:ignore_max_tokens]]): it answers every word of [[tokens:N]] and
// reports them all, whatever max_tokens says.
//
// For every client API brigade serves (chat completions, legacy completions,
// the Anthropic Messages API, the Responses API translated and passed
// through, and agent runs), streamed and not:
//   - a stream is cut at the reserved output tokens and ends well formed, with
//     the API's own "stopped at the cap" reason;
//   - what is charged (usage ledger) is at most the reservation;
//   - each overrun counts in brigade_provider_overrun_total{deployment} and
//     against the deployment's circuit breaker;
//   - a budget that admits a few calls is never exceeded.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';

import { newSession, streamMessage } from './lib/agents.mjs';
import { eventually, useStack } from './lib/harness.mjs';

const CAP = 5;          // max_tokens the clients ask for
const ASKED = 60;       // what the faulty provider answers instead
const PROMPT = `Tell me everything. [[tokens:${ASKED}]] [[fault:ignore_max_tokens]]`;
const NUSD = 1e-9;

const stack = useStack({
  extraProviders: [
    // The breaker opens after 3 provider faults in a row: overruns count.
    { name: 'overrunner', kind: 'openai', base_url: '{mock}/v1', api_key: 'k', timeout_ms: 3000, max_retries: 0,
      breaker_failures: 3, breaker_error_rate: 0, breaker_open_ms: 60000 },
    { name: 'hc-claude', kind: 'anthropic', base_url: '{mock}/v1', api_key: 'k', timeout_ms: 3000, max_retries: 0,
      breaker_failures: 0, breaker_error_rate: 0 },
    { name: 'hc-pass', kind: 'openai', base_url: '{mock}/v1', api_key: 'k', timeout_ms: 3000, responses: 'passthrough',
      max_retries: 0, breaker_failures: 0, breaker_error_rate: 0 },
  ],
  extraModels: [
    // Dear enough that the excess would show in a budget of a few calls.
    { name: 'hc-openai', provider: 'upstream-mock', upstream_model: 'mock-hc', input_usd_per_mtok: 1000, output_usd_per_mtok: 2000 },
    { name: 'hc-anthropic', provider: 'hc-claude', upstream_model: 'claude-hc', input_usd_per_mtok: 1000, output_usd_per_mtok: 2000 },
    { name: 'hc-passthrough', provider: 'hc-pass', upstream_model: 'mock-pass', input_usd_per_mtok: 1000, output_usd_per_mtok: 2000 },
    { name: 'hc-breaker', provider: 'overrunner', upstream_model: 'mock-brk', input_usd_per_mtok: 1, output_usd_per_mtok: 2 },
  ],
  extraYaml: [
    'agents:',
    `  - {name: hc-agent, model: hc-openai, max_output_tokens: ${CAP}}`,
  ].join('\n'),
}, async (s) => {
  s.tenant = await s.makeTenant();
});

async function freshKey() {
  return (await stack.makeUserWithKey(stack.tenant.admin_key)).key;
}

function post(key, path, body, headers = {}) {
  return fetch(stack.brigadeUrl + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

// SSE frames of a whole stream: [{event, data}] (data parsed unless [DONE]).
function sse(text) {
  const out = [];
  for (const frame of text.split('\n\n')) {
    let event = null;
    const data = [];
    for (const line of frame.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (!data.length) continue;
    const d = data.join('\n');
    out.push({ event, data: d === '[DONE]' ? d : JSON.parse(d) });
  }
  return out;
}

const words = (s) => s.split(/\s+/).filter(Boolean).length;

// The usage ledger of a key's user, for one model: {requests, input_tokens, output_tokens, cost_usd}.
async function charged(key, model, requests = 1) {
  return eventually(async () => {
    const u = stack.must(await stack.api(key, 'GET', '/v1/usage?group_by=model'), 200, 'usage');
    const row = u.data.find((r) => r.group === model);
    return row && row.requests >= requests ? row : false;
  });
}

async function overruns() {
  const r = await stack.admin('GET', '/metrics');
  assert.equal(r.status, 200);
  const m = {};
  for (const line of r.text.split('\n')) {
    const x = line.match(/^brigade_provider_overrun_total\{deployment="([^"]+)"\} (\d+)/);
    if (x) m[x[1]] = Number(x[2]);
  }
  return m;
}

// The worst case the gate reserves (docs/governance.md): ceil(bytes/3)+16 in,
// max_tokens out, in nUSD at the hc-* models' prices ($1000 / $2000 a Mtok).
function reservationNusd(bodyBytes, maxOut, inPrice = 1e6, outPrice = 2e6) {
  return (Math.ceil(bodyBytes / 3) + 16) * inPrice + maxOut * outPrice;
}

describe('the mock ignores max_tokens when asked to (the fault under test)', () => {
  test('straight to mock-llm: the whole answer, and usage past max_tokens', async () => {
    const r = await fetch(stack.mockUrl + '/v1/chat/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', max_tokens: CAP, messages: [{ role: 'user', content: PROMPT }] }),
    });
    const j = await r.json();
    assert.equal(j.usage.completion_tokens, ASKED);
    assert.equal(words(j.choices[0].message.content), ASKED);
    const h = await fetch(stack.mockUrl + '/v1/chat/completions', {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-mock-fault': 'ignore_max_tokens' },
      body: JSON.stringify({ model: 'm', max_tokens: 2, messages: [{ role: 'user', content: '[[tokens:9]]' }] }),
    });
    assert.equal((await h.json()).usage.completion_tokens, 9);
  });
});

describe('chat completions', () => {
  test('non-streamed: charged at most the reservation, the overrun counted', async () => {
    const key = await freshKey();
    const before = (await overruns())['upstream-mock/mock-hc'] || 0;
    const body = { model: 'hc-openai', max_tokens: CAP, messages: [{ role: 'user', content: PROMPT }] };
    const r = await post(key, '/v1/chat/completions', body);
    assert.equal(r.status, 200);
    const row = await charged(key, 'hc-openai');
    assert.ok(row.output_tokens <= CAP, JSON.stringify(row));
    assert.ok(row.cost_usd / NUSD <= reservationNusd(JSON.stringify(body).length, CAP) + 1, JSON.stringify(row));
    await eventually(async () => ((await overruns())['upstream-mock/mock-hc'] || 0) === before + 1);
  });

  test('streamed: cut at the cap, finish_reason "length", usage within it, [DONE]', async () => {
    const key = await freshKey();
    const before = (await overruns())['upstream-mock/mock-hc'] || 0;
    const r = await post(key, '/v1/chat/completions', {
      model: 'hc-openai', max_tokens: CAP, stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: PROMPT }],
    });
    assert.equal(r.status, 200);
    const ev = sse(await r.text());
    assert.equal(ev.at(-1).data, '[DONE]', 'a well-formed end');
    assert.ok(!ev.some((e) => e.data.error), 'no error event');
    const text = ev.map((e) => e.data.choices?.[0]?.delta?.content || '').join('');
    assert.ok(words(text) <= CAP && words(text) > 0, `streamed ${words(text)} words: ${text}`);
    const finish = ev.map((e) => e.data.choices?.[0]?.finish_reason).filter(Boolean);
    assert.deepEqual(finish, ['length']);
    const usage = ev.find((e) => e.data.usage)?.data.usage;
    assert.ok(usage && usage.completion_tokens <= CAP, JSON.stringify(usage));
    const row = await charged(key, 'hc-openai');
    assert.ok(row.output_tokens <= CAP, JSON.stringify(row));
    assert.equal(row.output_tokens, usage.completion_tokens, 'charged what the client was told');
    await eventually(async () => ((await overruns())['upstream-mock/mock-hc'] || 0) === before + 1);
  });

  test('the official SDK reads the cut stream to its end', async () => {
    const key = await freshKey();
    const stream = await stack.openaiClient(key).chat.completions.create({
      model: 'hc-openai', max_tokens: CAP, stream: true, messages: [{ role: 'user', content: PROMPT }],
    });
    let text = '';
    let finish = null;
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content || '';
      finish = c.choices[0]?.finish_reason || finish;
    }
    assert.equal(finish, 'length');
    assert.ok(words(text) <= CAP);
  });

  test('an honest stream at the cap is not cut', async () => {
    const key = await freshKey();
    const r = await post(key, '/v1/chat/completions', {
      model: 'hc-openai', max_tokens: CAP, stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: `exactly [[tokens:${CAP}]]` }],
    });
    const ev = sse(await r.text());
    const text = ev.map((e) => e.data.choices?.[0]?.delta?.content || '').join('');
    assert.equal(words(text), CAP);
    assert.equal(ev.find((e) => e.data.usage)?.data.usage.completion_tokens, CAP);
  });
});

describe('legacy completions', () => {
  for (const stream of [false, true]) {
    test(`${stream ? 'streamed' : 'non-streamed'}: within the reservation`, async () => {
      const key = await freshKey();
      const r = await post(key, '/v1/completions', { model: 'hc-openai', max_tokens: CAP, stream, prompt: PROMPT });
      assert.equal(r.status, 200);
      const text = await r.text();
      if (stream) {
        const ev = sse(text);
        assert.equal(ev.at(-1).data, '[DONE]');
        const out = ev.map((e) => e.data.choices?.[0]?.text || '').join('');
        assert.ok(words(out) <= CAP, out);
        assert.ok(ev.some((e) => e.data.choices?.[0]?.finish_reason === 'length'), text);
      }
      const row = await charged(key, 'hc-openai');
      assert.ok(row.output_tokens <= CAP, JSON.stringify(row));
    });
  }
});

describe('Anthropic Messages API (over an Anthropic provider)', () => {
  const anthropic = (key) => new Anthropic({ apiKey: key, baseURL: stack.brigadeUrl, maxRetries: 0, timeout: 20_000 });

  test('non-streamed: charged at most the reservation', async () => {
    const key = await freshKey();
    const before = (await overruns())['hc-claude/claude-hc'] || 0;
    const m = await anthropic(key).messages.create({
      model: 'hc-anthropic', max_tokens: CAP, messages: [{ role: 'user', content: PROMPT }],
    });
    assert.ok(m.content.length);
    const row = await charged(key, 'hc-anthropic');
    assert.ok(row.output_tokens <= CAP, JSON.stringify(row));
    await eventually(async () => ((await overruns())['hc-claude/claude-hc'] || 0) === before + 1);
  });

  test('streamed: cut at the cap, stop_reason "max_tokens", message_stop', async () => {
    const key = await freshKey();
    const stream = anthropic(key).messages.stream({
      model: 'hc-anthropic', max_tokens: CAP, messages: [{ role: 'user', content: PROMPT }],
    });
    const final = await stream.finalMessage();
    assert.equal(final.stop_reason, 'max_tokens');
    const text = final.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
    assert.ok(words(text) <= CAP && words(text) > 0, text);
    assert.ok(final.usage.output_tokens <= CAP, JSON.stringify(final.usage));
    const row = await charged(key, 'hc-anthropic');
    assert.ok(row.output_tokens <= CAP, JSON.stringify(row));
  });
});

describe('Responses API', () => {
  for (const model of ['hc-openai', 'hc-passthrough']) {
    test(`${model}: non-streamed within the reservation`, async () => {
      const key = await freshKey();
      const r = await post(key, '/v1/responses', { model, max_output_tokens: CAP, input: PROMPT });
      assert.equal(r.status, 200);
      const row = await charged(key, model);
      assert.ok(row.output_tokens <= CAP, JSON.stringify(row));
    });

    test(`${model}: streamed — cut at the cap, response.incomplete (max_output_tokens)`, async () => {
      const key = await freshKey();
      const r = await post(key, '/v1/responses', { model, max_output_tokens: CAP, stream: true, input: PROMPT });
      assert.equal(r.status, 200);
      const ev = sse(await r.text());
      const last = ev.at(-1);
      assert.equal(last.event, 'response.incomplete', JSON.stringify(last));
      assert.equal(last.data.response.status, 'incomplete');
      assert.equal(last.data.response.incomplete_details?.reason, 'max_output_tokens');
      const deltas = ev.filter((e) => e.event === 'response.output_text.delta').map((e) => e.data.delta).join('');
      assert.ok(words(deltas) <= CAP && words(deltas) > 0, deltas);
      assert.ok(last.data.response.usage.output_tokens <= CAP, JSON.stringify(last.data.response.usage));
      const row = await charged(key, model);
      assert.ok(row.output_tokens <= CAP, JSON.stringify(row));
    });
  }
});

describe('agent runs', () => {
  test('a run\'s model call is cut at the agent\'s max_output_tokens and charged within it', async () => {
    const key = await freshKey();
    const s = await newSession(stack, key, 'hc-agent');
    const res = await streamMessage(stack, key, s.id, PROMPT);
    assert.equal(res.status, 200);
    const done = res.events.find((e) => e.event === 'run.completed' || e.event === 'run.failed');
    assert.ok(done, res.events.map((e) => e.event).join(','));
    const text = res.events.filter((e) => e.event === 'message.delta').map((e) => e.data.text || '').join('');
    assert.ok(words(text) <= CAP && words(text) > 0, text);
    const row = await charged(key, 'hc-openai');
    assert.ok(row.output_tokens <= CAP, JSON.stringify(row));
  });
});

describe('budgets and breakers', () => {
  test('a budget that admits three calls is never exceeded by providers past the cap', async () => {
    const { user, key } = await stack.makeUserWithKey(stack.tenant.admin_key);
    const body = { model: 'hc-openai', max_tokens: CAP, messages: [{ role: 'user', content: PROMPT }] };
    const each = reservationNusd(JSON.stringify({ ...body, stream: true }).length, CAP);
    const budgetNusd = each * 3 + Math.floor(each / 2);
    stack.must(await stack.api(stack.tenant.admin_key, 'PATCH', `/v1/users/${user.id}`,
      { limits: { daily_budget_usd: budgetNusd * NUSD } }), 200, 'PATCH limits');
    let ok = 0;
    for (let i = 0; i < 8; i++) {
      const r = await post(key, '/v1/chat/completions', { ...body, stream: i % 2 === 1 });
      await r.text();
      if (r.status === 200) ok++;
    }
    assert.ok(ok >= 3, `${ok} calls admitted`);
    const me = stack.must(await stack.api(key, 'GET', '/v1/me'), 200, 'me');
    assert.equal(me.usage.day.reserved_usd, 0, JSON.stringify(me.usage));
    assert.ok(me.usage.day.spent_usd * 1e9 <= budgetNusd + 1, `spent ${me.usage.day.spent_usd} of ${budgetNusd * NUSD}`);
  });

  test('overruns count against the deployment\'s breaker: it opens', async () => {
    const key = await freshKey();
    for (let i = 0; i < 3; i++) {
      const r = await post(key, '/v1/chat/completions', {
        model: 'hc-breaker', max_tokens: CAP, stream: i === 1, messages: [{ role: 'user', content: PROMPT }],
      });
      assert.equal(r.status, 200);
      await r.text();
    }
    const deps = (await stack.admin('GET', '/readyz')).body.checks.deployments;
    assert.equal(deps['hc-breaker@overrunner/mock-brk'], 'open', JSON.stringify(deps));
    const r = await post(key, '/v1/chat/completions', {
      model: 'hc-breaker', max_tokens: CAP, messages: [{ role: 'user', content: 'hello' }],
    });
    // No deployment may be used: the call is refused without an attempt.
    const t = await r.text();
    assert.equal(r.status, 502, t);
    assert.match(t, /503/);
  });
});
