// pii.test.mjs — personal data end to end (docs/guard.md, "PII"):
// - an agent with `guard: {pii: {input: redact}}`: the model is sent
//   [EMAIL] and [CARD] instead of the user's values — the mock model builds
//   its tool call from the user's message, so the tool server receives what
//   the model got — and a tool's output reaches the model (and the
//   transcript) redacted;
// - `output: redact`: the final answer returned and persisted is redacted;
// - `flag`: guard.flagged events with detector pii and the kinds, never the
//   values, and nothing rewritten;
// - a tenant's own agent takes the same policy (POST /v1/agents);
// - with the policy off, the values still never reach the server's log (a
//   command tool's stderr, logged because logs.content is on), the audit
//   log (a user whose external id is an e-mail address) or a trace (a
//   refused call whose argument name is an e-mail address).

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { auditEntries, errorOf, eventually, useStack } from './lib/harness.mjs';
import { newSession, postMessage, streamMessage, startToolServer, toolMarker, transcript } from './lib/agents.mjs';

const EMAIL = 'jane.doe@example.com';
const CARD = '4111 1111 1111 1111';
const IBAN = 'GB82 WEST 1234 5698 7654 32';
const OTHER_EMAIL = 'bob.smith@example.org';
const PHONE = '+44 20 7946 0958';
const VALUES = [EMAIL, CARD, IBAN, OTHER_EMAIL, PHONE, '4111111111111111', 'GB82WEST'];
const PAGE = `Contact: ${OTHER_EMAIL}, IBAN ${IBAN}, phone ${PHONE}.`;

let toolServer;
after(() => toolServer?.close());

let tenant, aliceKey;
const stack = useStack(async () => {
  toolServer = await startToolServer((req) => {
    if (req.url === '/page') return { text: PAGE };
    return { done: req.url };
  });
  return {
    extraYaml: [
      'observability: {logs: {content: true}}',
      // no bubblewrap: the command tool runs unsandboxed (this test is about its stderr)
      'sandbox: {bwrap: /nonexistent/bwrap, allow_unsandboxed: true}',
      'tools:',
      `  - {name: page, url: "${toolServer.url}/page", effects: read, allow_private_networks: true}`,
      '  - name: send',
      `    url: "${toolServer.url}/send"`,
      '    allow_private_networks: true',
      '    parameters: {type: object, properties: {to: {type: string}, body: {type: string}}, additionalProperties: false}',
      '  - name: sh',
      '    kind: command',
      '    argv: [/bin/sh, -c, "{script}"]',
      '    env: {PATH: /usr/bin:/bin}',
      '    parameters: {type: object, properties: {script: {type: string}}, required: [script]}',
      'agents:',
      '  - {name: redact-in, model: local-model, tools: [send, page], guard: {pii: {input: redact}}}',
      '  - {name: redact-out, model: local-model, tools: [page], guard: {pii: {output: redact}}}',
      '  - {name: flagger, model: local-model, tools: [page], guard: {pii: {input: flag, output: flag}}}',
      '  - {name: plain, model: local-model, tools: [send, page, sh]}',
    ].join('\n'),
  };
}, async (s) => {
  tenant = await s.makeTenant();
  // a user whose external id is an e-mail address: its audit entry must not hold it
  ({ key: aliceKey } = await s.makeUserWithKey(tenant.admin_key, EMAIL));
});

const pii = (events) => events.filter((e) => e.event === 'guard.flagged' && e.data.detector === 'pii').map((e) => e.data);
const noValues = (what, text) => {
  for (const v of VALUES) assert.ok(!text.includes(v), `${what} holds ${v}: ${text.slice(Math.max(0, text.indexOf(v) - 200), text.indexOf(v) + 200)}`);
};

async function turn(agent, content) {
  const s = await newSession(stack, aliceKey, agent);
  const r = await streamMessage(stack, aliceKey, s.id, content);
  assert.equal(r.status, 200, r.text);
  const t = await transcript(stack, aliceKey, s.id);
  return { session: s, events: r.events, reply: t.at(-1), transcript: t, headers: r.headers };
}

describe('input: redact', () => {
  test('the model is sent [EMAIL] and [CARD]: the call it builds from the message carries them', async () => {
    const before = toolServer.requests.length;
    const msg = `I am ${EMAIL}, my card is ${CARD}. ${toolMarker('send', { to: EMAIL, body: `card ${CARD}` })}`;
    const { events, transcript: t } = await turn('redact-in', msg);
    const sent = toolServer.requests.slice(before).filter((r) => r.url === '/send');
    assert.equal(sent.length, 1);
    assert.deepEqual(sent[0].body, { to: '[EMAIL]', body: 'card [CARD]' });
    const [f] = pii(events);
    assert.ok(f, JSON.stringify(events.map((e) => e.event)));
    assert.equal(f.channel, 'user');
    assert.equal(f.action, 'redact');
    assert.deepEqual(f.labels, ['email', 'card']);
    assert.ok(f.spans.length >= 2 && f.spans.every((s) => Number.isInteger(s.start) && s.end > s.start));
    noValues('the guard.flagged event', JSON.stringify(f));
    // the user's own message is kept as they wrote it
    assert.equal(t.find((m) => m.role === 'user').content, msg);
  });

  test('a tool\'s output reaches the model and the transcript redacted', async () => {
    const { events, reply, transcript: t } = await turn('redact-in', `Read it. ${toolMarker('page', {})}`);
    const tool = t.find((m) => m.role === 'tool');
    noValues('the recorded tool result', tool.content);
    assert.match(tool.content, /Contact: \[EMAIL\], IBAN \[IBAN\], phone \[PHONE\]/);
    assert.match(reply.content, /\[EMAIL\]/);        // the mock quotes what it was sent
    noValues('the answer', reply.content);
    const f = pii(events).find((e) => e.channel === 'tool');
    assert.equal(f.tool, 'page');
    assert.deepEqual(f.labels, ['email', 'phone', 'iban']);
  });
});

