// responses_passthrough.test.mjs — POST /v1/responses sent as it is to a
// provider that has /responses (`responses: passthrough`), with the
// official openai SDK: streamed and not, a conversation continued from
// brigade's own store (the provider gets the chain expanded into `input`,
// `store: false`, and never a previous_response_id), across a passthrough
// and a translated model, another user's id 404, usage charged from the
// provider's Response, a burst against a small budget, and a provider that
// answers garbage or hangs. A capturing proxy in front of mock-llm's
// /v1/responses shows what the provider receives.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import { errorOf, eventually, freePort, runBrigade, tempDir, useStack } from './lib/harness.mjs';

const captured = [];
let proxy;
let proxyPort;

// Records each request, then answers: garbage when the input asks for it,
// else what mock-llm's /v1/responses answers (status, headers and bytes).
async function startProxy(stackOf) {
  proxyPort = await freePort();
  proxy = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', async () => {
      let json = null;
      try { json = JSON.parse(body); } catch { /* recorded as text */ }
      captured.push({ url: req.url, body: json, auth: req.headers.authorization });
      if (body.includes('ANSWER_CHAT_COMPLETION')) {
        // valid JSON, but a chat completion where a Response belongs
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'chatcmpl-x', object: 'chat.completion', choices: [], usage: { prompt_tokens: 1, completion_tokens: 1 } }));
        return;
      }
      if (body.includes('ANSWER_LEAKY_IDS')) {
        // a Response naming provider-side ids everywhere
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({
          id: 'resp_PROVIDERSIDE', object: 'response', status: 'completed', model: 'x', previous_response_id: 'resp_PROVIDERPREV',
          output: [{ id: 'msg_PROVIDERSIDE', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'hello', annotations: [] }] }],
          usage: { input_tokens: 11, output_tokens: 3, total_tokens: 14 },
        }));
        return;
      }
      const up = await fetch(`${stackOf().mockUrl}${req.url}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const headers = { 'content-type': up.headers.get('content-type') || 'application/json' };
      res.writeHead(up.status, headers);
      for await (const chunk of up.body) res.write(chunk);
      res.end();
    });
  });
  await new Promise((r) => proxy.listen(proxyPort, '127.0.0.1', r));
}
after(() => new Promise((r) => (proxy ? proxy.close(r) : r())));

const stack = useStack(async () => {
  await startProxy(() => stack);
  return {
    upstreamTimeoutMs: 10000,
    extraProviders: [
      { name: 'pass', kind: 'openai', base_url: `http://127.0.0.1:${proxyPort}/v1`, api_key: 'pass-secret', timeout_ms: 10000, responses: 'passthrough', max_retries: 0, breaker_failures: 0, breaker_error_rate: 0 },
      { name: 'passfast', kind: 'openai', base_url: '{mock}/v1', api_key: 'k', timeout_ms: 1500, first_byte_timeout_ms: 1500, responses: 'passthrough', max_retries: 0, breaker_failures: 0, breaker_error_rate: 0 },
    ],
    extraModels: [
      { name: 'pass-model', provider: 'pass', upstream_model: 'mock-pass', input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0, max_output_tokens: 2000 },
      // a fallback that translates: the whole call translates (the harness
      // writes values with String(), so the list is given as YAML text)
      { name: 'pass-mixed', provider: 'pass', upstream_model: 'mock-mixed', fallbacks: { toString: () => '["gpt-test"]' }, input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0 },
      { name: 'pass-fast', provider: 'passfast', upstream_model: 'mock-fast', input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0 },
    ],
  };
}, async (s) => {
  s.tenant = await s.makeTenant();
  s.other = await s.makeTenant();
  s.alice = await s.makeUserWithKey(s.tenant.admin_key);
  s.bob = await s.makeUserWithKey(s.tenant.admin_key);
  s.carol = await s.makeUserWithKey(s.other.admin_key);
});

const post = (key, body) => stack.api(key, 'POST', '/v1/responses', body);
const lastCaptured = () => captured[captured.length - 1];
const idPattern = /^resp_[0-9a-f]{24}$/;

async function usageOf(key, model) {
  const r = stack.must(await stack.api(key, 'GET', '/v1/usage?group_by=model'), 200, 'usage');
  return r.data.find((x) => x.group === model);
}

