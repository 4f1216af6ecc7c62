// gateway.test.mjs — the OpenAI-compatible gateway end to end: the official
// openai SDK against brigade, with both providers (gpt-test through mock-llm
// over HTTP, local-model in-process), streaming, tool calls, usage and cost
// accounting, upstream failures as SDK errors, and a capturing upstream that
// shows what brigade actually sends to a provider.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, test } from 'node:test';

import OpenAI from 'openai';

import { eventually, freePort, readResponse, useStack } from './lib/harness.mjs';

// A fake OpenAI upstream in this process that records every request, so the
// tests can see the body and headers brigade forwards.
const captured = [];
let captureServer;
let capturePort;

async function startCaptureServer() {
  capturePort = await freePort();
  captureServer = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      let json = null;
      try { json = JSON.parse(body); } catch { /* recorded as text */ }
      captured.push({ method: req.method, url: req.url, headers: req.headers, body: json ?? body, raw: body });
      const created = Math.floor(Date.now() / 1000);
      const rawStream = RAW_STREAMS[json?.messages?.[0]?.content];
      if (json && json.stream && rawStream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const chunk of rawStream) res.write(`data: ${chunk}\n\n`);
        res.end('data: [DONE]\n\n');
        return;
      }
      if (json && json.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const base = { id: 'chatcmpl-cap', object: 'chat.completion.chunk', created, model: json.model };
        res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: 'captured' }, finish_reason: null }] })}\n\n`);
        res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
        res.write(`data: ${JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: 7, completion_tokens: 1, total_tokens: 8 } })}\n\n`);
        res.end('data: [DONE]\n\n');
        return;
      }
      // Raw answers for the usage-reading tests: the text is sent as written.
      const raw = RAW_ANSWERS[json?.messages?.[0]?.content];
      if (raw) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(raw);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        id: 'chatcmpl-cap', object: 'chat.completion', created, model: json?.model ?? 'x',
        choices: [{ index: 0, message: { role: 'assistant', content: 'captured' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 7, completion_tokens: 1, total_tokens: 8 },
      }));
    });
  });
  await new Promise((r) => captureServer.listen(capturePort, '127.0.0.1', r));
}
after(() => new Promise((r) => (captureServer ? captureServer.close(r) : r())));

// Provider answers written by hand, picked by the request's first message.
// "dup": usage named twice (brigade charges the first copy, as it always
// read it); read without a tree (upstream/providers/openai_scan.c).
// "escaped": the key spelled with an escape, which that reader leaves to
// cJSON (it decodes the key to "usage"); the charge must come out the same.
const RAW_ANSWERS = {
  'raw-usage-dup': '{"id":"chatcmpl-raw","object":"chat.completion","created":1,"model":"real-upstream-name",' +
    '"choices":[{"index":0,"message":{"role":"assistant","content":"caf\\u00e9 \\"q\\""},"finish_reason":"stop"}],' +
    '"usage":{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14},' +
    '"usage":{"prompt_tokens":900000,"completion_tokens":900000,"total_tokens":1800000}}',
  'raw-usage-escaped': '{"id":"chatcmpl-raw","object":"chat.completion","created":1,"model":"real-upstream-name",' +
    '"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],' +
    '"us\\u0061ge":{"prompt_tokens":13,"completion_tokens":5,"total_tokens":18}}',
};

// Provider streams written by hand, picked the same way. Every chunk of a
// stream is read by the resilience layer (is it still "quiet", so a failure
// may be retried? how many output tokens against the reserved cap?), without
// a tree when the scan can and with cJSON when it cannot (an escaped key).
// "odd-delta": deltas of the shapes a hostile or broken provider sends — an
// array, a string, a number — which once reached a strcmp of a NULL name.
const ODD = (delta, extra = '') =>
  `{"id":"chatcmpl-odd","object":"chat.completion.chunk","created":1,"model":"real-upstream-name"${extra},` +
  `"choices":[{"index":0,"delta":${delta},"finish_reason":null}]}`;
const RAW_STREAMS = {
  'raw-stream-odd-delta': [
    ODD('[1,"x"]', ',"x\\u0061":1'), ODD('[1]'), ODD('"s"'), ODD('7', ',"k\\u0061":2'),
    ODD('{"role":"assistant","content":"fine"}'),
    '{"id":"chatcmpl-odd","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}',
  ],
  // 6 chunks of text, every other one with an escaped key (cJSON's reading)
  'raw-stream-cap': Array.from({ length: 6 }, (_, i) =>
    ODD(`{"content":"w${i} "}`, i % 2 ? ',"x\\u0061":1' : '')).concat([
    '{"id":"chatcmpl-odd","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":6,"total_tokens":10}}',
  ]),
};

// One tenant for the file; each test that checks usage makes its own user.
let tenant;
let userKey;
const stack = useStack(async () => {
  await startCaptureServer();
  return {
    extraProviders: [{ name: 'capture', kind: 'openai', base_url: `http://127.0.0.1:${capturePort}/v1`, api_key: 'capture-secret', timeout_ms: 2000 }],
    extraModels: [{ name: 'capture-model', provider: 'capture', upstream_model: 'real-upstream-name', input_usd_per_mtok: 1.0, output_usd_per_mtok: 1.0 }],
  };
}, async (s) => {
  tenant = await s.makeTenant();
  ({ key: userKey } = await s.makeUserWithKey(tenant.admin_key));
});

