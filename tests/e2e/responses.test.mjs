// responses.test.mjs — POST /v1/responses end to end, with the client
// libraries in their default modes, unchanged but for base URL and key:
// the official openai SDK (responses.create, streamed, with tools and
// previous_response_id; retrieve and delete), @openai/agents (its default
// model is the Responses one), the `ai` SDK's openai() (also Responses),
// and LangChain's ChatOpenAI with useResponsesApi. A capturing upstream
// shows what the translation sends to a chat-completions provider.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, test } from 'node:test';

import { Agent, OpenAIProvider, Runner, setTracingDisabled, tool as agentTool } from '@openai/agents';
import { createOpenAI } from '@ai-sdk/openai';
import { ChatOpenAI } from '@langchain/openai';
import { generateObject, generateText, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';

import { errorOf, freePort, useStack } from './lib/harness.mjs';

// The agents SDK exports its traces to OpenAI unless told not to.
setTracingDisabled(true);

const captured = [];
let captureServer;
let capturePort;

// A chat-completions upstream that records what it is sent and answers
// with one fixed reply (streamed when asked).
async function startCaptureServer() {
  capturePort = await freePort();
  captureServer = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const json = JSON.parse(body);
      captured.push({ url: req.url, body: json });
      const created = Math.floor(Date.now() / 1000);
      if (json.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const base = { id: 'chatcmpl-cap', object: 'chat.completion.chunk', created, model: json.model };
        res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: 'cap' }, finish_reason: null }] })}\n\n`);
        res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: 'tured' }, finish_reason: 'stop' }] })}\n\n`);
        res.write(`data: ${JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 } })}\n\n`);
        res.end('data: [DONE]\n\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        id: 'chatcmpl-cap', object: 'chat.completion', created, model: json.model,
        choices: [{ index: 0, message: { role: 'assistant', content: 'captured' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 7, completion_tokens: 1, total_tokens: 8 },
      }));
    });
  });
  await new Promise((r) => captureServer.listen(capturePort, '127.0.0.1', r));
}
after(() => new Promise((r) => (captureServer ? captureServer.close(r) : r())));

const stack = useStack(async () => {
  await startCaptureServer();
  return {
    extraProviders: [
      { name: 'capture', kind: 'openai', base_url: `http://127.0.0.1:${capturePort}/v1`, api_key: 'capture-secret', timeout_ms: 2000 },
      { name: 'claude', kind: 'anthropic', base_url: '{mock}/v1', api_key: 'test', timeout_ms: 3000 },
    ],
    extraModels: [
      { name: 'capture-model', provider: 'capture', upstream_model: 'real-upstream-name', input_usd_per_mtok: 1.0, output_usd_per_mtok: 1.0, max_output_tokens: 4096 },
      { name: 'claude-test', provider: 'claude', upstream_model: 'claude-mock-sonnet', input_usd_per_mtok: 3.0, output_usd_per_mtok: 15.0 },
    ],
  };
}, async (s) => {
  s.tenant = await s.makeTenant();
  s.user = await s.makeUserWithKey(s.tenant.admin_key);
});