describe('passthrough: what the provider gets, what the client sees', () => {
  test('non-streamed with the SDK: sent to /responses with store false and the output cap; brigade\'s ids; usage charged', async () => {
    const client = stack.openaiClient(stack.alice.key);
    const r = await client.responses.create({ model: 'pass-model', input: 'Hello there [[tokens:5]]', instructions: 'Be brief.' });
    assert.match(r.id, idPattern);
    assert.equal(r.status, 'completed');
    assert.equal(r.model, 'pass-model');
    assert.equal(r.output_text, 'alpha bravo charlie delta echo');
    assert.match(r.output[0].id, /^msg_[0-9a-f]{24}$/);
    assert.equal(r.usage.output_tokens, 5);
    assert.ok(r.usage.input_tokens > 0);
    const sent = lastCaptured();
    assert.equal(sent.url, '/v1/responses');
    assert.equal(sent.auth, 'Bearer pass-secret');
    assert.equal(sent.body.model, 'mock-pass');
    assert.equal(sent.body.store, false);
    assert.equal(sent.body.max_output_tokens, 2000);    // the model's cap, inserted
    assert.equal(sent.body.instructions, 'Be brief.');
    assert.equal(sent.body.previous_response_id, undefined);
    assert.deepEqual(sent.body.input, [{ type: 'message', role: 'user', content: 'Hello there [[tokens:5]]' }]);
    const row = await usageOf(stack.alice.key, 'pass-model');
    assert.ok(row && row.requests >= 1 && row.output_tokens >= 5 && row.cost_usd > 0, JSON.stringify(row));
    const got = stack.must(await stack.api(stack.alice.key, 'GET', `/v1/responses/${r.id}`), 200, 'get');
    assert.equal(got.output[0].content[0].text, r.output_text);
  });

  test('a larger max_output_tokens is refused before anything is sent; a smaller one is sent as given', async () => {
    const n = captured.length;
    const big = await post(stack.alice.key, { model: 'pass-model', input: 'x', max_output_tokens: 5000 });
    assert.equal(big.status, 400, big.text);
    assert.equal(errorOf(big).param, 'max_output_tokens');
    const hosted = await post(stack.alice.key, { model: 'pass-model', input: 'x', tools: [{ type: 'web_search' }] });
    assert.equal(hosted.status, 400);
    assert.equal(errorOf(hosted).param, 'tools[0].type');
    assert.equal(captured.length, n, 'nothing reached the provider');
    stack.must(await post(stack.alice.key, { model: 'pass-model', input: 'x [[tokens:3]]', max_output_tokens: 7 }), 200, 'small');
    assert.equal(lastCaptured().body.max_output_tokens, 7);
  });

  test('streamed with the SDK: the Responses events with brigade\'s ids and sequence numbers; usage from response.completed', async () => {
    const client = stack.openaiClient(stack.alice.key);
    const before = (await usageOf(stack.alice.key, 'pass-model'))?.output_tokens ?? 0;
    const stream = await client.responses.create({ model: 'pass-model', input: 'Stream it [[tokens:6]]', stream: true });
    const events = [];
    for await (const ev of stream) events.push(ev);
    assert.equal(lastCaptured().body.stream, true);
    const types = events.map((e) => e.type);
    assert.equal(types[0], 'response.created');
    assert.equal(types[1], 'response.in_progress');
    assert.equal(types.at(-1), 'response.completed');
    assert.equal(types.filter((t) => t === 'response.created').length, 1);
    assert.ok(types.includes('response.output_text.delta'));
    assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
    const done = events.at(-1).response;
    assert.match(done.id, idPattern);
    assert.equal(events[0].response.id, done.id);
    assert.equal(done.usage.output_tokens, 6);
    const text = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
    assert.equal(text, 'alpha bravo charlie delta echo foxtrot');
    const itemId = events.find((e) => e.type === 'response.output_item.added').item.id;
    assert.match(itemId, /^msg_[0-9a-f]{24}$/);
    assert.equal(done.output[0].id, itemId);
    for (const e of events.filter((x) => x.item_id)) assert.equal(e.item_id, itemId);
    await eventually(async () => {
      const after = (await usageOf(stack.alice.key, 'pass-model')).output_tokens;
      assert.equal(after - before, 6);
      return true;
    });
  });

  test('a function tool: the call comes back with brigade\'s fc_ id and the provider\'s call_id; the output continues it', async () => {
    const client = stack.openaiClient(stack.alice.key);
    const tool = { type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
    const r1 = await client.responses.create({ model: 'pass-model', input: 'Weather? [[tool:get_weather {"city":"Paris"}]]', tools: [tool] });
    const call = r1.output.find((o) => o.type === 'function_call');
    assert.ok(call, JSON.stringify(r1.output));
    assert.match(call.id, /^fc_[0-9a-f]{24}$/);
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
    const r2 = await client.responses.create({
      model: 'pass-model', previous_response_id: r1.id, tools: [tool],
      input: [{ type: 'function_call_output', call_id: call.call_id, output: '18C and sunny' }],
    });
    assert.equal(r2.status, 'completed');
    const sent = lastCaptured().body;
    assert.equal(sent.previous_response_id, undefined);
    const types = sent.input.map((i) => i.type || 'message');
    assert.deepEqual(types, ['message', 'function_call', 'function_call_output']);
    assert.equal(sent.input[1].call_id, call.call_id);
    for (const it of sent.input) assert.equal(it.id, undefined, 'item ids are brigade\'s: never sent');
  });

  test('a model with a fallback that translates is translated, wherever the call lands', async () => {
    const r = stack.must(await post(stack.alice.key, { model: 'pass-mixed', input: 'mixed [[tokens:2]]' }), 200, 'mixed');
    assert.equal(r.output[0].content[0].text, 'alpha bravo');
    assert.equal(lastCaptured().url, '/v1/chat/completions');
    assert.equal(lastCaptured().body.model, 'mock-mixed');
  });
});

describe('passthrough: state stays brigade\'s', () => {
  test('previous_response_id: the chain expanded into input, store false, no previous_response_id; across a translated model and back', async () => {
    const client = stack.openaiClient(stack.alice.key);
    const r1 = await client.responses.create({ model: 'pass-model', input: 'first turn [[tokens:2]]' });
    const r2 = await client.responses.create({ model: 'gpt-test', input: 'second turn [[tokens:2]]', previous_response_id: r1.id });
    const r3 = await client.responses.create({ model: 'pass-model', input: 'third turn [[tokens:2]]', previous_response_id: r2.id, stream: false });
    assert.match(r3.id, idPattern);
    assert.equal(r3.previous_response_id, r2.id);
    const sent = lastCaptured().body;
    assert.equal(sent.store, false);
    assert.equal(sent.previous_response_id, undefined);
    const texts = sent.input.map((i) => (typeof i.content === 'string' ? i.content : i.content.map((p) => p.text).join('')));
    assert.deepEqual(texts, ['first turn [[tokens:2]]', 'alpha bravo', 'second turn [[tokens:2]]', 'alpha bravo', 'third turn [[tokens:2]]']);
    assert.ok(!JSON.stringify(sent).includes(r1.id) && !JSON.stringify(sent).includes(r2.id), 'no brigade id reaches the provider');
    // and streamed
    const s = await client.responses.create({ model: 'pass-model', input: 'fourth [[tokens:1]]', previous_response_id: r3.id, stream: true });
    let last;
    for await (const ev of s) last = ev;
    assert.equal(last.type, 'response.completed');
    assert.equal(lastCaptured().body.input.length, 7);
  });

  test('another user\'s response id is 404 and nothing reaches the provider', async () => {
    const mine = stack.must(await post(stack.alice.key, { model: 'pass-model', input: 'a secret [[tokens:1]]' }), 200, 'alice');
    const n = captured.length;
    for (const intruder of [stack.bob, stack.carol]) {
      for (const stream of [false, true]) {
        const r = await post(intruder.key, { model: 'pass-model', input: 'go on', previous_response_id: mine.id, stream });
        assert.equal(r.status, 404, r.text);
        assert.equal(errorOf(r).code, 'response_not_found');
      }
      assert.equal((await stack.api(intruder.key, 'GET', `/v1/responses/${mine.id}`)).status, 404);
    }
    assert.equal(captured.length, n);
  });

  test('a provider-side id never reaches the client: response and item ids are replaced, previous_response_id is the client\'s', async () => {
    const r = stack.must(await post(stack.alice.key, { model: 'pass-model', input: 'ANSWER_LEAKY_IDS' }), 200, 'leaky');
    assert.ok(!JSON.stringify(r).includes('PROVIDER'), JSON.stringify(r));
    assert.match(r.id, idPattern);
    assert.equal(r.previous_response_id, null);
    assert.equal(r.output[0].content[0].text, 'hello');
    assert.equal(r.usage.input_tokens, 11);
    const got = stack.must(await stack.api(stack.alice.key, 'GET', `/v1/responses/${r.id}`), 200, 'get');
    assert.ok(!JSON.stringify(got).includes('PROVIDER'));
  });
});

describe('passthrough: governance and failures', () => {
  test('a burst against a small daily budget: reservations admit what fits, the rest is 429, spend stays within', async () => {
    const u = await stack.makeUserWithKey(stack.tenant.admin_key);
    // pass-model output: 2 USD per million tokens; a 1000-token cap reserves
    // 0.002 USD (plus input); a budget of 0.005 admits two at once.
    const budgetUsd = 0.005;
    stack.must(await stack.api(stack.tenant.admin_key, 'PATCH', `/v1/users/${u.user.id}`, { limits: { daily_budget_usd: budgetUsd } }), 200, 'limits');
    const body = (i) => ({ model: 'pass-model', input: `burst ${i} [[latency:1500]]`, max_output_tokens: 1000, stream: i % 2 === 1 });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => post(u.key, body(i))));
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 429);
    assert.ok(ok.length >= 1 && ok.length <= 2, results.map((r) => r.status).join(','));
    assert.equal(ok.length + refused.length, 10);
    for (const r of refused) assert.equal(errorOf(r).type, 'insufficient_quota');
    await eventually(async () => {
      const me = stack.must(await stack.api(u.key, 'GET', '/v1/me'), 200, 'me');
      assert.equal(me.usage.day.reserved_usd, 0);
      assert.ok(me.usage.day.spent_usd > 0 && me.usage.day.spent_usd <= budgetUsd, String(me.usage.day.spent_usd));
      return true;
    }, { timeoutMs: 5000 });
  });

  test('a provider that answers garbage: 502 upstream_malformed (not JSON, not a Response, a broken stream)', async () => {
    const notJson = await post(stack.alice.key, { model: 'pass-fast', input: 'x [[fault:malformed]]' });
    assert.equal(notJson.status, 502, notJson.text);
    assert.equal(errorOf(notJson).code, 'upstream_malformed');
    const chat = await post(stack.alice.key, { model: 'pass-model', input: 'ANSWER_CHAT_COMPLETION' });
    assert.equal(chat.status, 502, chat.text);
    assert.equal(errorOf(chat).code, 'upstream_malformed');
    const stream = await post(stack.alice.key, { model: 'pass-fast', input: 'x [[fault:malformed]]', stream: true });
    assert.equal(stream.status, 502, stream.text);
    const cut = await post(stack.alice.key, { model: 'pass-fast', input: 'x [[fault:truncate]] [[tokens:20]]', stream: true });
    // the stream began: the failure is in-band, and it is not a completed Response
    assert.equal(cut.status, 200);
    assert.match(cut.text, /event: response\.failed/);
    assert.doesNotMatch(cut.text, /response\.completed/);
  });

  test('a provider that hangs: 504 upstream_timeout, streamed or not', async () => {
    for (const stream of [false, true]) {
      const t0 = Date.now();
      const r = await post(stack.alice.key, { model: 'pass-fast', input: 'x [[fault:hang]]', stream });
      assert.equal(r.status, 504, r.text);
      assert.equal(errorOf(r).code, 'upstream_timeout');
      assert.ok(Date.now() - t0 < 8000);
    }
  });
});

describe('config', () => {
  test('responses: passthrough on a provider that is not OpenAI-compatible is refused at load, naming the line', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'brigade.yaml');
    const port = await freePort();
    const base = [
      'server:', `  listen: "127.0.0.1:${port}"`, `  data_dir: ${JSON.stringify(dir)}`, 'providers:',
      '  - {name: claude, kind: anthropic, base_url: "http://127.0.0.1:9/v1", api_key: k, responses: passthrough}',
      'models:', '  - {name: m, provider: claude, input_usd_per_mtok: 1, output_usd_per_mtok: 1}', '',
    ];
    fs.writeFileSync(file, base.join('\n'));
    let r = await runBrigade(['serve', '--config', file]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /brigade\.yaml:5.*responses.*only for kind openai/);
    fs.writeFileSync(file, base.join('\n').replace('kind: anthropic', 'kind: openai').replace('passthrough', 'sometimes'));
    r = await runBrigade(['serve', '--config', file]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /responses.*passthrough or translate/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
