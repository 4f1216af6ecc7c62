// security_approvals.test.mjs — the attacks on durable approvals: another
// user (or another tenant's admin) reading or deciding Alice's approval, a
// user deciding when the agent's policy says only a tenant admin may (and
// the reverse), a decision replayed, and the crash cases — brigade killed
// with SIGKILL while a run waits for approval, then started again: the
// pending call and the run survive, the approval can still be given and
// the run completes; a deadline that passes while the server is down
// denies the call at the next start.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { errorOf, sleep, useStack } from './lib/harness.mjs';
import { decide as decideApproval, finalRun as finalRunOf, waitingRun as waitingRunOf } from './lib/approvals.mjs';
import { postMessage, restartBrigade, startToolServer, transcript } from './lib/agents.mjs';

let toolServer;
after(() => (toolServer ? toolServer.close() : undefined));

let tenant, other, aliceKey, bobKey, eveKey;
const stack = useStack(async () => {
  toolServer = await startToolServer((req) => ({ done: req.url }));
  return {
    extraYaml: [
      'tools:',
      '  - name: wipe',
      `    url: "${toolServer.url}/wipe"`,
      '    allow_private_networks: true',
      '    approval: always',
      '  - name: quickwipe',
      `    url: "${toolServer.url}/quickwipe"`,
      '    allow_private_networks: true',
      '    approval: always',
      '    approval_timeout_s: 2',
      'agents:',
      '  - {name: payer, model: local-model, tools: [wipe, quickwipe]}',
      '  - {name: strict, model: local-model, tools: [wipe], approval_by: tenant_admin}',
      '  - {name: selfonly, model: local-model, tools: [wipe], approval_by: user}',
    ].join('\n'),
  };
}, async (s) => {
  tenant = await s.makeTenant();
  other = await s.makeTenant();
  ({ key: aliceKey } = await s.makeUserWithKey(tenant.admin_key));
  ({ key: bobKey } = await s.makeUserWithKey(tenant.admin_key));
  ({ key: eveKey } = await s.makeUserWithKey(other.admin_key));
});

const calls = (path) => toolServer.requests.filter((r) => r.url === path).length;
const decide = (key, runId, callId, body) => decideApproval(stack, key, runId, callId, body);
const finalRun = (key, runId, timeoutMs) => finalRunOf(stack, key, runId, timeoutMs);
const waitingRun = (key, agent, tool = 'wipe', args = {}) => waitingRunOf(stack, key, agent, tool, args);

describe('who may see and decide an approval', () => {
  test("Bob cannot see or decide Alice's approval (404); another tenant's admin neither", async () => {
    const { run, approval } = await waitingRun(aliceKey, 'payer');
    const bobList = await stack.api(bobKey, 'GET', '/v1/approvals');
    assert.equal(bobList.status, 200, bobList.text);
    assert.ok(!bobList.body.data.some((a) => a.run_id === run.id), 'Bob does not see it');
    for (const key of [bobKey, eveKey, other.admin_key]) {
      const d = await decide(key, run.id, approval.id, { decision: 'approve' });
      assert.equal(d.status, 404, d.text);
      assert.equal(errorOf(d).type, 'not_found_error');
      assert.equal((await stack.api(key, 'GET', `/v1/runs/${run.id}`)).status, key === other.admin_key ? 403 : 404);
    }
    const otherList = await stack.api(other.admin_key, 'GET', '/v1/approvals');
    assert.ok(!otherList.body.data.some((a) => a.run_id === run.id), "another tenant's admin does not see it");
    // Alice's own tenant admin sees the tenant's pending approvals
    const adminList = await stack.api(tenant.admin_key, 'GET', '/v1/approvals');
    assert.ok(adminList.body.data.some((a) => a.run_id === run.id && a.id === approval.id), adminList.text);
    // still pending: nobody else's attempt counted
    const g = await stack.api(aliceKey, 'GET', `/v1/runs/${run.id}`);
    assert.equal(g.body.approvals[0].status, 'pending');
    assert.equal((await decide(aliceKey, run.id, approval.id, { decision: 'deny' })).status, 200);
    await finalRun(aliceKey, run.id);
  });

  test('approval_by tenant_admin: the user gets 403, a tenant admin decides', async () => {
    const before = calls('/wipe');
    const { run, approval } = await waitingRun(aliceKey, 'strict');
    assert.equal(approval.approval_by, 'tenant_admin');
    const u = await decide(aliceKey, run.id, approval.id, { decision: 'approve' });
    assert.equal(u.status, 403, u.text);
    assert.equal(errorOf(u).code, 'approval_not_yours');
    const a = await decide(tenant.admin_key, run.id, approval.id, { decision: 'approve' });
    assert.equal(a.status, 200, a.text);
    assert.match(a.body.decided_by, /^tenant_admin:/);
    const end = await finalRun(aliceKey, run.id);
    assert.equal(end.status, 'completed');
    assert.equal(calls('/wipe'), before + 1);
  });

  test('approval_by user: a tenant admin gets 403, the user decides', async () => {
    const { run, approval } = await waitingRun(aliceKey, 'selfonly');
    const a = await decide(tenant.admin_key, run.id, approval.id, { decision: 'approve' });
    assert.equal(a.status, 403, a.text);
    const u = await decide(aliceKey, run.id, approval.id, { decision: 'deny' });
    assert.equal(u.status, 200, u.text);
    const replay = await decide(aliceKey, run.id, approval.id, { decision: 'approve' });
    assert.equal(replay.status, 409, replay.text);
    assert.equal((await finalRun(aliceKey, run.id)).status, 'completed');
  });
});

