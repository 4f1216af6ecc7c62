// mcp_oauth.test.mjs — MCP servers with `auth: {kind: oauth}` in agent runs:
// each user authorizes brigade at the server's own authorization server
// (found by MCP discovery from its 401), and the server gets that user's
// token. The server and its authorization server are
// lib/mcp_oauth_server.mjs (consent at once; PKCE, redirect_uri and resource
// checked at /token).
//   - Alice's run waits with a connect_url (auth.required); after her
//     consent the call goes on with her token — and only it: never the
//     brigade key;
//   - Bob's run does not get Alice's token: it waits for his own consent;
//   - a token revoked at the server fails that call clearly and marks her
//     connection expired (not Bob's); her next run asks her again;
//   - after a restart brigade uses the client it registered before (kept in
//     the store), so a user's refresh token, bound to that client, works;
//   - the provider is per server: a tenant admin who points a server's
//     authorization at the metadata service or at the machine's loopback
//     gets a refusal (and an egress.refuse audit entry), never a request;
//   - what a tenant admin may not configure (a client secret from brigade's
//     environment).

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { auditEntries, errorOf, eventually, freePort, sleep, useStack } from './lib/harness.mjs';
import { newSession, openStream, restartBrigade, streamMessage, toolMarker } from './lib/agents.mjs';
import { openConnectUrl } from './lib/vault.mjs';
import { startMcpOauthServer } from './lib/mcp_oauth_server.mjs';

let srv, evil;
after(async () => {
  await srv?.close();
  await evil?.close();
});

let tenant, alice, bob;
const stack = useStack(async () => {
  srv = await startMcpOauthServer();
  evil = await startMcpOauthServer();
  const port = await freePort();
  return {
    port,
    extraYaml: [
      // a tenant's own server may reach 127.0.0.1 (the test's servers), and
      // nothing else private
      'egress:',
      '  allow_networks: [127.0.0.1/32]',
      'mcp_servers:',
      '  - name: oauthsrv',
      '    transport: http',
      `    url: ${JSON.stringify(srv.mcpUrl)}`,
      '    auth: {kind: oauth, timeout_s: 60}',
      '    allow_private_networks: true',
      'agents:',
      '  - {name: oa, model: local-model, tools: ["oauthsrv__whoami"], max_steps: 4}',
    ].join('\n'),
  };
}, async (s) => {
  tenant = await s.makeTenant();
  alice = await s.makeUserWithKey(tenant.admin_key, s.unique('alice'));
  bob = await s.makeUserWithKey(tenant.admin_key, s.unique('bob'));
});

/** A browser's consent: open the connect_url, follow the authorization
 *  server's redirect back to brigade with the flow's cookie. */
async function consent(connectUrl) {
  const start = await openConnectUrl(connectUrl);
  assert.equal(start.status, 302, await start.response.text());
  const az = await fetch(start.location, { redirect: 'manual' });
  assert.equal(az.status, 302);
  const page = await fetch(az.headers.get('location'), { headers: { cookie: start.cookie } });
  return { status: page.status, text: await page.text() };
}

