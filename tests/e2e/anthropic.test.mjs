// anthropic.test.mjs — the `anthropic` provider kind end to end: brigade
// speaks Anthropic's Messages API to mock-llm (/v1/messages) and OpenAI to
// its clients. An agent run with a tool call goes through it (waited for
// and streamed), and so does the gateway's /v1/chat/completions through the
// official openai SDK: text and tool calls, streaming or not, usage and cost
// charged to the user.
//
// This file starts a second mock-llm of its own, since the provider's
// base_url must be known when the config is written.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { Child, eventually, freePort, readResponse, useStack } from './lib/harness.mjs';
import { newSession, postMessage, streamMessage, toolMarker, transcript } from './lib/agents.mjs';

const PRICE_IN = 3.0;
const PRICE_OUT = 15.0;
const UPSTREAM_MODEL = 'claude-mock-sonnet';

let anthMock;
let anthUrl;
after(() => (anthMock ? anthMock.stop() : undefined));

let tenant;
let userKey;
const stack = useStack(async () => {
  const port = await freePort();
  anthMock = new Child('mock-llm (anthropic)', ['mock-llm', '--listen', `127.0.0.1:${port}`]);
  const m = await anthMock.waitFor(/mock-llm listening on (http:\/\/[^\s]+)/);
  anthUrl = m[1].replace(/\/$/, '');
  return {
    extraProviders: [{ name: 'claude', kind: 'anthropic', base_url: `http://127.0.0.1:${port}/v1`, api_key: 'test', timeout_ms: 3000 }],
    extraModels: [{ name: 'claude-test', provider: 'claude', upstream_model: UPSTREAM_MODEL, input_usd_per_mtok: PRICE_IN, output_usd_per_mtok: PRICE_OUT }],
    extraYaml: 'agents:\n  - {name: claude-agent, model: claude-test, tools: [memory], max_steps: 4}\n',
  };
}, async (s) => {
  tenant = await s.makeTenant();
  ({ key: userKey } = await s.makeUserWithKey(tenant.admin_key));
});

const cost = (i, o) => (i * PRICE_IN + o * PRICE_OUT) / 1e6;
const close = (a, b) => Math.abs(a - b) <= Math.max(1e-9, Math.abs(b) * 1e-6);

async function upstreamCount() {
  const r = await readResponse(await fetch(`${anthUrl}/mock/stats`));
  return r.body?.models?.[UPSTREAM_MODEL] ?? 0;
}

