// run_chunks.test.mjs — an agent run reads a provider's stream chunks the
// same whether brigade's tree-less scan decides them or leaves them to
// cJSON. The scan (openai_scan.h) decides only strict JSON without an
// escape in a key, without \u0000, without a number over 63 characters;
// anything else goes down the cJSON path of src/runs/model.c. Here a
// provider on loopback streams both kinds in one answer: a tool call whose
// "tool_calls" key is spelled with an escape, content under an escaped
// "content" key, content in a chunk carrying a 70-digit number, and plain
// chunks between them. The run must call the tool, and its reply must be
// every piece in order, decoded as JSON decodes it.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, test } from 'node:test';

import { freePort, useStack } from './lib/harness.mjs';
import { newSession, transcript } from './lib/agents.mjs';

let provider;
after(() => provider?.close());

// Raw chunk texts, written by hand: JSON.stringify would never escape a key.
const ROLE = '{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant"}}]}';
const CALL_ESCAPED_KEY = '{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":' +
  '{"tool_c\\u0061lls":[{"index":0,"id":"call_esc","type":"function","function":{"name":"clock","arguments":"{}"}}]}}]}';
const FINISH = (why) => `{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"${why}"}],` +
  '"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}';
const PLAIN_1 = '{"id":"c2","choices":[{"index":0,"delta":{"role":"assistant","content":"It is "}}]}';
const CONTENT_ESCAPED_KEY = '{"id":"c2","choices":[{"index":0,"delta":{"c\\u006fntent":"n\\u00f6w"}}]}';
const LONG_NUMBER = `{"id":"c2","created":1.${'0'.repeat(68)}1,"choices":[{"index":0,"delta":{"content":", \\"exactly\\""}}]}`;
const PLAIN_2 = '{"id":"c2","choices":[{"index":0,"delta":{"content":"."}}]}';

/** An OpenAI-style streaming provider: asks for the clock with the escaped
 *  tool call, then answers in the mixed chunks once the result is in. */
async function startChunkyProvider() {
  const port = await freePort();
  const requests = [];
  const server = http.createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { text += d; });
    req.on('end', () => {
      const body = JSON.parse(text);
      requests.push(body);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunks = body.messages.at(-1).role === 'tool'
        ? [PLAIN_1, CONTENT_ESCAPED_KEY, LONG_NUMBER, PLAIN_2, FINISH('stop')]
        : [ROLE, CALL_ESCAPED_KEY, FINISH('tool_calls')];
      for (const c of chunks) res.write(`data: ${c}\n\n`);
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}`, requests,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }) };
}

let alice;
const stack = useStack(async () => {
  provider = await startChunkyProvider();
  return {
    extraProviders: [{ name: 'chunky', kind: 'openai', base_url: `${provider.url}/v1`, api_key: 'k' }],
    extraModels: [{ name: 'chunky-model', provider: 'chunky', upstream_model: 'chunky' }],
    extraYaml: [
      'agents:',
      '  - {name: chunky, model: chunky-model, tools: [clock], max_steps: 4}',
    ].join('\n'),
  };
}, async (s) => {
  const tenant = await s.makeTenant();
  alice = await s.makeUserWithKey(tenant.admin_key);
});

describe('stream chunks the scan leaves to cJSON', () => {
  test('an escaped tool_calls key calls the tool; escaped keys and long numbers keep the text in order', async () => {
    // the chunks really are the kinds the test is about: valid JSON that
    // decodes to the names a chunk uses
    assert.ok(JSON.parse(CALL_ESCAPED_KEY).choices[0].delta.tool_calls);
    assert.equal(JSON.parse(CONTENT_ESCAPED_KEY).choices[0].delta.content, 'nöw');
    assert.ok(LONG_NUMBER.match(/created":([0-9.]+)/)[1].length > 63);

    const s = await newSession(stack, alice.key, 'chunky');
    const r = await stack.api(alice.key, 'POST', `/v1/sessions/${s.id}/messages`, { content: 'What time is it?' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.run.status, 'completed', r.text);

    const msgs = (await transcript(stack, alice.key, s.id)).filter((m) => m.run_id === r.body.run.id);
    const ask = msgs.find((m) => m.role === 'assistant' && m.tool_calls);
    assert.ok(ask, JSON.stringify(msgs));
    assert.equal(ask.tool_calls[0].id, 'call_esc');
    assert.equal(ask.tool_calls[0].function.name, 'clock');
    const result = msgs.find((m) => m.role === 'tool');
    assert.equal(result.tool_call_id, 'call_esc');
    const answer = msgs.at(-1);
    assert.equal(answer.role, 'assistant');
    assert.equal(answer.content, 'It is nöw, "exactly".');

    // the second request carried the call and its result back to the provider
    assert.equal(provider.requests.length, 2);
    const sent = provider.requests[1].messages;
    assert.equal(sent.at(-2).tool_calls[0].id, 'call_esc');
    assert.equal(sent.at(-1).role, 'tool');
    assert.equal(sent.at(-1).tool_call_id, 'call_esc');
  });
});
