// messages.test.mjs — POST /v1/messages, the Anthropic Messages API
// inbound, driven by the official @anthropic-ai/sdk with only its base URL
// and key changed: a message, a stream, a tool-use loop, the x-api-key
// credential, Anthropic's error shape, and the call metered like any chat
// completion (usage and cost charged to the caller). Also the legacy
// POST /v1/completions (a text_completion, streamed and not), and the
// mock's structured output through the clients' helpers.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createOpenAI } from '@ai-sdk/openai';
import Anthropic from '@anthropic-ai/sdk';
import { generateText, Output } from 'ai';
import { z } from 'zod';

import { eventually, useStack } from './lib/harness.mjs';

let tenant;
let userKey;
const stack = useStack({}, async (s) => {
  tenant = await s.makeTenant();
  ({ key: userKey } = await s.makeUserWithKey(tenant.admin_key));
});

const anthropic = (key) => new Anthropic({ apiKey: key, baseURL: stack.brigadeUrl, maxRetries: 0, timeout: 20_000 });

const WEATHER = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

for (const model of ['gpt-test', 'local-model']) {
  describe(`messages via ${model}`, () => {
    test('messages.create answers a message with text and usage', async () => {
      const m = await anthropic(userKey).messages.create({
        model, max_tokens: 64, system: 'Be brief.',
        messages: [{ role: 'user', content: 'Say hello. [[tokens:5]]' }],
      });
      assert.equal(m.type, 'message');
      assert.equal(m.role, 'assistant');
      assert.equal(m.model, model);
      assert.match(m.id, /^msg_/);
      assert.equal(m.content.length, 1);
      assert.equal(m.content[0].type, 'text');
      assert.equal(m.content[0].text.split(' ').length, 5);
      assert.equal(m.stop_reason, 'end_turn');
      assert.equal(m.usage.output_tokens, 5);
      assert.ok(m.usage.input_tokens > 0);
    });

    test('max_tokens cuts the answer: stop_reason max_tokens', async () => {
      const m = await anthropic(userKey).messages.create({
        model, max_tokens: 3, messages: [{ role: 'user', content: 'Talk. [[tokens:20]]' }],
      });
      assert.equal(m.stop_reason, 'max_tokens');
      assert.equal(m.usage.output_tokens, 3);
    });

    test('messages.stream: the event sequence and the final message', async () => {
      const events = [];
      const stream = anthropic(userKey).messages.stream({
        model, max_tokens: 64, messages: [{ role: 'user', content: 'Stream please. [[tokens:6]]' }],
      });
      stream.on('streamEvent', (e) => events.push(e.type));
      let text = '';
      stream.on('text', (t) => { text += t; });
      const final = await stream.finalMessage();
      assert.equal(events[0], 'message_start');
      assert.ok(events.includes('content_block_start'));
      assert.ok(events.includes('content_block_delta'));
      assert.ok(events.includes('content_block_stop'));
      assert.equal(events.at(-2), 'message_delta');
      assert.equal(events.at(-1), 'message_stop');
      assert.equal(text.split(' ').length, 6);
      assert.equal(final.content[0].text, text);
      assert.equal(final.stop_reason, 'end_turn');
      assert.equal(final.usage.output_tokens, 6);
      assert.ok(final.usage.input_tokens > 0);
    });

    test('tool use: tool_use block, then the tool_result answered', async () => {
      const client = anthropic(userKey);
      const messages = [{ role: 'user', content: 'Weather? [[tool:get_weather {"city":"Paris"}]]' }];
      const first = await client.messages.create({ model, max_tokens: 64, tools: [WEATHER], messages });
      assert.equal(first.stop_reason, 'tool_use');
      const use = first.content.find((b) => b.type === 'tool_use');
      assert.ok(use, JSON.stringify(first.content));
      assert.equal(use.name, 'get_weather');
      assert.deepEqual(use.input, { city: 'Paris' });
      messages.push({ role: 'assistant', content: first.content });
      messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny, 21C' }] });
      const second = await client.messages.create({ model, max_tokens: 64, tools: [WEATHER], messages });
      assert.equal(second.stop_reason, 'end_turn');
      assert.match(second.content[0].text, /sunny, 21C/);
    });

    test('tool use streamed: input_json_delta builds the input', async () => {
      const stream = anthropic(userKey).messages.stream({
        model, max_tokens: 64, tools: [WEATHER], tool_choice: { type: 'any' },
        messages: [{ role: 'user', content: 'Weather? [[tool:get_weather {"city":"Oslo","days":[1,2]}]]' }],
      });
      const deltas = [];
      stream.on('inputJson', (d) => deltas.push(d));
      const final = await stream.finalMessage();
      const use = final.content.find((b) => b.type === 'tool_use');
      assert.deepEqual(use.input, { city: 'Oslo', days: [1, 2] });
      assert.ok(deltas.length >= 1);
      assert.equal(final.stop_reason, 'tool_use');
    });
  });
}

