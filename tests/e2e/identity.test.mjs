// identity.test.mjs — who may call brigade: tenants, users and keys from
// creation to revocation, the roles of the three credentials, and user JWTs
// (HS256, RS256, ES256) verified against the tenant's pinned issuer config.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { before, describe, test } from 'node:test';

import { errorOf, useStack } from './lib/harness.mjs';

const stack = useStack();

const b64url = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** Sign a compact JWT. alg HS256 (key = secret), RS256 / ES256 (key = private KeyObject), or 'none'. */
function signJwt(payload, { alg = 'HS256', key, header = {} } = {}) {
  const h = b64url({ alg, typ: 'JWT', ...header });
  const p = b64url(payload);
  const input = `${h}.${p}`;
  let sig = '';
  if (alg === 'HS256') sig = crypto.createHmac('sha256', key).update(input).digest('base64url');
  else if (alg === 'RS256') sig = crypto.sign('sha256', Buffer.from(input), key).toString('base64url');
  else if (alg === 'ES256') sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  return `${input}.${sig}`;
}

function assertAuthError(r, what) {
  assert.equal(r.status, 401, `${what}: expected 401, got ${r.status}: ${r.text}`);
  assert.equal(errorOf(r).type, 'authentication_error', what);
}

describe('tenants', () => {
  test('server admin creates a tenant; the admin key is shown once', async () => {
    const name = stack.unique('acme');
    const r = await stack.admin('POST', '/v1/tenants', { name });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.name, name);
    assert.equal(typeof r.body.id, 'string');
    assert.match(r.body.admin_key, /^bk_adm_/);
    assert.ok(r.body.created_at !== undefined, 'created_at');
    const list = await stack.admin('GET', '/v1/tenants');
    assert.equal(list.status, 200);
    assert.equal(list.body.object, 'list');
    const t = list.body.data.find((x) => x.id === r.body.id);
    assert.ok(t, 'new tenant in GET /v1/tenants');
    assert.equal(t.name, name);
    assert.ok(!list.text.includes(r.body.admin_key), 'the admin key must not be listed again');
  });

  test('creating a tenant needs the server admin token', async () => {
    const t = await stack.makeTenant();
    assertAuthError(await stack.api(null, 'POST', '/v1/tenants', { name: 'x' }), 'no credential');
    assertAuthError(await stack.api('wrong-token', 'POST', '/v1/tenants', { name: 'x' }), 'wrong admin token');
    const r = await stack.api(t.admin_key, 'POST', '/v1/tenants', { name: 'x' });
    assert.equal(r.status, 403, `tenant admin creating a tenant: ${r.text}`);
    assert.equal(errorOf(r).type, 'permission_error');
    const l = await stack.api(t.admin_key, 'GET', '/v1/tenants');
    assert.equal(l.status, 403, `tenant admin listing tenants: ${l.text}`);
  });

  test('tenant without a name -> 400 naming the field', async () => {
    const r = await stack.admin('POST', '/v1/tenants', {});
    assert.equal(r.status, 400, r.text);
    assert.equal(errorOf(r).param, 'name');
  });

  test('the server admin token is not a user: it cannot call /v1/chat/completions as one', async () => {
    const r = await stack.admin('POST', '/v1/chat/completions', { model: 'local-model', messages: [{ role: 'user', content: 'hi' }] });
    assert.ok(r.status === 403 || r.status === 401, `status ${r.status}`);
  });
});