const PRICES = { 'gpt-test': [1.0, 2.0], 'local-model': [0.5, 1.5] };
const MODELS = ['gpt-test', 'local-model'];

function costOf(model, inTok, outTok) {
  const [pi, po] = PRICES[model];
  return (inTok * pi + outTok * po) / 1e6;
}

function assertClose(actual, expected, what) {
  const tol = Math.max(1e-9, Math.abs(expected) * 1e-6);
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: expected ${expected}, got ${actual}`);
}

describe('models', () => {
  test('GET /v1/models lists the configured model names (SDK)', async () => {
    const client = stack.openaiClient(userKey);
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    for (const want of ['gpt-test', 'local-model', 'capture-model']) {
      assert.ok(ids.includes(want), `models list ${JSON.stringify(ids)} lacks ${want}`);
    }
    assert.ok(!ids.includes('mock-gpt'), 'the upstream model name must not leak into /v1/models');
  });

  test('GET /v1/models shape is an OpenAI list', async () => {
    const r = await stack.api(userKey, 'GET', '/v1/models');
    assert.equal(r.status, 200);
    assert.equal(r.body.object, 'list');
    assert.ok(Array.isArray(r.body.data));
    for (const m of r.body.data) {
      assert.equal(m.object, 'model');
      assert.equal(typeof m.id, 'string');
    }
  });

  test('GET /v1/models without a credential is 401', async () => {
    const r = await stack.api(null, 'GET', '/v1/models');
    assert.equal(r.status, 401);
    assert.equal(r.body.error.type, 'authentication_error');
  });
});

for (const model of MODELS) {
  describe(`chat completions via ${model}`, () => {
    test('non-streaming completion returns content and usage', async () => {
      const client = stack.openaiClient(userKey);
      const c = await client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: 'Say hello. [[tokens:5]]' }],
      });
      assert.equal(c.object, 'chat.completion');
      // The gateway may name the model as the client did or as upstream did.
      assert.ok(c.model === model || c.model === 'mock-gpt' || c.model.startsWith(model), `model ${c.model}`);
      assert.equal(c.choices.length, 1);
      assert.equal(c.choices[0].message.role, 'assistant');
      assert.equal(typeof c.choices[0].message.content, 'string');
      assert.ok(c.choices[0].message.content.length > 0, 'content is empty');
      assert.equal(c.choices[0].finish_reason, 'stop');
      assert.equal(c.usage.completion_tokens, 5);
      assert.ok(c.usage.prompt_tokens > 0, 'prompt_tokens should be counted');
      assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
    });

    test('streaming completion: deltas, then a usage chunk with include_usage', async () => {
      const client = stack.openaiClient(userKey);
      const stream = await client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: 'Stream please. [[tokens:6]]' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let content = '';
      let contentChunks = 0;
      let finish = null;
      let usage = null;
      let chunks = 0;
      for await (const chunk of stream) {
        chunks++;
        assert.equal(chunk.object, 'chat.completion.chunk');
        const ch = chunk.choices[0];
        if (ch?.delta?.content) { content += ch.delta.content; contentChunks++; }
        if (ch?.finish_reason) finish = ch.finish_reason;
        if (chunk.usage) usage = chunk.usage;
      }
      assert.ok(chunks >= 3, `expected several chunks, got ${chunks}`);
      assert.ok(content.length > 0, 'no streamed content');
      assert.ok(contentChunks >= 2, `content should arrive in several deltas, got ${contentChunks}`);
      assert.equal(finish, 'stop');
      assert.ok(usage, 'the final chunk must carry usage when stream_options.include_usage is set');
      assert.equal(usage.completion_tokens, 6);
      assert.ok(usage.prompt_tokens > 0);
    });

    test('a marker makes the model call a tool; the SDK sees tool_calls', async () => {
      const client = stack.openaiClient(userKey);
      const tools = [{
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'weather for a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
      }];
      const messages = [{ role: 'user', content: 'Weather in Paris? [[tool:get_weather {"city":"Paris","days":2}]]' }];
      const c = await client.chat.completions.create({ model, messages, tools });
      const msg = c.choices[0].message;
      assert.equal(c.choices[0].finish_reason, 'tool_calls');
      assert.ok(Array.isArray(msg.tool_calls) && msg.tool_calls.length === 1, `tool_calls: ${JSON.stringify(msg)}`);
      const call = msg.tool_calls[0];
      assert.equal(call.type, 'function');
      assert.equal(call.function.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris', days: 2 });
      assert.ok(call.id, 'tool call needs an id');

      // Second turn: hand back the result; the mock quotes it in its answer.
      const c2 = await client.chat.completions.create({
        model,
        tools,
        messages: [
          ...messages,
          { role: 'assistant', content: null, tool_calls: msg.tool_calls },
          { role: 'tool', tool_call_id: call.id, content: 'sunny-21C-zq7' },
        ],
      });
      assert.equal(c2.choices[0].finish_reason, 'stop');
      assert.match(c2.choices[0].message.content, /sunny-21C-zq7/);
    });

    test('streamed tool call: name and arguments reassemble from deltas', async () => {
      const client = stack.openaiClient(userKey);
      const stream = await client.chat.completions.create({
        model,
        stream: true,
        tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }],
        messages: [{ role: 'user', content: 'go [[tool:lookup {"q":"brigade","n":[1,2,3]}]]' }],
      });
      const calls = {};
      let finish = null;
      for await (const chunk of stream) {
        const ch = chunk.choices[0];
        if (!ch) continue;
        if (ch.finish_reason) finish = ch.finish_reason;
        for (const tc of ch.delta?.tool_calls ?? []) {
          const slot = (calls[tc.index] ??= { name: '', args: '', id: null });
          if (tc.id) slot.id = tc.id;
          if (tc.function?.name) slot.name += tc.function.name;
          if (tc.function?.arguments) slot.args += tc.function.arguments;
        }
      }
      assert.equal(finish, 'tool_calls');
      assert.equal(Object.keys(calls).length, 1);
      assert.equal(calls[0].name, 'lookup');
      assert.ok(calls[0].id);
      assert.deepEqual(JSON.parse(calls[0].args), { q: 'brigade', n: [1, 2, 3] });
    });

    test('[[tokens:N]] usage is recorded: /v1/usage tokens and cost = tokens x price', async () => {
      const { key } = await stack.makeUserWithKey(tenant.admin_key);
      const client = stack.openaiClient(key);
      let inTok = 0;
      let outTok = 0;
      for (const n of [3, 11]) {
        const c = await client.chat.completions.create({ model, messages: [{ role: 'user', content: `count [[tokens:${n}]]` }] });
        assert.equal(c.usage.completion_tokens, n);
        inTok += c.usage.prompt_tokens;
        outTok += c.usage.completion_tokens;
      }
      // Usage is flushed in batches (STORE_USAGE_FLUSH_MS = 200 ms): poll.
      const row = await eventually(async () => {
        const r = await stack.api(key, 'GET', '/v1/usage?group_by=model');
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.object, 'list');
        const g = r.body.data.find((x) => x.group === model);
        return g && g.requests === 2 ? g : null;
      }, { timeoutMs: 4000 });
      assert.equal(row.input_tokens, inTok);
      assert.equal(row.output_tokens, outTok);
      assertClose(row.cost_usd, costOf(model, inTok, outTok), 'cost_usd');
      const me = await stack.api(key, 'GET', '/v1/me');
      assert.equal(me.status, 200, me.text);
      assertClose(me.body.usage.day.spent_usd, costOf(model, inTok, outTok), '/v1/me usage.day.spent_usd');
      assertClose(me.body.usage.month.spent_usd, costOf(model, inTok, outTok), '/v1/me usage.month.spent_usd');
    });
  });
}

describe('streaming over the wire', () => {
  test('stream:true answers text/event-stream ending in data: [DONE]', async () => {
    const res = await fetch(stack.brigadeUrl + '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${userKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'hi [[tokens:3]]' }] }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') || '', /^text\/event-stream/);
    assert.ok(res.headers.get('x-request-id'), 'x-request-id on a stream');
    const text = await res.text();
    const events = text.split('\n\n').map((e) => e.trim()).filter(Boolean);
    assert.equal(events.at(-1), 'data: [DONE]');
    for (const e of events.slice(0, -1)) {
      if (e.startsWith(':')) continue; // comment / ping
      assert.ok(e.startsWith('data: '), `unexpected SSE event ${JSON.stringify(e)}`);
      const j = JSON.parse(e.slice(6));
      // brigade asks the provider for usage; a client that did not ask gets no usage chunk
      assert.ok(!j.usage && j.choices?.length, `a usage chunk the client did not ask for: ${e}`);
    }
  });
});

describe('what brigade sends upstream', () => {
  test('model is mapped, tools and parameters pass through, the user key never leaves', async () => {
    captured.length = 0;
    const tools = [{ type: 'function', function: { name: 'search_docs', description: 'd', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }];
    const client = stack.openaiClient(userKey);
    const c = await client.chat.completions.create({
      model: 'capture-model',
      messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }],
      tools,
      tool_choice: 'auto',
      temperature: 0.25,
      max_tokens: 50,
    });
    assert.equal(c.choices[0].message.content, 'captured');
    assert.equal(captured.length, 1, 'exactly one upstream call');
    const up = captured[0];
    assert.equal(up.method, 'POST');
    assert.equal(up.url, '/v1/chat/completions');
    assert.equal(up.headers.authorization, 'Bearer capture-secret', 'the provider key is sent upstream');
    assert.ok(!JSON.stringify(up.headers).includes(userKey), 'the brigade user key must not be forwarded upstream');
    assert.equal(up.body.model, 'real-upstream-name');
    assert.deepEqual(up.body.tools, tools);
    assert.equal(up.body.tool_choice, 'auto');
    assert.equal(up.body.temperature, 0.25);
    assert.deepEqual(up.body.messages, [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }]);
  });

  test('a streaming request reaches the upstream as a stream and usage is still counted', async () => {
    captured.length = 0;
    const { key } = await stack.makeUserWithKey(tenant.admin_key);
    const client = stack.openaiClient(key);
    const stream = await client.chat.completions.create({ model: 'capture-model', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    let content = '';
    for await (const ch of stream) content += ch.choices[0]?.delta?.content ?? '';
    assert.equal(content, 'captured');
    assert.equal(captured.length, 1);
    assert.equal(captured[0].body.stream, true);
    assert.deepEqual(captured[0].body.stream_options, { include_usage: true }, 'brigade always asks for usage');
    const row = await eventually(async () => {
      const r = await stack.api(key, 'GET', '/v1/usage?group_by=model');
      return r.body?.data?.find((x) => x.group === 'capture-model');
    }, { timeoutMs: 4000 });
    assert.equal(row.input_tokens, 7);
    assert.equal(row.output_tokens, 1);
  });
});

describe('a renamed model: only the model changes in the body forwarded', () => {
  // The model's upstream name goes into the client's own bytes: nothing is
  // re-encoded, so an integer past 2^53 (JavaScript's JSON.parse would round
  // it too, hence the raw text here), a float's spelling and key order reach
  // the provider as the client wrote them.
  for (const [what, raw, want] of [
    ['a plain body',
      '{"model":"capture-model","seed":12345678901234567,"temperature":0.10000000000000001,"messages":[{"role":"user","content":"hi"}],"max_tokens":9}',
      '{"model":"real-upstream-name","seed":12345678901234567,"temperature":0.10000000000000001,"messages":[{"role":"user","content":"hi"}],"max_tokens":9}'],
    ['an escaped key and a null cap',
      '{ "mod\\u0065l" : "capture-model", "metadata":{"id":98765432109876543210,"model":"x"}, "max_completion_tokens":null, "messages":[{"role":"user","content":"hi"}]}',
      null],
  ]) {
    test(`${what}: the provider gets the client's bytes with the model renamed`, async () => {
      captured.length = 0;
      const res = await fetch(stack.brigadeUrl + '/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: `Bearer ${userKey}`, 'content-type': 'application/json' },
        body: raw,
      });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      assert.equal(captured.length, 1);
      if (want) {
        assert.equal(captured[0].raw, want);
      } else {
        const got = captured[0].raw;
        assert.match(got, /^\{ "mod\\u0065l" : "real-upstream-name", "metadata":\{"id":98765432109876543210,"model":"x"\}, "max_completion_tokens":\d+, "messages"/);
        assert.ok(!got.includes('null'), 'the null cap is replaced, not repeated');
      }
    });
  }
});