describe('messages: credentials and errors', () => {
  test('x-api-key is the credential (what the SDK sends), Bearer works too', async () => {
    const h = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' };
    const body = JSON.stringify({ model: 'local-model', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
    let r = await fetch(`${stack.brigadeUrl}/v1/messages`, { method: 'POST', headers: { ...h, 'x-api-key': userKey }, body });
    assert.equal(r.status, 200, await r.clone().text());
    r = await fetch(`${stack.brigadeUrl}/v1/messages`, { method: 'POST', headers: { ...h, authorization: `Bearer ${userKey}` }, body });
    assert.equal(r.status, 200);
  });

  test('x-api-key is not a credential on the other routes', async () => {
    const r = await fetch(`${stack.brigadeUrl}/v1/me`, { headers: { 'x-api-key': userKey } });
    assert.equal(r.status, 401);
  });

  test('a bad key is an Anthropic authentication_error (SDK raises AuthenticationError)', async () => {
    await assert.rejects(
      anthropic('sk-not-a-key').messages.create({ model: 'local-model', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
      (e) => e instanceof Anthropic.AuthenticationError && e.status === 401 && e.error?.type === 'error' &&
        e.error?.error?.type === 'authentication_error');
  });

  test('errors are in Anthropic\'s shape: missing max_tokens, unknown model, hosted tool', async () => {
    const post = (body) => stack.api(userKey, 'POST', '/v1/messages', body);
    let r = await post({ model: 'local-model', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 400);
    assert.equal(r.body.type, 'error');
    assert.equal(r.body.error.type, 'invalid_request_error');
    assert.match(r.body.error.message, /max_tokens/);
    r = await post({ model: 'no-such-model', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 404);
    assert.equal(r.body.error.type, 'not_found_error');
    r = await post({ model: 'local-model', max_tokens: 5, tools: [{ type: 'web_search_20250305', name: 'web_search' }], messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /tools\[0\].*hosted tool/);
    r = await post({ model: 'local-model', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'document', source: {} }] }] });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /messages\[0\]\.content\[0\]/);
    r = await post({ model: 'gpt-test', max_tokens: 5, top_k: 3, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /top_k/);
  });

  test('an upstream failure mid-stream is an Anthropic error event', async () => {
    const stream = anthropic(userKey).messages.stream({
      model: 'gpt-test', max_tokens: 64, messages: [{ role: 'user', content: 'cut [[tokens:20]] [[fault:truncate]]' }],
    });
    await assert.rejects(stream.finalMessage(), (e) => /ended the response early|error/i.test(String(e.message)));
  });

  test('the call is metered: usage rows with cost for the caller', async () => {
    const { key } = await stack.makeUserWithKey(tenant.admin_key);
    const m = await anthropic(key).messages.create({ model: 'local-model', max_tokens: 16, messages: [{ role: 'user', content: 'count [[tokens:4]]' }] });
    const cost = (m.usage.input_tokens * 0.5 + m.usage.output_tokens * 1.5) / 1e6;
    await eventually(async () => {
      const u = await stack.api(key, 'GET', '/v1/usage?group_by=model');
      assert.equal(u.status, 200);
      const row = u.body.data.find((x) => x.group === 'local-model');
      assert.ok(row, JSON.stringify(u.body));
      assert.equal(row.requests, 1);
      assert.equal(row.input_tokens, m.usage.input_tokens);
      assert.equal(row.output_tokens, m.usage.output_tokens);
      assert.ok(Math.abs(row.cost_usd - cost) < 1e-9, `cost ${row.cost_usd} vs ${cost}`);
      return true;
    }, { timeoutMs: 3000 });
  });
});

describe('legacy completions (POST /v1/completions)', () => {
  for (const model of ['gpt-test', 'local-model']) {
    test(`completions.create via ${model}: a text_completion with usage`, async () => {
      const c = await stack.openaiClient(userKey).completions.create({ model, prompt: 'Once upon [[tokens:4]]', max_tokens: 10 });
      assert.equal(c.object, 'text_completion');
      assert.match(c.id, /^cmpl-/);
      assert.equal(c.model, model);
      assert.equal(c.choices.length, 1);
      assert.equal(c.choices[0].text.split(' ').length, 4);
      assert.equal(c.choices[0].finish_reason, 'stop');
      assert.equal(c.usage.completion_tokens, 4);
    });

    test(`completions streamed via ${model}: text_completion chunks, usage when asked`, async () => {
      const stream = await stack.openaiClient(userKey).completions.create({
        model, prompt: ['Go on [[tokens:5]]'], stream: true, stream_options: { include_usage: true }, n: 2,
      });
      const text = ['', ''];
      let usage = null;
      for await (const ch of stream) {
        assert.equal(ch.object, 'text_completion');
        for (const c of ch.choices) text[c.index] += c.text;
        if (ch.usage) usage = ch.usage;
      }
      assert.equal(text[0].split(' ').length, 5);
      assert.equal(text[1], text[0]);
      assert.equal(usage.completion_tokens, 10);
    });
  }

  test('what the chat path cannot honour is refused, naming the field', async () => {
    const post = (body) => stack.api(userKey, 'POST', '/v1/completions', { model: 'local-model', ...body });
    for (const [body, param] of [
      [{ prompt: 'x', echo: true }, 'echo'],
      [{ prompt: 'x', suffix: 'y' }, 'suffix'],
      [{ prompt: 'x', logprobs: 3 }, 'logprobs'],
      [{ prompt: 'x', best_of: 3 }, 'best_of'],
      [{ prompt: ['a', 'b'] }, 'prompt'],
      [{ prompt: [1, 2, 3] }, 'prompt'],
      [{}, 'prompt'],
      [{ prompt: 'x', tools: [] }, 'tools'],
    ]) {
      const r = await post(body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.param, param, JSON.stringify(r.body));
    }
  });
});

describe('the mock\'s structured output and ids', () => {
  const schema = {
    type: 'object', additionalProperties: false,
    required: ['city', 'days', 'unit', 'when'],
    properties: {
      city: { type: 'string', minLength: 3 },
      days: { type: 'array', minItems: 2, items: { type: 'object', additionalProperties: false, required: ['temp'], properties: { temp: { type: 'integer', minimum: -40, maximum: 50 } } } },
      unit: { enum: ['C', 'F'] },
      when: { type: 'string', format: 'date' },
    },
  };
  for (const model of ['gpt-test', 'local-model']) {
    test(`chat.completions.parse with a json_schema answers JSON that fits (${model})`, async () => {
      const c = await stack.openaiClient(userKey).chat.completions.parse({
        model, messages: [{ role: 'user', content: 'Weather as JSON' }],
        response_format: { type: 'json_schema', json_schema: { name: 'weather', strict: true, schema } },
      });
      const p = c.choices[0].message.parsed;
      assert.ok(p && typeof p.city === 'string' && p.city.length >= 3, JSON.stringify(p));
      assert.equal(p.days.length, 2);
      assert.ok(Number.isInteger(p.days[0].temp) && p.days[0].temp >= -40 && p.days[0].temp <= 50);
      assert.ok(['C', 'F'].includes(p.unit));
      assert.match(p.when, /^\d{4}-\d{2}-\d{2}$/);
      assert.deepEqual(Object.keys(p).sort(), ['city', 'days', 'unit', 'when']);
    });
  }

  test('completion and tool-call ids are unique per call', async () => {
    const client = stack.openaiClient(userKey);
    const req = { model: 'local-model', messages: [{ role: 'user', content: '[[tool:f {}]]' }], tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }] };
    const [a, b] = await Promise.all([client.chat.completions.create(req), client.chat.completions.create(req)]);
    assert.notEqual(a.id, b.id);
    assert.notEqual(a.choices[0].message.tool_calls[0].id, b.choices[0].message.tool_calls[0].id);
  });
});

describe('structured output helpers against the mock (chat completions mode)', () => {
  test('the ai SDK: generateText with Output.object and openai.chat()', async () => {
    const openai = createOpenAI({ apiKey: userKey, baseURL: stack.brigadeUrl + '/v1' });
    const schema = z.object({ city: z.string().min(2), temp: z.number().int().min(-40).max(50), tags: z.array(z.enum(['sun', 'rain'])).min(1) });
    const r = await generateText({ model: openai.chat('local-model'), output: Output.object({ schema }), prompt: 'Weather in Paris', maxRetries: 0 });
    const o = schema.parse(r.output);
    assert.equal(o.temp, 1);
    assert.deepEqual(o.tags, ['sun']);
  });
});
