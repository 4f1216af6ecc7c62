// mcp_oauth_server.mjs — an OAuth-protected MCP server and its authorization
// server in one small node:http server on 127.0.0.1, for the tests of
// brigade's MCP authorization client (mcp_oauth_client.test.mjs). It records
// every request (method, path, query, form, headers) and lets a test change
// what it says with set():
//   resourceMetadata      the 401's resource_metadata (default: its own PRM)
//   authorizationServers  the PRM's authorization_servers (default: itself)
//   asMeta                fields merged into its AS metadata
//   stepUpForever         tools/call with any token → 403 insufficient_scope
//   badState              /authorize redirects back with another state
//   tokenTtl              expires_in of the tokens it issues (default 3600 s);
//                         a token past it is refused (401)
// Tokens it issues are tok-1, tok-2, …; only those are accepted on /mcp, and
// revoke(token) stops one being accepted. Each comes with a refresh token
// rt-N bound to the client that got it: a refresh by another client is
// invalid_grant. Registrations give client-1, client-2, … (so a second
// registration shows).
// Its authorization endpoint consents at once (no login page): a code is
// bound to the request's PKCE challenge, redirect_uri and resource, and
// /token checks all three (a wrong one is invalid_grant) and the code is
// good once. Its redirect carries iss (RFC 9207).

import { createHash } from 'node:crypto';
import http from 'node:http';

export async function startMcpOauthServer() {
  let opts = {};
  let log = [];
  let issued = new Set();
  let expiry = new Map();      // token → ms since epoch
  let refresh = new Map();     // refresh token → client_id
  let codes = new Map();
  let n = 0;
  let regs = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => handle(req, res, body));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  const base = `http://127.0.0.1:${port}`;
  const mcpUrl = `${base}/mcp`;

  function json(res, status, obj, headers = {}) {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(obj));
  }

  function handle(req, res, body) {
    const u = new URL(req.url, base);
    const entry = { method: req.method, path: u.pathname, query: Object.fromEntries(u.searchParams),
      headers: req.headers, form: {} };
    if ((req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded'))
      entry.form = Object.fromEntries(new URLSearchParams(body));
    log.push(entry);
    const prm = `${base}/.well-known/oauth-protected-resource/mcp`;
    if (u.pathname === '/.well-known/oauth-protected-resource/mcp' && req.method === 'GET') {
      return json(res, 200, { resource: mcpUrl, authorization_servers: opts.authorizationServers ?? [base],
        scopes_supported: ['mcp:tools'] });
    }
    if (u.pathname === '/.well-known/oauth-authorization-server' && req.method === 'GET') {
      return json(res, 200, { issuer: base, authorization_endpoint: `${base}/authorize`,
        token_endpoint: `${base}/token`, registration_endpoint: `${base}/register`,
        response_types_supported: ['code'], code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['none'], ...(opts.asMeta ?? {}) });
    }
    if (u.pathname === '/register' && req.method === 'POST') {
      return json(res, 201, { client_id: `client-${++regs}`, token_endpoint_auth_method: 'none' });
    }
    if (u.pathname === '/authorize' && req.method === 'GET') {
      const back = new URL(u.searchParams.get('redirect_uri'));
      const code = `code-${codes.size + 1}`;
      codes.set(code, { challenge: u.searchParams.get('code_challenge'), method: u.searchParams.get('code_challenge_method'),
        redirect: u.searchParams.get('redirect_uri'), resource: u.searchParams.get('resource') });
      back.searchParams.set('code', code);
      back.searchParams.set('state', opts.badState ? 'not-yours' : u.searchParams.get('state'));
      back.searchParams.set('iss', base);
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    const issue = (clientId) => {
      const t = `tok-${++n}`;
      const ttl = opts.tokenTtl ?? 3600;
      issued.add(t);
      expiry.set(t, Date.now() + ttl * 1000);
      refresh.set(`rt-${n}`, clientId);
      return { access_token: t, token_type: 'Bearer', expires_in: ttl, refresh_token: `rt-${n}` };
    };
    if (u.pathname === '/token' && req.method === 'POST' && entry.form.grant_type === 'refresh_token') {
      const owner = refresh.get(entry.form.refresh_token);
      if (!owner || owner !== entry.form.client_id) return json(res, 400, { error: 'invalid_grant' });
      refresh.delete(entry.form.refresh_token);
      return json(res, 200, issue(owner));
    }
    if (u.pathname === '/token' && req.method === 'POST') {
      const c = codes.get(entry.form.code);
      codes.delete(entry.form.code);
      const verifier = entry.form.code_verifier ?? '';
      const s256 = createHash('sha256').update(verifier).digest('base64url');
      if (!c || c.method !== 'S256' || c.challenge !== s256 || c.redirect !== entry.form.redirect_uri ||
          c.resource !== entry.form.resource) {
        return json(res, 400, { error: 'invalid_grant' });
      }
      return json(res, 200, issue(entry.form.client_id));
    }
    if (u.pathname === '/mcp' && req.method === 'POST') {
      const a = req.headers.authorization ?? '';
      const token = a.startsWith('Bearer ') ? a.slice(7) : null;
      if (!token || !issued.has(token) || Date.now() > expiry.get(token)) {
        return json(res, 401, { error: 'invalid_token' }, {
          'www-authenticate': `Bearer resource_metadata="${opts.resourceMetadata ?? prm}", scope="mcp:tools"` });
      }
      let m;
      try { m = JSON.parse(body); } catch { return json(res, 400, {}); }
      if (m.id === undefined) { res.writeHead(202); return res.end(); }
      if (m.method === 'initialize') {
        return json(res, 200, { jsonrpc: '2.0', id: m.id, result: { protocolVersion: '2025-11-25',
          capabilities: { tools: {} }, serverInfo: { name: 'oauth-test', version: '1' } } });
      }
      if (m.method === 'tools/list') {
        return json(res, 200, { jsonrpc: '2.0', id: m.id,
          result: { tools: [{ name: 'whoami', inputSchema: { type: 'object' } }] } });
      }
      if (m.method === 'tools/call') {
        if (opts.stepUpForever) {
          return json(res, 403, { error: 'insufficient_scope' }, {
            'www-authenticate': `Bearer error="insufficient_scope", scope="mcp:tools mcp:admin", resource_metadata="${prm}"` });
        }
        return json(res, 200, { jsonrpc: '2.0', id: m.id,
          result: { content: [{ type: 'text', text: `token ${token}` }] } });
      }
      return json(res, 200, { jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'no' } });
    }
    if (u.pathname === '/mcp' && req.method === 'DELETE') { res.writeHead(200); return res.end(); }
    json(res, 404, { error: 'not found' });
  }

  return {
    port, base, mcpUrl,
    get log() { return log; },
    set(o) { opts = { ...opts, ...o }; },
    /** The token is no longer accepted (revoked at the server). */
    revoke(token) { issued.delete(token); },
    reset() { opts = {}; log = []; issued = new Set(); expiry = new Map(); refresh = new Map(); codes = new Map(); n = 0; regs = 0; },
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  };
}