describe('a user authorizes brigade at an MCP server', () => {
  test('Alice: auth.required with a connect_url; after her consent the call goes on with her token', async () => {
    const s = await newSession(stack, alice.key, 'oa');
    const st = openStream(stack, alice.key, s.id, `Go. ${toolMarker('oauthsrv__whoami', {})}`);
    const ev = await st.next('auth.required');
    assert.match(ev.data.provider, /^mcp:oauthsrv:[0-9a-f]{16}$/);
    assert.equal(ev.data.tool, 'oauthsrv__whoami');
    assert.match(ev.data.connect_url, /\/oauth\/start\?ticket=/);
    // discovery happened: the 401, the metadata, a registration for brigade
    const paths = srv.log.map((x) => `${x.method} ${x.path}`);
    assert.ok(paths.includes('GET /.well-known/oauth-protected-resource/mcp'), paths.join('\n'));
    assert.ok(paths.includes('POST /register'), paths.join('\n'));
    const reg = srv.log.find((x) => x.path === '/register');
    assert.ok(!JSON.stringify(reg.headers).includes(alice.key), 'the brigade key went to the registration');
    const page = await consent(ev.data.connect_url);
    assert.equal(page.status, 200, page.text);
    const auth = srv.log.find((x) => x.path === '/authorize');
    assert.equal(auth.query.resource, srv.mcpUrl, 'RFC 8707 resource: the server');
    assert.equal(auth.query.code_challenge_method, 'S256');
    const done = await st.done;
    const end = done.events.at(-1);
    assert.equal(end.event, 'run.completed', done.text.slice(-600));
    const tr = done.events.find((e) => e.event === 'tool.result');
    assert.equal(tr.data.ok, true, JSON.stringify(tr.data));
    assert.match(tr.data.preview, /token tok-1/);
    // what reached the MCP server: her token, never the brigade key
    for (const r of srv.log) {
      assert.ok(!JSON.stringify(r).includes(alice.key), `${r.method} ${r.path} carried the brigade key`);
      if (r.path === '/mcp' && r.headers.authorization) assert.equal(r.headers.authorization, 'Bearer tok-1');
    }
    // a second run of Alice's needs no consent: the vault has her token
    const again = await streamMessage(stack, alice.key, (await newSession(stack, alice.key, 'oa')).id,
      `Go. ${toolMarker('oauthsrv__whoami', {})}`);
    const tr2 = again.events.find((e) => e.event === 'tool.result');
    assert.ok(!again.events.some((e) => e.event === 'auth.required'));
    assert.match(tr2.data.preview, /token tok-1/);
  });

  test('Bob does not get Alice\'s token: his run waits for his own consent', async () => {
    const s = await newSession(stack, bob.key, 'oa');
    const st = openStream(stack, bob.key, s.id, `Go. ${toolMarker('oauthsrv__whoami', {})}`);
    const ev = await st.next('auth.required');
    assert.match(ev.data.connect_url, /\/oauth\/start\?ticket=/);
    const before = srv.log.filter((x) => x.path === '/mcp' && x.headers.authorization === 'Bearer tok-1').length;
    const page = await consent(ev.data.connect_url);
    assert.equal(page.status, 200, page.text);
    const done = await st.done;
    const tr = done.events.find((e) => e.event === 'tool.result');
    assert.equal(tr.data.ok, true, JSON.stringify(tr.data));
    assert.match(tr.data.preview, /token tok-2/, 'Bob\'s own token');
    assert.doesNotMatch(tr.data.preview, /tok-1/);
    const after = srv.log.filter((x) => x.path === '/mcp' && x.headers.authorization === 'Bearer tok-1').length;
    // Alice's token was not sent for Bob (the only tok-1 requests are Alice's)
    const bobs = srv.log.filter((x) => x.path === '/mcp' && x.headers.authorization === 'Bearer tok-2');
    assert.ok(bobs.length >= 1);
    assert.equal(after, before, 'tok-1 was used while Bob\'s run went on');
  });
});

