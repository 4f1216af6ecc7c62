// traces_agents.test.mjs — what an agent run looks like as a trace: the
// client's traceparent continued by the request span, the run beneath it,
// each model call ("chat MODEL", gen_ai attributes) with its governance
// decision and attempts, each tool call with its guardrail decisions; and a
// gateway call's spans, including an attempt that was retried. The audit
// log records the tool call with the credential it used.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';

import { newSession, postMessage, toolMarker } from './lib/agents.mjs';
import { eventually, useStack } from './lib/harness.mjs';

const stack = useStack({
  extraYaml: 'agents:\n  - {name: timer, model: local-model, tools: [clock]}\n',
}, async (s) => {
  s.tenant = await s.makeTenant();
  s.u = await s.makeUserWithKey(s.tenant.admin_key);
});

function traceparent() {
  return { id: randomBytes(16).toString('hex'), header: (id) => `00-${id}-${randomBytes(8).toString('hex')}-01` };
}

async function readTrace(key, traceId, want) {
  let trace;
  await eventually(async () => {
    const r = await stack.api(key, 'GET', `/v1/traces/${traceId}`);
    if (r.status !== 200) return false;
    trace = r.body;
    return want(trace.spans);
  }, { timeoutMs: 4000 });
  return trace;
}

const byName = (spans, re) => spans.filter((s) => re.test(s.name));

