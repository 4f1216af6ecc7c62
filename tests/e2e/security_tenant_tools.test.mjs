// security_tenant_tools.test.mjs — attacks on tools and agents per tenant:
// one tenant reaching another's tools or agents (list, get, patch, delete,
// a session with another tenant's agent, a run calling another tenant's
// tool, a name both tenants use), a user acting as an admin, bodies that
// try to slip past the config file's rules (a repeated key, an unknown
// field, a bad schema, URL templates that climb out of their path, an
// oversized body, a read of the server's environment), and a tool that
// hopes to receive the caller's brigade key or JWT.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, describe, test } from 'node:test';

import { errorOf, noteSecret, useStack } from './lib/harness.mjs';
import { newSession, postMessage, startToolServer, toolMarker } from './lib/agents.mjs';

let capture;
after(() => (capture ? capture.close() : undefined));

let A;
let B;
let aUser;
let bUser;
const stack = useStack(async () => {
  capture = await startToolServer((req) => ({ ok: true, url: req.url }));
  return {
    limits: { max_body_bytes: 262144 },
    extraYaml: [
      // The tenants' own tools call the test server on loopback: the
      // operator names that network for every agent request (docs/egress.md).
      'egress: {allow_networks: [127.0.0.1/32]}',
      'tools:',
      `  - {name: cat-tool, url: "${capture.url}/cat", allow_private_networks: true}`,
      'agents:',
      '  - {name: assistant, model: local-model, tools: [memory, clock]}',
    ].join('\n'),
  };
}, async (s) => {
  A = await s.makeTenant();
  B = await s.makeTenant();
  aUser = await s.makeUserWithKey(A.admin_key);
  bUser = await s.makeUserWithKey(B.admin_key);
});

const tool = (name, urlPath, extra = {}) => ({
  name, url: `${capture.url}${urlPath}`, method: 'POST', effects: 'external',
  parameters: { type: 'object', properties: { q: { type: 'string' } } }, ...extra,
});

const requestsTo = (prefix) => capture.requests.filter((r) => r.url.startsWith(prefix));

