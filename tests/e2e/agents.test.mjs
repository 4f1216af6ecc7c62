// agents.test.mjs — agents, sessions and runs end to end: the agents a user
// may use, sessions and their transcripts, a message that starts a run
// (waited for, or streamed as Server-Sent Events in order), tool calls
// through the mock model's [[tool:…]] marker (the built-in memory tool and a
// declared HTTP tool served by this file on loopback, with its arguments
// validated against the schema), a session that is busy (reject, enqueue,
// interrupt), cancelling a run, and a client that goes away mid-stream.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { errorOf, eventually, sleep, useStack } from './lib/harness.mjs';
import {
  halfTurns, newSession, openStream, postMessage, startToolServer, ToolReply, streamMessage, toolMarker, transcript,
} from './lib/agents.mjs';

let toolServer;
after(() => (toolServer ? toolServer.close() : undefined));

let tenant;
let userKey;      // default tier
let otherKey;     // another user of the same tenant
let goldKey;      // gold tier
const stack = useStack(async () => {
  toolServer = await startToolServer((req) => {
    if (req.url.startsWith('/broken')) return new ToolReply(500, { oops: 'tool server failure' });
    if (req.url.startsWith('/slow')) return new ToolReply(200, { late: true }, 2500);
    if (req.url.startsWith('/big')) return { blob: 'x'.repeat(5000) };
    if (req.method === 'GET') return { got: req.url };
    return { forecast: `sunny in ${req.body?.city}` };
  });
  return {
    extraYaml: [
      'tools:',
      '  - name: weather',
      '    description: Current weather for a city.',
      `    url: "${toolServer.url}/weather"`,
      '    allow_private_networks: true',
      '    method: POST',
      '    timeout_ms: 2000',
      '    parameters: {type: object, properties: {city: {type: string}}, required: [city]}',
      '  - name: forecast',
      `    url: "${toolServer.url}/forecast/{city}"`,
      '    allow_private_networks: true',
      '    method: GET',
      '    headers: {X-Tool-Token: "${TOOL_TOKEN}"}',
      '    parameters: {type: object, properties: {city: {type: string}, days: {type: integer, minimum: 1, maximum: 7}}, required: [city]}',
      `  - {name: broken, url: "${toolServer.url}/broken", allow_private_networks: true}`,
      `  - {name: slow, url: "${toolServer.url}/slow", timeout_ms: 500, allow_private_networks: true}`,
      `  - {name: big, url: "${toolServer.url}/big", max_response_bytes: 1000, allow_private_networks: true}`,
      'agents:',
      '  - {name: helper, description: "Remembers things.", model: local-model, tools: [memory, clock, weather], max_steps: 4}',
      '  - {name: remote, model: gpt-test, tools: [memory]}',
      '  - {name: plain, model: local-model, tools: [memory]}',
      '  - {name: toolbox, model: local-model, tools: [forecast, broken, slow, big]}',
      '  - {name: gold-only, model: local-model, tiers: [gold]}',
      '  - {name: one-step, model: local-model, tools: [memory], max_steps: 1}',
      '  - {name: no-tools, model: local-model, tools: [memory], max_tool_calls: 0}',
      '  - {name: hasty, model: local-model, max_wall_ms: 1000}',
    ].join('\n'),
    env: { TOOL_TOKEN: 'tool-token-123' },
  };
}, async (s) => {
  tenant = await s.makeTenant();
  ({ key: userKey } = await s.makeUserWithKey(tenant.admin_key));
  ({ key: otherKey } = await s.makeUserWithKey(tenant.admin_key));
  ({ key: goldKey } = await s.makeUserWithKey(tenant.admin_key, s.unique('gold'), { tier: 'gold' }));
});

const names = (events) => events.map((e) => e.event);

function assertRunShape(run, { status = 'completed' } = {}) {
  assert.equal(run.object, 'run');
  assert.match(run.id, /^\S+$/);
  assert.equal(run.status, status, `run status: ${JSON.stringify(run)}`);
  assert.equal(typeof run.usage.input_tokens, 'number');
  assert.equal(typeof run.usage.output_tokens, 'number');
  assert.equal(typeof run.usage.cost_usd, 'number');
  assert.equal(typeof run.steps, 'number');
  assert.equal(typeof run.tool_calls, 'number');
}

