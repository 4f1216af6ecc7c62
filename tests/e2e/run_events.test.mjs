// run_events.test.mjs — GET /v1/runs/{id}/events: a run's events read
// again, as an SSE stream, with the ids the message's own stream carried.
//   - a client whose stream broke mid-run comes back with Last-Event-ID and
//     gets exactly the rest (no event twice, none missing), live, to the end;
//   - a run that ended is replayed whole, from the start or after an id;
//   - another user's run is a 404; a bad Last-Event-ID a 400; a run this
//     server keeps no events of (it ran before a restart) answers with one
//     `run.state` event, its stored state;
//   - many readers at once of one run all get the same events.

import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';

import { useStack } from './lib/harness.mjs';
import { newSession, openStream, parseSse, restartBrigade, toolMarker } from './lib/agents.mjs';

let tenant, alice, bob;
const stack = useStack(async () => ({
  extraYaml: [
    'agents:',
    '  - {name: helper, model: local-model, tools: [memory, clock], max_steps: 4}',
  ].join('\n'),
}), async (s) => {
  tenant = await s.makeTenant();
  alice = await s.makeUserWithKey(tenant.admin_key);
  bob = await s.makeUserWithKey(tenant.admin_key);
});

/** GET /v1/runs/{id}/events read to its end: {status, headers, events, text}. */
function readEvents(runId, key, { lastEventId, after, timeoutMs = 20_000 } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(stack.brigadeUrl);
    const headers = { authorization: `Bearer ${key}` };
    if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId);
    const path = `/v1/runs/${runId}/events${after !== undefined ? `?after=${encodeURIComponent(after)}` : ''}`;
    const req = http.request({ host: u.hostname, port: u.port, method: 'GET', path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, headers: res.headers, text, events: parseSse(text) });
      });
    });
    const timer = setTimeout(() => { req.destroy(); reject(new Error(`no end of the events within ${timeoutMs} ms`)); }, timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.end();
  });
}

const slowTool = `Check. ${toolMarker('clock', {})} [[latency:700]] [[tokens:6]]`;

describe('reading a run\'s events again', () => {
  test('a stream that broke mid-run: Last-Event-ID gets exactly the rest, live, to the end', async () => {
    const s = await newSession(stack, alice.key, 'helper');
    const st = openStream(stack, alice.key, s.id, slowTool);
    const started = await st.next('run.started');
    st.destroy();   // the client's connection breaks while the model thinks (700 ms)
    const seen = st.events.filter((e) => e.id);
    assert.ok(seen.length >= 1, JSON.stringify(st.events));
    const ids = seen.map((e) => Number(e.id));
    for (let i = 1; i < ids.length; i++) assert.equal(ids[i], ids[i - 1] + 1, `ids in order: ${ids}`);
    const runId = started.data.run_id;
    const last = ids.at(-1);
    const rest = await readEvents(runId, alice.key, { lastEventId: last });
    assert.equal(rest.status, 200, rest.text);
    assert.match(rest.headers['content-type'], /text\/event-stream/);
    const restIds = rest.events.map((e) => Number(e.id));
    assert.equal(restIds[0], last + 1, `the first event after ${last}: ${rest.text.slice(0, 300)}`);
    for (let i = 1; i < restIds.length; i++) assert.equal(restIds[i], restIds[i - 1] + 1);
    assert.equal(rest.events.at(-1).event, 'run.completed', rest.text.slice(-400));
    assert.ok(rest.events.some((e) => e.event === 'tool.result'), 'the tool result came after the break');
    for (const e of rest.events) assert.equal(e.data.run_id, runId);
  });

  test('an ended run is replayed whole, the same events with the same ids; after=N gives the tail', async () => {
    const s = await newSession(stack, alice.key, 'helper');
    const st = openStream(stack, alice.key, s.id, `Hi. ${toolMarker('clock', {})} [[tokens:3]]`);
    const live = await st.done;
    const runId = live.events.find((e) => e.event === 'run.started').data.run_id;
    const all = await readEvents(runId, alice.key);
    assert.equal(all.status, 200);
    const pick = (evs) => evs.filter((e) => e.id).map((e) => `${e.id} ${e.event} ${JSON.stringify(e.data)}`);
    assert.deepEqual(pick(all.events), pick(live.events), 'the replay is what the live stream said');
    const tail = await readEvents(runId, alice.key, { after: 2 });
    assert.deepEqual(pick(tail.events), pick(live.events).filter((l) => Number(l.split(' ')[0]) > 2));
    // at the end: nothing more, the stream just ends
    const lastId = Number(all.events.at(-1).id);
    const none = await readEvents(runId, alice.key, { lastEventId: lastId });
    assert.equal(none.status, 200);
    assert.equal(none.events.length, 0, none.text);
  });

  test('ten readers of one live run all get the same events', async () => {
    const s = await newSession(stack, alice.key, 'helper');
    const st = openStream(stack, alice.key, s.id, slowTool);
    const runId = (await st.next('run.started')).data.run_id;
    const readers = await Promise.all([...Array(10)].map(() => readEvents(runId, alice.key)));
    const live = await st.done;
    const want = live.events.filter((e) => e.id).map((e) => `${e.id} ${e.event}`);
    for (const r of readers) assert.deepEqual(r.events.map((e) => `${e.id} ${e.event}`), want);
  });
});

describe('what a caller may not do', () => {
  test('another user\'s run is a 404 (live and ended); an unknown run too', async () => {
    const s = await newSession(stack, alice.key, 'helper');
    const st = openStream(stack, alice.key, s.id, slowTool);
    const runId = (await st.next('run.started')).data.run_id;
    const live = await readEvents(runId, bob.key);
    assert.equal(live.status, 404, live.text);
    assert.ok(!live.text.includes('run.started'));
    await st.done;
    assert.equal((await readEvents(runId, bob.key)).status, 404);
    assert.equal((await readEvents('run_00000000000000000000000000', alice.key)).status, 404);
    // a tenant admin's key is not a user's: the route is the user's
    assert.equal((await readEvents(runId, tenant.admin_key)).status, 403);
  });

  test('a Last-Event-ID that is not a number is a 400 naming it', async () => {
    const s = await newSession(stack, alice.key, 'helper');
    const done = await openStream(stack, alice.key, s.id, 'hello [[tokens:2]]').done;
    const runId = done.events.find((e) => e.event === 'run.started').data.run_id;
    for (const bad of ['-1', 'abc', '1e3', '99999999999999999999', '5 6']) {
      const r = await readEvents(runId, alice.key, { lastEventId: bad });
      assert.equal(r.status, 400, `${bad}: ${r.text}`);
      assert.equal(JSON.parse(r.text).error.param, 'Last-Event-ID');
    }
    const q = await readEvents(runId, alice.key, { after: 'x' });
    assert.equal(q.status, 400);
    assert.equal(JSON.parse(q.text).error.param, 'after');
  });
});

describe('a run this server keeps no events of', () => {
  test('after a restart: one run.state event with the run as stored', async () => {
    const s = await newSession(stack, alice.key, 'helper');
    const done = await openStream(stack, alice.key, s.id, 'before the restart [[tokens:2]]').done;
    const runId = done.events.find((e) => e.event === 'run.started').data.run_id;
    await restartBrigade(stack, 'SIGTERM');
    const r = await readEvents(runId, alice.key);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.events.length, 1, r.text);
    assert.equal(r.events[0].event, 'run.state');
    assert.equal(r.events[0].data.run.id, runId);
    assert.equal(r.events[0].data.run.status, 'completed');
    assert.equal((await readEvents(runId, bob.key)).status, 404, 'and still not another user\'s');
  });
});