describe('users and keys', () => {
  let tenant;
  before(async () => { tenant = await stack.makeTenant(); });

  test('create, get, list, patch a user', async () => {
    const ext = stack.unique('alice');
    const r = await stack.api(tenant.admin_key, 'POST', '/v1/users', { external_id: ext, display_name: 'Alice', tier: 'gold' });
    assert.equal(r.status, 201, r.text);
    const u = r.body;
    assert.equal(u.external_id, ext);
    assert.equal(u.display_name, 'Alice');
    assert.equal(u.tier, 'gold');
    assert.equal(u.tenant_id, tenant.id);
    assert.equal(u.disabled, false);
    assert.ok(u.limits && typeof u.limits === 'object', 'limits object');
    const g = await stack.api(tenant.admin_key, 'GET', `/v1/users/${u.id}`);
    assert.equal(g.status, 200);
    assert.equal(g.body.id, u.id);
    const p = await stack.api(tenant.admin_key, 'PATCH', `/v1/users/${u.id}`, { tier: 'default', limits: { rpm: 30 } });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.body.tier, 'default');
    assert.equal(p.body.limits.rpm, 30);
  });

  test('a new user gets the default tier', async () => {
    const u = await stack.makeUser(tenant.admin_key);
    assert.equal(u.tier, 'default');
  });

  test('unknown tier -> 400 param tier', async () => {
    const r = await stack.api(tenant.admin_key, 'POST', '/v1/users', { external_id: stack.unique('t'), tier: 'platinum' });
    assert.equal(r.status, 400, r.text);
    assert.equal(errorOf(r).param, 'tier');
  });

  test('duplicate external_id in one tenant is refused', async () => {
    const ext = stack.unique('dup');
    await stack.makeUser(tenant.admin_key, ext);
    const r = await stack.api(tenant.admin_key, 'POST', '/v1/users', { external_id: ext });
    assert.ok(r.status >= 400 && r.status < 500, `second create: ${r.status} ${r.text}`);
    errorOf(r);
  });

  test('GET /v1/users paginates with limit/after', async () => {
    const t = await stack.makeTenant();
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await stack.makeUser(t.admin_key, `p${i}`)).id);
    const seen = [];
    let after = null;
    for (let page = 0; page < 5; page++) {
      const q = `/v1/users?limit=2${after ? `&after=${encodeURIComponent(after)}` : ''}`;
      const r = await stack.api(t.admin_key, 'GET', q);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.object, 'list');
      assert.ok(r.body.data.length <= 2, `page of ${r.body.data.length} with limit=2`);
      seen.push(...r.body.data.map((u) => u.id));
      if (!r.body.has_more) break;
      after = r.body.data.at(-1).id;
    }
    assert.deepEqual([...seen].sort(), [...ids].sort(), 'pages together list each user once');
  });

  test('a user key: created once, prefixes listed, works, revoked -> 401 at once', async () => {
    const u = await stack.makeUser(tenant.admin_key);
    const r = await stack.api(tenant.admin_key, 'POST', `/v1/users/${u.id}/keys`, {});
    assert.equal(r.status, 201, r.text);
    const k = r.body;
    assert.match(k.key, /^bk_usr_/);
    assert.equal(k.user_id, u.id);
    assert.ok(k.prefix && k.key.startsWith(k.prefix), `prefix ${k.prefix} is the start of the key`);
    assert.ok(k.prefix.length < k.key.length - 8, 'the prefix must not reveal the key');

    const list = await stack.api(tenant.admin_key, 'GET', `/v1/users/${u.id}/keys`);
    assert.equal(list.status, 200);
    assert.equal(list.body.object, 'list');
    const item = list.body.data.find((x) => x.id === k.id);
    assert.ok(item, 'key in list');
    assert.equal(item.prefix, k.prefix);
    assert.equal(item.revoked_at ?? null, null);
    assert.ok(!('key' in item) && !('hash' in item) && !('key_hash' in item), `list item leaks: ${JSON.stringify(item)}`);
    assert.ok(!list.text.includes(k.key), 'the key itself must never be listed');

    const me = await stack.api(k.key, 'GET', '/v1/me');
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.user.id, u.id);
    assert.equal(me.body.user.external_id, u.external_id);
    assert.equal(me.body.tenant.id, tenant.id);
    assert.equal(me.body.tenant.name, tenant.name);
    for (const p of ['day', 'month']) {
      for (const f of ['spent_usd', 'reserved_usd', 'budget_usd']) assert.ok(f in me.body.usage[p], `usage.${p}.${f}`);
    }

    const del = await stack.api(tenant.admin_key, 'DELETE', `/v1/keys/${k.id}`);
    assert.equal(del.status, 200, del.text);
    assert.equal(del.body.id, k.id);
    assert.equal(del.body.revoked, true);
    assertAuthError(await stack.api(k.key, 'GET', '/v1/me'), 'revoked key');
    const list2 = await stack.api(tenant.admin_key, 'GET', `/v1/users/${u.id}/keys`);
    assert.ok(list2.body.data.find((x) => x.id === k.id).revoked_at, 'revoked_at set');
  });

  test('revocation holds even right after heavy use of the key (no stale cache)', async () => {
    const { key, keyObj } = await stack.makeUserWithKey(tenant.admin_key);
    for (let i = 0; i < 5; i++) assert.equal((await stack.api(key, 'GET', '/v1/me')).status, 200);
    const del = await stack.api(tenant.admin_key, 'DELETE', `/v1/keys/${keyObj.id}`);
    assert.equal(del.status, 200);
    assertAuthError(await stack.api(key, 'GET', '/v1/me'), 'revoked key right after use');
  });

  test('a user may have several keys; revoking one leaves the other working', async () => {
    const u = await stack.makeUser(tenant.admin_key);
    const k1 = await stack.makeUserKey(tenant.admin_key, u.id);
    const k2 = await stack.makeUserKey(tenant.admin_key, u.id);
    assert.notEqual(k1.key, k2.key);
    await stack.api(tenant.admin_key, 'DELETE', `/v1/keys/${k1.id}`);
    assertAuthError(await stack.api(k1.key, 'GET', '/v1/me'), 'revoked k1');
    assert.equal((await stack.api(k2.key, 'GET', '/v1/me')).status, 200);
  });

  test('disabled user -> 401 at once; enabled again -> works', async () => {
    const { user, key } = await stack.makeUserWithKey(tenant.admin_key);
    assert.equal((await stack.api(key, 'GET', '/v1/me')).status, 200);
    const p = await stack.api(tenant.admin_key, 'PATCH', `/v1/users/${user.id}`, { disabled: true });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.body.disabled, true);
    assertAuthError(await stack.api(key, 'GET', '/v1/me'), 'disabled user /v1/me');
    assertAuthError(await stack.api(key, 'POST', '/v1/chat/completions', { model: 'local-model', messages: [{ role: 'user', content: 'hi' }] }), 'disabled user chat');
    const p2 = await stack.api(tenant.admin_key, 'PATCH', `/v1/users/${user.id}`, { disabled: false });
    assert.equal(p2.status, 200);
    assert.equal((await stack.api(key, 'GET', '/v1/me')).status, 200);
  });

  test('DELETE user erases it and its keys', async () => {
    const { user, key, keyObj } = await stack.makeUserWithKey(tenant.admin_key);
    const d = await stack.api(tenant.admin_key, 'DELETE', `/v1/users/${user.id}`);
    assert.equal(d.status, 200, d.text);
    assert.equal(d.body.id, user.id);
    assert.equal(d.body.deleted, true);
    assertAuthError(await stack.api(key, 'GET', '/v1/me'), 'key of deleted user');
    assert.equal((await stack.api(tenant.admin_key, 'GET', `/v1/users/${user.id}`)).status, 404);
    assert.equal((await stack.api(tenant.admin_key, 'DELETE', `/v1/users/${user.id}`)).status, 404);
    assert.equal((await stack.api(tenant.admin_key, 'DELETE', `/v1/keys/${keyObj.id}`)).status, 404, 'key gone with its user');
  });

  test('a user key may not administer: POST /v1/users -> 403 permission_error', async () => {
    const { key } = await stack.makeUserWithKey(tenant.admin_key);
    const r = await stack.api(key, 'POST', '/v1/users', { external_id: 'sneaky' });
    assert.equal(r.status, 403, r.text);
    assert.equal(errorOf(r).type, 'permission_error');
  });

  test('a tenant admin key is not a user: GET /v1/me is not 200', async () => {
    const r = await stack.api(tenant.admin_key, 'GET', '/v1/me');
    assert.ok(r.status === 403 || r.status === 401 || r.status === 404, `status ${r.status}`);
  });
});

