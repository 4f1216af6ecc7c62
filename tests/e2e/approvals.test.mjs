// approvals.test.mjs — durable approvals end to end: a tool whose policy
// asks for a person (always, or when a condition on the arguments holds)
// puts the run in waiting_approval before anything of its batch runs; it is
// approved or denied through POST /v1/runs/{id}/approvals/{call_id}, listed
// by GET /v1/approvals, denied at its deadline; a denied call is reported
// to the model and the run goes on; the session stays busy while the run
// waits, and cancel works on it. The calls are counted at a tool server on
// loopback, so "nothing ran" is checked where it would have happened.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { auditEntries, errorOf, eventually, sleep, useStack } from './lib/harness.mjs';
import { decide as decideApproval, finalRun as finalRunOf, waitingRun as waitingRunOf } from './lib/approvals.mjs';
import { ToolReply, newSession, openStream, postMessage, startToolServer, toolMarker, transcript } from './lib/agents.mjs';

let toolServer;
after(() => (toolServer ? toolServer.close() : undefined));

let tenant, aliceKey, bobKey;
const stack = useStack(async () => {
  // a payment to slow@corp.com is answered 1.5 s later
  toolServer = await startToolServer((req) => (req.body && req.body.to === 'slow@corp.com'
    ? new ToolReply(200, { done: req.url, got: req.body }, 1500)
    : { done: req.url, got: req.body }));
  return {
    extraYaml: [
      'tools:',
      '  - name: pay',
      `    url: "${toolServer.url}/pay"`,
      '    allow_private_networks: true',
      '    parameters: {type: object, properties: {amount: {type: number}, to: {type: string}}, required: [amount]}',
      '    approval: {when: [{pointer: /amount, over: 100}, {pointer: /to, matches: "*@external.com"}]}',
      '  - name: wipe',
      `    url: "${toolServer.url}/wipe"`,
      '    allow_private_networks: true',
      '    approval: always',
      '  - name: quickwipe',
      `    url: "${toolServer.url}/quickwipe"`,
      '    allow_private_networks: true',
      '    approval: always',
      '    approval_timeout_s: 2',
      '  - name: lookup',
      `    url: "${toolServer.url}/lookup"`,
      '    allow_private_networks: true',
      'agents:',
      '  - {name: payer, model: local-model, tools: [pay, wipe, quickwipe, lookup]}',
      '  - {name: strict, model: local-model, tools: [wipe], approval_by: tenant_admin}',
      '  - {name: selfonly, model: local-model, tools: [wipe], approval_by: user}',
    ].join('\n'),
  };
}, async (s) => {
  tenant = await s.makeTenant();
  ({ key: aliceKey } = await s.makeUserWithKey(tenant.admin_key));
  ({ key: bobKey } = await s.makeUserWithKey(tenant.admin_key));
});

const calls = (path) => toolServer.requests.filter((r) => r.url === path).length;
const decide = (key, runId, callId, body) => decideApproval(stack, key, runId, callId, body);
const finalRun = (key, runId, timeoutMs) => finalRunOf(stack, key, runId, timeoutMs);
const waitingRun = (key, agent, tool = 'wipe', args = {}) => waitingRunOf(stack, key, agent, tool, args);


