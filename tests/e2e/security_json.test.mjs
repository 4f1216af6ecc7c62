// security_json.test.mjs — what brigade governs is what the provider reads
// (issue 10, items 1 and 2).
//
// 1. Repeated JSON keys: cJSON (brigade's parser) reads the first copy of a
//    key, most other parsers the last, and the gateway forwards the client's
//    own bytes. A body with a key repeated at any depth brigade reads is
//    refused with 400 invalid_request_error naming the key: gateway,
//    sessions/messages, admin and memory bodies, and tool arguments from the
//    model (the call is refused and the model told why).
// 2. `n` multiplies the output: it is bounded (server.max_choices, 8), and
//    reserved and rate-counted as n × the output cap; usage settles on what
//    the provider reports for all choices. Parameters billed beyond tokens
//    × prices (best_of, audio output, predictions, web search, the priority
//    tier) are refused.
//
// Bodies are written as text: JSON.stringify cannot repeat a key.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { newSession, streamMessage, transcript } from './lib/agents.mjs';
import { errorOf, eventually as poll, useStack } from './lib/harness.mjs';

const eventually = (fn, opts) => poll(async () => { await fn(); return true; }, opts);

// gpt-test: 1 USD per million input tokens, 2 per million output
// (harness.mjs): 1000 and 2000 nano-USD a token.
const NUSD = 1e-9;
const MSGS = '"messages":[{"role":"user","content":"hello"}]';

const stack = useStack({
  extraYaml: [
    'agents:',
    '  - {name: keeper, model: local-model, tools: [memory], max_steps: 4}',
  ].join('\n'),
}, async (s) => {
  s.tenant = await s.makeTenant();
});

async function userWithLimits(limits) {
  const u = await stack.makeUserWithKey(stack.tenant.admin_key);
  if (limits) {
    stack.must(await stack.api(stack.tenant.admin_key, 'PATCH', `/v1/users/${u.user.id}`, { limits }), 200, 'PATCH limits');
  }
  return u;
}

function chat(key, bodyText) {
  return stack.api(key, 'POST', '/v1/chat/completions', bodyText);
}

async function usageTotalNusd(key) {
  const r = await stack.api(key, 'GET', '/v1/usage?group_by=model');
  assert.equal(r.status, 200, r.text);
  let total = 0;
  for (const row of r.body.data) total += Math.round(row.cost_usd / NUSD);
  return total;
}

async function mockRequests() {
  const r = await stack.mockStats();
  return r.body.requests;
}

function expectBad(r, code, param, keyInMessage) {
  assert.equal(r.status, 400, r.text);
  const e = errorOf(r);
  assert.equal(e.type, 'invalid_request_error');
  assert.equal(e.code, code);
  assert.equal(e.param, param);
  if (keyInMessage) assert.ok(e.message.includes(`"${keyInMessage}"`), e.message);
  return e;
}

