// vault.test.mjs — users' own credentials for tools, end to end, against a
// real authorization server (oidc-provider): the consent flow with PKCE,
// each user's tool calls made with that user's own token (many users at
// once), refresh with rotation under concurrent runs (exactly one refresh),
// revocation, API-key connections, key rotation while serving, and no
// secret in the database file or the audit log.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { E2E_ON_POSTGRES, auditEntries, eventually, noteSecret, runBrigade, sleep, storeCliArgs, storeQuery, storeSql } from './lib/harness.mjs';
import { newSession, openStream, pool, toolMarker } from './lib/agents.mjs';
import { beginConnect, callTool, connect, openConnectUrl, runTool, useVaultStack } from './lib/vault.mjs';

const stack = useVaultStack({ accessTtl: 60 }, async (s) => {
  s.tenant = await s.makeTenant();
});

/** Every file of the data dir, as bytes (the database, its WAL, …). */
function dataDirBytes(dir) {
  const out = [];
  for (const f of fs.readdirSync(dir)) {
    const p = path.join(dir, f);
    if (fs.statSync(p).isFile() && f !== 'vault.key') out.push([f, fs.readFileSync(p)]);
  }
  return out;
}

test('the consent flow: PKCE S256, a single-use browser-bound state, then an active connection', async () => {
  const { user, key } = await stack.makeUserWithKey(stack.tenant.admin_key);
  const c = await beginConnect(stack, key);
  assert.match(c.id, /^conn_/);
  assert.equal(c.status, 'pending');
  assert.match(c.connect_url, new RegExp(`^${stack.brigadeUrl}/oauth/start\\?ticket=[A-Za-z0-9_-]{43}$`));

  const start = await openConnectUrl(c.connect_url);
  assert.equal(start.status, 302);
  assert.match(start.setCookie, /^brigade_oauth=[A-Za-z0-9_-]{43}; Path=\/oauth\/callback; Max-Age=600; HttpOnly; SameSite=Lax/);
  assert.equal(start.response.headers.get('cache-control'), 'no-store');
  const auth = new URL(start.location);
  assert.equal(auth.origin, stack.as.issuer, 'the redirect goes to the configured provider only');
  assert.equal(auth.searchParams.get('code_challenge_method'), 'S256');
  assert.match(auth.searchParams.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
  assert.match(auth.searchParams.get('state'), /^[A-Za-z0-9_-]{43}$/);
  assert.equal(auth.searchParams.get('redirect_uri'), `${stack.brigadeUrl}/oauth/callback`);
  assert.equal(auth.searchParams.get('client_id'), stack.as.clientId);
  assert.equal(auth.searchParams.get('code_verifier'), null);

  const before = stack.as.counts.authorization_code;
  const cb = await stack.as.authorize(start.location, `alice-${user.id}`);
  const page = await fetch(cb, { headers: { cookie: start.cookie } });
  const html = await page.text();
  assert.equal(page.status, 200, html);
  assert.match(html, /Connected/);
  assert.equal(page.headers.get('cache-control'), 'no-store');
  assert.match(page.headers.get('set-cookie'), /brigade_oauth=; Path=\/oauth\/callback; Max-Age=0/);
  assert.equal(stack.as.counts.authorization_code, before + 1);

  const list = await stack.api(key, 'GET', '/v1/connections');
  assert.equal(list.status, 200);
  const conn = list.body.data.find((x) => x.id === c.id);
  assert.equal(conn.status, 'active');
  assert.equal(conn.provider, 'demo');
  for (const s of stack.as.secrets) assert.ok(!list.text.includes(s), 'no secret in GET /v1/connections');

  // the tool call goes out with this user's own token
  const out = await callTool(stack, key, 'whoami');
  assert.match(out, new RegExp(`"sub":"alice-${user.id}"`));

  // consent.grant is audited: the connection and provider, never a token
  const entries = await auditEntries(stack, stack.tenant.admin_key, '&action=consent.grant');
  const e = entries.find((x) => x.target === c.id);
  assert.ok(e, 'a consent.grant entry names the connection');
  assert.equal(e.actor, `user:${user.id}`);
  assert.equal(e.details.provider, 'demo');
  const text = JSON.stringify(entries);
  for (const s of stack.as.secrets) assert.ok(!text.includes(s), 'no secret in the audit log');

  // the tool call's audit entry names the connection it used, never its token
  let calls = [];
  const used = await eventually(async () => {
    calls = await auditEntries(stack, stack.tenant.admin_key, '&action=tool.call');
    return calls.find((x) => x.details && x.details.connection === c.id);
  });
  assert.ok(used, 'tool.call names the connection');
  assert.equal(used.target, 'whoami');
  for (const s of stack.as.secrets) assert.ok(!JSON.stringify(calls).includes(s));
});

test('20 users at once: each tool call reaches the API with its own user\'s token', async () => {
  const users = await pool([...Array(20).keys()], 5, async (i) => {
    const u = await stack.makeUserWithKey(stack.tenant.admin_key);
    const r = await connect(stack, u.key, `many-${i}-${u.user.id}`);
    assert.equal(r.status, 200, r.text);
    return { ...u, account: `many-${i}-${u.user.id}` };
  });
  const outs = await pool(users, 20, (u) => callTool(stack, u.key, 'whoami'));
  users.forEach((u, i) => assert.match(outs[i], new RegExp(`"sub":"${u.account}"`), `user ${i} got ${outs[i]}`));
});

test('an expired token is refreshed once for 20 concurrent runs, and the rotated refresh token is kept', async () => {
  const { user, key } = await stack.makeUserWithKey(stack.tenant.admin_key);
  stack.as.accessTtl = 2;
  try {
    const r = await connect(stack, key, `refresh-${user.id}`);
    assert.equal(r.status, 200, r.text);
  } finally {
    stack.as.accessTtl = 2;
  }
  await sleep(2200);   // the access token has expired
  const before = stack.as.counts.refresh_token;
  const sessions = await pool([...Array(20).keys()], 20, () => newSession(stack, key, 'helper'));
  const outs = await pool(sessions, 20, async (s) => {
    const r = await stack.api(key, 'POST', `/v1/sessions/${s.id}/messages`, { content: toolMarker('whoami', {}) });
    return r.body.message.content;
  });
  for (const o of outs) assert.match(o, new RegExp(`"sub":"refresh-${user.id}"`));
  assert.equal(stack.as.counts.refresh_token - before, 1, 'exactly one refresh at the provider');

  // the provider rotated the refresh token: refreshing again works only if
  // the new one was written back
  await sleep(2200);
  stack.as.accessTtl = 60;
  const again = await callTool(stack, key, 'whoami');
  assert.match(again, new RegExp(`"sub":"refresh-${user.id}"`));
  assert.equal(stack.as.counts.refresh_token - before, 2);
});

test('DELETE revokes at the provider and the next tool call has no token', async () => {
  const { user, key } = await stack.makeUserWithKey(stack.tenant.admin_key);
  const c = await connect(stack, key, `revoke-${user.id}`);
  assert.equal(c.status, 200);
  assert.match(await callTool(stack, key, 'whoami'), /"sub":"revoke-/);
  const sent = stack.capture.requests.at(-1).authorization;
  const before = stack.as.counts.revocation;
  const del = await stack.api(key, 'DELETE', `/v1/connections/${c.id}`);
  assert.equal(del.status, 200, del.text);
  assert.equal(del.body.deleted, true);
  assert.equal(del.body.revoked_at_provider, true);
  assert.equal(stack.as.counts.revocation, before + 1, 'RFC 7009 revocation reached the provider');
  // the provider no longer honours what the tool was given
  const ui = await fetch(`${stack.as.issuer}/me`, { headers: { authorization: sent } });
  assert.equal(ui.status, 401);

  // the next call of a run sends nothing: the run waits for a connection
  const n = stack.capture.requests.length;
  const b = await runTool(stack, key, 'whoami');
  assert.equal(b.run.status, 'waiting_auth');
  assert.equal(stack.capture.requests.length, n, 'no request reached the API without a token');
  assert.equal((await stack.api(key, 'GET', '/v1/connections')).body.data.find((x) => x.id === c.id), undefined);

  const entries = await auditEntries(stack, stack.tenant.admin_key, '&action=consent.revoke');
  const e = entries.find((x) => x.target === c.id);
  assert.ok(e, 'consent.revoke is audited');
  assert.equal(e.details.provider, 'demo');
  assert.equal(e.details.revoke_at_provider, true, 'the erasure says a revocation at the provider follows');
  // what the provider answered is an entry of its own, after the erasure's
  const remote = (await auditEntries(stack, stack.tenant.admin_key, '&action=consent.revoke.remote'))
    .find((x) => x.target === c.id);
  assert.ok(remote, 'consent.revoke.remote is audited');
  assert.equal(remote.details.revoked_at_provider, true);
});

test('a token the service refuses (401): that call fails, the connection is marked expired, the next call asks the user again', async () => {
  const { user, key } = await stack.makeUserWithKey(stack.tenant.admin_key);
  const other = await stack.makeUserWithKey(stack.tenant.admin_key);
  const c = await connect(stack, key, `refused-${user.id}`);
  const o = await connect(stack, other.key, `refused-other-${other.user.id}`);
  assert.match(await callTool(stack, key, 'strict'), /"sub":"refused-/);
  stack.capture.refuse = true;
  let out;
  try {
    out = await callTool(stack, key, 'strict');
  } finally {
    stack.capture.refuse = false;
  }
  assert.match(out, /HTTP 401/, 'the model is told the call failed');
  await eventually(async () => {
    const mine = (await stack.api(key, 'GET', '/v1/connections')).body.data.find((x) => x.id === c.id);
    return mine.status === 'expired';
  });
  // another user's connection to the same provider is untouched
  const theirs = (await stack.api(other.key, 'GET', '/v1/connections')).body.data.find((x) => x.id === o.id);
  assert.equal(theirs.status, 'active');
  assert.match(await callTool(stack, other.key, 'strict'), /"sub":"refused-other-/);
  // the next call of a run asks the user, sending nothing
  const n = stack.capture.requests.length;
  const b = await runTool(stack, key, 'strict');
  assert.equal(b.run.status, 'waiting_auth');
  assert.equal(stack.capture.requests.length, n, 'no request reached the API with the refused token');
  // connected again, it works
  assert.equal((await connect(stack, key, `refused-again-${user.id}`)).status, 200);
  assert.match(await callTool(stack, key, 'strict'), /"sub":"refused-again-/);
});

test('an API key is sealed at once and sent in the header the tool declared', async () => {
  const { key } = await stack.makeUserWithKey(stack.tenant.admin_key);
  const apiKey = 'sk-vault-' + Math.random().toString(36).slice(2) + Date.now();
  noteSecret(apiKey);
  const r = await stack.api(key, 'POST', '/v1/connections', { provider: 'keyed', api_key: apiKey });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.status, 'active');
  assert.ok(!r.text.includes(apiKey));
  const out = await callTool(stack, key, 'keyed_tool');
  assert.match(out, /"key":"present"/);
  assert.equal(stack.capture.requests.at(-1).key, apiKey);
  // wrong shapes are refused clearly
  const bad = await stack.api(key, 'POST', '/v1/connections', { provider: 'demo', api_key: 'x' });
  assert.equal(bad.status, 400);
  const none = await stack.api(key, 'POST', '/v1/connections', { provider: 'nope' });
  assert.equal(none.status, 404);
  assert.equal(none.body.error.param, 'provider');
});

test('no token, refresh token, code, verifier or key is in the database files as plaintext', async () => {
  const secrets = stack.as.secrets.filter((s) => s.length >= 16);
  assert.ok(secrets.length > 20, `the provider issued tokens (${secrets.length})`);
  if (!E2E_ON_POSTGRES) storeSql(stack, 'PRAGMA wal_checkpoint;');
  for (const [name, bytes] of dataDirBytes(stack.dataDir)) {
    for (const s of secrets) assert.equal(bytes.indexOf(s), -1, `${name} holds a provider secret in the clear`);
  }
  if (E2E_ON_POSTGRES) {
    // the database is not in the data directory: every row of the vault's
    // tables, as text, holds none of them
    const text = JSON.stringify([storeQuery(stack, 'SELECT * FROM connections'),
      storeQuery(stack, 'SELECT * FROM oauth_flows')]);
    for (const s of secrets) assert.equal(text.indexOf(s), -1, 'a vault row holds a provider secret in the clear');
  }
  const rows = storeSql(stack,
    "SELECT count(*) FROM connections WHERE sealed IS NOT NULL AND sealed NOT LIKE 'v%.%'");
  assert.equal(rows, '0', 'every secret is in the sealed form');
});

test('rotate-key while serving: a new key version, every row re-sealed, everything still opens', async () => {
  const { user, key } = await stack.makeUserWithKey(stack.tenant.admin_key);
  assert.equal((await connect(stack, key, `rotate-${user.id}`)).status, 200);
  const versionsBefore = storeSql(stack, 'SELECT DISTINCT key_version FROM connections WHERE sealed IS NOT NULL');
  assert.equal(versionsBefore, '1');
  // on PostgreSQL the command reads the server's configuration (--config),
  // so it needs the server's environment too
  const r = await runBrigade(['admin', '--data-dir', stack.dataDir, ...storeCliArgs(stack), 'vault', 'rotate-key'],
    { env: { DEMO_CLIENT_SECRET: stack.as.clientSecret } });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.version, 2);
  assert.ok(out.resealed >= 1);
  const versionsAfter = storeSql(stack, 'SELECT DISTINCT key_version FROM connections WHERE sealed IS NOT NULL');
  assert.equal(versionsAfter, '2');
  const keyFile = fs.readFileSync(path.join(stack.dataDir, 'vault.key'), 'utf8');
  assert.deepEqual(keyFile.split('\n').filter((l) => /^\d/.test(l)).map((l) => l.split(' ')[0]), ['2']);
  assert.equal((fs.statSync(path.join(stack.dataDir, 'vault.key')).mode & 0o777), 0o600);
  // the running server opens rows of the new version, and seals with it
  assert.match(await callTool(stack, key, 'whoami'), new RegExp(`"sub":"rotate-${user.id}"`));
  const other = await stack.makeUserWithKey(stack.tenant.admin_key);
  assert.equal((await connect(stack, other.key, `rotate2-${other.user.id}`)).status, 200);
  const v = storeSql(stack, `SELECT key_version FROM connections WHERE user_id = '${other.user.id}'`);
  assert.equal(v, '2');
  assert.match(await callTool(stack, other.key, 'whoami'), /"sub":"rotate2-/);
});

test('no provider secret in brigade\'s log (stdout and stderr) of this file', async () => {
  const log = stack.brigade.stdout + stack.brigade.stderr;
  assert.ok(log.length > 0);
  const secrets = stack.as.secrets.filter((s) => s.length >= 16);
  for (const s of secrets) assert.ok(!log.includes(s), `the log holds a provider secret (${s.slice(0, 6)}…)`);
  for (const r of stack.capture.requests) {
    if (r.authorization) assert.ok(!log.includes(r.authorization.slice(7)), 'the log holds a token a tool was given');
  }
});

test('waiting_auth: the run pauses with a connect link, the user connects with it, the run goes on with the new token', async () => {
  const { user, key } = await stack.makeUserWithKey(stack.tenant.admin_key);
  const n = stack.capture.requests.length;
  const s = await newSession(stack, key, 'helper');
  const st = openStream(stack, key, s.id, toolMarker('whoami', {}));
  const ev = await st.next('auth.required');
  assert.equal(ev.data.provider, 'demo');
  assert.equal(ev.data.tool, 'whoami');
  assert.match(ev.data.connect_url, new RegExp(`^${stack.brigadeUrl}/oauth/start\\?ticket=`));
  assert.equal(stack.capture.requests.length, n, 'nothing sent while waiting');
  // a client that polls sees what the run waits for (never the link itself)
  const polled = await stack.api(key, 'GET', `/v1/runs/${ev.data.run_id}`);
  assert.equal(polled.status, 200);
  assert.equal(polled.body.status, 'waiting_auth');
  assert.equal(polled.body.waiting.for, 'auth');
  assert.equal(polled.body.waiting.provider, 'demo');
  assert.ok(polled.body.waiting.until > Date.now() / 1000, 'the wait ends in the future');
  assert.ok(!polled.text.includes('ticket='), 'the connect link is not in the run');
  // another user of the tenant sees no such run
  const other = await stack.makeUserWithKey(stack.tenant.admin_key);
  assert.equal((await stack.api(other.key, 'GET', `/v1/runs/${ev.data.run_id}`)).status, 404);
  // the user opens the link from the event and consents
  const start = await openConnectUrl(ev.data.connect_url);
  assert.equal(start.status, 302);
  const cb = await stack.as.authorize(start.location, `late-${user.id}`);
  const page = await fetch(cb, { headers: { cookie: start.cookie } });
  assert.equal(page.status, 200, await page.text());
  const done = await st.done;
  const end = done.events.at(-1);
  assert.equal(end.event, 'run.completed', done.text.slice(-400));
  assert.match(end.data.message.content, new RegExp(`"sub":"late-${user.id}"`));
  for (const e of done.events) {
    for (const sec of stack.as.secrets) assert.ok(!JSON.stringify(e.data).includes(sec), 'no token in any event');
  }
});
