// security_toolsops.test.mjs — issue 10, items 3, 12 and 13, each attack as
// given:
//   3. a declared HTTP tool's URL placeholder used for path traversal
//      (`project: ".."` turning /api/projects/{project}/tickets into
//      /api/tickets, with the tool's credential) — refused before any
//      request, so the loopback tool server sees nothing; arguments the
//      schema does not declare are refused (the default) or never sent;
//   12. a run outliving the revocation of its key, or the disabling or
//      erasure of its user (API key and JWT): it ends `cancelled` within a
//      second, with the reason; a message queued behind it never starts;
//   13. /readyz without the admin token: only ready / not ready, no
//      provider or model name.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, describe, test } from 'node:test';

import { errorOf, useStack } from './lib/harness.mjs';
import { newSession, openStream, postMessage, startToolServer, toolMarker, transcript } from './lib/agents.mjs';

const TOOL_CREDENTIAL = 'tickets-credential-' + crypto.randomBytes(8).toString('hex');

let toolServer;
after(() => (toolServer ? toolServer.close() : undefined));

let tenant;
let userKey;

const stack = useStack(async () => {
  toolServer = await startToolServer((req) => ({ got: req.url, method: req.method }));
  return {
    extraYaml: [
      'tools:',
      '  - name: tickets',
      '    description: The tickets of one of the user\'s projects.',
      `    url: "${toolServer.url}/api/projects/{project}/tickets"`,
      '    allow_private_networks: true',
      '    method: GET',
      '    headers: {Authorization: "Bearer ${TICKETS_TOKEN}"}',
      '    parameters: {type: object, properties: {project: {type: string}, state: {type: string}}, required: [project]}',
      '  - name: new_ticket',
      `    url: "${toolServer.url}/api/projects/{project}/tickets"`,
      '    allow_private_networks: true',
      '    method: POST',
      '    headers: {Authorization: "Bearer ${TICKETS_TOKEN}"}',
      '    parameters: {type: object, properties: {project: {type: string}, title: {type: string}}, required: [project, title]}',
      '  - name: lenient',
      `    url: "${toolServer.url}/lenient"`,
      '    allow_private_networks: true',
      '    method: POST',
      '    parameters: {type: object, properties: {title: {type: string}}, additionalProperties: true}',
      '  - name: lenient_get',
      `    url: "${toolServer.url}/lenient"`,
      '    allow_private_networks: true',
      '    method: GET',
      '    parameters: {type: object, properties: {page: {type: integer}}, additionalProperties: true}',
      'agents:',
      '  - {name: tracker, model: local-model, tools: [tickets, new_ticket, lenient, lenient_get]}',
      '  - {name: plain, model: local-model, tools: [memory]}',
    ].join('\n'),
    env: { TICKETS_TOKEN: TOOL_CREDENTIAL },
  };
}, async (s) => {
  tenant = await s.makeTenant();
  ({ key: userKey } = await s.makeUserWithKey(tenant.admin_key));
});

/** One tool call through an agent run (the mock model's marker), streamed
 *  to its end: {result (the tool.result event's data), last, requests (what
 *  the tool server received meanwhile)}. */
async function callTool(tool, args) {
  const s = await newSession(stack, userKey, 'tracker');
  const n0 = toolServer.requests.length;
  const res = await openStream(stack, userKey, s.id, `Go. ${toolMarker(tool, args)}`).done;
  const result = res.events.find((e) => e.event === 'tool.result')?.data;
  assert.ok(result, `no tool.result: ${res.text.slice(0, 600)}`);
  return { result, last: res.events.at(-1), requests: toolServer.requests.slice(n0), session: s };
}