describe('the streamed body brigade forwards always asks for usage', () => {
  // A client that turns usage off (or spells the field so a reader might
  // miss it) must not make the provider stream without it: the charge
  // would then be an estimate the client chose.
  for (const [what, raw] of [
    ['include_usage false', '{"model":"capture-model","stream":true,"stream_options":{"include_usage":false},"messages":[{"role":"user","content":"hi"}]}'],
    ['an escaped key', '{"model":"capture-model","stream":true,"stream_\\u006fptions":{"include_usage":false},"messages":[{"role":"user","content":"hi"}]}'],
  ]) {
    test(`${what}: the provider is asked for usage`, async () => {
      captured.length = 0;
      const res = await fetch(stack.brigadeUrl + '/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: `Bearer ${userKey}`, 'content-type': 'application/json' },
        body: raw,
      });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      assert.equal(captured.length, 1);
      assert.deepEqual(captured[0].body.stream_options, { include_usage: true });
      assert.equal(captured[0].body.stream, true);
    });
  }
});

describe('what brigade reads from a provider answer', () => {
  for (const [name, input, output, content] of [
    ['raw-usage-dup', 11, 3, 'café "q"'],
    ['raw-usage-escaped', 13, 5, 'ok'],
  ]) {
    test(`${name}: the usage charged is the one brigade has always read (${input}/${output})`, async () => {
      const { key } = await stack.makeUserWithKey(tenant.admin_key);
      const client = stack.openaiClient(key);
      const c = await client.chat.completions.create({ model: 'capture-model', messages: [{ role: 'user', content: name }] });
      assert.equal(c.choices[0].message.content, content, 'the answer passes through as the provider wrote it');
      const row = await eventually(async () => {
        const r = await stack.api(key, 'GET', '/v1/usage?group_by=model');
        return r.body?.data?.find((x) => x.group === 'capture-model');
      }, { timeoutMs: 4000 });
      assert.equal(row.input_tokens, input);
      assert.equal(row.output_tokens, output);
    });
  }
});

