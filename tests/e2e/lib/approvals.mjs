// approvals.mjs — helpers for the approval tests: a run that waits for a
// decision (started without a stream, checked to be waiting_approval with
// one approval), a decision, and waiting for a run's final status.

import assert from 'node:assert/strict';

import { eventually } from './harness.mjs';
import { newSession, postMessage, toolMarker } from './agents.mjs';

/** A new session of `agent` whose run calls `tool` and waits: {session, run, approval}. */
export async function waitingRun(stack, key, agent, tool, args = {}, text = 'Do it.') {
  const session = await newSession(stack, key, agent);
  const r = await postMessage(stack, key, session.id, `${text} ${toolMarker(tool, args)}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.run.status, 'waiting_approval', `the POST answers at once with the waiting run: ${r.text}`);
  assert.equal(r.body.message, null);
  const g = await stack.api(key, 'GET', `/v1/runs/${r.body.run.id}`);
  assert.equal(g.status, 200, g.text);
  assert.equal(g.body.status, 'waiting_approval');
  assert.equal(g.body.approvals.length, 1, g.text);
  return { session, run: r.body.run, approval: g.body.approvals[0] };
}

/** POST /v1/runs/{id}/approvals/{call_id} with `body`. */
export function decide(stack, key, runId, callId, body) {
  return stack.api(key, 'POST', `/v1/runs/${runId}/approvals/${encodeURIComponent(callId)}`, body);
}

/** The run once it has ended (GET /v1/runs/{id}). */
export function finalRun(stack, key, runId, timeoutMs = 8000) {
  return eventually(async () => {
    const g = await stack.api(key, 'GET', `/v1/runs/${runId}`);
    assert.ok(['completed', 'failed', 'cancelled', 'interrupted'].includes(g.body.status), `still ${g.body.status}`);
    return g.body;
  }, { timeoutMs });
}