describe('span trees', () => {
  test('an agent run with a tool call: request → run → model calls (governance, attempt) and tool (guardrails)', async () => {
    const tp = traceparent();
    const s = await newSession(stack, stack.u.key, 'timer');
    const r = await postMessage(stack, stack.u.key, s.id, `what time is it? ${toolMarker('clock', {})}`, {},);
    assert.equal(r.status, 200);
    // the message above was sent without a traceparent: send one that is
    const r2 = await stack.api(stack.u.key, 'POST', `/v1/sessions/${s.id}/messages`,
      { content: `again ${toolMarker('clock', {})}` }, { traceparent: tp.header(tp.id) });
    assert.equal(r2.status, 200, r2.text);
    assert.equal(r2.body.run.status, 'completed');
    assert.ok(r2.headers.get('traceparent').includes(tp.id), 'the response continues the client trace');

    const trace = await readTrace(stack.u.key, tp.id, (spans) =>
      spans.some((x) => x.name === 'run timer') && byName(spans, /^chat /).length >= 2 && spans.some((x) => x.name === 'tool clock'));
    const spans = trace.spans;
    const ids = new Map(spans.map((x) => [x.span_id, x]));
    const parentOf = (x) => ids.get(x.parent_span_id);

    const run = spans.find((x) => x.name === 'run timer');
    const request = parentOf(run);
    assert.ok(request && request.kind === 'server', 'the run hangs under the request span');
    assert.equal(run.attributes['brigade.run.status'], 'completed');
    assert.equal(run.attributes['brigade.run_id'], r2.body.run.id);

    const chats = byName(spans, /^chat /);
    assert.equal(chats.length, 2, 'two model calls: the tool call, then the answer');
    for (const c of chats) {
      assert.equal(parentOf(c).span_id, run.span_id);
      assert.equal(c.attributes['gen_ai.operation.name'], 'chat');
      assert.equal(c.attributes['gen_ai.request.model'], 'local-model');
      assert.equal(c.attributes['gen_ai.system'], 'brigade.mock');
      assert.ok(c.attributes['gen_ai.usage.input_tokens'] > 0);
      assert.ok(c.attributes['gen_ai.usage.output_tokens'] > 0);
      const kids = spans.filter((x) => x.parent_span_id === c.span_id).map((x) => x.name).sort();
      assert.deepEqual(kids, ['attempt', 'governance']);
      const gov = spans.find((x) => x.parent_span_id === c.span_id && x.name === 'governance');
      assert.equal(gov.attributes['brigade.decision'], 'admitted');
    }
    const tool = spans.find((x) => x.name === 'tool clock');
    assert.equal(parentOf(tool).span_id, run.span_id);
    assert.equal(tool.attributes['gen_ai.tool.name'], 'clock');
    assert.equal(tool.attributes['brigade.tool.ok'], true);
    assert.equal(tool.attributes['brigade.credential'], stack.u.keyObj.id);
    const guards = spans.filter((x) => x.parent_span_id === tool.span_id && x.name === 'guardrail');
    assert.deepEqual(guards.map((g) => g.attributes['brigade.guardrail.check']).sort(), ['tool_arguments', 'tool_permission']);
    assert.ok(guards.every((g) => g.attributes['brigade.guardrail.decision'] === 'allow'));
  });

  test('a gateway call retried once: one chat span, two attempts, what served it', async () => {
    const tp = traceparent();
    const body = { model: 'gpt-test', messages: [{ role: 'user', content: `retry me [[fault:server_error:1]] ${tp.id}` }] };
    const r = await stack.api(stack.u.key, 'POST', '/v1/chat/completions', body, { traceparent: tp.header(tp.id) });
    assert.equal(r.status, 200, r.text);
    const trace = await readTrace(stack.u.key, tp.id, (spans) => byName(spans, /^attempt$/).length >= 2);
    const chat = trace.spans.find((x) => x.name === 'chat gpt-test');
    assert.ok(chat);
    assert.equal(chat.kind, 'client');
    assert.equal(chat.attributes['gen_ai.response.model'], 'gpt-test');
    assert.equal(chat.attributes['brigade.attempts'], 2);
    assert.match(chat.attributes['brigade.deployment'], /upstream-mock/);
    const attempts = trace.spans.filter((x) => x.parent_span_id === chat.span_id && x.name === 'attempt')
      .sort((a, b) => a.attributes['brigade.attempt'] - b.attributes['brigade.attempt']);
    assert.equal(attempts.length, 2);
    assert.equal(attempts[0].attributes['brigade.outcome'], 'server_error');
    assert.equal(attempts[0].attributes['brigade.next'], 'retry');
    assert.equal(attempts[1].attributes['brigade.outcome'], 'ok');
  });

  test('a client trace marked unsampled is continued but not stored', async () => {
    const id = randomBytes(16).toString('hex');
    const r = await stack.api(stack.u.key, 'GET', '/v1/me', undefined,
      { traceparent: `00-${id}-${randomBytes(8).toString('hex')}-00` });
    assert.equal(r.status, 200);
    const tp = r.headers.get('traceparent');
    assert.ok(tp.startsWith(`00-${id}-`) && tp.endsWith('-00'), tp);
    // a sampled request after it is stored (so the store is not merely slow)
    const id2 = randomBytes(16).toString('hex');
    await stack.api(stack.u.key, 'GET', '/v1/me', undefined, { traceparent: `00-${id2}-${randomBytes(8).toString('hex')}-01` });
    await readTrace(stack.u.key, id2, (spans) => spans.length >= 1);
    assert.equal((await stack.api(stack.u.key, 'GET', `/v1/traces/${id}`)).status, 404);
  });

  test('a tool call is audited with the credential it used', async () => {
    const s = await newSession(stack, stack.u.key, 'timer');
    const r = await postMessage(stack, stack.u.key, s.id, `audit me ${toolMarker('clock', {})}`);
    assert.equal(r.status, 200);
    await eventually(async () => {
      const a = await stack.api(stack.tenant.admin_key, 'GET', '/v1/audit?action=tool.call');
      if (a.status !== 200) return false;
      const e = a.body.data.find((x) => x.details && x.details.run_id === r.body.run.id);
      if (!e) return false;
      assert.equal(e.target, 'clock');
      assert.equal(e.credential, stack.u.keyObj.id);
      assert.equal(e.details.credential, stack.u.keyObj.id);
      assert.equal(e.details.allowed, true);
      return true;
    });
  });
});
