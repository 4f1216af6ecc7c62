// vault.mjs — what the vault's test files share: a stack with a real
// authorization server (oauth_server.mjs) as credential provider "demo", an
// API-key provider "keyed", and a capture server standing for the tools'
// API: it records the Authorization header it receives and answers with
// whose token it was (asked of the provider's userinfo endpoint), so a test
// can tell that Alice's call went out with Alice's token.
//
// Nothing here talks to anything but 127.0.0.1.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after } from 'node:test';

import { freePort, noteSecret, useStack } from './harness.mjs';
import { newSession, postMessage, toolMarker } from './agents.mjs';
import { startOAuthServer } from './oauth_server.mjs';

/** The capture server: GET /whoami → {sub} of the bearer token (or
 *  {sub:null}); /reflect answers 500 with the request's headers in its body
 *  (a tool that echoes what it got); /strict answers 401 while .refuse is
 *  set (a token revoked at the service), else as /whoami; every request
 *  recorded. */
export async function startCapture(as) {
  const requests = [];
  const port = await freePort();
  const server = http.createServer(async (req, res) => {
    const auth = req.headers.authorization || null;
    requests.push({ url: req.url, authorization: auth, key: req.headers['x-api-key'] || null });
    if (req.url.startsWith('/strict') && capture.refuse) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' });
      res.end(JSON.stringify({ error: 'invalid_token' }));
      return;
    }
    if (req.url.startsWith('/reflect')) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'bad request', got: req.headers }));
      return;
    }
    let sub = null;
    if (auth && as.current) {
      const r = await fetch(`${as.current.issuer}/me`, { headers: { authorization: auth } });
      if (r.ok) sub = (await r.json()).sub;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ sub, key: req.headers['x-api-key'] ? 'present' : null }));
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  const capture = {
    url: `http://127.0.0.1:${port}`,
    requests,
    refuse: false,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  };
  return capture;
}

/** useStack with the vault's providers, tools and agent. The returned
 *  holder also gets .as (the authorization server) and .capture. */
export function useVaultStack({ accessTtl = 60, timeoutMs = 2000 } = {}, setup = null) {
  const holder = { current: null };
  const stack = useStack(async () => {
    const port = await freePort();
    const as = await startOAuthServer({ redirectUri: `http://127.0.0.1:${port}/oauth/callback`, accessTtl });
    holder.current = as;
    const capture = await startCapture(holder);
    holder.capture = capture;
    noteSecret(as.clientSecret);
    return {
      port,
      env: { DEMO_CLIENT_SECRET: as.clientSecret },
      extraYaml: [
        'credential_providers:',
        `  - {name: demo, kind: oauth2, issuer: "${as.issuer}", client_id: ${as.clientId}, client_secret_env: DEMO_CLIENT_SECRET, scopes: [openid, offline_access], timeout_ms: ${timeoutMs}, allow_private_networks: true}`,
        '  - {name: keyed, kind: api_key}',
        'tools:',
        `  - {name: whoami, description: Who the user is at the demo provider., url: "${capture.url}/whoami", method: GET, auth: {provider: demo, scopes: [openid]}, allow_private_networks: true}`,
        `  - {name: reflect, url: "${capture.url}/reflect", method: GET, auth: {provider: demo}, allow_private_networks: true}`,
        `  - {name: keyed_tool, url: "${capture.url}/keyed", method: GET, auth: {provider: keyed, header: X-Api-Key, format: "{token}"}, allow_private_networks: true}`,
        `  - {name: strict, url: "${capture.url}/strict", method: GET, auth: {provider: demo, scopes: [openid]}, allow_private_networks: true}`,
        'agents:',
        '  - {name: helper, model: local-model, tools: [whoami, reflect, keyed_tool, strict]}',
      ].join('\n'),
    };
  }, async (s) => {
    s.as = holder.current;
    s.capture = holder.capture;
    if (setup) await setup(s);
  });
  // the helper servers stop with the file; every token, refresh token and
  // code the provider issued goes to check_secrets.mjs's list of vault
  // secrets, which no log of the suite may hold
  after(async () => {
    noteVaultSecrets(holder.current?.secrets || []);
    await holder.capture?.close();
    await holder.current?.close();
  });
  return stack;
}

/** Record provider-issued secrets for the whole-suite log check
 *  (check_secrets.mjs reads vault-secrets.txt beside secrets.txt). */
export function noteVaultSecrets(list) {
  const dir = process.env.BRIGADE_E2E_SECRETS_DIR;
  if (!dir) return;
  const lines = list.filter((s) => typeof s === 'string' && s.length >= 16).map((s) => s.replace(/\n/g, ''));
  if (lines.length) fs.appendFileSync(path.join(dir, 'vault-secrets.txt'), lines.join('\n') + '\n');
}

/** POST /v1/connections {provider: demo} → {id, connect_url, ...}. */
export async function beginConnect(stack, key, provider = 'demo') {
  return stack.must(await stack.api(key, 'POST', '/v1/connections', { provider }), 200, 'POST /v1/connections');
}

/** Open a connect_url as a browser would: the redirect to the provider and
 *  the cookie brigade set ("name=value"). */
export async function openConnectUrl(connectUrl) {
  const r = await fetch(connectUrl, { redirect: 'manual' });
  const setCookie = r.headers.get('set-cookie') || '';
  return { status: r.status, location: r.headers.get('location'), cookie: setCookie.split(';')[0], setCookie, response: r };
}

/** The whole consent of `account` for the user with `key`: returns the
 *  connection id and what the callback answered {status, text}. */
export async function connect(stack, key, account) {
  const c = await beginConnect(stack, key);
  const start = await openConnectUrl(c.connect_url);
  if (start.status !== 302) throw new Error(`/oauth/start: ${start.status} ${await start.response.text()}`);
  const cb = await stack.as.authorize(start.location, account);
  const r = await fetch(cb, { headers: { cookie: start.cookie } });
  return { id: c.id, status: r.status, text: await r.text(), callbackUrl: cb, start };
}

/** One tool call through an agent run: the answer's body {run, message}
 *  (a run that needs a connection the user lacks answers at once with
 *  run.status "waiting_auth" and no message). */
export async function runTool(stack, key, tool, args = {}) {
  const s = await newSession(stack, key, 'helper');
  const r = await postMessage(stack, key, s.id, toolMarker(tool, args));
  if (r.status !== 200) throw new Error(`run: ${r.status} ${r.text.slice(0, 300)}`);
  return r.body;
}

/** One tool call through an agent run: the text the model's answer quotes
 *  the tool result with. Throws if the run did not complete. */
export async function callTool(stack, key, tool, args = {}) {
  const b = await runTool(stack, key, tool, args);
  if (!b.message) throw new Error(`run ${b.run.id} is ${b.run.status}, not completed`);
  return b.message.content;
}
