// run_durability.test.mjs — what a crash may take of agent runs, now that a
// run's start and steps are written behind (SQLite: queued, not waited for,
// held at most 5 ms) and only its end is waited for (docs/api.md, "Shutdown
// and restart"). Runs with a tool step go on in a loop from several
// workers; brigade is killed with SIGKILL in the middle, restarted on the
// same data dir, and then:
//
//   - every run whose end the client read (run.completed) is stored
//     completed, with the final answer the client read as the last message
//     of its turn, and the audit entry of its tool call is stored: an end
//     is never acknowledged before it (and what was queued ahead of it) is
//     durable;
//   - every other run the client saw start is either stored whole up to a
//     point (its user message first, no half turn, "interrupted" without a
//     final answer — or "completed", when its end committed but the client
//     had not read it yet) or not stored at all: not its run, not one of its
//     messages. Nothing is half-written;
//   - a run that was in flight for more than a moment is stored (its start
//     is queued within 5 ms), and reads "interrupted";
//   - the sessions take new messages.
//
// On PostgreSQL (BRIGADE_E2E_STORE=postgres) the same checks hold with the
// eager writes of that backend.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { auditEntries, sleep, useStack } from './lib/harness.mjs';
import { halfTurns, newSession, openStream, postMessage, restartBrigade, toolMarker, transcript } from './lib/agents.mjs';

/** A session's whole transcript, page by page. */
async function fullTranscript(sessionId) {
  const all = [];
  for (let after = 0; ;) {
    const r = await stack.api(userKey, 'GET', `/v1/sessions/${sessionId}/messages?limit=500&after=${after}`);
    assert.equal(r.status, 200, r.text);
    all.push(...r.body.data);
    if (r.body.data.length < 500) return all;
    after = r.body.data.at(-1).seq;
  }
}

const WORKERS = 12;
let tenant;
let userKey;
const stack = useStack({
  extraYaml: 'agents:\n  - {name: ticker, model: local-model, tools: [clock]}\n',
}, async (s) => {
  tenant = await s.makeTenant();
  ({ key: userKey } = await s.makeUserWithKey(tenant.admin_key));
});

/** One worker: runs on its own session, one after another, until stopped;
 *  each run's id, whether it was seen to complete, and its answer. */
async function worker(sessionId, seen, stop) {
  let i = 0;
  while (!stop.now) {
    i++;
    // Each model call takes 20 ms, so that a worker spends most of its time
    // inside a started run and the kill cuts some: with runs of a few ms, a
    // moment with all twelve between runs (or not yet started) once left
    // nothing cut, and the checks below nothing to check.
    const st = openStream(stack, userKey, sessionId,
      `tick ${i} ${toolMarker('clock', {})} [[tokens:3]] [[latency:20]]`);
    let res;
    // A connection reset by the kill rejects `done`: what the stream had
    // delivered by then is still in st.events (a run cut after its start).
    try { res = await st.done; } catch { res = { events: st.events }; }
    const started = res.events.find((e) => e.event === 'run.started');
    if (!started) return;   // the server went away before the run began
    const runId = started.data.run_id;
    const end = res.events.find((e) => e.event === 'run.completed' || e.event === 'run.failed');
    const answer = end?.event === 'run.completed' ? end.data.message?.content : undefined;
    seen.push({ runId, sessionId, completed: end?.event === 'run.completed', answer });
    if (!end) return;       // cut by the kill
  }
}

