// restart.test.mjs — runs across a crash: brigade is killed with SIGKILL
// (no chance to tidy up) while runs are in flight, then started again on
// the same data dir. The runs must read "interrupted", the transcripts must
// hold the user's messages and never half a turn (a tool call without its
// result), what was finished before the crash must still be there, and the
// sessions must take new messages.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { sleep, useStack } from './lib/harness.mjs';
import { halfTurns, newSession, openStream, postMessage, restartBrigade, toolMarker, transcript } from './lib/agents.mjs';

let tenant;
let userKey;
// A short shutdown grace, so that SIGTERM ends a slow run quickly.
const GRACE_MS = 1000;
const stack = useStack({
  limits: { shutdown_grace_ms: GRACE_MS },
  extraYaml: 'agents:\n  - {name: keeper, model: local-model, tools: [memory]}\n',
}, async (s) => {
  tenant = await s.makeTenant();
  ({ key: userKey } = await s.makeUserWithKey(tenant.admin_key));
});

describe('SIGKILL with runs in flight, then a restart', () => {
  test('the runs read "interrupted", transcripts have no half turn, finished work survives', { timeout: 30_000 }, async () => {
    // Finished before the crash.
    const done = await newSession(stack, userKey, 'keeper');
    const ok = await postMessage(stack, userKey, done.id,
      `Keep. ${toolMarker('memory', { action: 'save', key: 'before-crash', value: 'durable' })}`);
    assert.equal(ok.body.run.status, 'completed', ok.text);
    const doneTranscript = await transcript(stack, userKey, done.id);

    // A: waiting on a slow model when the server dies.
    const a = await newSession(stack, userKey, 'keeper');
    const aStream = openStream(stack, userKey, a.id, 'Think long. [[latency:5000]] [[tokens:4]]');
    const aRun = (await aStream.next('run.started')).data.run_id;

    // B: a tool turn done, the second (slow) model call in flight.
    const b = await newSession(stack, userKey, 'keeper');
    const bStream = openStream(stack, userKey, b.id,
      `Save, then think. ${toolMarker('memory', { action: 'save', key: 'mid-run', value: 'written before the kill' })} [[latency:2000]]`);
    const bRun = (await bStream.next('run.started')).data.run_id;
    await bStream.next('tool.result', 5000);
    await sleep(300);   // the tool turn is recorded; the next model call is waiting

    // C: a run not yet started: waiting in the queue behind A's session.
    const cQueued = postMessage(stack, userKey, a.id, 'queued [[tokens:2]]', { if_busy: 'enqueue' }).catch((e) => e);
    await sleep(100);

    // Both runs really are in flight.
    for (const id of [aRun, bRun]) {
      const g = await stack.api(userKey, 'GET', `/v1/runs/${id}`);
      assert.equal(g.body.status, 'running', `${id} before the kill: ${g.text}`);
    }

    const info = await restartBrigade(stack, 'SIGKILL');
    assert.equal(info.signal, 'SIGKILL');
    await Promise.allSettled([aStream.done, bStream.done, cQueued]);

    for (const [name, sid, runId] of [['A', a.id, aRun], ['B', b.id, bRun]]) {
      const g = await stack.api(userKey, 'GET', `/v1/runs/${runId}`);
      assert.equal(g.status, 200, `${name}: ${g.text}`);
      assert.equal(g.body.status, 'interrupted', `run ${name} after the restart: ${g.text}`);
      assert.ok(g.body.finished_at, `run ${name} has an end time`);
      assert.ok(g.body.error && g.body.error.code, `run ${name} says why it ended: ${g.text}`);
      const t = await transcript(stack, userKey, sid);
      assert.deepEqual(halfTurns(t), [], `${name} transcript: ${JSON.stringify(t)}`);
      const mine = t.filter((m) => m.run_id === runId);
      assert.equal(mine[0]?.role, 'user', `${name}: the user's message is kept: ${JSON.stringify(t)}`);
      assert.ok(!mine.some((m) => m.role === 'assistant' && !m.tool_calls), `${name}: no final answer was written for an interrupted run`);
    }
    // B's tool turn, recorded before the kill, is kept whole, and its effect too.
    const bt = await transcript(stack, userKey, b.id);
    assert.deepEqual(bt.map((m) => m.role), ['user', 'assistant', 'tool']);
    const mid = await stack.api(userKey, 'GET', '/v1/memory/mid-run');
    assert.equal(mid.status, 200, 'the tool ran before the kill, its write is durable');
    assert.equal(mid.body.value, 'written before the kill');

    // What finished before the crash is intact.
    assert.deepEqual(await transcript(stack, userKey, done.id), doneTranscript);
    assert.equal((await stack.api(userKey, 'GET', '/v1/memory/before-crash')).body.value, 'durable');
    assert.equal((await stack.api(userKey, 'GET', `/v1/runs/${ok.body.run.id}`)).body.status, 'completed');

    // The sessions are not stuck busy: new messages run.
    for (const sid of [a.id, b.id]) {
      const r = await postMessage(stack, userKey, sid, 'after the restart [[tokens:3]]');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.run.status, 'completed', r.text);
      assert.deepEqual(halfTurns(await transcript(stack, userKey, sid)), []);
    }
  });

  test('SIGTERM: a run longer than the shutdown grace ends "interrupted" (server_shutdown)', { timeout: 30_000 }, async () => {
    const s = await newSession(stack, userKey, 'keeper');
    const st = openStream(stack, userKey, s.id, 'Slow. [[latency:8000]] [[tokens:4]]');
    const runId = (await st.next('run.started')).data.run_id;
    const t0 = Date.now();
    const info = await restartBrigade(stack, 'SIGTERM');
    assert.equal(info.code, 0, `exit after SIGTERM: ${JSON.stringify(info)}`);
    assert.ok(Date.now() - t0 < GRACE_MS + 4000, `shutdown took ${Date.now() - t0} ms`);
    const res = await st.done.catch((e) => ({ events: [], error: e }));
    const last = res.events.at(-1);
    if (last) assert.notEqual(last.event, 'run.completed', 'the run cannot have completed');
    const g = await stack.api(userKey, 'GET', `/v1/runs/${runId}`);
    assert.equal(g.body.status, 'interrupted', g.text);
    assert.equal(g.body.error?.code, 'server_shutdown', g.text);
    const t = await transcript(stack, userKey, s.id);
    assert.deepEqual(t.map((m) => m.role), ['user']);
  });

  test('SIGTERM: a run shorter than the shutdown grace is allowed to finish', { timeout: 30_000 }, async () => {
    const s = await newSession(stack, userKey, 'keeper');
    const st = openStream(stack, userKey, s.id, 'Quick. [[latency:300]] [[tokens:4]]');
    const runId = (await st.next('run.started')).data.run_id;
    const info = await restartBrigade(stack, 'SIGTERM');
    assert.equal(info.code, 0, `exit after SIGTERM: ${JSON.stringify(info)}`);
    const res = await st.done;
    assert.equal(res.events.at(-1)?.event, 'run.completed', res.text.slice(-300));
    const g = await stack.api(userKey, 'GET', `/v1/runs/${runId}`);
    assert.equal(g.body.status, 'completed', g.text);
    const t = await transcript(stack, userKey, s.id);
    assert.deepEqual(t.map((m) => m.role), ['user', 'assistant']);
  });
});
