// security_vault.test.mjs — attacks on the vault and the consent flow, each
// against a real authorization server: another user's connection, forged,
// replayed and cross-user states, a connect link opened twice or in another
// browser, an expired code, open redirects, a provider that answers garbage,
// hangs or floods its token endpoint, a tool that reflects the token, a
// sealed row copied to another user in the database, and HTML injection
// into the callback page.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';

import { sleep, storeSql } from './lib/harness.mjs';
import { beginConnect, callTool, connect, openConnectUrl, runTool, useVaultStack } from './lib/vault.mjs';

const stack = useVaultStack({ accessTtl: 60, timeoutMs: 1500 }, async (s) => {
  s.tenant = await s.makeTenant();
  s.alice = await s.makeUserWithKey(s.tenant.admin_key, 'alice');
  s.bob = await s.makeUserWithKey(s.tenant.admin_key, 'bob');
});

const callback = (query, cookie) =>
  fetch(`${stack.brigadeUrl}/oauth/callback?${query}`, { headers: cookie ? { cookie } : {}, redirect: 'manual' });

test('a user cannot see, use or delete another user\'s connection (404)', async () => {
  const other = await stack.makeTenant();
  const eve = await stack.makeUserWithKey(other.admin_key);
  const c = await connect(stack, stack.alice.key, 'alice-acct');
  assert.equal(c.status, 200, c.text);
  for (const key of [stack.bob.key, eve.key]) {
    const list = await stack.api(key, 'GET', '/v1/connections');
    assert.equal(list.status, 200);
    assert.equal(list.body.data.find((x) => x.id === c.id), undefined);
    const del = await stack.api(key, 'DELETE', `/v1/connections/${c.id}`);
    assert.equal(del.status, 404);
    assert.equal(del.body.error.code, 'not_found');
  }
  // bob's tool call does not go out with alice's token: his run waits for his own
  const n = stack.capture.requests.length;
  const b = await runTool(stack, stack.bob.key, 'whoami');
  assert.equal(b.run.status, 'waiting_auth');
  assert.equal(stack.capture.requests.length, n);
  // a tenant admin key is not a user: no connections of its own
  assert.equal((await stack.api(stack.tenant.admin_key, 'GET', '/v1/connections')).status, 403);
  assert.match(await callTool(stack, stack.alice.key, 'whoami'), /"sub":"alice-acct"/);
});

test('a forged state is refused, and the page says why', async () => {
  const r = await callback(`state=${randomBytes(32).toString('base64url')}&code=abc`, 'brigade_oauth=x');
  const html = await r.text();
  assert.equal(r.status, 404);
  assert.match(html, /failed: this sign-in is unknown, was already used, or has expired/);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.equal(r.headers.get('location'), null);
  const none = await callback('code=abc');
  assert.equal(none.status, 400);
});

test('a replayed state is refused: a callback completes once', async () => {
  const c = await connect(stack, stack.bob.key, 'bob-replay');
  assert.equal(c.status, 200, c.text);
  const again = await fetch(c.callbackUrl, { headers: { cookie: c.start.cookie } });
  assert.equal(again.status, 404);
  assert.match(await again.text(), /already used/);
});

test('a connect link works once, and only in the browser that opened it', async () => {
  const c = await beginConnect(stack, stack.alice.key);
  const first = await openConnectUrl(c.connect_url);
  assert.equal(first.status, 302);
  // a second browser (the phished victim, or the attacker after the user)
  const second = await openConnectUrl(c.connect_url);
  assert.equal(second.status, 409);
  assert.equal(second.location, null);
  assert.equal(second.setCookie, '');
  // the flow is completed in a browser without the start's cookie: refused,
  // and the state is spent, so the right browser cannot be raced either
  const cb = await stack.as.authorize(first.location, 'mallory-acct');
  const wrong = await fetch(cb);
  assert.equal(wrong.status, 400);
  assert.match(await wrong.text(), /not started in this browser/);
  const late = await fetch(cb, { headers: { cookie: first.cookie } });
  assert.equal(late.status, 404);
  const list = await stack.api(stack.alice.key, 'GET', '/v1/connections');
  assert.match(await callTool(stack, stack.alice.key, 'whoami'), /"sub":"alice-acct"/, 'alice\'s connection is untouched');
  assert.ok(list.body.data.every((x) => x.provider !== 'demo' || x.status === 'active'));
});