describe('agents', () => {
  test('GET /v1/agents lists the configured agents a default-tier user may use', async () => {
    const r = await stack.api(userKey, 'GET', '/v1/agents');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.object, 'list');
    const byId = Object.fromEntries(r.body.data.map((a) => [a.id, a]));
    assert.deepEqual(Object.keys(byId).sort(), ['hasty', 'helper', 'no-tools', 'one-step', 'plain', 'remote', 'toolbox'],
      'gold-only must be hidden from the default tier; the embedded assistant is replaced');
    const h = byId.helper;
    assert.equal(h.object, 'agent');
    assert.equal(h.description, 'Remembers things.');
    assert.equal(h.model, 'local-model');
    assert.deepEqual(h.tools, ['memory', 'clock', 'weather']);
    assert.equal(h.limits.max_steps, 4);
    assert.equal(byId.remote.model, 'gpt-test');
    assert.deepEqual(byId.remote.tools, ['memory']);
    assert.equal(byId.remote.limits.max_steps, 8, 'the default max_steps');
  });

  test('a gold-tier user also sees the gold-only agent', async () => {
    const r = await stack.api(goldKey, 'GET', '/v1/agents');
    assert.equal(r.status, 200, r.text);
    const ids = r.body.data.map((a) => a.id).sort();
    assert.deepEqual(ids, ['gold-only', 'hasty', 'helper', 'no-tools', 'one-step', 'plain', 'remote', 'toolbox']);
  });

  test('GET /v1/agents needs a user or tenant admin credential (the admin sees the definitions)', async () => {
    assert.equal((await stack.api(null, 'GET', '/v1/agents')).status, 401);
    const r = await stack.api(stack.adminToken, 'GET', '/v1/agents');
    assert.equal(r.status, 403, r.text);
    assert.equal(errorOf(r).type, 'permission_error');
    const adm = await stack.api(tenant.admin_key, 'GET', '/v1/agents');
    assert.equal(adm.status, 200, adm.text);
    const gold = adm.body.data.find((a) => a.id === 'gold-only');
    assert.equal(gold.source, 'catalogue');
    assert.equal(gold.available, true);
  });
});

describe('sessions', () => {
  test('POST /v1/sessions creates a session; GET reads it back; it is listed', async () => {
    const r = await stack.api(userKey, 'POST', '/v1/sessions', { agent: 'helper', metadata: { topic: 'e2e', n: 3 } });
    assert.equal(r.status, 201, r.text);
    const s = r.body;
    assert.equal(s.object, 'session');
    assert.equal(s.agent, 'helper');
    assert.deepEqual(s.metadata, { topic: 'e2e', n: 3 });
    assert.equal(s.message_count, 0);
    assert.equal(typeof s.created_at, 'number');
    assert.equal(typeof s.updated_at, 'number');
    const g = await stack.api(userKey, 'GET', `/v1/sessions/${s.id}`);
    assert.equal(g.status, 200, g.text);
    assert.deepEqual(g.body, s);
    const l = await stack.api(userKey, 'GET', '/v1/sessions?limit=100');
    assert.equal(l.status, 200, l.text);
    assert.ok(l.body.data.some((x) => x.id === s.id), 'the new session is listed');
    const empty = await stack.api(userKey, 'GET', `/v1/sessions/${s.id}/messages`);
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.body.data, []);
  });

  test('unknown agent → 400 unknown_agent naming param agent; missing agent → 400', async () => {
    const r = await stack.api(userKey, 'POST', '/v1/sessions', { agent: 'no-such-agent' });
    assert.equal(r.status, 400, r.text);
    const e = errorOf(r);
    assert.equal(e.type, 'invalid_request_error');
    assert.equal(e.code, 'unknown_agent');
    assert.equal(e.param, 'agent');
    const m = await stack.api(userKey, 'POST', '/v1/sessions', {});
    assert.equal(m.status, 400, m.text);
    assert.equal(errorOf(m).param, 'agent');
    const bad = await stack.api(userKey, 'POST', '/v1/sessions', { agent: 'helper', metadata: 'x' });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(errorOf(bad).param, 'metadata');
  });

  test('an agent not allowed for the user\'s tier → 403; the gold user may', async () => {
    const r = await stack.api(userKey, 'POST', '/v1/sessions', { agent: 'gold-only' });
    assert.equal(r.status, 403, r.text);
    assert.equal(errorOf(r).type, 'permission_error');
    const g = await stack.api(goldKey, 'POST', '/v1/sessions', { agent: 'gold-only' });
    assert.equal(g.status, 201, g.text);
    const m = await postMessage(stack, goldKey, g.body.id, 'hello [[tokens:3]]');
    assert.equal(m.status, 200, m.text);
    assert.equal(m.body.run.status, 'completed');
  });

  test('another user\'s session is not found (GET, transcript, post, delete)', async () => {
    const s = await newSession(stack, userKey, 'helper');
    await postMessage(stack, userKey, s.id, 'mine [[tokens:2]]');
    for (const [method, path, body] of [
      ['GET', `/v1/sessions/${s.id}`],
      ['GET', `/v1/sessions/${s.id}/messages`],
      ['POST', `/v1/sessions/${s.id}/messages`, { content: 'hijack' }],
      ['DELETE', `/v1/sessions/${s.id}`],
    ]) {
      const r = await stack.api(otherKey, method, path, body);
      assert.equal(r.status, 404, `${method} ${path} as another user: ${r.status} ${r.text}`);
      assert.equal(errorOf(r).type, 'not_found_error');
    }
    const l = await stack.api(otherKey, 'GET', '/v1/sessions?limit=100');
    assert.ok(!l.body.data.some((x) => x.id === s.id), 'another user\'s session is not listed');
    // Still intact for its owner.
    const t = await transcript(stack, userKey, s.id);
    assert.equal(t.length, 2);
  });

  test("another user's message cannot claim, queue on or interrupt a session's run", async () => {
    // The session is checked to be the caller's before it is claimed (the
    // run start reads it in a snapshot of its own, runs/start.c): a post to
    // someone else's busy session is "not found", never "busy", and does
    // nothing to the run in flight.
    const s = await newSession(stack, userKey, 'helper');
    const first = openStream(stack, userKey, s.id, 'mine, slowly [[latency:800]] [[tokens:2]]');
    await first.next('run.started');
    for (const if_busy of ['reject', 'enqueue', 'interrupt']) {
      const r = await stack.api(otherKey, 'POST', `/v1/sessions/${s.id}/messages`, { content: 'hijack', if_busy });
      assert.equal(r.status, 404, `if_busy ${if_busy} as another user: ${r.status} ${r.text}`);
    }
    const res = await first.done;
    assert.ok(res.events.some((e) => e.event === 'run.completed'), JSON.stringify(res.events.map((e) => e.event)));
    const t = await transcript(stack, userKey, s.id);
    assert.deepEqual(t.map((m) => m.role), ['user', 'assistant']);
    assert.ok(!t.some((m) => m.content === 'hijack'));
  });

  test('DELETE /v1/sessions/{id} removes it', async () => {
    const s = await newSession(stack, userKey, 'plain');
    const d = await stack.api(userKey, 'DELETE', `/v1/sessions/${s.id}`);
    assert.equal(d.status, 200, d.text);
    assert.equal(d.body.deleted, true);
    assert.equal((await stack.api(userKey, 'GET', `/v1/sessions/${s.id}`)).status, 404);
    assert.equal((await postMessage(stack, userKey, s.id, 'hi')).status, 404);
  });
});

