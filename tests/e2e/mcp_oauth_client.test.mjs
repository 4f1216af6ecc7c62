// mcp_oauth_client.test.mjs — brigade's MCP authorization client
// (src/mcp/oauth_flow.c) driven through `brigade mcp-client` against a small
// OAuth-protected MCP server and authorization server of our own
// (lib/mcp_oauth_server.mjs), where each test decides what the servers say:
//   - the happy path: 401 → protected-resource metadata → AS metadata →
//     dynamic registration → PKCE S256 authorization with RFC 8707 resource
//     → token; the token, and only it, reaches the MCP server;
//   - what a hostile server cannot make the client do: fetch a
//     resource_metadata URL on another origin, reach an authorization server
//     or a token/registration endpoint on the metadata service or another
//     loopback address (egress, with only 127.0.0.1/32 allowed), authorize
//     with an AS that does not offer S256, loop on 403 insufficient_scope.
// The conformance suite (scripts/mcp-conformance.sh) covers the spec's
// discovery variants; this file covers the attacks.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import { startMcpOauthServer } from './lib/mcp_oauth_server.mjs';

const BIN = process.env.BRIGADE_BIN;

let srv, canary;
before(async () => {
  srv = await startMcpOauthServer();
  canary = await startMcpOauthServer();   // another origin: must never be asked anything
});
after(async () => {
  await srv?.close();
  await canary?.close();
});

/** Run brigade mcp-client against the server: only 127.0.0.1 is reachable. */
function mcpClient(url, extra = []) {
  return new Promise((resolve) => {
    const p = spawn(BIN, ['mcp-client', '--allow-network', '127.0.0.1/32', ...extra, url],
      { env: { PATH: process.env.PATH, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? '' } });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 30000);
    p.on('exit', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

describe('MCP authorization in brigade mcp-client', () => {
  test('401 → discovery → registration → PKCE + resource → token; only that token reaches the server', async () => {
    srv.reset();
    const r = await mcpClient(srv.mcpUrl);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /tools\/call whoami: token tok-1/);
    const paths = srv.log.map((x) => `${x.method} ${x.path}`);
    assert.ok(paths.includes('GET /.well-known/oauth-protected-resource/mcp'), paths.join('\n'));
    assert.ok(paths.includes('GET /.well-known/oauth-authorization-server'), paths.join('\n'));
    assert.ok(paths.includes('POST /register'), paths.join('\n'));
    const auth = srv.log.find((x) => x.path === '/authorize');
    assert.equal(auth.query.code_challenge_method, 'S256');
    assert.match(auth.query.code_challenge, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(auth.query.resource, srv.mcpUrl);
    assert.equal(auth.query.scope, 'mcp:tools', 'the challenge\'s scope');
    assert.match(auth.query.redirect_uri, /^http:\/\/127\.0\.0\.1:\d+\//);
    const tok = srv.log.find((x) => x.path === '/token');
    assert.equal(tok.form.resource, srv.mcpUrl);
    assert.equal(tok.form.grant_type, 'authorization_code');
    assert.ok(tok.form.code_verifier, 'the PKCE verifier');
    // every MCP request after the first carries exactly the OAuth token
    const mcp = srv.log.filter((x) => x.path === '/mcp');
    assert.equal(mcp[0].headers.authorization, undefined);
    for (const m of mcp.slice(1)) assert.equal(m.headers.authorization, 'Bearer tok-1');
  });

  test('a resource_metadata URL on another origin is refused, never fetched', async () => {
    srv.reset();
    canary.reset();
    srv.set({ resourceMetadata: `${canary.base}/.well-known/oauth-protected-resource/mcp` });
    const r = await mcpClient(srv.mcpUrl);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /resource_metadata .* is not on the server's origin/);
    assert.equal(canary.log.length, 0, 'the other origin was asked');
    assert.ok(!srv.log.some((x) => x.path === '/authorize'));
  });

  test('an authorization server on the metadata service (169.254.169.254) is refused by egress', async () => {
    srv.reset();
    srv.set({ authorizationServers: ['http://169.254.169.254/latest'] });
    const r = await mcpClient(srv.mcpUrl);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /egress refused: 169\.254\.169\.254 .*link-local/);
  });

  test('a token or registration endpoint on another loopback address is refused by egress', async () => {
    srv.reset();
    srv.set({ asMeta: { token_endpoint: `http://127.0.0.2:${srv.port}/token` } });
    let r = await mcpClient(srv.mcpUrl);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /egress refused: 127\.0\.0\.2 .*loopback/);
    assert.ok(!srv.log.some((x) => x.path === '/token'), 'the token request went out');

    srv.reset();
    srv.set({ asMeta: { registration_endpoint: 'http://10.1.2.3/register' } });
    r = await mcpClient(srv.mcpUrl);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /egress refused: 10\.1\.2\.3 .*private/);
    assert.ok(!srv.log.some((x) => x.path === '/authorize'));
  });

  test('an authorization server that does not offer S256 is refused before any authorization', async () => {
    srv.reset();
    srv.set({ asMeta: { code_challenge_methods_supported: ['plain'] } });
    const r = await mcpClient(srv.mcpUrl);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /does not list S256/);
    assert.ok(!srv.log.some((x) => x.path === '/authorize' || x.path === '/register'));
  });

  test('a request answered 403 insufficient_scope again and again causes at most 3 authorizations', async () => {
    srv.reset();
    srv.set({ stepUpForever: true });
    const r = await mcpClient(srv.mcpUrl);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /still answered HTTP 403 after 3 authorizations/);
    // one authorization on initialize's 401; then the tools/call request
    // causes at most 3 (the bound is per request), then fails
    const all = srv.log.filter((x) => x.path === '/authorize');
    assert.equal(all.length, 1 + 3, all.map((x) => x.query.scope).join(' | '));
    assert.equal(all.filter((x) => x.query.scope === 'mcp:tools mcp:admin').length, 3, 'the step-ups');
    assert.equal(all.at(-1).query.scope, 'mcp:tools mcp:admin', 'the step-up asks the challenge\'s scope');
  });

  test('a redirect back with another state is refused (no token request)', async () => {
    srv.reset();
    srv.set({ badState: true });
    const r = await mcpClient(srv.mcpUrl);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /state does not match/);
    assert.ok(!srv.log.some((x) => x.path === '/token'));
  });
});