describe("a tenant never sees or calls another tenant's tools or agents", () => {
  test('list, get, patch and delete of the other tenant\'s tool and agent are 404', async () => {
    assert.equal((await stack.api(A.admin_key, 'POST', '/v1/tools', tool('a-secret-tool', '/a-secret'))).status, 201);
    assert.equal((await stack.api(A.admin_key, 'POST', '/v1/agents', { name: 'a-agent', model: 'local-model', tools: ['a-secret-tool'] })).status, 201);

    const tools = await stack.api(B.admin_key, 'GET', '/v1/tools');
    assert.equal(tools.status, 200);
    assert.ok(!tools.text.includes('a-secret-tool'), tools.text);
    const agents = await stack.api(B.admin_key, 'GET', '/v1/agents');
    assert.ok(!agents.text.includes('a-agent'), agents.text);
    const bUserAgents = await stack.api(bUser.key, 'GET', '/v1/agents');
    assert.ok(!bUserAgents.text.includes('a-agent'), bUserAgents.text);

    for (const [method, path, body] of [
      ['GET', '/v1/tools/a-secret-tool'], ['PATCH', '/v1/tools/a-secret-tool', { description: 'x' }],
      ['DELETE', '/v1/tools/a-secret-tool'], ['GET', '/v1/agents/a-agent'],
      ['PATCH', '/v1/agents/a-agent', { max_steps: 1 }], ['DELETE', '/v1/agents/a-agent'],
    ]) {
      const r = await stack.api(B.admin_key, method, path, body);
      assert.equal(r.status, 404, `${method} ${path}: ${r.text}`);
      assert.equal(errorOf(r).type, 'not_found_error');
    }
    // A's definitions are untouched
    const still = await stack.api(A.admin_key, 'GET', '/v1/tools/a-secret-tool');
    assert.equal(still.status, 200);
    assert.equal(still.body.description, '');
  });

  test("a session with another tenant's agent is refused; an agent cannot list another tenant's tool", async () => {
    const s = await stack.api(bUser.key, 'POST', '/v1/sessions', { agent: 'a-agent' });
    assert.equal(s.status, 400, s.text);
    assert.equal(errorOf(s).code, 'unknown_agent');
    const ag = await stack.api(B.admin_key, 'POST', '/v1/agents', { name: 'b-thief', model: 'local-model', tools: ['a-secret-tool'] });
    assert.equal(ag.status, 400, ag.text);
    assert.equal(errorOf(ag).param, 'tools[0]');
  });

  test("a run that calls another tenant's tool by name: refused, nothing reaches the tool", async () => {
    const before = requestsTo('/a-secret').length;
    const sess = await newSession(stack, bUser.key, 'assistant');
    const r = await postMessage(stack, bUser.key, sess.id, `try ${toolMarker('a-secret-tool', { q: 'x' })}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(requestsTo('/a-secret').length, before, "B's run never reached A's tool");
    const msgs = await stack.api(bUser.key, 'GET', `/v1/sessions/${sess.id}/messages`);
    assert.match(msgs.text, /not available to this agent/);
  });

  test('a name both tenants use: each tenant\'s run uses its own definition, also in a session made earlier', async () => {
    for (const [t, p] of [[A, '/dup-a'], [B, '/dup-b']]) {
      assert.equal((await stack.api(t.admin_key, 'POST', '/v1/tools', tool('dup', p))).status, 201);
    }
    // sessions made before the agents are redefined
    assert.equal((await stack.api(A.admin_key, 'POST', '/v1/agents', { name: 'same', model: 'local-model', tools: ['dup'] })).status, 201);
    assert.equal((await stack.api(B.admin_key, 'POST', '/v1/agents', { name: 'same', model: 'local-model', tools: ['dup'] })).status, 201);
    const sa = await newSession(stack, aUser.key, 'same');
    const sb = await newSession(stack, bUser.key, 'same');
    const [a0, b0] = [requestsTo('/dup-a').length, requestsTo('/dup-b').length];
    assert.equal((await postMessage(stack, aUser.key, sa.id, toolMarker('dup', { q: 'a' }))).status, 200);
    assert.equal((await postMessage(stack, bUser.key, sb.id, toolMarker('dup', { q: 'b' }))).status, 200);
    assert.equal(requestsTo('/dup-a').length, a0 + 1);
    assert.equal(requestsTo('/dup-b').length, b0 + 1);
    assert.equal(requestsTo('/dup-a').at(-1).body.q, 'a');
    assert.equal(requestsTo('/dup-b').at(-1).body.q, 'b');
    // B's session cannot be driven by A's user either
    const cross = await postMessage(stack, aUser.key, sb.id, 'hi');
    assert.equal(cross.status, 404, cross.text);
  });
});

describe('only a tenant admin defines tools and agents', () => {
  test('a user gets 403 for every write and for the definitions', async () => {
    for (const [method, path, body] of [
      ['POST', '/v1/tools', tool('u-tool', '/u')], ['GET', '/v1/tools'], ['GET', '/v1/tools/cat-tool'],
      ['PATCH', '/v1/tools/dup', { description: 'x' }], ['DELETE', '/v1/tools/dup'],
      ['POST', '/v1/agents', { name: 'u-agent', model: 'local-model' }],
      ['PATCH', '/v1/agents/same', { max_steps: 1 }], ['DELETE', '/v1/agents/same'],
      ['POST', '/v1/tools', { name: 'cat-tool', catalogue: true }],
    ]) {
      const r = await stack.api(aUser.key, method, path, body);
      assert.equal(r.status, 403, `${method} ${path}: ${r.text}`);
    }
    const r = await stack.api(stack.adminToken, 'POST', '/v1/tools', tool('srv', '/srv'));
    assert.equal(r.status, 403, 'the server admin has no tenant to define it in');
  });
});

describe('a definition is held to the config file\'s rules', () => {
  const bad = [
    ['a repeated key', '{"name":"r1","url":"http://127.0.0.1:9/x","url":"http://169.254.169.254/"}', /repeats the key "url"/, null],
    ['an unknown field', { name: 'r2', url: 'http://127.0.0.1:9/x', timeout: 5 }, /unknown key/, 'timeout'],
    ['a schema that is not an object', { name: 'r3', url: 'http://127.0.0.1:9/x', parameters: { type: 'string' } }, /object/, null],
    ['an unsupported schema keyword', { name: 'r4', url: 'http://127.0.0.1:9/x', parameters: { type: 'object', properties: { a: { type: 'string', pattern: '.*' } } } }, /pattern/, null],
    ['a dot segment in the URL template', { name: 'r5', url: 'http://127.0.0.1:9/a/../{p}', parameters: { type: 'object', properties: { p: { type: 'string' } } } }, /"\."|\.\./, 'url'],
    ['an encoded dot segment in the URL template', { name: 'r6', url: 'http://127.0.0.1:9/a/%2e%2e/{p}', parameters: { type: 'object', properties: { p: { type: 'string' } } } }, /"\."|\.\./, 'url'],
    ['a placeholder in the host', { name: 'r7', url: 'http://{host}/x', parameters: { type: 'object', properties: { host: { type: 'string' } } } }, /host/, 'url'],
    ['a placeholder that is not a parameter', { name: 'r8', url: 'http://127.0.0.1:9/{nope}' }, /placeholder/, 'url'],
    ['a scheme other than http(s)', { name: 'r9', url: 'file:///etc/passwd' }, /http/, 'url'],
    ['unknown effects', { name: 'r10', url: 'http://127.0.0.1:9/x', effects: 'none' }, /read, write or external/, 'effects'],
    ['a `tenants:` key (the operator\'s)', { name: 'r11', url: 'http://127.0.0.1:9/x', tenants: 'all' }, /server's configuration/, 'tenants'],
    ['a header read from the server\'s environment', { name: 'r12', url: 'http://127.0.0.1:9/x', headers: { 'X-K': '${BRIGADE_ADMIN_TOKEN}' } }, /\$\{user\.id\}/, null],
    ['a built-in\'s name', { name: 'memory', url: 'http://127.0.0.1:9/x' }, /built-in/, 'name'],
    ['a framing header', { name: 'r13', url: 'http://127.0.0.1:9/x', headers: { Host: 'evil' } }, /set by brigade/, null],
  ];
  for (const [what, body, message, param] of bad) {
    test(`a tool with ${what} is refused (400)`, async () => {
      const r = await stack.api(A.admin_key, 'POST', '/v1/tools', body);
      assert.equal(r.status, 400, r.text);
      const e = errorOf(r);
      assert.equal(e.type, 'invalid_request_error');
      assert.match(e.message, message);
      if (param) assert.equal(e.param, param, r.text);
    });
  }

  test('an oversized definition is refused (400), and so is the 65th tool', async () => {
    const big = await stack.api(A.admin_key, 'POST', '/v1/tools', { name: 'big', url: 'http://127.0.0.1:9/x', description: 'd'.repeat(70_000) });
    assert.equal(big.status, 400, big.text);
    assert.equal(errorOf(big).code, 'too_large');
    const T = await stack.makeTenant();
    for (let i = 0; i < 64; i++) {
      const r = await stack.api(T.admin_key, 'POST', '/v1/tools', { name: `t${i}`, url: 'http://127.0.0.1:9/x' });
      assert.equal(r.status, 201, r.text);
    }
    const over = await stack.api(T.admin_key, 'POST', '/v1/tools', { name: 't64', url: 'http://127.0.0.1:9/x' });
    assert.equal(over.status, 400, over.text);
    assert.equal(errorOf(over).code, 'limit_reached');
  });

  test("a tenant's strings never read the server's environment", async () => {
    const r = await stack.api(A.admin_key, 'POST', '/v1/tools', { name: 'envy', url: 'http://127.0.0.1:9/x', description: '${BRIGADE_ADMIN_TOKEN}' });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.description, '${BRIGADE_ADMIN_TOKEN}');
    assert.ok(!r.text.includes(stack.adminToken));
  });

  test('a PATCH is validated whole: a bad change is refused and the old definition stays', async () => {
    const r = await stack.api(A.admin_key, 'PATCH', '/v1/tools/dup', { url: 'http://127.0.0.1:9/../{x}' });
    assert.equal(r.status, 400, r.text);
    const g = await stack.api(A.admin_key, 'GET', '/v1/tools/dup');
    assert.equal(g.body.url, `${capture.url}/dup-a`);
    const ren = await stack.api(A.admin_key, 'PATCH', '/v1/tools/dup', { name: 'other' });
    assert.equal(ren.status, 400, ren.text);
  });
});

describe('a tool receives only the identity its headers declare', () => {
  test("neither the caller's user key nor its JWT reaches the tool; ${user.id} and ${tenant.id} do", async () => {
    const secret = crypto.randomBytes(24).toString('hex');
    noteSecret(secret);
    const issuer = `https://idp.example.test/${A.id}`;
    const p = await stack.api(A.admin_key, 'PATCH', `/v1/tenants/${A.id}`, { jwt: { issuer, audience: 'brigade', alg: 'HS256', key: secret } });
    assert.equal(p.status, 200, p.text);
    const h = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
    const pl = Buffer.from(JSON.stringify({ iss: issuer, aud: 'brigade', sub: 'jwt-person', exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url');
    const jwt = `${h}.${pl}.${crypto.createHmac('sha256', secret).update(`${h}.${pl}`).digest('base64url')}`;
    noteSecret(jwt);
    const me = await stack.api(jwt, 'GET', '/v1/me');
    assert.equal(me.status, 200, me.text);

    assert.equal((await stack.api(A.admin_key, 'POST', '/v1/tools', tool('whoami', '/whoami', {
      headers: { 'X-User': '${user.id}', 'X-Tenant': 'tenant=${tenant.id}' },
    }))).status, 201);
    assert.equal((await stack.api(A.admin_key, 'POST', '/v1/agents', { name: 'who', model: 'local-model', tools: ['whoami'] })).status, 201);

    for (const [cred, userId] of [[aUser.key, aUser.user.id], [jwt, me.body.user.id]]) {
      const before = requestsTo('/whoami').length;
      const sess = await newSession(stack, cred, 'who');
      const r = await postMessage(stack, cred, sess.id, toolMarker('whoami', { q: 'me' }), {});
      assert.equal(r.status, 200, r.text);
      const got = requestsTo('/whoami').slice(before);
      assert.equal(got.length, 1);
      const seen = got[0];
      assert.equal(seen.headers.authorization, undefined, 'no Authorization header at all');
      assert.equal(seen.headers['x-user'], userId);
      assert.equal(seen.headers['x-tenant'], `tenant=${A.id}`);
      const everything = JSON.stringify(seen);
      assert.ok(!everything.includes(cred), 'the brigade credential is nowhere in the request');
      assert.ok(!everything.includes(cred.slice(-16)), 'not even a part of it');
    }
    // the catalogue's tools get no identity unless their headers ask
    const sess = await newSession(stack, aUser.key, 'assistant');
    const before = requestsTo('/cat').length;
    await postMessage(stack, aUser.key, sess.id, toolMarker('cat-tool', {}));
    for (const r of requestsTo('/cat').slice(before)) assert.equal(r.headers.authorization, undefined);
  });
});