describe('declared HTTP tools: path traversal through a placeholder (item 3)', () => {
  test('the attack as given: project ".." never reaches /api/tickets — the tool server sees no request at all', async () => {
    const { result, last, requests, session } = await callTool('tickets', { project: '..' });
    assert.deepEqual(requests, [], `the tool server was reached: ${JSON.stringify(requests)}`);
    assert.equal(result.ok, false, JSON.stringify(result));
    assert.match(result.preview, /arguments\.project: refused for the URL path/);
    assert.match(result.preview, /nothing was sent/);
    // The model was told, and the run still completes.
    assert.equal(last.event, 'run.completed', JSON.stringify(last));
    const t = await transcript(stack, userKey, session.id);
    assert.match(t.find((m) => m.role === 'tool').content, /refused for the URL path/);
  });

  test('a harmless project reaches its own path, with the tool\'s credential (the control)', async () => {
    const { result, requests } = await callTool('tickets', { project: 'web' });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(requests.length, 1);
    assert.equal(requests[0].url, '/api/projects/web/tickets');
    assert.equal(requests[0].headers.authorization, `Bearer ${TOOL_CREDENTIAL}`);
  });

  for (const project of ['.', '', '%2e%2e', '%2E%2e', '.%2e', '%252e%252e', '..;x', '..\\', 'a\\b',
    'a/../..', '%2f', '\uff0e\uff0e', '\u2025', 'a\nb']) {
    test(`placeholder ${JSON.stringify(project)}: refused, nothing sent (GET and POST)`, async () => {
      for (const [tool, args] of [['tickets', { project }], ['new_ticket', { project, title: 'x' }]]) {
        const { result, requests } = await callTool(tool, args);
        assert.deepEqual(requests, [], `${tool}: the tool server was reached: ${JSON.stringify(requests)}`);
        assert.equal(result.ok, false, `${tool}: ${JSON.stringify(result)}`);
        assert.match(result.preview, /refused for the URL path|non-empty "project"/, result.preview);
      }
    });
  }

  test('an escaped NUL cannot sneak a ".." through: refused, nothing sent', async () => {
    const s = await newSession(stack, userKey, 'tracker');
    const n0 = toolServer.requests.length;
    // "..\u0000x": the mock model itself parses the marker's JSON, so what
    // reaches brigade may already be cut to ".."; either way it is refused
    // (validation's own NUL check is in the tools_schema unit test).
    const res = await openStream(stack, userKey, s.id, 'Go. [[tool:tickets {"project":"..\\u0000x"}]]').done;
    const result = res.events.find((e) => e.event === 'tool.result').data;
    assert.equal(result.ok, false, JSON.stringify(result));
    assert.match(result.preview, /NUL|refused for the URL path/);
    assert.equal(toolServer.requests.length, n0);
  });

  test('an undeclared argument is refused by validation by default (additionalProperties: false), nothing sent', async () => {
    const { result, requests } = await callTool('tickets', { project: 'web', state: 'open', owner: 'root' });
    assert.deepEqual(requests, []);
    assert.equal(result.ok, false, JSON.stringify(result));
    assert.match(result.preview, /unknown property "owner" \(allowed: project, state\)/);
    // The model is offered the schema as enforced.
    const r2 = await callTool('new_ticket', { project: 'web', title: 't', admin: true });
    assert.deepEqual(r2.requests, []);
    assert.match(r2.result.preview, /unknown property "admin"/);
  });

  test('with additionalProperties: true, extra arguments pass validation but are never sent (body or query)', async () => {
    const post = await callTool('lenient', { title: 'hello', admin: true, owner: 'root' });
    assert.equal(post.result.ok, true, JSON.stringify(post.result));
    assert.equal(post.requests.length, 1);
    assert.deepEqual(post.requests[0].body, { title: 'hello' });
    const get = await callTool('lenient_get', { page: 2, debug: true });
    assert.equal(get.result.ok, true, JSON.stringify(get.result));
    assert.equal(get.requests.length, 1);
    assert.equal(get.requests[0].url, '/lenient?page=2');
  });
});

// ---------------------------------------------------------------- item 12