describe('repeated keys on the gateway', () => {
  test('a second max_tokens on a $0.01 budget: 400 naming max_tokens, nothing reaches the provider or is charged', async () => {
    const { key } = await userWithLimits({ daily_budget_usd: 0.01 });
    const before = await mockRequests();
    const body = `{"model":"gpt-test","max_tokens":1,${MSGS},"max_tokens":1000000}`;
    for (const stream of [false, true]) {
      const r = await chat(key, body.replace('"max_tokens":1,', `"max_tokens":1,"stream":${stream},`));
      const e = expectBad(r, 'duplicate_key', 'max_tokens', 'max_tokens');
      assert.match(e.message, /only once/);
    }
    assert.equal(await mockRequests(), before, 'the provider saw nothing');
    assert.equal(await usageTotalNusd(key), 0);
    const me = stack.must(await stack.api(key, 'GET', '/v1/me'), 200, 'me');
    assert.equal(me.usage.day.spent_usd, 0);
    assert.equal(me.usage.day.reserved_usd, 0);
  });

  test('a second model (dear after cheap): 400 naming model, in any spelling of the key', async () => {
    const { key } = await userWithLimits();
    const before = await mockRequests();
    expectBad(await chat(key, `{"model":"local-model",${MSGS},"model":"gpt-test"}`), 'duplicate_key', 'model', 'model');
    expectBad(await chat(key, `{"model":"local-model",${MSGS},"\\u006dodel":"gpt-test"}`), 'duplicate_key', 'model', 'model');
    assert.equal(await mockRequests(), before);
    assert.equal(await usageTotalNusd(key), 0);
  });

  test('nested levels: messages, tools, stream_options; the path is the param', async () => {
    const { key } = await userWithLimits();
    expectBad(await chat(key, '{"model":"gpt-test","messages":[{"role":"user","content":"a","role":"system"}]}'),
      'duplicate_key', 'messages[0].role', 'role');
    expectBad(await chat(key, `{"model":"gpt-test",${MSGS},"stream":true,"stream_options":{"include_usage":false,"include_usage":true}}`),
      'duplicate_key', 'stream_options.include_usage', 'include_usage');
    expectBad(await chat(key, `{"model":"gpt-test",${MSGS},"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string","type":"integer"}}}}}]}`),
      'duplicate_key', 'tools[0].function.parameters.properties.a.type', 'type');
  });

  test('a NUL in a key or value, and a governed field in another letter case, are refused', async () => {
    const { key } = await userWithLimits();
    expectBad(await chat(key, `{"model":"gpt-test","max_tokens":1,${MSGS},"max_tokens\\u0000":100000}`), 'nul_character', null);
    expectBad(await chat(key, `{"model":"gpt-test","max_tokens":1,${MSGS},"MAX_TOKENS":4096}`), 'invalid_value', 'MAX_TOKENS');
    expectBad(await chat(key, `{"model":"local-model",${MSGS},"Model":"gpt-test"}`), 'invalid_value', 'Model');
  });

  test('the same key in different objects is fine, and the request is served', async () => {
    const { key } = await userWithLimits();
    const r = await chat(key, '{"model":"gpt-test","max_tokens":5,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"}]}');
    assert.equal(r.status, 200, r.text);
  });
});