test('a cross-user state: Bob\'s browser cookie with Alice\'s state binds nothing', async () => {
  const alice = await stack.makeUserWithKey(stack.tenant.admin_key);
  const bob = await stack.makeUserWithKey(stack.tenant.admin_key);
  assert.equal((await connect(stack, alice.key, 'xa-acct')).status, 200);
  assert.equal((await connect(stack, bob.key, 'xb-acct')).status, 200);
  const a = await beginConnect(stack, alice.key);
  const aStart = await openConnectUrl(a.connect_url);
  const b = await beginConnect(stack, bob.key);
  const bStart = await openConnectUrl(b.connect_url);
  const aCb = await stack.as.authorize(aStart.location, 'attacker-acct');
  // Alice's provider answer delivered to Bob's browser (login CSRF)
  const r = await fetch(aCb, { headers: { cookie: bStart.cookie } });
  assert.equal(r.status, 400);
  assert.match(await r.text(), /not started in this browser/);
  assert.match(await callTool(stack, alice.key, 'whoami'), /"sub":"xa-acct"/);
  assert.match(await callTool(stack, bob.key, 'whoami'), /"sub":"xb-acct"/);
});

test('an expired authorization code fails the flow with the provider\'s reason', async () => {
  const { key } = await stack.makeUserWithKey(stack.tenant.admin_key);
  const c = await beginConnect(stack, key);
  const start = await openConnectUrl(c.connect_url);
  stack.as.codeTtl = 1;
  let cb;
  try {
    cb = await stack.as.authorize(start.location, 'slow-user');
  } finally {
    stack.as.codeTtl = 60;
  }
  await sleep(1500);
  const r = await fetch(cb, { headers: { cookie: start.cookie } });
  assert.equal(r.status, 502);
  assert.match(await r.text(), /failed: the provider refused: invalid_grant/);
  const list = await stack.api(key, 'GET', '/v1/connections');
  assert.equal(list.body.data.find((x) => x.id === c.id).status, 'pending');
});

test('no open redirect: /oauth/start goes only to the configured provider, the callback redirects nowhere', async () => {
  const c = await beginConnect(stack, stack.bob.key);
  const r = await fetch(`${c.connect_url}&redirect_uri=https%3A%2F%2Fevil.example%2F&next=https://evil.example/`, { redirect: 'manual' });
  assert.equal(r.status, 302);
  const loc = new URL(r.headers.get('location'));
  assert.equal(loc.origin, stack.as.issuer);
  assert.equal(loc.searchParams.get('redirect_uri'), `${stack.brigadeUrl}/oauth/callback`);
  for (const q of ['state=x&redirect_uri=https://evil.example/', 'next=//evil.example', 'error=access_denied&state=y']) {
    const cb = await callback(q);
    assert.equal(cb.headers.get('location'), null, q);
    assert.ok(cb.status >= 400);
  }
  const bad = await fetch(`${stack.brigadeUrl}/oauth/start?ticket=${'A'.repeat(43)}`, { redirect: 'manual' });
  assert.equal(bad.status, 404);
  assert.equal(bad.headers.get('location'), null);
});

test('the callback page escapes what it shows', async () => {
  const r = await callback('state=%3Cscript%3Ealert(1)%3C%2Fscript%3E&error=%3Cimg%20src%3Dx%3E');
  const html = await r.text();
  assert.ok(!html.includes('<script>alert'));
  assert.ok(!html.includes('<img'));
  assert.match(r.headers.get('content-security-policy'), /default-src 'none'/);
  assert.match(r.headers.get('content-type'), /^text\/html/);
});