describe('a call that needs approval', () => {
  test('waits (nothing runs, the session is busy), is approved, then the run completes', async () => {
    const before = calls('/pay');
    const { session, run, approval } = await waitingRun(aliceKey, 'payer', 'pay', { amount: 500, to: 'bob@corp.com' });
    assert.equal(approval.status, 'pending');
    assert.equal(approval.tool, 'pay');
    assert.equal(approval.arguments, '{"amount":500,"to":"bob@corp.com"}');
    assert.match(approval.reason, /\/amount is over 100/);
    assert.equal(approval.approval_by, 'any');
    assert.ok(approval.deadline > approval.created_at);
    await sleep(300);
    assert.equal(calls('/pay'), before, 'the tool did not run while waiting');

    const busy = await postMessage(stack, aliceKey, session.id, 'hello?');
    assert.equal(busy.status, 409, busy.text);
    assert.equal(errorOf(busy).code, 'session_busy');

    const list = await stack.api(aliceKey, 'GET', '/v1/approvals');
    assert.equal(list.status, 200, list.text);
    assert.ok(list.body.data.some((a) => a.id === approval.id && a.run_id === run.id), list.text);
    const polled = await stack.api(aliceKey, 'GET', `/v1/runs/${run.id}`);
    assert.deepEqual(polled.body.waiting, { for: 'approval', until: approval.deadline }, polled.text);

    const d = await decide(aliceKey, run.id, approval.id, { decision: 'approve', note: 'fine' });
    assert.equal(d.status, 200, d.text);
    assert.equal(d.body.status, 'approved');
    const end = await finalRun(aliceKey, run.id);
    assert.equal(end.status, 'completed', JSON.stringify(end));
    assert.equal(calls('/pay'), before + 1, 'the approved call ran once');
    const t = await transcript(stack, aliceKey, session.id);
    assert.deepEqual(t.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant']);
    assert.match(t[3].content, /Tool pay returned: .*\/pay/);
    assert.equal(end.approvals[0].status, 'approved');
    // the session takes new messages again
    const next = await postMessage(stack, aliceKey, session.id, 'thanks [[tokens:2]]');
    assert.equal(next.status, 200, next.text);
    assert.equal(next.body.run.status, 'completed');
  });

  test('denied: the model is told "denied" (with the note) and the run goes on', async () => {
    const before = calls('/wipe');
    const { run, approval } = await waitingRun(aliceKey, 'payer', 'wipe', {});
    const d = await decide(aliceKey, run.id, approval.id, { decision: 'deny', note: 'not today' });
    assert.equal(d.status, 200, d.text);
    assert.equal(d.body.status, 'denied');
    const end = await finalRun(aliceKey, run.id);
    assert.equal(end.status, 'completed', JSON.stringify(end));
    const t = await transcript(stack, aliceKey, end.session_id);
    const result = t.find((m) => m.role === 'tool');
    assert.match(result.content, /^denied: .*not today/);
    assert.match(t.at(-1).content, /denied/);
    assert.equal(calls('/wipe'), before, 'a denied call never runs');
  });

  test('a decision replayed is 409; bad bodies are 400 in the error envelope', async () => {
    const { run, approval } = await waitingRun(aliceKey, 'payer', 'wipe', {});
    for (const [body, param] of [
      [{ decision: 'maybe' }, 'decision'],
      [{}, 'decision'],
      [{ decision: 'approve', extra: 1 }, 'extra'],
      [{ decision: 'approve', note: 5 }, 'note'],
      [{ decision: 'approve', note: 'x'.repeat(1001) }, 'note'],
    ]) {
      const r = await decide(aliceKey, run.id, approval.id, body);
      assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 60)}: ${r.text}`);
      assert.equal(errorOf(r).type, 'invalid_request_error');
      assert.equal(errorOf(r).param, param);
    }
    const bad = await stack.api(aliceKey, 'POST', `/v1/runs/${run.id}/approvals/${approval.id}`, '{"decision":"approve","decision":"deny"}');
    assert.equal(bad.status, 400, bad.text);
    assert.equal((await decide(aliceKey, run.id, approval.id, { decision: 'deny' })).status, 200);
    const again = await decide(aliceKey, run.id, approval.id, { decision: 'approve' });
    assert.equal(again.status, 409, again.text);
    assert.equal(errorOf(again).code, 'approval_decided');
    await finalRun(aliceKey, run.id);
    assert.equal((await decide(aliceKey, run.id, 'no-such-call', { decision: 'approve' })).status, 404);
  });

  test('streamed: approval.required, then the stream goes on to run.completed once approved', async () => {
    const session = await newSession(stack, aliceKey, 'payer');
    const s = openStream(stack, aliceKey, session.id, `Stream. ${toolMarker('pay', { amount: 5, to: 'eve@external.com' })}`);
    const ev = await s.next('approval.required');
    assert.equal(ev.data.tool, 'pay');
    assert.equal(ev.data.arguments, '{"amount":5,"to":"eve@external.com"}');
    assert.match(ev.data.reason, /\/to matches "\*@external.com"/);
    assert.ok(ev.data.run_id && ev.data.id);
    assert.ok(!s.events.some((e) => e.event === 'tool.call'), 'no call before the decision');
    const live = await stack.api(aliceKey, 'GET', `/v1/runs/${ev.data.run_id}`);
    assert.equal(live.body.status, 'waiting_approval');
    assert.equal((await decide(aliceKey, ev.data.run_id, ev.data.id, { decision: 'approve' })).status, 200);
    const done = await s.done;
    const names = done.events.map((e) => e.event);
    const i = names.indexOf('approval.required');
    assert.deepEqual(names.slice(i, i + 3), ['approval.required', 'tool.call', 'tool.result'], names.join(','));
    assert.equal(names.at(-1), 'run.completed', names.join(','));
  });

  test('a streaming client that leaves while the run waits: the run still goes on once approved', async () => {
    const session = await newSession(stack, aliceKey, 'payer');
    const s = openStream(stack, aliceKey, session.id, `Leave. ${toolMarker('wipe', {})}`);
    const ev = await s.next('approval.required');
    s.destroy();
    await sleep(200);
    assert.equal((await decide(aliceKey, ev.data.run_id, ev.data.id, { decision: 'approve' })).status, 200);
    const end = await finalRun(aliceKey, ev.data.run_id);
    assert.equal(end.status, 'completed', JSON.stringify(end));
  });

  test('if_busy on a waiting run: enqueue waits for it; interrupt ends it "interrupted"', async () => {
    const { session, run, approval } = await waitingRun(aliceKey, 'payer', 'wipe', {});
    const queued = postMessage(stack, aliceKey, session.id, 'after it [[tokens:2]]', { if_busy: 'enqueue' });
    await sleep(200);
    assert.equal((await decide(aliceKey, run.id, approval.id, { decision: 'deny' })).status, 200);
    const q = await queued;
    assert.equal(q.status, 200, q.text);
    assert.equal(q.body.run.status, 'completed');
    assert.equal((await finalRun(aliceKey, run.id)).status, 'completed');

    const second = await waitingRun(aliceKey, 'payer', 'wipe', {});
    const i = await postMessage(stack, aliceKey, second.session.id, 'instead [[tokens:2]]', { if_busy: 'interrupt' });
    assert.equal(i.status, 200, i.text);
    assert.equal(i.body.run.status, 'completed');
    const old = await stack.api(aliceKey, 'GET', `/v1/runs/${second.run.id}`);
    assert.equal(old.body.status, 'interrupted', old.text);
    assert.equal(old.body.approvals[0].decided_by, 'run_ended');
  });

  test('when-conditions that do not match: the call runs without asking', async () => {
    const before = calls('/pay');
    const session = await newSession(stack, aliceKey, 'payer');
    const r = await postMessage(stack, aliceKey, session.id, `Small. ${toolMarker('pay', { amount: 100, to: 'bob@corp.com' })}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.run.status, 'completed', r.text);
    assert.equal(calls('/pay'), before + 1);
    const g = await stack.api(aliceKey, 'GET', `/v1/runs/${r.body.run.id}`);
    assert.deepEqual(g.body.approvals, []);
    // a tool without a policy never asks
    const l = await postMessage(stack, aliceKey, session.id, `Look. ${toolMarker('lookup', { q: 1 })}`);
    assert.equal(l.body.run.status, 'completed', l.text);
  });

  test('an approval not decided before its deadline is denied, and the run goes on', async () => {
    const before = calls('/quickwipe');
    const { run } = await waitingRun(aliceKey, 'payer', 'quickwipe', {});
    const end = await finalRun(aliceKey, run.id, 10_000);
    assert.equal(end.status, 'completed', JSON.stringify(end));
    assert.equal(end.approvals[0].status, 'denied');
    assert.equal(end.approvals[0].decided_by, 'timeout');
    const t = await transcript(stack, aliceKey, end.session_id);
    assert.match(t.find((m) => m.role === 'tool').content, /^denied: .*deadline/);
    assert.equal(calls('/quickwipe'), before);
    const late = await decide(aliceKey, run.id, end.approvals[0].id, { decision: 'approve' });
    assert.equal(late.status, 409, late.text);
    const entries = await auditEntries(stack, tenant.admin_key);
    const e = entries.find((x) => x.action === 'approval.timeout' && x.target === end.approvals[0].id);
    assert.ok(e, 'the denial by deadline is audited');
    assert.equal(e.actor, 'system');
    assert.equal(e.details.run_id, run.id);
  });

  test('cancel works on a waiting run; its approval can no longer be given', async () => {
    const { session, run, approval } = await waitingRun(aliceKey, 'payer', 'wipe', {});
    const c = await stack.api(aliceKey, 'POST', `/v1/runs/${run.id}/cancel`, {});
    assert.equal(c.status, 200, c.text);
    assert.equal(c.body.status, 'cancelled', c.text);
    const d = await decide(aliceKey, run.id, approval.id, { decision: 'approve' });
    assert.equal(d.status, 409, d.text);
    const list = await stack.api(aliceKey, 'GET', '/v1/approvals');
    assert.ok(!list.body.data.some((a) => a.run_id === run.id));
    const next = await postMessage(stack, aliceKey, session.id, 'again [[tokens:2]]');
    assert.equal(next.status, 200, next.text);
  });

  test('each decision is audited with who decided; the arguments are not in the audit', async () => {
    const { run, approval } = await waitingRun(aliceKey, 'payer', 'pay', { amount: 777, to: 'audit-secret@external.com' });
    assert.equal((await decide(aliceKey, run.id, approval.id, { decision: 'deny', note: 'audit-note-secret' })).status, 200);
    await finalRun(aliceKey, run.id);
    const entries = await auditEntries(stack, tenant.admin_key);
    const e = entries.find((x) => x.action === 'approval.deny' && x.target === approval.id);
    assert.ok(e, `an approval.deny entry: ${JSON.stringify(entries.slice(-5))}`);
    assert.equal(e.details.run_id, run.id);
    assert.equal(e.details.tool, 'pay');
    assert.ok(e.actor, 'names who decided');
    const text = JSON.stringify(entries);
    assert.ok(!text.includes('audit-secret@external.com'), 'no arguments in the audit');
    assert.ok(!text.includes('audit-note-secret'), 'no note in the audit');
  });

  test('max_concurrent_runs: a paused run holds no slot; once approved and going on it holds one again', async () => {
    const { user, key } = await stack.makeUserWithKey(tenant.admin_key);
    const p = await stack.api(tenant.admin_key, 'PATCH', `/v1/users/${user.id}`, { limits: { max_concurrent_runs: 1 } });
    assert.equal(p.status, 200, p.text);
    // the approved call takes 1.5 s at the tool server: the run is going on for that long
    const { run, approval } = await waitingRunOf(stack, key, 'payer', 'pay', { amount: 500, to: 'slow@corp.com' });
    // paused, it holds no slot: another run starts and ends
    const other = await newSession(stack, key, 'payer');
    const r1 = await postMessage(stack, key, other.id, 'hello [[tokens:2]]');
    assert.equal(r1.status, 200, r1.text);
    assert.equal(r1.body.run.status, 'completed');
    assert.equal((await decide(key, run.id, approval.id, { decision: 'approve' })).status, 200);
    await eventually(async () => {
      const g = await stack.api(key, 'GET', `/v1/runs/${run.id}`);
      assert.equal(g.body.status, 'running', g.text);
      return true;
    }, { timeoutMs: 5000, intervalMs: 20 });
    // going on, it holds the user's one slot: a new run is refused
    const third = await newSession(stack, key, 'payer');
    const r2 = await postMessage(stack, key, third.id, 'hello [[tokens:2]]');
    assert.equal(r2.status, 429, r2.text);
    assert.equal(errorOf(r2).code, 'concurrency_limit');
    const end = await finalRun(key, run.id);
    assert.equal(end.status, 'completed', JSON.stringify(end));
    const r3 = await postMessage(stack, key, third.id, 'hello [[tokens:2]]');
    assert.equal(r3.status, 200, r3.text);
  });
});