describe('n and other cost multipliers', () => {
  test('n:128 on a $0.01 budget: 400 naming n (the limit is 8); n:9 too', async () => {
    const { key } = await userWithLimits({ daily_budget_usd: 0.01 });
    const before = await mockRequests();
    let e = expectBad(await chat(key, `{"model":"gpt-test","n":128,${MSGS}}`), 'invalid_value', 'n');
    assert.match(e.message, /at most 8/);
    e = expectBad(await chat(key, `{"model":"gpt-test","n":9,${MSGS}}`), 'invalid_value', 'n');
    expectBad(await chat(key, `{"model":"gpt-test","n":0,${MSGS}}`), 'invalid_value', 'n');
    assert.equal(await mockRequests(), before);
    assert.equal(await usageTotalNusd(key), 0);
  });

  test('n is reserved as n × the output cap: a budget that fits one choice but not four refuses n:4 with 429 insufficient_quota', async () => {
    const body = (n) => `{"model":"gpt-test","max_tokens":1000,"n":${n},${MSGS}}`;
    // Worst case of one choice: ceil(bytes/3)+16 prompt tokens at 1000 nUSD
    // and 1000 output tokens at 2000: about 2.06M nUSD. Four: about 8.06M.
    const one = (Math.ceil(Buffer.byteLength(body(4)) / 3) + 16) * 1000 + 1000 * 2000;
    const budget = one * 2;   // one fits (twice over), four do not
    const { key } = await userWithLimits({ daily_budget_usd: budget * NUSD });
    const r4 = await chat(key, body(4));
    assert.equal(r4.status, 429, r4.text);
    const e = errorOf(r4);
    assert.equal(e.type, 'insufficient_quota');
    assert.match(e.message, /user\.daily_budget/);
    const r1 = await chat(key, body(1));
    assert.equal(r1.status, 200, r1.text);
    assert.equal(r1.body.choices.length, 1);
  });

  test('n counts against tpm as n × the output cap', async () => {
    const { key } = await userWithLimits({ tpm: 3000 });
    const r = await chat(key, `{"model":"gpt-test","max_tokens":1000,"n":4,${MSGS}}`);
    assert.equal(r.status, 429, r.text);
    assert.equal(errorOf(r).code, 'tokens_exceed_limit');
    const ok = await chat(key, `{"model":"gpt-test","max_tokens":1000,"n":2,${MSGS}}`);
    assert.equal(ok.status, 200, ok.text);
  });

  test('n choices are served, and the usage charged is what the provider reports for all of them', async () => {
    const { key } = await userWithLimits({ daily_budget_usd: 1 });
    // Through an HTTP provider (mock-llm) and the in-process mock.
    for (const [model, inP, outP] of [['gpt-test', 1000, 2000], ['local-model', 500, 1500]]) {
      const before = await usageTotalNusd(key);
      const client = stack.openaiClient(key);
      const res = await client.chat.completions.create({ model, n: 3, messages: [{ role: 'user', content: 'three [[tokens:5]]' }] });
      assert.equal(res.choices.length, 3);
      assert.deepEqual(res.choices.map((c) => c.index), [0, 1, 2]);
      for (const c of res.choices) assert.equal(c.message.content.split(' ').length, 5);
      assert.equal(res.usage.completion_tokens, 15, JSON.stringify(res.usage));
      const want = res.usage.prompt_tokens * inP + 15 * outP;
      await eventually(async () => assert.equal(await usageTotalNusd(key) - before, want));

      // Streamed: every choice's chunks, then one usage chunk for them all.
      const before2 = await usageTotalNusd(key);
      const stream = await client.chat.completions.create({ model, n: 2, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'two [[tokens:4]]' }] });
      const text = ['', ''];
      let usage = null;
      for await (const chunk of stream) {
        for (const c of chunk.choices) text[c.index] += c.delta.content || '';
        if (chunk.usage) usage = chunk.usage;
      }
      assert.equal(text[0].split(' ').length, 4);
      assert.equal(text[1], text[0]);
      assert.equal(usage.completion_tokens, 8);
      const want2 = usage.prompt_tokens * inP + 8 * outP;
      await eventually(async () => assert.equal(await usageTotalNusd(key) - before2, want2));
    }
    const me = stack.must(await stack.api(key, 'GET', '/v1/me'), 200, 'me');
    assert.equal(me.usage.day.reserved_usd, 0, 'every reservation settled');
  });

  test('best_of, audio output, predictions, web search and the priority tier are refused, naming the parameter', async () => {
    const { key } = await userWithLimits();
    const before = await mockRequests();
    const cases = [
      ['best_of', '"best_of":4'],
      ['audio', '"audio":{"voice":"alloy","format":"wav"}'],
      ['modalities', '"modalities":["text","audio"]'],
      ['prediction', '"prediction":{"type":"content","content":"x"}'],
      ['web_search_options', '"web_search_options":{}'],
      ['service_tier', '"service_tier":"priority"'],
    ];
    for (const [param, field] of cases) {
      const e = expectBad(await chat(key, `{"model":"gpt-test",${field},${MSGS}}`), 'unsupported_parameter', param);
      assert.ok(e.message.includes(param), e.message);
    }
    assert.equal(await mockRequests(), before);
    // What costs the model's prices or less passes.
    const ok = await chat(key, `{"model":"gpt-test","max_tokens":3,"modalities":["text"],"service_tier":"flex","best_of":null,${MSGS}}`);
    assert.equal(ok.status, 200, ok.text);
  });
});