describe('a token revoked at the server', () => {
  test('the call fails with a clear error, the connection is marked expired, and the next run asks Alice again', async () => {
    srv.revoke('tok-1');
    const s = await newSession(stack, alice.key, 'oa');
    const done = await streamMessage(stack, alice.key, s.id, `Go. ${toolMarker('oauthsrv__whoami', {})}`);
    const tr = done.events.find((e) => e.event === 'tool.result');
    assert.ok(tr, done.text.slice(-800));
    assert.equal(tr.data.ok, false, JSON.stringify(tr.data));
    assert.match(tr.data.preview, /refused the user's authorization \(HTTP 401\)/);
    assert.match(tr.data.preview, /asked to connect it again/);
    assert.ok(!done.events.some((e) => e.event === 'auth.required'), 'this call is not paused: it failed');
    // the vault marks her connection expired (off the loop, just after)
    const provider = (await stack.api(alice.key, 'GET', '/v1/connections')).body.data
      .find((c) => c.provider.startsWith('mcp:oauthsrv:'));
    assert.ok(provider, 'Alice has a connection to the server');
    await eventually(async () => {
      const c = (await stack.api(alice.key, 'GET', '/v1/connections')).body.data.find((x) => x.id === provider.id);
      assert.equal(c.status, 'expired');
      return true;
    });
    // Bob's connection is his own and untouched
    const bobs = (await stack.api(bob.key, 'GET', '/v1/connections')).body.data
      .find((c) => c.provider.startsWith('mcp:oauthsrv:'));
    assert.equal(bobs.status, 'active');
    // her next run waits for her consent, and goes on with a new token
    const s2 = await newSession(stack, alice.key, 'oa');
    const st = openStream(stack, alice.key, s2.id, `Go. ${toolMarker('oauthsrv__whoami', {})}`);
    const ev = await st.next('auth.required');
    assert.match(ev.data.connect_url, /\/oauth\/start\?ticket=/);
    const page = await consent(ev.data.connect_url);
    assert.equal(page.status, 200, page.text);
    const d2 = await st.done;
    const tr2 = d2.events.find((e) => e.event === 'tool.result');
    assert.equal(tr2.data.ok, true, JSON.stringify(tr2.data));
    assert.match(tr2.data.preview, /token tok-3/);
  });
});

describe('after a restart', () => {
  test('brigade keeps its registration: no new one, and a user\'s refresh token still works', async () => {
    const carol = await stack.makeUserWithKey(tenant.admin_key, stack.unique('carol'));
    srv.set({ tokenTtl: 2 });
    try {
      const s = await newSession(stack, carol.key, 'oa');
      const st = openStream(stack, carol.key, s.id, `Go. ${toolMarker('oauthsrv__whoami', {})}`);
      const ev = await st.next('auth.required');
      assert.equal((await consent(ev.data.connect_url)).status, 200);
      assert.equal((await st.done).events.find((e) => e.event === 'tool.result').data.ok, true);
      const regsBefore = srv.log.filter((x) => x.path === '/register').length;
      await restartBrigade(stack, 'SIGTERM');
      await sleep(2200);   // her access token has expired: the next call refreshes it
      const s2 = await newSession(stack, carol.key, 'oa');
      const done = await streamMessage(stack, carol.key, s2.id, `Go. ${toolMarker('oauthsrv__whoami', {})}`);
      assert.ok(!done.events.some((e) => e.event === 'auth.required'), 'Carol was asked to consent again');
      const tr = done.events.find((e) => e.event === 'tool.result');
      assert.equal(tr.data.ok, true, JSON.stringify(tr.data));
      assert.equal(srv.log.filter((x) => x.path === '/register').length, regsBefore, 'brigade registered again');
      const refreshes = srv.log.filter((x) => x.path === '/token' && x.form.grant_type === 'refresh_token');
      assert.ok(refreshes.length >= 1, 'the token was refreshed');
      assert.equal(refreshes.at(-1).form.client_id, 'client-1');
    } finally {
      srv.set({ tokenTtl: undefined });
    }
  });
});

describe('a hostile tenant admin', () => {
  test('may not configure a client secret from brigade\'s environment, nor an unknown kind', async () => {
    const cases = [
      [{ kind: 'oauth', client_id: 'x', client_secret_env: 'HOME' }, /pre-registered client is the server's/],
      [{ kind: 'oauth', client_secret_env: 'HOME' }, /pre-registered client is the server's/],
      [{ kind: 'basic' }, /unknown kind/],
      [{ provider: 'demo' }, /unknown key|missing required key "kind"/],
    ];
    for (const [auth, why] of cases) {
      const r = await stack.api(tenant.admin_key, 'POST', '/v1/mcp-servers',
        { name: 'bad', transport: 'http', url: evil.mcpUrl, auth });
      assert.equal(r.status, 400, r.text);
      assert.match(errorOf(r).message, why);
    }
  });

  async function tenantRun(metaOpts) {
    evil.reset();
    evil.set(metaOpts);
    const name = `evil${Math.floor(Math.random() * 1e6)}`;
    const c = await stack.api(tenant.admin_key, 'POST', '/v1/mcp-servers',
      { name, transport: 'http', url: evil.mcpUrl, auth: { kind: 'oauth' } });
    assert.equal(c.status, 201, c.text);
    assert.deepEqual(c.body.auth, { kind: 'oauth' }, 'the server says users authorize brigade at it');
    const a = await stack.api(tenant.admin_key, 'POST', '/v1/agents',
      { name: `${name}-agent`, model: 'local-model', tools: [`${name}__whoami`], max_steps: 4 });
    assert.equal(a.status, 201, a.text);
    const s = await newSession(stack, alice.key, `${name}-agent`);
    const res = await streamMessage(stack, alice.key, s.id, `Go. ${toolMarker(`${name}__whoami`, {})}`);
    return { name, res, tr: res.events.find((e) => e.event === 'tool.result') };
  }

  test('an authorization server on 169.254.169.254 is refused by egress, audited', async () => {
    const { name, res, tr } = await tenantRun({ authorizationServers: ['http://169.254.169.254/latest'] });
    assert.equal(res.events.at(-1).event, 'run.completed', 'the run goes on');
    assert.ok(!res.events.some((e) => e.event === 'auth.required'), 'no consent to a refused server');
    assert.equal(tr.data.ok, false);
    assert.match(tr.data.preview, /egress refused: 169\.254\.169\.254/);
    assert.match(res.text, /egress refused: 169\.254\.169\.254 [^"]*link-local/, 'the whole error, as the model read it');
    let entry;
    await eventually(async () => {
      entry = (await auditEntries(stack, tenant.admin_key))
        .find((x) => x.action === 'egress.refuse' && x.target === name);
      return Boolean(entry);
    }, { timeoutMs: 5000 });
    assert.equal(entry.details.class, 'link-local');
    assert.equal(entry.details.mcp_server, name);
  });

  test('a registration endpoint on the machine\'s loopback (127.0.0.2) is refused by egress', async () => {
    const { res, tr } = await tenantRun({ asMeta: { registration_endpoint: `http://127.0.0.2:${evil.port}/register` } });
    assert.equal(res.events.at(-1).event, 'run.completed');
    assert.equal(tr.data.ok, false);
    assert.match(tr.data.preview, /egress refused: 127\.0\.0\.2/);
    assert.match(res.text, /egress refused: 127\.0\.0\.2 [^"]*loopback/);
    assert.ok(!evil.log.some((x) => x.path === '/register'));
  });

  test('a resource_metadata on another origin is never fetched', async () => {
    srv.reset();
    const { res, tr } = await tenantRun({ resourceMetadata: `${srv.base}/.well-known/oauth-protected-resource/mcp` });
    assert.equal(res.events.at(-1).event, 'run.completed');
    assert.equal(tr.data.ok, false);
    assert.match(tr.data.preview, /resource_metad/);
    assert.match(res.text, /is not on the server's origin/);
    assert.equal(srv.log.length, 0, 'the other origin was asked');
  });
});