const weatherTool = { type: 'function', name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
const weatherAsk = 'What is the weather? [[tool:get_weather {"city":"Paris"}]]';

describe('the openai SDK: responses.create', () => {
  test('a string input: a completed Response with a message, usage, resp_/msg_ ids, and the call charged', async () => {
    const c = stack.openaiClient(stack.user.key);
    const r = await c.responses.create({ model: 'local-model', input: 'Say something', instructions: 'Be brief.', metadata: { ticket: 'T-1' } });
    assert.match(r.id, /^resp_[0-9a-f]{24}$/);
    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.equal(r.model, 'local-model');
    assert.equal(r.instructions, 'Be brief.');
    assert.deepEqual(r.metadata, { ticket: 'T-1' });
    assert.equal(r.output.length, 1);
    assert.equal(r.output[0].type, 'message');
    assert.match(r.output[0].id, /^msg_/);
    assert.equal(r.output[0].role, 'assistant');
    assert.equal(r.output[0].content[0].type, 'output_text');
    assert.ok(r.output_text.length > 0);
    assert.ok(r.usage.input_tokens > 0 && r.usage.output_tokens > 0);
    assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
    const raw = await stack.api(stack.user.key, 'POST', '/v1/responses', { model: 'gpt-test', input: 'x', store: false });
    assert.equal(raw.headers.get('x-brigade-model'), 'gpt-test');
    assert.match(raw.headers.get('x-brigade-deployment'), /upstream-mock/);
    const usage = stack.must(await stack.api(stack.user.key, 'GET', '/v1/usage?group_by=model'), 200, 'usage');
    const row = usage.data.find((x) => x.group === 'local-model');
    assert.ok(row && row.requests >= 1 && row.cost_usd > 0, JSON.stringify(usage.data));
  });

  test('streamed: the event sequence the SDK parses, sequence numbers in order, the final Response', async () => {
    const c = stack.openaiClient(stack.user.key);
    const stream = await c.responses.create({ model: 'gpt-test', input: 'Stream please [[tokens:5]]', stream: true });
    const events = [];
    for await (const ev of stream) events.push(ev);
    const types = events.map((e) => e.type);
    assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
    assert.equal(types.filter((t) => t === 'response.output_text.delta').length, 5);
    events.forEach((e, i) => assert.equal(e.sequence_number, i));
    const done = events.at(-1).response;
    const text = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
    assert.equal(done.status, 'completed');
    assert.equal(done.output[0].content[0].text, text);
    assert.equal(done.usage.output_tokens, 5);
    // the SDK's own stream helper assembles the same Response
    const s2 = c.responses.stream({ model: 'local-model', input: 'again [[tokens:3]]' });
    const final = await s2.finalResponse();
    assert.equal(final.output[0].content[0].text.split(' ').length, 3);
  });

  test('a function tool: a function_call item with call_id, then its output continues the conversation', async () => {
    const c = stack.openaiClient(stack.user.key);
    const r1 = await c.responses.create({ model: 'local-model', input: weatherAsk, tools: [weatherTool] });
    const call = r1.output.find((o) => o.type === 'function_call');
    assert.ok(call, JSON.stringify(r1.output));
    assert.match(call.id, /^fc_/);
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
    assert.ok(call.call_id);
    const r2 = await c.responses.create({
      model: 'local-model', previous_response_id: r1.id, tools: [weatherTool],
      input: [{ type: 'function_call_output', call_id: call.call_id, output: 'sunny, 21 C' }],
    });
    assert.equal(r2.previous_response_id, r1.id);
    assert.match(r2.output_text, /get_weather returned: sunny, 21 C/);
    // streamed, the call arrives as function_call_arguments events
    const stream = await c.responses.create({ model: 'gpt-test', input: weatherAsk, tools: [weatherTool], stream: true });
    const events = [];
    for await (const ev of stream) events.push(ev);
    const added = events.find((e) => e.type === 'response.output_item.added');
    assert.equal(added.item.type, 'function_call');
    const args = events.filter((e) => e.type === 'response.function_call_arguments.delta').map((e) => e.delta).join('');
    assert.deepEqual(JSON.parse(args), { city: 'Paris' });
    const argsDone = events.find((e) => e.type === 'response.function_call_arguments.done');
    assert.equal(argsDone.arguments, args);
    assert.equal(events.at(-1).response.output[0].call_id, added.item.call_id);
  });

  test('previous_response_id: the earlier turns are sent again; retrieve and delete', async () => {
    const c = stack.openaiClient(stack.user.key);
    const r1 = await c.responses.create({ model: 'local-model', input: 'first turn' });
    const r2 = await c.responses.create({ model: 'local-model', input: 'second turn', previous_response_id: r1.id });
    const alone = await c.responses.create({ model: 'local-model', input: 'second turn', store: false });
    // the mock counts prompt tokens per message: turn one's two messages are in r2's prompt
    assert.ok(r2.usage.input_tokens > alone.usage.input_tokens, `${r2.usage.input_tokens} vs ${alone.usage.input_tokens}`);
    const got = await c.responses.retrieve(r2.id);
    assert.equal(got.id, r2.id);
    assert.equal(got.output_text, r2.output_text);
    await c.responses.delete(r1.id);
    const gone = await stack.api(stack.user.key, 'GET', `/v1/responses/${r1.id}`);
    assert.equal(gone.status, 404);
    // a conversation whose earlier response was deleted cannot go on
    const broken = await stack.api(stack.user.key, 'POST', '/v1/responses', { model: 'local-model', input: 'third', previous_response_id: r2.id });
    assert.equal(broken.status, 404);
    assert.equal(errorOf(broken).param, 'previous_response_id');
    // store: false is not kept
    assert.equal((await stack.api(stack.user.key, 'GET', `/v1/responses/${alone.id}`)).status, 404);
  });

  test('max_output_tokens cuts the answer: status incomplete, reason max_output_tokens', async () => {
    const c = stack.openaiClient(stack.user.key);
    const r = await c.responses.create({ model: 'local-model', input: 'long [[tokens:40]]', max_output_tokens: 5 });
    assert.equal(r.status, 'incomplete');
    assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
    assert.equal(r.usage.output_tokens, 5);
    const s = await c.responses.create({ model: 'local-model', input: 'long [[tokens:40]]', max_output_tokens: 5, stream: true });
    let last;
    for await (const ev of s) last = ev;
    assert.equal(last.type, 'response.incomplete');
  });

  test('a provider failure: an SDK error before the stream, error and response.failed events within it', async () => {
    const c = stack.openaiClient(stack.user.key);
    await assert.rejects(c.responses.create({ model: 'gpt-test', input: 'x [[fault:server_error]]' }), (e) => e.status === 502);
    const s = await c.responses.create({ model: 'gpt-test', input: 'x [[tokens:20]] [[fault:truncate]]', stream: true });
    const types = [];
    for await (const ev of s) types.push(ev.type);
    assert.equal(types[0], 'response.created');
    assert.deepEqual(types.slice(-2), ['error', 'response.failed']);
    assert.ok(types.includes('response.output_text.delta'));
  });

  test('the translation: what a chat-completions provider is sent', async () => {
    const c = stack.openaiClient(stack.user.key);
    captured.length = 0;
    const r = await c.responses.create({
      model: 'capture-model', instructions: 'You are terse.',
      input: [
        { role: 'developer', content: 'Answer in French.' },
        { role: 'user', content: [{ type: 'input_text', text: 'Bonjour' }] },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Salut', annotations: [] }] },
        { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Lyon"}' },
        { type: 'function_call_output', call_id: 'call_1', output: 'rain' },
        { role: 'user', content: 'Et demain ?' },
      ],
      tools: [weatherTool], tool_choice: 'auto', parallel_tool_calls: false,
      text: { format: { type: 'json_schema', name: 'answer', schema: { type: 'object', properties: { a: { type: 'string' } } }, strict: true } },
      max_output_tokens: 100, temperature: 0.2, top_p: 0.9, reasoning: { effort: 'low' },
      metadata: { secret_tag: 'kept-here' }, store: false,
    });
    assert.equal(r.output_text, 'captured');
    assert.equal(captured.length, 1);
    const sent = captured[0].body;
    assert.equal(captured[0].url, '/v1/chat/completions');
    assert.equal(sent.model, 'real-upstream-name');
    assert.deepEqual(sent.messages, [
      { role: 'system', content: 'You are terse.' },
      { role: 'system', content: 'Answer in French.' },
      { role: 'user', content: [{ type: 'text', text: 'Bonjour' }] },
      { role: 'assistant', content: 'Salut', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Lyon"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'rain' },
      { role: 'user', content: 'Et demain ?' },
    ]);
    assert.deepEqual(sent.tools, [{ type: 'function', function: { name: 'get_weather', description: 'The weather in a city', parameters: weatherTool.parameters } }]);
    assert.equal(sent.tool_choice, 'auto');
    assert.equal(sent.parallel_tool_calls, false);
    assert.deepEqual(sent.response_format, { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object', properties: { a: { type: 'string' } } }, strict: true } });
    assert.equal(sent.max_completion_tokens, 100);
    assert.equal(sent.temperature, 0.2);
    assert.equal(sent.top_p, 0.9);
    assert.equal(sent.reasoning_effort, 'low');
    assert.ok(!JSON.stringify(sent).includes('kept-here'), 'metadata stays with brigade');
    // without a cap the model's cap is sent (the reservation is priced on it)
    captured.length = 0;
    await c.responses.create({ model: 'capture-model', input: 'hi', store: false });
    assert.equal(captured[0].body.max_completion_tokens, 4096);
  });

  test('an Anthropic provider: Responses → chat → Messages, tools and streaming', async () => {
    const c = stack.openaiClient(stack.user.key);
    const r1 = await c.responses.create({ model: 'claude-test', input: weatherAsk, tools: [weatherTool] });
    const call = r1.output.find((o) => o.type === 'function_call');
    assert.ok(call, JSON.stringify(r1.output));
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
    const r2 = await c.responses.create({
      model: 'claude-test', previous_response_id: r1.id, tools: [weatherTool],
      input: [{ type: 'function_call_output', call_id: call.call_id, output: 'windy' }],
    });
    assert.match(r2.output_text, /get_weather returned: windy/);
    const s = await c.responses.create({ model: 'claude-test', input: 'Stream [[tokens:3]]', stream: true });
    let text = '';
    let last;
    for await (const ev of s) {
      if (ev.type === 'response.output_text.delta') text += ev.delta;
      last = ev;
    }
    assert.equal(text, 'alpha bravo charlie');
    assert.equal(last.type, 'response.completed');
    assert.equal(last.response.usage.output_tokens, 3);
  });

  test('what cannot be translated is refused with 400 naming the field', async () => {
    const k = stack.user.key;
    const post = (b) => stack.api(k, 'POST', '/v1/responses', { model: 'local-model', input: 'x', ...b });
    const cases = [
      [{ tools: [{ type: 'web_search' }] }, 'tools[0].type', /web_search/],
      [{ tools: [weatherTool, { type: 'file_search', vector_store_ids: ['vs_1'] }] }, 'tools[1].type', /file_search/],
      [{ tools: [{ type: 'computer_use_preview', display_width: 1, display_height: 1, environment: 'linux' }] }, 'tools[0].type', /computer_use_preview/],
      [{ background: true }, 'background', /background/],
      [{ conversation: 'conv_1' }, 'conversation', /conversation/],
      [{ input: [{ type: 'item_reference', id: 'msg_1' }] }, 'input[0]', /item_reference/],
      [{ input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'f' }] }] }, 'input[0].content[0]', /input_file/],
      [{ made_up_field: 1 }, 'made_up_field', /unknown parameter/],
      [{ text: { format: { type: 'yaml' } } }, 'text.format.type', /json_schema/],
      [{ max_output_tokens: 0 }, 'max_output_tokens', /positive/],
    ];
    for (const [body, param, message] of cases) {
      const r = await post(body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      const e = errorOf(r);
      assert.equal(e.type, 'invalid_request_error');
      assert.equal(e.param, param, JSON.stringify(body));
      assert.match(e.message, message);
    }
    const none = await stack.api(k, 'POST', '/v1/responses', { model: 'nope', input: 'x' });
    assert.equal(none.status, 404);
    assert.equal(errorOf(none).code, 'model_not_found');
  });
});

describe('@openai/agents in its default (Responses) mode', () => {
  const runner = () => new Runner({ modelProvider: new OpenAIProvider({ apiKey: stack.user.key, baseURL: stack.brigadeUrl + '/v1' }) });
  const getWeather = () => agentTool({
    name: 'get_weather', description: 'The weather in a city', parameters: z.object({ city: z.string() }),
    execute: async ({ city }) => `sunny in ${city}`,
  });

  test('an agent with a function tool, not streamed and streamed', async () => {
    const agent = new Agent({ name: 'weather', instructions: 'Answer about the weather.', model: 'local-model', tools: [getWeather()] });
    const r = await runner().run(agent, weatherAsk);
    assert.equal(r.finalOutput, 'Tool get_weather returned: sunny in Paris');
    const s = await runner().run(agent, weatherAsk, { stream: true });
    let deltas = '';
    for await (const ev of s) {
      if (ev.type === 'raw_model_stream_event' && ev.data.type === 'output_text_delta') deltas += ev.data.delta;
    }
    await s.completed;
    assert.equal(s.finalOutput, 'Tool get_weather returned: sunny in Paris');
    assert.equal(deltas, s.finalOutput);
  });

  test('an agent with structured output', async () => {
    const agent = new Agent({ name: 'city', instructions: 'Name a city.', model: 'local-model', outputType: z.object({ name: z.string() }) });
    const r = await runner().run(agent, 'A city, please');
    assert.equal(typeof r.finalOutput.name, 'string');
    const s = await runner().run(agent, 'A city, please', { stream: true });
    for await (const ev of s) { /* drain */ }   // eslint-disable-line no-unused-vars
    await s.completed;
    assert.equal(typeof s.finalOutput.name, 'string');
  });
});

describe('the ai SDK: openai() (Responses)', () => {
  const provider = () => createOpenAI({ apiKey: stack.user.key, baseURL: stack.brigadeUrl + '/v1' });

  test('generateText with a tool runs the tool loop', async () => {
    const r = await generateText({
      model: provider()('local-model'), prompt: weatherAsk, stopWhen: stepCountIs(3),
      tools: { get_weather: tool({ description: 'The weather in a city', inputSchema: z.object({ city: z.string() }), execute: async ({ city }) => `cloudy in ${city}` }) },
    });
    assert.equal(r.steps.length, 2);
    assert.equal(r.steps[0].toolCalls[0].toolName, 'get_weather');
    assert.equal(r.text, 'Tool get_weather returned: cloudy in Paris');
    assert.ok(r.totalUsage.inputTokens > 0);
  });

  test('streamText', async () => {
    const s = streamText({ model: provider()('gpt-test'), prompt: 'Stream [[tokens:4]]' });
    let text = '';
    for await (const d of s.textStream) text += d;
    assert.equal(text.split(' ').length, 4);
    assert.equal((await s.usage).outputTokens, 4);
  });

  test('generateObject', async () => {
    const r = await generateObject({ model: provider()('local-model'), schema: z.object({ name: z.string() }), prompt: 'A city' });
    assert.equal(typeof r.object.name, 'string');
  });
});

describe('LangChain ChatOpenAI with useResponsesApi', () => {
  const llm = () => new ChatOpenAI({ model: 'local-model', apiKey: stack.user.key, configuration: { baseURL: stack.brigadeUrl + '/v1' }, useResponsesApi: true, maxRetries: 0 });

  test('invoke, tools and stream', async () => {
    const m = await llm().invoke('Hello [[tokens:3]]');
    assert.equal(m.text, 'alpha bravo charlie');
    assert.equal(m.usage_metadata.output_tokens, 3);
    const withTools = llm().bindTools([{ type: 'function', function: { name: 'get_weather', description: 'w', parameters: weatherTool.parameters } }]);
    const m2 = await withTools.invoke(weatherAsk);
    assert.equal(m2.tool_calls.length, 1);
    assert.deepEqual(m2.tool_calls[0].args, { city: 'Paris' });
    let text = '';
    for await (const chunk of await llm().stream('Hi [[tokens:4]]')) text += chunk.text;
    assert.equal(text, 'alpha bravo charlie delta');
  });
});