const b64url = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
function signHs256(payload, key) {
  const input = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(payload)}`;
  return `${input}.${crypto.createHmac('sha256', key).update(input).digest('base64url')}`;
}

/** Start a long run (the mock answers after 5 s) as `key`, wait for it to
 *  start: {stream, runId, sessionId}. */
async function longRun(key) {
  const s = await newSession(stack, key, 'plain');
  const stream = openStream(stack, key, s.id, 'take your time [[latency:5000]] [[tokens:3]]');
  const started = await stream.next('run.started');
  return { stream, runId: started.data.run_id, sessionId: s.id };
}

/** The stream must end within `ms` of t0 with run.failed, cancelled, code. */
async function assertCancelledSoon(stream, t0, code, ms = 1000) {
  const res = await stream.done;
  const took = Date.now() - t0;
  const last = res.events.at(-1);
  assert.equal(last.event, 'run.failed', `${res.text.slice(-400)}`);
  assert.equal(last.data.status, 'cancelled', JSON.stringify(last.data));
  assert.equal(last.data.error.code, code, JSON.stringify(last.data));
  assert.ok(last.data.error.message.length > 0);
  assert.ok(took < ms, `the stream ended ${took} ms after the change (limit ${ms} ms)`);
  return last.data;
}

describe('runs end when their credential is lost (item 12)', () => {
  test('revoking the key: its run ends cancelled within 1 s with the reason; a message queued with it never starts; the user\'s other key is untouched', async () => {
    const { user, key: k1, keyObj } = await stack.makeUserWithKey(tenant.admin_key);
    const k2 = (await stack.makeUserKey(tenant.admin_key, user.id)).key;
    const victim = await longRun(k1);
    // A second run of the same user, started with the other key, goes on.
    const bystander = await longRun(k2);
    // A message of k1 waiting behind the first run.
    const queued = postMessage(stack, k1, victim.sessionId, 'queued [[tokens:2]]', { if_busy: 'enqueue' });
    await new Promise((r) => setTimeout(r, 200));   // let it queue

    const t0 = Date.now();
    const rv = await stack.api(tenant.admin_key, 'DELETE', `/v1/keys/${keyObj.id}`);
    assert.equal(rv.status, 200, rv.text);
    const failed = await assertCancelledSoon(victim.stream, t0, 'revoked_credential');
    assert.match(failed.error.message, /revoked/);

    const q = await queued;
    assert.equal(q.status, 401, q.text);
    assert.equal(errorOf(q).code, 'revoked_credential');
    assert.equal(errorOf(q).type, 'authentication_error');

    // The run reads cancelled with the reason (read with the other key).
    const run = await stack.api(k2, 'GET', `/v1/runs/${victim.runId}`);
    assert.equal(run.status, 200, run.text);
    assert.equal(run.body.status, 'cancelled');
    assert.equal(run.body.error.code, 'revoked_credential');
    assert.match(run.body.error.message, /revoked/);
    // The queued message was never written.
    const t = await transcript(stack, k2, victim.sessionId);
    assert.deepEqual(t.map((m) => m.content).filter((c) => /queued/.test(c || '')), []);

    // The run of the other key is still going, and completes.
    assert.equal((await stack.api(k2, 'GET', `/v1/runs/${bystander.runId}`)).body.status, 'running');
    const done = await bystander.stream.done;
    assert.equal(done.events.at(-1).event, 'run.completed', done.text.slice(-300));
  });

  test('disabling the user: every run of the user ends cancelled within 1 s ("user_disabled")', async () => {
    const { user, key } = await stack.makeUserWithKey(tenant.admin_key);
    const a = await longRun(key);
    const b = await longRun(key);
    const t0 = Date.now();
    const r = await stack.api(tenant.admin_key, 'PATCH', `/v1/users/${user.id}`, { disabled: true });
    assert.equal(r.status, 200, r.text);
    for (const x of [a, b]) {
      const failed = await assertCancelledSoon(x.stream, t0, 'user_disabled');
      assert.match(failed.error.message, /disabled/);
    }
    // Enabled again, the user reads both runs as cancelled with the reason.
    assert.equal((await stack.api(tenant.admin_key, 'PATCH', `/v1/users/${user.id}`, { disabled: false })).status, 200);
    for (const x of [a, b]) {
      const run = (await stack.api(key, 'GET', `/v1/runs/${x.runId}`)).body;
      assert.equal(run.status, 'cancelled', JSON.stringify(run));
      assert.equal(run.error.code, 'user_disabled');
    }
  });

  test('a JWT user disabled: the run ends cancelled within 1 s', async () => {
    const jt = await stack.makeTenant();
    const issuer = `https://idp.example.test/${jt.id}`;
    const secret = crypto.randomBytes(32).toString('hex');
    assert.equal((await stack.api(jt.admin_key, 'PATCH', `/v1/tenants/${jt.id}`, { jwt: { issuer, audience: 'brigade-api', alg: 'HS256', key: secret } })).status, 200);
    const now = Math.floor(Date.now() / 1000);
    const token = signHs256({ iss: issuer, aud: 'brigade-api', sub: 'jwt-runner', iat: now, exp: now + 600 }, secret);
    const me = await stack.api(token, 'GET', '/v1/me');   // provisions the user
    assert.equal(me.status, 200, me.text);
    const userId = me.body.user?.id ?? me.body.id;
    assert.ok(userId, me.text);
    const x = await longRun(token);
    const t0 = Date.now();
    assert.equal((await stack.api(jt.admin_key, 'PATCH', `/v1/users/${userId}`, { disabled: true })).status, 200);
    await assertCancelledSoon(x.stream, t0, 'user_disabled');
  });

  test('erasing the user (DELETE /v1/users/{id}): the run ends cancelled within 1 s ("user_deleted")', async () => {
    const { user, key } = await stack.makeUserWithKey(tenant.admin_key);
    const x = await longRun(key);
    const t0 = Date.now();
    assert.equal((await stack.api(tenant.admin_key, 'DELETE', `/v1/users/${user.id}`)).status, 200);
    await assertCancelledSoon(x.stream, t0, 'user_deleted');
  });
});

// ---------------------------------------------------------------- item 13

describe('/readyz reveals nothing without the admin token (item 13)', () => {
  test('no credential, a user key or a wrong token: only {"status":"ready"}; the admin token sees the checks', async () => {
    const names = ['upstream-mock', 'local', 'gpt-test', 'local-model', 'mock-gpt'];
    for (const cred of [null, userKey, 'not-the-admin-token', tenant.admin_key]) {
      const r = await stack.api(cred, 'GET', '/readyz');
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, { status: 'ready' });
      for (const n of names) assert.ok(!r.text.includes(n), `"${n}" shown: ${r.text}`);
    }
    const a = await stack.admin('GET', '/readyz');
    assert.equal(a.status, 200);
    assert.equal(a.body.status, 'ready');
    assert.equal(a.body.checks.store, 'ok');
    assert.equal(a.body.checks.providers['upstream-mock'], 'ok');
    assert.ok(Object.keys(a.body.checks.deployments).some((k) => k.startsWith('gpt-test@')));
  });
});