describe('agent runs on an anthropic model', () => {
  test('a tool call, waited for: completed, memory written, usage and cost from the Anthropic usage', async () => {
    const { key } = await stack.makeUserWithKey(tenant.admin_key);
    const n0 = await upstreamCount();
    const s = await newSession(stack, key, 'claude-agent');
    const r = await postMessage(stack, key, s.id,
      `Remember. ${toolMarker('memory', { action: 'save', key: 'claude-k', value: 'claude-v' })}`);
    assert.equal(r.status, 200, r.text);
    const { run, message } = r.body;
    assert.equal(run.status, 'completed', r.text);
    assert.equal(run.steps, 2);
    assert.equal(run.tool_calls, 1);
    assert.match(message.content, /Tool memory returned: .*saved.*claude-k/);
    assert.ok(run.usage.input_tokens > 0 && run.usage.output_tokens > 0, JSON.stringify(run.usage));
    assert.ok(close(run.usage.cost_usd, cost(run.usage.input_tokens, run.usage.output_tokens)), JSON.stringify(run.usage));
    assert.equal(await upstreamCount(), n0 + 2, 'two model calls reached the Anthropic endpoint');
    assert.equal((await stack.api(key, 'GET', '/v1/memory/claude-k')).body.value, 'claude-v');
    const t = await transcript(stack, key, s.id);
    assert.deepEqual(t.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant']);
    const call = t[1].tool_calls[0];
    assert.equal(call.function.name, 'memory');
    assert.deepEqual(JSON.parse(call.function.arguments), { action: 'save', key: 'claude-k', value: 'claude-v' });
    assert.equal(t[2].tool_call_id, call.id);
    // The run's usage is the user's usage.
    const row = await eventually(async () => {
      const u = await stack.api(key, 'GET', '/v1/usage?group_by=model');
      return u.body?.data?.find((x) => x.group === 'claude-test');
    });
    assert.equal(row.input_tokens, run.usage.input_tokens);
    assert.equal(row.output_tokens, run.usage.output_tokens);
    assert.ok(close(row.cost_usd, run.usage.cost_usd), `${row.cost_usd} vs ${run.usage.cost_usd}`);
  });

  test('streamed: events in order, deltas add up to the final message', async () => {
    await stack.api(userKey, 'PUT', '/v1/memory/pet', { value: 'a tortoise named Ada' });
    const s = await newSession(stack, userKey, 'claude-agent');
    const res = await streamMessage(stack, userKey, s.id, `Who? ${toolMarker('memory', { action: 'recall', key: 'pet' })}`);
    assert.equal(res.status, 200);
    const seq = res.events.map((e) => e.event);
    assert.deepEqual(seq.slice(0, 3), ['run.started', 'tool.call', 'tool.result'], seq.join(','));
    assert.equal(seq.at(-1), 'run.completed', `${seq.join(',')} ${res.text.slice(-400)}`);
    assert.ok(seq.slice(3, -1).length > 0 && seq.slice(3, -1).every((n) => n === 'message.delta'), seq.join(','));
    const runId = res.events[0].data.run_id;
    for (const e of res.events) assert.equal(e.data.run_id, runId);
    assert.equal(res.events[2].data.ok, true);
    const text = res.events.filter((e) => e.event === 'message.delta').map((e) => e.data.text).join('');
    const done = res.events.at(-1).data;
    assert.equal(text, done.message.content);
    assert.match(text, /tortoise named Ada/);
  });

  test('a faulty Anthropic upstream fails the run cleanly (run.failed, status failed)', async () => {
    const s = await newSession(stack, userKey, 'claude-agent');
    const res = await streamMessage(stack, userKey, s.id, 'Break. [[fault:server_error]]');
    const last = res.events.at(-1);
    assert.equal(last.event, 'run.failed', res.text.slice(-400));
    assert.equal(last.data.status, 'failed');
    assert.ok(last.data.error?.code, JSON.stringify(last.data));
    const t = await transcript(stack, userKey, s.id);
    assert.deepEqual(t.map((m) => m.role), ['user']);
  });
});

describe('the gateway on an anthropic model (openai SDK)', () => {
  test('non-streaming completion: content, finish_reason, usage', async () => {
    const n0 = await upstreamCount();
    const c = await stack.openaiClient(userKey).chat.completions.create({
      model: 'claude-test',
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there. [[tokens:5]]' }],
    });
    assert.equal(c.object, 'chat.completion');
    assert.equal(c.model, 'claude-test');
    assert.equal(c.choices[0].message.role, 'assistant');
    assert.ok(c.choices[0].message.content.length > 0);
    assert.equal(c.choices[0].finish_reason, 'stop');
    assert.equal(c.usage.completion_tokens, 5);
    assert.ok(c.usage.prompt_tokens > 0);
    assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
    assert.equal(await upstreamCount(), n0 + 1);
  });

  test('streaming completion with include_usage', async () => {
    const stream = await stack.openaiClient(userKey).chat.completions.create({
      model: 'claude-test',
      messages: [{ role: 'user', content: 'Stream it. [[tokens:6]]' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = '';
    let parts = 0;
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      const ch = chunk.choices[0];
      if (ch?.delta?.content) { content += ch.delta.content; parts++; }
      if (ch?.finish_reason) finish = ch.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.ok(content.length > 0);
    assert.ok(parts >= 2, `${parts} content chunks`);
    assert.equal(finish, 'stop');
    assert.ok(usage, 'a usage chunk');
    assert.equal(usage.completion_tokens, 6);
    assert.ok(usage.prompt_tokens > 0);
  });

  test('tool calls pass through both ways (non-streaming, then the tool result)', async () => {
    const client = stack.openaiClient(userKey);
    const tools = [{
      type: 'function',
      function: { name: 'lookup', description: 'Look a word up.', parameters: { type: 'object', properties: { word: { type: 'string' } }, required: ['word'] } },
    }];
    const messages = [{ role: 'user', content: `Define it. ${toolMarker('lookup', { word: 'brigade' })}` }];
    const c1 = await client.chat.completions.create({ model: 'claude-test', messages, tools });
    assert.equal(c1.choices[0].finish_reason, 'tool_calls');
    const call = c1.choices[0].message.tool_calls?.[0];
    assert.ok(call, JSON.stringify(c1.choices[0]));
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'lookup');
    assert.deepEqual(JSON.parse(call.function.arguments), { word: 'brigade' });
    assert.match(call.id, /\S/);
    const c2 = await client.chat.completions.create({
      model: 'claude-test',
      tools,
      messages: [...messages, c1.choices[0].message, { role: 'tool', tool_call_id: call.id, content: 'a group of workers' }],
    });
    assert.equal(c2.choices[0].finish_reason, 'stop');
    assert.match(c2.choices[0].message.content, /lookup returned: a group of workers/);
  });

  test('a streamed tool call arrives in OpenAI chunk form', async () => {
    const stream = await stack.openaiClient(userKey).chat.completions.create({
      model: 'claude-test',
      stream: true,
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { word: { type: 'string' } } } } }],
      messages: [{ role: 'user', content: `Define. ${toolMarker('lookup', { word: 'gateway', n: [1, 2] })}` }],
    });
    let name = '';
    let args = '';
    let id = '';
    let finish = null;
    for await (const chunk of stream) {
      const ch = chunk.choices[0];
      for (const tc of ch?.delta?.tool_calls || []) {
        assert.equal(tc.index, 0);
        if (tc.id) id = tc.id;
        if (tc.function?.name) name += tc.function.name;
        if (tc.function?.arguments) args += tc.function.arguments;
      }
      if (ch?.finish_reason) finish = ch.finish_reason;
    }
    assert.equal(finish, 'tool_calls');
    assert.equal(name, 'lookup');
    assert.match(id, /\S/);
    assert.deepEqual(JSON.parse(args), { word: 'gateway', n: [1, 2] });
  });

  test('an Anthropic error surfaces as an OpenAI error (429 with Retry-After)', async () => {
    const r = await stack.api(userKey, 'POST', '/v1/chat/completions', {
      model: 'claude-test', messages: [{ role: 'user', content: 'Busy? [[fault:rate_limit]]' }],
    });
    assert.equal(r.status, 429, r.text);
    assert.equal(r.body.error.type, 'rate_limit_error');
    assert.ok(r.headers.get('retry-after'), 'Retry-After is passed on');
  });
});