for (const [mode, why, limitMs] of [
  ['garbage', /not a JSON object/, 3000],
  ['huge', /over 65536 bytes/, 3000],
  ['hang', /did not answer within 1500 ms/, 4000],
  ['error500', /answered HTTP 500/, 3000],
]) {
  test(`a token endpoint that answers ${mode}: the flow fails in bounded time with a clear reason`, async () => {
    const { key } = await stack.makeUserWithKey(stack.tenant.admin_key);
    const c = await beginConnect(stack, key);
    const start = await openConnectUrl(c.connect_url);
    const cb = await stack.as.authorize(start.location, `victim-${mode}`);
    stack.as.mode = mode;
    const t0 = Date.now();
    let r;
    try {
      r = await fetch(cb, { headers: { cookie: start.cookie } });
    } finally {
      stack.as.mode = 'normal';
    }
    const html = await r.text();
    const log = stack.brigade.stdout + stack.brigade.stderr;
    assert.ok(!log.includes('xxxxxxxxxx'), 'nothing of the answer is logged');
    assert.ok(Date.now() - t0 < limitMs, `answered in ${Date.now() - t0} ms`);
    assert.equal(r.status, 502, html);
    assert.match(html, why);
    assert.ok(!html.includes('xxxxxxxxxx'), 'nothing of the answer is quoted');
  });
}

test('a tool that reflects its request never hands the token to the model', async () => {
  const out = await callTool(stack, stack.alice.key, 'reflect');
  const sent = stack.capture.requests.at(-1).authorization;
  assert.match(sent, /^Bearer .{20,}/);
  const token = sent.slice('Bearer '.length);
  assert.match(out, /HTTP 500/);
  assert.ok(!out.includes(token), 'the token is not in the tool result');
  assert.match(out, /Bearer \[redacted\]/);
  const msgs = await stack.api(stack.alice.key, 'GET', '/v1/sessions?limit=100');
  assert.ok(!msgs.text.includes(token));
});

test('a sealed row copied to another user in the database does not open', async () => {
  const carol = await stack.makeUserWithKey(stack.tenant.admin_key);
  assert.equal((await connect(stack, carol.key, 'carol-acct')).status, 200);
  // bob gets carol's sealed secrets in his own (active) row
  storeSql(stack,
    `UPDATE connections SET sealed = (SELECT sealed FROM connections WHERE user_id = '${carol.user.id}' AND provider = 'demo'),
       key_version = (SELECT key_version FROM connections WHERE user_id = '${carol.user.id}' AND provider = 'demo'),
       status = 'active', expires_at = 0
     WHERE user_id = '${stack.bob.user.id}' AND provider = 'demo'`);
  const n = stack.capture.requests.length;
  const out = await callTool(stack, stack.bob.key, 'whoami');
  assert.match(out, /does not open here/);
  assert.doesNotMatch(out, /carol-acct/);
  assert.equal(stack.capture.requests.length, n, 'nothing went out with carol\'s token');
  assert.match(await callTool(stack, carol.key, 'whoami'), /"sub":"carol-acct"/);
});

test('a provider answer naming another issuer (RFC 9207 mix-up) is refused', async () => {
  const { key } = await stack.makeUserWithKey(stack.tenant.admin_key);
  const c = await beginConnect(stack, key);
  const start = await openConnectUrl(c.connect_url);
  const cb = new URL(await stack.as.authorize(start.location, 'mixup-acct'));
  assert.equal(cb.searchParams.get('iss'), stack.as.issuer, 'the provider names itself');
  cb.searchParams.set('iss', 'https://evil.example');
  const r = await fetch(cb, { headers: { cookie: start.cookie } });
  assert.equal(r.status, 400);
  assert.match(await r.text(), /another issuer/);
  const list = await stack.api(key, 'GET', '/v1/connections');
  assert.equal(list.body.data.find((x) => x.id === c.id).status, 'pending');
});

test('erasing a user erases their connections and consent flows in progress', async () => {
  const dave = await stack.makeUserWithKey(stack.tenant.admin_key);
  assert.equal((await connect(stack, dave.key, 'dave-acct')).status, 200);
  await beginConnect(stack, dave.key);   // a second flow, left open
  const rows = (table) => Number(storeSql(stack, `SELECT count(*) FROM ${table} WHERE user_id = '${dave.user.id}'`));
  assert.ok(rows('connections') >= 1 && rows('oauth_flows') >= 1, 'the user has a connection and a flow');
  const del = await stack.api(stack.tenant.admin_key, 'DELETE', `/v1/users/${dave.user.id}`);
  assert.equal(del.status, 200, del.text);
  assert.equal(rows('connections'), 0, 'no sealed credential of an erased user is left');
  assert.equal(rows('oauth_flows'), 0, 'no consent flow of an erased user is left');
});