describe('what brigade reads from a provider stream', () => {
  const streamOf = async (key, content, extra = {}) => {
    const res = await fetch(stack.brigadeUrl + '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'capture-model', stream: true, messages: [{ role: 'user', content }], ...extra }),
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    return text.split('\n\n').map((e) => e.trim()).filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
  };

  test('odd deltas (array, string, number; escaped keys) pass through and the server lives', async () => {
    const { key } = await stack.makeUserWithKey(tenant.admin_key);
    const events = await streamOf(key, 'raw-stream-odd-delta');
    assert.equal(events.at(-1), '[DONE]');
    const content = events.slice(0, -1).map((e) => JSON.parse(e))
      .map((j) => j.choices?.[0]?.delta?.content).filter((c) => typeof c === 'string').join('');
    assert.equal(content, 'fine');
    const h = await fetch(stack.brigadeUrl + '/healthz');
    assert.equal(h.status, 200, 'brigade still answers after the odd stream');
  });

  test('the output cap counts chunks read either way: max_tokens 3 cuts after 3 text chunks', async () => {
    const { key } = await stack.makeUserWithKey(tenant.admin_key);
    const events = await streamOf(key, 'raw-stream-cap', { max_tokens: 3, stream_options: { include_usage: true } });
    assert.equal(events.at(-1), '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    const text = chunks.map((j) => j.choices?.[0]?.delta?.content ?? '').join('');
    assert.equal(text, 'w0 w1 w2 ', 'three text chunks (one read by cJSON) reach the client, then the cut');
    assert.ok(chunks.some((j) => j.choices?.[0]?.finish_reason === 'length'), 'the cut ends with finish_reason length');
    for (const j of chunks) assert.equal(j.id, 'chatcmpl-odd', 'the end chunks repeat the stream id');
    const usage = chunks.find((j) => j.usage)?.usage;
    assert.equal(usage?.completion_tokens, 3, 'the cut stream reports what was delivered');
  });
});

describe('upstream failures surface as OpenAI errors', () => {
  const ask = (content, model = 'gpt-test') =>
    stack.openaiClient(userKey).chat.completions.create({ model, messages: [{ role: 'user', content }] });

  test('upstream 429 -> 429 rate_limit_error with Retry-After (SDK RateLimitError)', async () => {
    await assert.rejects(ask('x [[fault:rate_limit]]'), (e) => {
      assert.ok(e instanceof OpenAI.RateLimitError, `got ${e?.constructor?.name}: ${e?.message}`);
      assert.equal(e.status, 429);
      assert.equal(e.type, 'rate_limit_error');
      assert.ok(e.headers?.get?.('retry-after') ?? e.headers?.['retry-after'], 'Retry-After header missing');
      return true;
    });
  });

  test('upstream 500 -> 502 upstream_error', { timeout: 20_000 }, async () => {
    await assert.rejects(ask('x [[fault:server_error]]'), (e) => {
      assert.ok(e instanceof OpenAI.APIError, `got ${e?.constructor?.name}: ${e?.message}`);
      assert.equal(e.status, 502);
      assert.equal(e.type, 'upstream_error');
      return true;
    });
  });

  test('malformed upstream JSON -> 502 upstream_error', { timeout: 20_000 }, async () => {
    await assert.rejects(ask('x [[fault:malformed]]'), (e) => {
      assert.equal(e.status, 502, `got ${e?.status}: ${e?.message}`);
      assert.equal(e.type, 'upstream_error');
      return true;
    });
  });

  test('truncated upstream response (non-stream) -> 502 upstream_error', { timeout: 20_000 }, async () => {
    await assert.rejects(ask('x [[fault:truncate]]'), (e) => {
      assert.equal(e.status, 502, `got ${e?.status}: ${e?.message}`);
      return true;
    });
  });

  test('truncated upstream stream is an error for the client, not a clean end', { timeout: 20_000 }, async () => {
    const client = stack.openaiClient(userKey);
    await assert.rejects(async () => {
      const stream = await client.chat.completions.create({
        model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'x [[tokens:8]] [[fault:truncate]]' }],
      });
      // eslint-disable-next-line no-unused-vars
      for await (const _ of stream) { /* drain */ }
    });
  });

  test('hanging upstream -> 504 timeout_error after the provider timeout', { timeout: 20_000 }, async () => {
    const t0 = Date.now();
    await assert.rejects(ask('x [[fault:hang]]'), (e) => {
      assert.equal(e.status, 504, `got ${e?.status}: ${e?.message}`);
      assert.equal(e.type, 'timeout_error');
      return true;
    });
    const took = Date.now() - t0;
    assert.ok(took >= 1500, `answered 504 after only ${took} ms (timeout_ms is 2000)`);
    assert.ok(took < 15000, `took ${took} ms`);
  });

  test('a transient upstream failure ([[fault:server_error:1]]) is retried and succeeds', { timeout: 20_000 }, async () => {
    const before = (await stack.mockStats()).body;
    const c = await ask(`retry-me-${Date.now()} [[fault:server_error:1]] [[tokens:2]]`);
    assert.equal(c.usage.completion_tokens, 2);
    const afterStats = (await stack.mockStats()).body;
    if (typeof before?.requests === 'number' && typeof afterStats?.requests === 'number') {
      assert.equal(afterStats.requests - before.requests, 2, 'one failed attempt plus one retry reached the mock');
    }
  });

  test('a failed call charges nothing', { timeout: 20_000 }, async () => {
    const { key } = await stack.makeUserWithKey(tenant.admin_key);
    const client = stack.openaiClient(key);
    await assert.rejects(client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'x [[fault:server_error]]' }] }));
    await new Promise((r) => setTimeout(r, 500));
    const me = await stack.api(key, 'GET', '/v1/me');
    assert.equal(me.status, 200);
    assert.equal(me.body.usage.day.spent_usd, 0);
    assert.equal(me.body.usage.day.reserved_usd, 0, 'the reservation must be released on failure');
  });
});