describe('repeated keys in other bodies', () => {
  test('sessions/messages: 400 naming the key, no run started', async () => {
    const { key } = await userWithLimits();
    const s = await newSession(stack, key, 'keeper');
    let r = await stack.api(key, 'POST', `/v1/sessions/${s.id}/messages`, '{"content":"hi","content":"[[tool:memory {}]]"}');
    expectBad(r, 'duplicate_key', 'content', 'content');
    r = await stack.api(key, 'POST', `/v1/sessions/${s.id}/messages`, '{"content":"hi","stream":false,"if_busy":"reject","stream":true}');
    expectBad(r, 'duplicate_key', 'stream', 'stream');
    r = await stack.api(key, 'POST', '/v1/sessions', '{"agent":"keeper","metadata":{"a":1,"b":{"c":1,"c":2}}}');
    expectBad(r, 'duplicate_key', 'metadata.b.c', 'c');
    assert.deepEqual(await transcript(stack, key, s.id), []);
  });

  test('admin bodies: a second limit, nested, is refused and nothing changes', async () => {
    const { user } = await userWithLimits({ daily_budget_usd: 1 });
    const admin = stack.tenant.admin_key;
    let r = await stack.api(admin, 'PATCH', `/v1/users/${user.id}`, '{"limits":{"daily_budget_usd":1,"daily_budget_usd":1000}}');
    expectBad(r, 'duplicate_key', 'limits.daily_budget_usd', 'daily_budget_usd');
    const got = stack.must(await stack.api(admin, 'GET', `/v1/users/${user.id}`), 200, 'GET user');
    assert.equal(got.limits.daily_budget_usd, 1);
    r = await stack.api(admin, 'POST', '/v1/users', '{"external_id":"a","external_id":"b"}');
    expectBad(r, 'duplicate_key', 'external_id', 'external_id');
    r = await stack.admin('PATCH', `/v1/tenants/${stack.tenant.id}`, '{"limits":{"rpm":1,"rpm":0}}');
    expectBad(r, 'duplicate_key', 'limits.rpm', 'rpm');
    r = await stack.admin('POST', '/v1/tenants', '{"name":"x","name":"y"}');
    expectBad(r, 'duplicate_key', 'name', 'name');
  });

  test('memory: a value whose object repeats a key is refused', async () => {
    const { key } = await userWithLimits();
    const r = await stack.api(key, 'PUT', '/v1/memory/k1', '{"value":{"x":1,"x":2}}');
    expectBad(r, 'duplicate_key', 'value.x', 'x');
    assert.equal((await stack.api(key, 'GET', '/v1/memory/k1')).status, 404);
  });
});

describe('tool arguments from the model', () => {
  test('a tool call whose arguments repeat a key is refused; the model and the run\'s tool.result say which key', async () => {
    const { key } = await userWithLimits();
    const s = await newSession(stack, key, 'keeper');
    // The mock calls memory with these arguments as they are: "save" first
    // (what cJSON, the schema and the tool would read), "delete" last.
    const marker = '[[tool:memory {"action":"save","key":"k2","value":"v","action":"delete"}]]';
    const res = await streamMessage(stack, key, s.id, `Remember. ${marker}`);
    const seq = res.events.map((e) => e.event);
    assert.equal(seq.at(-1), 'run.completed', seq.join(','));
    const call = res.events.find((e) => e.event === 'tool.call').data;
    assert.match(call.arguments, /"action":"save".*"action":"delete"/);
    const result = res.events.find((e) => e.event === 'tool.result').data;
    assert.equal(result.ok, false, JSON.stringify(result));
    assert.match(result.preview, /repeats the key "action"/, result.preview);
    // The model was told (the mock quotes the tool's answer back).
    assert.match(res.events.at(-1).data.message.content, /repeats the key "action"/);
    const t = await transcript(stack, key, s.id);
    const toolMsg = t.find((m) => m.role === 'tool');
    assert.match(toolMsg.content, /repeats the key "action"/);
    // The tool did not run.
    assert.equal((await stack.api(key, 'GET', '/v1/memory/k2')).status, 404);
  });
});
