// security_metering.test.mjs — one metered model call for the gateway and
// the runs (govern/call.h): what a caller receives is what it pays for.
//
// The attack: stop a run while its model is still streaming. Before the
// gateway and the runs shared one metered call, a run stopped mid-stream
// released its reservation and recorded nothing — the text the client had
// already read was free (the gateway charged a cut stream; the runs did
// not). A provider here streams some text and then holds the stream open;
// the client reads the text and cancels the run. The run, the usage ledger
// and the budget must all show the call.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { newSession, openStream } from './lib/agents.mjs';
import { eventually, freePort, useStack } from './lib/harness.mjs';

// An OpenAI-compatible provider that streams one chunk of text and then
// never finishes (until the test ends).
let held = [];
let server;
const port = await freePort();
const TEXT = 'a fairly long answer that the client reads before it cancels the run, word after word';

before(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = { id: 'c1', object: 'chat.completion.chunk', model: 'held-model',
                      choices: [{ index: 0, delta: { role: 'assistant', content: TEXT } }] };
      res.write(`data: ${JSON.stringify(chunk)}\n\n`);
      held.push(res);
    });
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
});

after(async () => {
  for (const res of held) res.destroy();
  held = [];
  server.closeAllConnections?.();
  await new Promise((r) => server.close(() => r()));
});

const stack = useStack({
  extraProviders: [
    { name: 'holding', kind: 'openai', base_url: `http://127.0.0.1:${port}/v1`, api_key: 'k', timeout_ms: 30000, max_retries: 0 },
  ],
  extraModels: [
    { name: 'held', provider: 'holding', upstream_model: 'held-model', input_usd_per_mtok: 1000, output_usd_per_mtok: 2000 },
  ],
  extraYaml: [
    'agents:',
    '  - {name: streamer, model: held, max_output_tokens: 200}',
  ].join('\n'),
}, async (s) => {
  s.tenant = await s.makeTenant();
});

describe('the metered call charges what was delivered', () => {
  test('a run cancelled mid-stream is charged for the text its client read', async () => {
    const { key } = await stack.makeUserWithKey(stack.tenant.admin_key);
    const s = await newSession(stack, key, 'streamer');
    const st = openStream(stack, key, s.id, 'tell me something');
    const started = await st.next('run.started');
    const delta = await st.next('message.delta');
    assert.match(delta.data.text, /fairly long answer/);
    const runId = started.data.run_id;
    const c = await stack.api(key, 'POST', `/v1/runs/${runId}/cancel`);
    assert.equal(c.status, 200, c.text);
    await st.done;

    // The run's own books.
    const run = stack.must(await stack.api(key, 'GET', `/v1/runs/${runId}`), 200, 'run');
    assert.equal(run.status, 'cancelled');
    assert.ok(run.usage.output_tokens > 0, JSON.stringify(run.usage));
    assert.ok(run.usage.cost_usd > 0, JSON.stringify(run.usage));
    // The usage ledger and the budget: the same cost, nothing left reserved.
    await eventually(async () => {
      const u = stack.must(await stack.api(key, 'GET', '/v1/usage?group_by=model'), 200, 'usage');
      const row = u.data.find((r) => r.group === 'held');
      if (!row) return false;
      assert.ok(row.output_tokens > 0, JSON.stringify(row));
      return true;
    });
    const me = stack.must(await stack.api(key, 'GET', '/v1/me'), 200, 'me');
    assert.equal(me.usage.day.reserved_usd, 0, JSON.stringify(me.usage));
    assert.ok(me.usage.day.spent_usd > 0, JSON.stringify(me.usage));
  });
});