describe('requests brigade refuses', () => {
  test('unknown model -> 404 (or 400) naming the model', async () => {
    const client = stack.openaiClient(userKey);
    await assert.rejects(
      client.chat.completions.create({ model: 'no-such-model-xyz', messages: [{ role: 'user', content: 'hi' }] }),
      (e) => {
        assert.ok(e.status === 404 || e.status === 400, `status ${e.status}`);
        assert.ok(e.type === 'not_found_error' || e.type === 'invalid_request_error', `type ${e.type}`);
        assert.match(e.message, /no-such-model-xyz/);
        return true;
      },
    );
  });

  test('the upstream model name is not accepted as a model name', async () => {
    const r = await stack.api(userKey, 'POST', '/v1/chat/completions', { model: 'mock-gpt', messages: [{ role: 'user', content: 'hi' }] });
    assert.ok(r.status === 404 || r.status === 400, `status ${r.status}`);
  });

  test('an invalid key is refused by the SDK as AuthenticationError', async () => {
    const client = stack.openaiClient('bk_usr_definitely_not_a_key');
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] }),
      (e) => e instanceof OpenAI.AuthenticationError && e.status === 401,
    );
  });

  test('responses carry x-request-id', async () => {
    const res = await fetch(stack.brigadeUrl + '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${userKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'local-model', messages: [{ role: 'user', content: 'hi' }] }),
    });
    const r = await readResponse(res);
    assert.equal(r.status, 200, r.text);
    assert.ok(r.headers.get('x-request-id'));
  });
});