describe('runs', () => {
  test('a message with a memory tool call, waited for: run, final message, transcript in order', async () => {
    const s = await newSession(stack, userKey, 'helper');
    const content = `Remember this. ${toolMarker('memory', { action: 'save', key: 'colour', value: 'teal' })}`;
    const r = await postMessage(stack, userKey, s.id, content);
    assert.equal(r.status, 200, r.text);
    const { run, message } = r.body;
    assertRunShape(run);
    assert.equal(run.session_id, s.id);
    assert.equal(run.agent, 'helper');
    assert.equal(run.steps, 2, 'a model call that asks for the tool, one that answers');
    assert.equal(run.tool_calls, 1);
    assert.ok(run.usage.input_tokens > 0 && run.usage.output_tokens > 0, JSON.stringify(run.usage));
    // local-model: 0.5 / 1.5 USD per Mtok.
    const cost = (run.usage.input_tokens * 0.5 + run.usage.output_tokens * 1.5) / 1e6;
    assert.ok(Math.abs(run.usage.cost_usd - cost) < 1e-9, `cost ${run.usage.cost_usd} vs ${cost}`);
    assert.equal(message.role, 'assistant');
    assert.match(message.content, /Tool memory returned: .*saved.*colour/);

    const t = await transcript(stack, userKey, s.id);
    assert.deepEqual(t.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant']);
    assert.equal(t[0].content, content);
    assert.equal(t[1].tool_calls.length, 1);
    const call = t[1].tool_calls[0];
    assert.equal(call.function.name, 'memory');
    assert.deepEqual(JSON.parse(call.function.arguments), { action: 'save', key: 'colour', value: 'teal' });
    assert.equal(t[2].tool_call_id, call.id);
    assert.equal(t[3].content, message.content);
    assert.equal(message.run_id, run.id);
    for (const m of t) assert.equal(m.run_id, run.id, `seq ${m.seq} run_id`);
    const seqs = t.map((m) => m.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'transcript in seq order');
    assert.equal(new Set(seqs).size, seqs.length, 'seqs unique');

    const g = await stack.api(userKey, 'GET', `/v1/runs/${run.id}`);
    assert.equal(g.status, 200, g.text);
    assert.equal(g.body.status, 'completed');
    assert.deepEqual(g.body.usage, run.usage);
    assert.equal(g.body.steps, 2);
    const sess = await stack.api(userKey, 'GET', `/v1/sessions/${s.id}`);
    assert.equal(sess.body.message_count, 4);
    // The tool really wrote the user's memory.
    const mem = await stack.api(userKey, 'GET', '/v1/memory/colour');
    assert.equal(mem.status, 200, mem.text);
    assert.equal(mem.body.value, 'teal');
    // Last, so the checks above run even while this one fails.
    assert.equal(message.seq, t[3].seq, 'the returned message carries its transcript seq');
  });

  test('streamed: run.started, tool.call, tool.result, message.delta…, run.completed, in order', async () => {
    const s = await newSession(stack, userKey, 'helper');
    await stack.api(userKey, 'PUT', '/v1/memory/city', { value: 'Lisbon' });
    const res = await streamMessage(stack, userKey, s.id, `Where? ${toolMarker('memory', { action: 'recall', key: 'city' })}`);
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /^text\/event-stream/);
    const ev = res.events;
    const seq = names(ev);
    assert.equal(seq[0], 'run.started', seq.join(','));
    assert.equal(seq[1], 'tool.call', seq.join(','));
    assert.equal(seq[2], 'tool.result', seq.join(','));
    assert.equal(seq[seq.length - 1], 'run.completed', seq.join(','));
    const middle = seq.slice(3, -1);
    assert.ok(middle.length >= 1 && middle.every((n) => n === 'message.delta'), seq.join(','));
    const runId = ev[0].data.run_id;
    assert.match(runId, /^\S+$/);
    for (const e of ev) assert.equal(e.data.run_id, runId, `${e.event} carries the run id`);
    const call = ev[1].data;
    assert.equal(call.name, 'memory');
    assert.deepEqual(JSON.parse(call.arguments), { action: 'recall', key: 'city' });
    assert.equal(ev[2].data.id, call.id);
    assert.equal(ev[2].data.ok, true);
    assert.match(ev[2].data.preview, /Lisbon/);
    const text = ev.filter((e) => e.event === 'message.delta').map((e) => e.data.text).join('');
    const done = ev[ev.length - 1].data;
    assert.equal(text, done.message.content, 'the deltas add up to the final message');
    assert.match(done.message.content, /Lisbon/);
    assert.ok(done.usage.input_tokens > 0 && done.usage.output_tokens > 0);
    assert.equal(typeof done.usage.cost_usd, 'number');
    const t = await transcript(stack, userKey, s.id);
    assert.deepEqual(t.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant']);
    assert.equal(t[3].content, text);
    const g = await stack.api(userKey, 'GET', `/v1/runs/${runId}`);
    assert.equal(g.body.status, 'completed');
    assert.deepEqual(g.body.usage, done.usage);
  });

  test('streamed text answer: [[tokens:5]] gives 5 deltas and 5 output tokens', async () => {
    const s = await newSession(stack, userKey, 'plain');
    const res = await streamMessage(stack, userKey, s.id, 'Just talk. [[tokens:5]]');
    const seq = names(res.events);
    assert.deepEqual(seq, ['run.started', 'message.delta', 'message.delta', 'message.delta', 'message.delta', 'message.delta', 'run.completed']);
    const done = res.events.at(-1).data;
    assert.equal(done.usage.output_tokens, 5);
    const text = res.events.filter((e) => e.event === 'message.delta').map((e) => e.data.text).join('');
    assert.equal(text, done.message.content);
  });

  test('the history is sent again: a second message sees the first turn', async () => {
    const s = await newSession(stack, userKey, 'plain');
    const a = await postMessage(stack, userKey, s.id, 'one [[tokens:3]]');
    const b = await postMessage(stack, userKey, s.id, 'two [[tokens:3]]');
    assert.equal(b.status, 200, b.text);
    assert.ok(b.body.run.usage.input_tokens > a.body.run.usage.input_tokens,
      `second run's prompt (${b.body.run.usage.input_tokens}) should include the first turn (${a.body.run.usage.input_tokens})`);
    const t = await transcript(stack, userKey, s.id);
    assert.deepEqual(t.map((m) => m.role), ['user', 'assistant', 'user', 'assistant']);
    assert.notEqual(a.body.run.id, b.body.run.id);
  });

  test('through the HTTP provider (gpt-test via mock-llm): a tool call works, the upstream is reached', async () => {
    const before = (await stack.mockStats()).body;
    const s = await newSession(stack, userKey, 'remote');
    const res = await streamMessage(stack, userKey, s.id, `Note it. ${toolMarker('memory', { action: 'save', key: 'remote-k', value: 'remote-v' })}`);
    const seq = names(res.events);
    assert.equal(seq[0], 'run.started');
    assert.equal(seq.at(-1), 'run.completed', `${seq.join(',')} ${res.text.slice(-400)}`);
    assert.ok(seq.includes('tool.call') && seq.includes('tool.result'));
    const after = (await stack.mockStats()).body;
    assert.ok(after.requests - before.requests >= 2, `mock-llm requests ${before.requests} → ${after.requests}`);
    const mem = await stack.api(userKey, 'GET', '/v1/memory/remote-k');
    assert.equal(mem.body.value, 'remote-v');
  });

  test('a declared HTTP tool: valid arguments reach the tool server, its answer reaches the model', async () => {
    const n0 = toolServer.requests.length;
    const s = await newSession(stack, userKey, 'helper');
    const res = await streamMessage(stack, userKey, s.id, `Weather? ${toolMarker('weather', { city: 'Porto' })}`);
    const seq = names(res.events);
    assert.equal(seq.at(-1), 'run.completed', res.text.slice(-500));
    const result = res.events.find((e) => e.event === 'tool.result').data;
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.match(result.preview, /sunny in Porto/);
    assert.equal(toolServer.requests.length, n0 + 1);
    const req = toolServer.requests.at(-1);
    assert.equal(req.method, 'POST');
    assert.equal(req.url, '/weather');
    assert.deepEqual(req.body, { city: 'Porto' });
    assert.match(res.events.at(-1).data.message.content, /sunny in Porto/);
  });

  test('tool arguments that break the schema: tool.result ok:false "invalid", the tool is not called, the run completes', async () => {
    const n0 = toolServer.requests.length;
    const s = await newSession(stack, userKey, 'helper');
    for (const args of [{ city: 7 }, { town: 'Porto' }]) {
      const res = await streamMessage(stack, userKey, s.id, `Weather? ${toolMarker('weather', args)}`);
      const seq = names(res.events);
      assert.equal(seq.at(-1), 'run.completed', `${JSON.stringify(args)}: ${seq.join(',')}`);
      const result = res.events.find((e) => e.event === 'tool.result').data;
      assert.equal(result.ok, false, JSON.stringify(result));
      assert.match(result.preview, /invalid/i, result.preview);
      // The model was told (the mock quotes the tool's answer).
      assert.match(res.events.at(-1).data.message.content, /invalid/i);
    }
    assert.equal(toolServer.requests.length, n0, 'the tool server got no request');
    const t = await transcript(stack, userKey, s.id);
    assert.deepEqual(t.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant', 'user', 'assistant', 'tool', 'assistant']);
  });

  test('a tool the agent does not have: ok:false, not called, the run completes', async () => {
    const n0 = toolServer.requests.length;
    const s = await newSession(stack, userKey, 'plain');
    const res = await streamMessage(stack, userKey, s.id, `Weather? ${toolMarker('weather', { city: 'Porto' })}`);
    assert.equal(names(res.events).at(-1), 'run.completed');
    const result = res.events.find((e) => e.event === 'tool.result').data;
    assert.equal(result.ok, false);
    assert.match(result.preview, /not available/);
    assert.equal(toolServer.requests.length, n0);
  });

  test('a GET tool: placeholders are percent-encoded into one path segment, the rest is the query, configured headers are sent, the user\'s key is not', async () => {
    const s = await newSession(stack, userKey, 'toolbox');
    // ("/" and dot segments are refused outright: security_toolsops.test.mjs)
    const city = 'São Paulo?x=1#y&z=%2';
    const n0 = toolServer.requests.length;
    const res = await streamMessage(stack, userKey, s.id, `Forecast? ${toolMarker('forecast', { city, days: 3 })}`);
    assert.equal(res.events.at(-1).event, 'run.completed', res.text.slice(-400));
    assert.equal(res.events.find((e) => e.event === 'tool.result').data.ok, true);
    assert.equal(toolServer.requests.length, n0 + 1);
    const req = toolServer.requests.at(-1);
    assert.equal(req.method, 'GET');
    const u = new URL(req.url, 'http://x');
    const segs = u.pathname.split('/');
    assert.equal(segs.length, 3, `one path segment for the city: ${req.url}`);
    assert.equal(segs[1], 'forecast');
    assert.equal(decodeURIComponent(segs[2]), city, req.url);
    assert.equal(u.searchParams.get('days'), '3', req.url);
    assert.equal(u.searchParams.get('x'), null, 'an argument cannot add query parameters');
    assert.equal(req.headers['x-tool-token'], 'tool-token-123');
    assert.equal(req.headers.authorization, undefined, 'no brigade credential goes to a tool');
    assert.ok(!JSON.stringify(req.headers).includes(userKey), 'the user key is not forwarded');
  });

  test('a tool that fails, hangs or answers too much: ok:false for the model, the run completes', async () => {
    const s = await newSession(stack, userKey, 'toolbox');
    for (const [name, why] of [['broken', /500/], ['slow', /time|timed/i], ['big', /large|bytes|limit|too/i]]) {
      const t0 = Date.now();
      const res = await streamMessage(stack, userKey, s.id, `Go. ${toolMarker(name, {})}`);
      assert.equal(res.events.at(-1).event, 'run.completed', `${name}: ${res.text.slice(-400)}`);
      const result = res.events.find((e) => e.event === 'tool.result').data;
      assert.equal(result.ok, false, `${name}: ${JSON.stringify(result)}`);
      assert.match(result.preview, why, `${name}: ${result.preview}`);
      if (name === 'slow') assert.ok(Date.now() - t0 < 2000, `the tool timeout (500 ms) was not applied: ${Date.now() - t0} ms`);
    }
    assert.deepEqual(halfTurns(await transcript(stack, userKey, s.id)), []);
  });

  test('a run\'s usage is charged to the user (/v1/usage by model)', async () => {
    const { key } = await stack.makeUserWithKey(tenant.admin_key);
    const s = await newSession(stack, key, 'helper');
    const a = await postMessage(stack, key, s.id, `x ${toolMarker('memory', { action: 'save', key: 'u', value: 'v' })}`);
    const b = await postMessage(stack, key, s.id, 'y [[tokens:7]]');
    const inTok = a.body.run.usage.input_tokens + b.body.run.usage.input_tokens;
    const outTok = a.body.run.usage.output_tokens + b.body.run.usage.output_tokens;
    const row = await eventually(async () => {
      const u = await stack.api(key, 'GET', '/v1/usage?group_by=model');
      return u.body?.data?.find((x) => x.group === 'local-model');
    });
    assert.equal(row.requests, 3, 'one usage record per model call');
    assert.equal(row.input_tokens, inTok);
    assert.equal(row.output_tokens, outTok);
    const cost = a.body.run.usage.cost_usd + b.body.run.usage.cost_usd;
    assert.ok(Math.abs(row.cost_usd - cost) < 1e-9, `${row.cost_usd} vs ${cost}`);
  });

  test('the transcript pages with limit and after', async () => {
    const s = await newSession(stack, userKey, 'plain');
    for (const w of ['a', 'b', 'c']) await postMessage(stack, userKey, s.id, `${w} [[tokens:1]]`);
    const all = await transcript(stack, userKey, s.id);
    assert.equal(all.length, 6);
    const p1 = await stack.api(userKey, 'GET', `/v1/sessions/${s.id}/messages?limit=4`);
    assert.equal(p1.body.has_more, true);
    assert.deepEqual(p1.body.data, all.slice(0, 4));
    const p2 = await stack.api(userKey, 'GET', `/v1/sessions/${s.id}/messages?limit=4&after=${p1.body.data[3].seq}`);
    assert.equal(p2.body.has_more, false);
    assert.deepEqual(p2.body.data, all.slice(4));
    assert.equal((await stack.api(userKey, 'GET', `/v1/sessions/${s.id}/messages?limit=0`)).status, 400);
  });

  test('bad messages: missing or empty content, bad if_busy, bad stream → 400; unknown session → 404', async () => {
    const s = await newSession(stack, userKey, 'plain');
    for (const [body, param] of [
      [{}, 'content'], [{ content: '' }, 'content'], [{ content: 5 }, 'content'],
      [{ content: 'x', if_busy: 'sometimes' }, 'if_busy'], [{ content: 'x', stream: 'yes' }, 'stream'],
    ]) {
      const r = await stack.api(userKey, 'POST', `/v1/sessions/${s.id}/messages`, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.status} ${r.text}`);
      assert.equal(errorOf(r).param, param, JSON.stringify(body));
    }
    const r = await postMessage(stack, userKey, 'ses_000000000000000000000000', 'hello');
    assert.equal(r.status, 404, r.text);
    assert.equal((await stack.api(userKey, 'GET', '/v1/runs/run_000000000000000000000000')).status, 404);
    assert.deepEqual(await transcript(stack, userKey, s.id), [], 'nothing was recorded');
  });
});

describe('agent limits', () => {
  test('max_steps: a run that needs more model calls fails "max_steps", no half turn', async () => {
    const s = await newSession(stack, userKey, 'one-step');
    const r = await postMessage(stack, userKey, s.id, `x ${toolMarker('memory', { action: 'save', key: 'steps', value: 'v' })}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.run.status, 'failed', r.text);
    assert.equal(r.body.run.error.code, 'max_steps');
    assert.equal(r.body.run.steps, 1);
    assert.equal(r.body.message, null);
    const t = await transcript(stack, userKey, s.id);
    assert.deepEqual(halfTurns(t), []);
    assert.ok(!t.some((m) => m.role === 'assistant' && !m.tool_calls), 'no final answer');
  });

  test('max_tool_calls 0: the tool is never run', async () => {
    const s = await newSession(stack, userKey, 'no-tools');
    const r = await postMessage(stack, userKey, s.id, `x ${toolMarker('memory', { action: 'save', key: 'never-saved', value: 'v' })}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.run.status, 'failed', r.text);
    assert.equal(r.body.run.error.code, 'max_tool_calls');
    assert.equal((await stack.api(userKey, 'GET', '/v1/memory/never-saved')).status, 404);
    assert.deepEqual(halfTurns(await transcript(stack, userKey, s.id)), []);
  });

  test('max_wall_ms: a slow model fails the run "max_wall_time" on time', async () => {
    const s = await newSession(stack, userKey, 'hasty');
    const t0 = Date.now();
    const res = await streamMessage(stack, userKey, s.id, 'slow [[latency:3000]]');
    const ms = Date.now() - t0;
    assert.ok(ms >= 900 && ms < 2500, `ended after ${ms} ms`);
    const last = res.events.at(-1);
    assert.equal(last.event, 'run.failed', res.text);
    assert.equal(last.data.status, 'failed');
    assert.equal(last.data.error.code, 'max_wall_time');
    assert.equal((await stack.api(userKey, 'GET', `/v1/runs/${last.data.run_id}`)).body.status, 'failed');
  });
});

describe('busy sessions and cancelling', () => {
  test('a second message while a run is active → 409 conflict_error (default and explicit reject)', async () => {
    const s = await newSession(stack, userKey, 'plain');
    const first = openStream(stack, userKey, s.id, 'slow [[latency:1500]] [[tokens:3]]');
    await first.next('run.started');
    for (const extra of [{}, { if_busy: 'reject' }]) {
      const r = await postMessage(stack, userKey, s.id, 'me too', extra);
      assert.equal(r.status, 409, `${JSON.stringify(extra)}: ${r.text}`);
      const e = errorOf(r);
      assert.equal(e.type, 'conflict_error');
      assert.equal(e.code, 'session_busy');
    }
    const d = await stack.api(userKey, 'DELETE', `/v1/sessions/${s.id}`);
    assert.equal(d.status, 409, `deleting a busy session: ${d.text}`);
    const res = await first.done;
    assert.equal(names(res.events).at(-1), 'run.completed');
    const t = await transcript(stack, userKey, s.id);
    assert.deepEqual(t.map((m) => m.role), ['user', 'assistant'], 'the rejected messages were not recorded');
  });

  test('once the answer has arrived, the session is free at once (no 409 right after it)', async () => {
    // A race, so it is tried many times: the server must release the
    // session before it tells the client the run is over.
    const s = await newSession(stack, userKey, 'plain');
    const rejected = [];
    for (let i = 0; i < 40; i++) {
      const st = await streamMessage(stack, userKey, s.id, `s${i} [[tokens:1]]`);
      assert.equal(st.events.at(-1)?.event, 'run.completed');
      const a = await postMessage(stack, userKey, s.id, `p${i} [[tokens:1]]`);
      if (a.status !== 200) rejected.push(`after a stream: ${a.status} ${a.body?.error?.code}`);
      const b = await postMessage(stack, userKey, s.id, `q${i} [[tokens:1]]`);
      if (b.status !== 200) rejected.push(`after a reply: ${b.status} ${b.body?.error?.code}`);
    }
    assert.deepEqual(rejected, []);
  });

  test('enqueue and interrupt on an idle session simply run', async () => {
    const s = await newSession(stack, userKey, 'plain');
    for (const if_busy of ['enqueue', 'interrupt', 'reject']) {
      const r = await postMessage(stack, userKey, s.id, `${if_busy} [[tokens:2]]`, { if_busy });
      assert.equal(r.status, 200, `${if_busy}: ${r.text}`);
      assert.equal(r.body.run.status, 'completed');
    }
    assert.equal((await transcript(stack, userKey, s.id)).length, 6);
  });

  test('if_busy enqueue: the second waits, then runs; both complete in order', async () => {
    const s = await newSession(stack, userKey, 'plain');
    const first = openStream(stack, userKey, s.id, 'first [[latency:800]] [[tokens:3]]');
    const started = await first.next('run.started');
    const t0 = Date.now();
    const second = await postMessage(stack, userKey, s.id, 'second [[tokens:2]]', { if_busy: 'enqueue' });
    assert.equal(second.status, 200, second.text);
    assert.equal(second.body.run.status, 'completed');
    assert.ok(Date.now() - t0 >= 300, 'the second waited for the first');
    const res = await first.done;
    assert.equal(names(res.events).at(-1), 'run.completed');
    const firstRun = await stack.api(userKey, 'GET', `/v1/runs/${started.data.run_id}`);
    assert.equal(firstRun.body.status, 'completed');
    const t = await transcript(stack, userKey, s.id);
    assert.deepEqual(t.map((m) => [m.role, m.run_id]), [
      ['user', started.data.run_id], ['assistant', started.data.run_id],
      ['user', second.body.run.id], ['assistant', second.body.run.id],
    ]);
    assert.match(t[0].content, /^first/);
    assert.match(t[2].content, /^second/);
  });

  test('many messages enqueued at once run one at a time, whole turns never interleave', async () => {
    const s = await newSession(stack, userKey, 'plain');
    const first = openStream(stack, userKey, s.id, 'head [[latency:300]] [[tokens:2]]');
    await first.next('run.started');
    const rs = await Promise.all([0, 1, 2, 3, 4, 5].map((i) =>
      postMessage(stack, userKey, s.id, `m${i} [[latency:50]] [[tokens:2]]`, { if_busy: 'enqueue' })));
    for (const r of rs) assert.equal(r.body.run?.status, 'completed', r.text);
    await first.done;
    const t = await transcript(stack, userKey, s.id);
    assert.equal(t.length, 14);
    for (let i = 0; i < t.length; i += 2) {
      assert.equal(t[i].role, 'user', `seq ${t[i].seq}`);
      assert.equal(t[i + 1].role, 'assistant', `seq ${t[i + 1].seq}`);
      assert.equal(t[i + 1].run_id, t[i].run_id, 'an answer follows its own question');
    }
    assert.equal(new Set(t.map((m) => m.run_id)).size, 7);
  });

  test('the queue of a busy session is bounded: past it, 503 session_queue_full', async () => {
    const s = await newSession(stack, userKey, 'plain');
    const first = openStream(stack, userKey, s.id, 'head [[latency:1200]] [[tokens:1]]');
    await first.next('run.started');
    const rs = await Promise.all(Array.from({ length: 10 }, (_, i) =>
      postMessage(stack, userKey, s.id, `q${i} [[tokens:1]]`, { if_busy: 'enqueue' })));
    const codes = rs.map((r) => r.status);
    assert.equal(codes.filter((c) => c === 200).length, 8, codes.join(','));
    const full = rs.filter((r) => r.status === 503);
    assert.equal(full.length, 2, codes.join(','));
    for (const r of full) {
      assert.equal(errorOf(r).code, 'session_queue_full');
      assert.ok(r.headers.get('retry-after'), 'Retry-After on 503');
    }
    await first.done;
    assert.equal((await transcript(stack, userKey, s.id)).length, 18);
  });

  test('if_busy interrupt: the first run ends "interrupted", the second completes', async () => {
    const s = await newSession(stack, userKey, 'plain');
    const first = openStream(stack, userKey, s.id, 'long [[latency:4000]] [[tokens:3]]');
    const started = await first.next('run.started');
    const t0 = Date.now();
    const second = await postMessage(stack, userKey, s.id, 'now [[tokens:2]]', { if_busy: 'interrupt' });
    assert.equal(second.status, 200, second.text);
    assert.equal(second.body.run.status, 'completed');
    assert.ok(Date.now() - t0 < 3000, 'the second did not wait for the first to finish');
    const res = await first.done;
    const last = res.events.at(-1);
    assert.equal(last.event, 'run.failed', names(res.events).join(','));
    assert.equal(last.data.status, 'interrupted');
    assert.equal(last.data.run_id, started.data.run_id);
    const g = await stack.api(userKey, 'GET', `/v1/runs/${started.data.run_id}`);
    assert.equal(g.body.status, 'interrupted');
    const t = await transcript(stack, userKey, s.id);
    assert.deepEqual(t.map((m) => m.role), ['user', 'user', 'assistant']);
    assert.equal(t[2].run_id, second.body.run.id);
  });

  test('POST /v1/runs/{id}/cancel stops a run: status cancelled everywhere', async () => {
    const s = await newSession(stack, userKey, 'plain');
    const first = openStream(stack, userKey, s.id, 'never mind [[latency:4000]] [[tokens:3]]');
    const runId = (await first.next('run.started')).data.run_id;
    // Another user can neither see nor cancel it.
    assert.equal((await stack.api(otherKey, 'GET', `/v1/runs/${runId}`)).status, 404);
    assert.equal((await stack.api(otherKey, 'POST', `/v1/runs/${runId}/cancel`)).status, 404);
    const live = await stack.api(userKey, 'GET', `/v1/runs/${runId}`);
    assert.equal(live.body.status, 'running');
    const t0 = Date.now();
    const c = await stack.api(userKey, 'POST', `/v1/runs/${runId}/cancel`);
    assert.equal(c.status, 200, c.text);
    assert.equal(c.body.id, runId);
    assert.equal(c.body.status, 'cancelled');
    assert.ok(Date.now() - t0 < 2500, 'cancel did not wait for the model');
    const res = await first.done;
    const last = res.events.at(-1);
    assert.equal(last.event, 'run.failed');
    assert.equal(last.data.status, 'cancelled');
    assert.equal((await stack.api(userKey, 'GET', `/v1/runs/${runId}`)).body.status, 'cancelled');
    // The session is free again.
    const next = await postMessage(stack, userKey, s.id, 'again [[tokens:2]]');
    assert.equal(next.status, 200, next.text);
    assert.equal(next.body.run.status, 'completed');
    // Cancelling a finished run answers with it as it is.
    const again = await stack.api(userKey, 'POST', `/v1/runs/${next.body.run.id}/cancel`);
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.status, 'completed');
  });

  test('a client that disconnects mid-stream does not stop the run', async () => {
    const s = await newSession(stack, userKey, 'helper');
    const content = `Keep going. ${toolMarker('memory', { action: 'save', key: 'after-disconnect', value: 'still-saved' })} [[latency:600]]`;
    const st = openStream(stack, userKey, s.id, content);
    const runId = (await st.next('run.started')).data.run_id;
    st.destroy();
    const run = await eventually(async () => {
      const g = await stack.api(userKey, 'GET', `/v1/runs/${runId}`);
      return g.body.status === 'completed' ? g.body : null;
    }, { timeoutMs: 8000, intervalMs: 150 });
    assert.equal(run.tool_calls, 1);
    const t = await transcript(stack, userKey, s.id);
    assert.deepEqual(t.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant']);
    assert.match(t[3].content, /saved/);
    const mem = await stack.api(userKey, 'GET', '/v1/memory/after-disconnect');
    assert.equal(mem.body.value, 'still-saved');
  });

  test('a non-streaming client that goes away: the run still completes', async () => {
    const s = await newSession(stack, userKey, 'plain');
    const ac = new AbortController();
    const p = fetch(`${stack.brigadeUrl}/v1/sessions/${s.id}/messages`, {
      method: 'POST', signal: ac.signal,
      headers: { authorization: `Bearer ${userKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ content: 'bye [[latency:600]] [[tokens:4]]' }),
    }).catch((e) => e);
    await sleep(250);
    ac.abort();
    await p;
    const t = await eventually(async () => {
      const m = await transcript(stack, userKey, s.id);
      return m.length === 2 ? m : null;
    }, { timeoutMs: 8000, intervalMs: 150 });
    assert.deepEqual(t.map((m) => m.role), ['user', 'assistant']);
    const r = await stack.api(userKey, 'GET', `/v1/runs/${t[1].run_id}`);
    assert.equal(r.body.status, 'completed');
  });
});

test('an idle stream gets ": ping" heartbeats (every 15 s) and still ends with run.completed', async () => {
  const sid = (await newSession(stack, userKey, 'plain')).id;
  const t0 = Date.now();
  const res = await streamMessage(stack, userKey, sid, 'wait for it [[latency:15800]] [[tokens:2]]');
  assert.equal(res.status, 200);
  const pingAt = res.text.indexOf('\n: ping\n');
  const doneAt = res.text.indexOf('event: run.completed');
  assert.ok(pingAt > 0, `no ping comment in the stream: ${res.text.slice(0, 400)}`);
  assert.ok(doneAt > pingAt, 'the ping comes before the run completes');
  assert.ok(Date.now() - t0 >= 15000, 'the run took the model latency');
  assert.deepEqual(names(res.events).at(-1), 'run.completed');
});