describe('SIGKILL in the middle of runs written behind', () => {
  test('acknowledged ends survive; every other run is whole up to a point, or absent', { timeout: 60_000 }, async (t) => {
    const sessions = [];
    for (let i = 0; i < WORKERS; i++) sessions.push((await newSession(stack, userKey, 'ticker')).id);
    const seen = [];
    const stop = { now: false };
    const workers = sessions.map((sid) => worker(sid, seen, stop));
    await sleep(1500);
    const restarted = restartBrigade(stack, 'SIGKILL');   // the kill is sent before it returns
    stop.now = true;                                      // no run on the new process
    const info = await restarted;
    assert.equal(info.signal, 'SIGKILL');
    await Promise.allSettled(workers);

    const acked = seen.filter((r) => r.completed);
    assert.ok(acked.length >= WORKERS, `the load ran (${acked.length} runs completed before the kill)`);
    assert.ok(seen.length > acked.length, 'some runs were cut by the kill');

    // Every run the client saw completed is stored completed, with its answer.
    for (const r of acked) {
      const g = await stack.api(userKey, 'GET', `/v1/runs/${r.runId}`);
      assert.equal(g.status, 200, `acknowledged run ${r.runId}: ${g.text}`);
      assert.equal(g.body.status, 'completed', `acknowledged run ${r.runId}: ${g.text}`);
    }
    // ... and the audit entry of its tool call with it: the entry is queued
    // without waiting, ahead of the run's end, so it commits no later.
    const audited = new Set((await auditEntries(stack, tenant.admin_key, '&action=tool.call'))
      .map((e) => e.details?.run_id));
    for (const r of acked) assert.ok(audited.has(r.runId), `acknowledged run ${r.runId} has its tool.call entry`);
    const stored = new Map();   // run id -> its stored record (or null: absent)
    for (const r of seen) {
      const g = await stack.api(userKey, 'GET', `/v1/runs/${r.runId}`);
      assert.ok(g.status === 200 || g.status === 404, `${r.runId}: ${g.text}`);
      stored.set(r.runId, g.status === 200 ? g.body : null);
    }
    for (const sid of sessions) {
      const t = await fullTranscript(sid);
      assert.deepEqual(halfTurns(t), [], `session ${sid}: ${JSON.stringify(t)}`);
      const byRun = new Map();
      for (const m of t) {
        if (!byRun.has(m.run_id)) byRun.set(m.run_id, []);
        byRun.get(m.run_id).push(m);
      }
      for (const [runId, msgs] of byRun) {
        // no message of a run that is not stored
        const g = stored.has(runId) ? stored.get(runId)
          : (await stack.api(userKey, 'GET', `/v1/runs/${runId}`)).body;
        assert.ok(g && g.id === runId, `messages of run ${runId}, which is not stored: ${JSON.stringify(msgs)}`);
        assert.equal(msgs[0].role, 'user', `run ${runId} starts with its user message: ${JSON.stringify(msgs)}`);
        const last = msgs.at(-1);
        const final = last.role === 'assistant' && !last.tool_calls;
        if (g.status === 'completed') assert.ok(final, `completed run ${runId} has its answer: ${JSON.stringify(msgs)}`);
        else {
          assert.equal(g.status, 'interrupted', `run ${runId}: ${JSON.stringify(g)}`);
          assert.ok(!final, `interrupted run ${runId} has no final answer: ${JSON.stringify(msgs)}`);
        }
      }
      // the answer the client read is the one stored
      for (const r of acked.filter((x) => x.sessionId === sid)) {
        const msgs = byRun.get(r.runId) || [];
        assert.equal(msgs.at(-1)?.content, r.answer, `run ${r.runId}'s stored answer`);
      }
      // a run absent from the store left nothing behind
      for (const r of seen.filter((x) => x.sessionId === sid && stored.get(x.runId) === null))
        assert.ok(!byRun.has(r.runId), `absent run ${r.runId} has messages`);
    }
    const cut = seen.filter((r) => !r.completed);
    t.diagnostic(`runs acknowledged ${acked.length}; cut by the kill ${cut.length}: absent ` +
      `${cut.filter((r) => stored.get(r.runId) === null).length}, interrupted ` +
      `${cut.filter((r) => stored.get(r.runId)?.status === 'interrupted').length}, completed unread ` +
      `${cut.filter((r) => stored.get(r.runId)?.status === 'completed').length}`);
    // Nothing is left "running", and the sessions take new messages.
    for (const [, g] of stored) if (g) assert.notEqual(g.status, 'running');
    for (const sid of sessions.slice(0, 3)) {
      const r = await postMessage(stack, userKey, sid, `after ${toolMarker('clock', {})} [[tokens:2]]`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.run.status, 'completed', r.text);
    }
  });

  test('a run in flight for a moment is stored: it reads "interrupted" with its message', { timeout: 30_000 }, async () => {
    const s = await newSession(stack, userKey, 'ticker');
    const st = openStream(stack, userKey, s.id, 'Slow. [[latency:5000]] [[tokens:4]]');
    const runId = (await st.next('run.started')).data.run_id;
    // Readable while it runs, stored or not yet.
    const live = await stack.api(userKey, 'GET', `/v1/runs/${runId}`);
    assert.equal(live.status, 200, live.text);
    assert.equal(live.body.status, 'running', live.text);
    await sleep(100);   // well past the 5 ms a start is held at most
    await restartBrigade(stack, 'SIGKILL');
    await st.done.catch(() => {});
    const g = await stack.api(userKey, 'GET', `/v1/runs/${runId}`);
    assert.equal(g.status, 200, g.text);
    assert.equal(g.body.status, 'interrupted', g.text);
    assert.equal(g.body.error?.code, 'server_restart', g.text);
    const t = await transcript(stack, userKey, s.id);
    assert.deepEqual(t.map((m) => [m.role, m.run_id]), [['user', runId]]);
  });
});