describe('a credential lost while a run waits', () => {
  test('revoking the key that started a waiting run ends it cancelled; its approval can no longer be given', async () => {
    const before = calls('/wipe');
    const { user, key: k1, keyObj } = await stack.makeUserWithKey(tenant.admin_key);
    const k2 = (await stack.makeUserKey(tenant.admin_key, user.id)).key;
    const { run, approval } = await waitingRun(k1, 'payer');
    const rv = await stack.api(tenant.admin_key, 'DELETE', `/v1/keys/${keyObj.id}`);
    assert.equal(rv.status, 200, rv.text);
    const end = await finalRun(k2, run.id, 5000);
    assert.equal(end.status, 'cancelled', JSON.stringify(end));
    assert.equal(end.error.code, 'revoked_credential');
    const d = await decide(k2, run.id, approval.id, { decision: 'approve' });
    assert.equal(d.status, 409, d.text);
    await sleep(200);
    assert.equal(calls('/wipe'), before, 'the call never ran');
  });
});

describe('a crash while a run waits', () => {
  test('kill -9 during waiting_approval, restart, approve: the run completes', { timeout: 30_000 }, async () => {
    const before = calls('/wipe');
    const { session, run, approval } = await waitingRun(aliceKey, 'payer');
    const info = await restartBrigade(stack, 'SIGKILL');
    assert.equal(info.signal, 'SIGKILL');
    const g = await stack.api(aliceKey, 'GET', `/v1/runs/${run.id}`);
    assert.equal(g.status, 200, g.text);
    assert.equal(g.body.status, 'waiting_approval', `not interrupted by the restart: ${g.text}`);
    assert.equal(g.body.approvals[0].status, 'pending');
    const list = await stack.api(aliceKey, 'GET', '/v1/approvals');
    assert.ok(list.body.data.some((a) => a.id === approval.id));
    // the session is still busy after the restart
    const busy = await postMessage(stack, aliceKey, session.id, 'hello?');
    assert.equal(busy.status, 409, busy.text);
    assert.equal((await decide(aliceKey, run.id, approval.id, { decision: 'approve' })).status, 200);
    const end = await finalRun(aliceKey, run.id);
    assert.equal(end.status, 'completed', JSON.stringify(end));
    assert.equal(calls('/wipe'), before + 1, 'the call ran once, after the restart');
    const t = await transcript(stack, aliceKey, session.id);
    assert.deepEqual(t.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant']);
    assert.match(t[3].content, /Tool wipe returned/);
  });

  test('a deadline that passes while the server is down: denied at start, the run goes on', { timeout: 30_000 }, async () => {
    const before = calls('/quickwipe');
    const { run } = await waitingRun(aliceKey, 'payer', 'quickwipe');
    stack.brigade.proc.kill('SIGKILL');
    await stack.brigade.exited;
    await sleep(2500);                 // the 2 s deadline passes while nothing runs
    await restartBrigade(stack, 'SIGKILL');
    const end = await finalRun(aliceKey, run.id, 10_000);
    assert.equal(end.status, 'completed', JSON.stringify(end));
    assert.equal(end.approvals[0].decided_by, 'timeout');
    const t = await transcript(stack, aliceKey, end.session_id);
    assert.match(t.find((m) => m.role === 'tool').content, /^denied/);
    assert.equal(calls('/quickwipe'), before);
  });

  test('cancel works on a run that waits since before a restart', { timeout: 30_000 }, async () => {
    const { session, run, approval } = await waitingRun(aliceKey, 'payer');
    await restartBrigade(stack, 'SIGKILL');
    const c = await stack.api(aliceKey, 'POST', `/v1/runs/${run.id}/cancel`, {});
    assert.equal(c.status, 200, c.text);
    assert.equal(c.body.status, 'cancelled');
    assert.equal((await decide(aliceKey, run.id, approval.id, { decision: 'approve' })).status, 409);
    assert.equal((await postMessage(stack, aliceKey, session.id, 'next [[tokens:2]]')).status, 200);
  });
});