describe('missing or bad credentials', () => {
  const cases = [
    ['no Authorization header', {}],
    ['empty bearer', { authorization: 'Bearer ' }],
    ['garbage bearer', { authorization: 'Bearer not-a-credential' }],
    ['well-formed but unknown user key', { authorization: 'Bearer bk_usr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
    ['well-formed but unknown admin key', { authorization: 'Bearer bk_adm_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
    ['Basic scheme', { authorization: 'Basic dXNlcjpwYXNz' }],
    ['a.b.c pseudo-JWT', { authorization: 'Bearer a.b.c' }],
  ];
  for (const [name, headers] of cases) {
    test(`${name} -> 401 authentication_error`, async () => {
      const r = await stack.api(null, 'GET', '/v1/me', undefined, headers);
      assertAuthError(r, name);
      assert.ok(r.headers.get('x-request-id'));
    });
  }
});

describe('user JWTs', () => {
  let tenant;
  let issuer;
  const secret = crypto.randomBytes(32).toString('hex');
  before(async () => {
    tenant = await stack.makeTenant();
    issuer = `https://idp.example.test/${tenant.id}`;
    // A tenant admin may set its own tenant's JWT settings.
    const r = await stack.api(tenant.admin_key, 'PATCH', `/v1/tenants/${tenant.id}`, { jwt: { issuer, audience: 'brigade-api', alg: 'HS256', key: secret } });
    assert.equal(r.status, 200, `PATCH tenant jwt: ${r.text}`);
  });
  const claims = (extra = {}) => ({ iss: issuer, aud: 'brigade-api', sub: 'jwt-sub-1', iat: now(), exp: now() + 300, ...extra });

  test('HS256 token accepted; unknown sub provisioned with the default tier', async () => {
    const tok = signJwt(claims({ sub: 'fresh-sub-42' }), { key: secret });
    const me = await stack.api(tok, 'GET', '/v1/me');
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.user.external_id, 'fresh-sub-42');
    assert.equal(me.body.user.tier, 'default');
    assert.equal(me.body.tenant.id, tenant.id);
    // Provisioned once: the same sub maps to the same user.
    const me2 = await stack.api(signJwt(claims({ sub: 'fresh-sub-42' }), { key: secret }), 'GET', '/v1/me');
    assert.equal(me2.body.user.id, me.body.user.id);
    const list = await stack.api(tenant.admin_key, 'GET', '/v1/users?limit=100');
    assert.ok(list.body.data.some((u) => u.external_id === 'fresh-sub-42'), 'provisioned user listed by the tenant admin');
  });

  test('a JWT works with the openai SDK', async () => {
    const tok = signJwt(claims(), { key: secret });
    const c = await stack.openaiClient(tok).chat.completions.create({ model: 'local-model', messages: [{ role: 'user', content: 'hi [[tokens:2]]' }] });
    assert.equal(c.usage.completion_tokens, 2);
  });

  test('JWT of an existing user acts as that user', async () => {
    const u = await stack.makeUser(tenant.admin_key, 'known-ext-7');
    const me = await stack.api(signJwt(claims({ sub: 'known-ext-7' }), { key: secret }), 'GET', '/v1/me');
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.user.id, u.id);
  });

  test('JWT of a disabled user -> 401', async () => {
    const u = await stack.makeUser(tenant.admin_key, 'to-disable');
    await stack.api(tenant.admin_key, 'PATCH', `/v1/users/${u.id}`, { disabled: true });
    assertAuthError(await stack.api(signJwt(claims({ sub: 'to-disable' }), { key: secret }), 'GET', '/v1/me'), 'disabled JWT user');
  });

  const bad = [
    ['expired', () => signJwt(claims({ exp: now() - 3600, iat: now() - 7200 }), { key: secret })],
    ['missing exp', () => { const c = claims(); delete c.exp; return signJwt(c, { key: secret }); }],
    ['not yet valid (nbf in an hour)', () => signJwt(claims({ nbf: now() + 3600 }), { key: secret })],
    ['wrong issuer', () => signJwt(claims({ iss: 'https://evil.example.test/' }), { key: secret })],
    ['wrong secret', () => signJwt(claims(), { key: 'not-the-secret' })],
    ['alg none', () => signJwt(claims(), { alg: 'none' })],
    ['alg none with a signature', () => signJwt(claims(), { alg: 'none' }) + 'AAAA'],
    ['header says RS256 on an HS256 issuer', () => {
      const t = signJwt(claims(), { key: secret });
      const [, p, s] = t.split('.');
      return `${b64url({ alg: 'RS256', typ: 'JWT' })}.${p}.${s}`;
    }],
    ['tampered payload', () => {
      const t = signJwt(claims({ sub: 'victim' }), { key: secret });
      const [h, , s] = t.split('.');
      return `${h}.${b64url(claims({ sub: 'attacker' }))}.${s}`;
    }],
    ['missing sub', () => { const c = claims(); delete c.sub; return signJwt(c, { key: secret }); }],
    ['two parts only', () => signJwt(claims(), { key: secret }).split('.').slice(0, 2).join('.')],
    ['payload not JSON', () => { const h = b64url({ alg: 'HS256', typ: 'JWT' }); const p = b64url('not json'); const s = crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url'); return `${h}.${p}.${s}`; }],
  ];
  for (const [name, make] of bad) {
    test(`JWT ${name} -> 401`, async () => {
      assertAuthError(await stack.api(make(), 'GET', '/v1/me'), name);
    });
  }

  test('audience: required, string or array member', async () => {
    const t = await stack.makeTenant();
    const iss = `https://aud.example.test/${t.id}`;
    const r = await stack.api(t.admin_key, 'PATCH', `/v1/tenants/${t.id}`, { jwt: { issuer: iss, audience: 'brigade-api', alg: 'HS256', key: secret } });
    assert.equal(r.status, 200, r.text);
    const base = { iss, sub: 'aud-user', exp: now() + 300 };
    assert.equal((await stack.api(signJwt({ ...base, aud: 'brigade-api' }, { key: secret }), 'GET', '/v1/me')).status, 200);
    assert.equal((await stack.api(signJwt({ ...base, aud: ['other', 'brigade-api'] }, { key: secret }), 'GET', '/v1/me')).status, 200);
    assertAuthError(await stack.api(signJwt(base, { key: secret }), 'GET', '/v1/me'), 'no aud');
    assertAuthError(await stack.api(signJwt({ ...base, aud: 'other' }, { key: secret }), 'GET', '/v1/me'), 'wrong aud');
  });

  test('RS256 with a generated key pair; HS256 signed with the public key is refused', async () => {
    const t = await stack.makeTenant();
    const iss = `https://rsa.example.test/${t.id}`;
    const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = publicKey.export({ type: 'spki', format: 'pem' });
    const r = await stack.api(t.admin_key, 'PATCH', `/v1/tenants/${t.id}`, { jwt: { issuer: iss, audience: 'brigade-api', alg: 'RS256', key: pem } });
    assert.equal(r.status, 200, r.text);
    const c = { iss, aud: 'brigade-api', sub: 'rsa-user', exp: now() + 300 };
    const me = await stack.api(signJwt(c, { alg: 'RS256', key: privateKey }), 'GET', '/v1/me');
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.user.external_id, 'rsa-user');
    // Algorithm confusion: an HS256 token whose HMAC key is the PEM public key.
    assertAuthError(await stack.api(signJwt(c, { alg: 'HS256', key: pem }), 'GET', '/v1/me'), 'HS256 with RSA public key');
    const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    assertAuthError(await stack.api(signJwt(c, { alg: 'RS256', key: other }), 'GET', '/v1/me'), 'RS256 by another key');
  });

  test('ES256 with a generated P-256 key pair', async () => {
    const t = await stack.makeTenant();
    const iss = `https://ec.example.test/${t.id}`;
    const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' });
    const r = await stack.api(t.admin_key, 'PATCH', `/v1/tenants/${t.id}`, { jwt: { issuer: iss, audience: 'brigade-api', alg: 'ES256', key: pem } });
    assert.equal(r.status, 200, r.text);
    const me = await stack.api(signJwt({ iss, aud: 'brigade-api', sub: 'ec-user', exp: now() + 300 }, { alg: 'ES256', key: privateKey }), 'GET', '/v1/me');
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.user.external_id, 'ec-user');
    // A DER-encoded ECDSA signature is not the JWS form (r||s) and must fail.
    const h = b64url({ alg: 'ES256', typ: 'JWT' });
    const p = b64url({ iss, aud: 'brigade-api', sub: 'ec-user', exp: now() + 300 });
    const der = crypto.sign('sha256', Buffer.from(`${h}.${p}`), privateKey).toString('base64url');
    assertAuthError(await stack.api(`${h}.${p}.${der}`, 'GET', '/v1/me'), 'ES256 DER signature');
  });

  test('PATCH tenant jwt with an unusable key or alg, or no audience -> 400', async () => {
    const t = await stack.makeTenant();
    const patch = (jwt) => stack.api(t.admin_key, 'PATCH', `/v1/tenants/${t.id}`, { jwt });
    const r1 = await patch({ issuer: 'https://x.test', audience: 'a', alg: 'RS256', key: 'not a pem' });
    assert.equal(r1.status, 400, r1.text);
    const r2 = await patch({ issuer: 'https://x.test', audience: 'a', alg: 'none', key: 'k' });
    assert.equal(r2.status, 400, r2.text);
    const r3 = await patch({ issuer: 'https://x.test', audience: 'a', alg: 'HS384', key: 'k' });
    assert.equal(r3.status, 400, r3.text);
    const r4 = await patch({ issuer: 'https://x.test', alg: 'HS256', key: 'k'.repeat(40) });
    assert.equal(r4.status, 400, r4.text);
    assert.equal(r4.body.error.param, 'audience');
  });
});