describe('output: redact', () => {
  test('the final answer, returned and persisted, is redacted; the tool result is not (input is off)', async () => {
    const s = await newSession(stack, aliceKey, 'redact-out');
    const r = await postMessage(stack, aliceKey, s.id, `Read it. ${toolMarker('page', {})}`);
    assert.equal(r.status, 200, r.text);
    const answer = JSON.stringify(r.body);
    assert.match(answer, /Tool page returned: .*Contact: \[EMAIL\], IBAN \[IBAN\], phone \[PHONE\]/);
    const t = await transcript(stack, aliceKey, s.id);
    const last = t.at(-1);
    assert.equal(last.role, 'assistant');
    noValues('the persisted answer', last.content);
    assert.ok(t.find((m) => m.role === 'tool').content.includes(OTHER_EMAIL), 'input off: the tool result is as it came');
  });

  test('streamed: a guard.flagged event on the model channel', async () => {
    const { events, reply } = await turn('redact-out', toolMarker('page', {}));
    const f = pii(events).find((e) => e.channel === 'model');
    assert.ok(f, JSON.stringify(pii(events)));
    assert.equal(f.action, 'redact');
    assert.deepEqual(f.labels, ['email', 'phone', 'iban']);
    noValues('the persisted answer', reply.content);
  });
});

describe('flag', () => {
  test('events name the kinds on each channel; nothing is rewritten', async () => {
    const { events, reply, transcript: t } = await turn('flagger', `I am ${EMAIL}. ${toolMarker('page', {})}`);
    const fs = pii(events);
    assert.deepEqual(fs.map((f) => [f.channel, f.action]).sort(),
      [['model', 'flag'], ['tool', 'flag'], ['user', 'flag']]);
    noValues('the events', JSON.stringify(fs));
    assert.ok(t.find((m) => m.role === 'tool').content.includes(OTHER_EMAIL));
    assert.ok(reply.content.includes(OTHER_EMAIL), reply.content);
  });

  test('off: no pii event', async () => {
    const { events } = await turn('plain', `I am ${EMAIL}. ${toolMarker('page', {})}`);
    assert.deepEqual(pii(events), []);
  });
});

describe('a tenant\'s own agent', () => {
  test('takes the policy, shows it, and refuses another word', async () => {
    const adm = tenant.admin_key;
    const c = await stack.api(adm, 'POST', '/v1/agents', {
      name: 'private-eye', model: 'local-model', tools: ['page'], guard: { pii: { input: 'redact', output: 'flag' } },
    });
    assert.equal(c.status, 201, c.text);
    assert.deepEqual(c.body.guard.pii, { input: 'redact', output: 'flag' });
    const bad = await stack.api(adm, 'POST', '/v1/agents', {
      name: 'bad-eye', model: 'local-model', guard: { pii: { input: 'mask' } },
    });
    assert.equal(bad.status, 400, bad.text);
    assert.match(errorOf(bad).message, /pii\.input.*off, flag or redact/);
    const { events, transcript: t } = await turn('private-eye', toolMarker('page', {}));
    assert.match(t.find((m) => m.role === 'tool').content, /Contact: \[EMAIL\]/);
    // the model saw the output redacted, so its answer (quoting it) holds
    // nothing to flag
    assert.deepEqual(pii(events).map((f) => [f.channel, f.action]), [['tool', 'redact']]);
  });
});

describe('always redacted, whatever the policy', () => {
  test('the log, the audit log and traces never hold the values', async () => {
    // a command tool that writes the values to its stderr, which is logged
    // (logs.content is on) — and fails, so its error reaches the model
    const sh = await turn('plain', toolMarker('sh', { script: `echo "card ${CARD} mail ${EMAIL}" >&2; exit 3` }));
    assert.ok(sh.transcript.find((m) => m.role === 'tool'), 'the tool ran');
    // a call the guard refuses, whose argument's name is an e-mail address:
    // the refusal's words are the guardrail span's error message
    const refused = await turn('plain', toolMarker('send', { [EMAIL]: 'x' }));
    const tool = refused.transcript.find((m) => m.role === 'tool');
    assert.match(tool.content, /unknown property/);
    const traceId = refused.headers.traceparent.split('-')[1];
    let trace;
    await eventually(async () => {
      const r = await stack.api(aliceKey, 'GET', `/v1/traces/${traceId}`);
      if (r.status !== 200) return false;
      trace = r.text;
      return /unknown property/.test(r.text);
    }, { timeoutMs: 4000 });
    noValues('the trace', trace);
    assert.match(trace, /unknown property \\"\[EMAIL\]\\"/);

    await eventually(() => /sandbox: .*stderr: .*\[CARD\]/.test(stack.brigade.stderr), { timeoutMs: 4000 });
    noValues('the server log', stack.brigade.stderr);
    assert.match(stack.brigade.stderr, /card \[CARD\] mail \[EMAIL\]/);

    const audit = await auditEntries(stack, tenant.admin_key);
    const created = audit.find((e) => e.action === 'user.create');
    assert.ok(created, 'the user.create entry');
    assert.equal(created.details.external_id, '[EMAIL]');
    noValues('the audit log', JSON.stringify(audit));
    // the redacted entries still verify: redaction happens before chaining
    const v = await stack.admin('GET', '/v1/audit/verify');
    if (v.status === 200) assert.equal(v.body.intact ?? true, true, v.text);
  });
});
