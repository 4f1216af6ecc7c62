// security_identity.test.mjs — the identity attacks of the security review,
// each played against the real server:
//  - the server admin re-points an existing tenant's JWT settings at a
//    secret of its own and signs in as that tenant's users (now 403, and
//    every change of sign-in settings is audited without the secret);
//  - tenants' HS256 secrets read from a copy of the database (now sealed
//    under the server secret; plaintext rows of older versions sealed at
//    start; a sealed key copied to another tenant's row does not open);
//  - a tenant admin revokes its only admin key, or cannot rotate a leaked
//    one (now admin-key routes, and the last key is never revoked);
//  - JWT looseness: tokens of other apps of the same identity provider (no
//    audience), subjects with NUL or control characters or too long, and a
//    taken issuer that named its holder;
//  - one keep-alive connection carrying many keys (a shared backend, or a
//    client that swaps keys): each request is its own key's, a key one byte
//    off another is refused, and a key revoked or a user disabled while the
//    connection remembers the key's MAC is refused at once.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { auditEntries, errorOf, storeSql, useStack } from './lib/harness.mjs';
import { restartBrigade } from './lib/agents.mjs';

const stack = useStack({
  extraYaml: 'agents:\n  - {name: keeper, model: local-model, tools: [memory]}\n',
});

const b64url = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const AUD = 'brigade-api';

/** An HS256 JWT; payload given as an object or as raw JSON text. */
function hs256(payload, secret) {
  const h = b64url({ alg: 'HS256', typ: 'JWT' });
  const p = b64url(payload);
  return `${h}.${p}.${crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url')}`;
}
const fingerprint = (key) => crypto.createHash('sha256').update(key).digest('hex').slice(0, 16);
const newSecret = () => `hs-${crypto.randomBytes(24).toString('hex')}`;

/** Does any file of the data directory hold these bytes? */
function dataDirHolds(needle) {
  const hits = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && fs.readFileSync(p).includes(Buffer.from(needle))) hits.push(p);
    }
  };
  walk(stack.dataDir);
  return hits;
}

const auditAll = (key, query = '') => auditEntries(stack, key, query);

/** Set a tenant's JWT settings as its own admin. */
async function setJwt(t, jwt) {
  const r = await stack.api(t.admin_key, 'PATCH', `/v1/tenants/${t.id}`, { jwt });
  assert.equal(r.status, 200, `PATCH jwt: ${r.text}`);
  return r;
}

/** Stop brigade, change its database, start it again on the same data dir. */
async function withServerStopped(statements) {
  const info = await stack.brigade.stop();
  assert.equal(info.code, 0);
  const out = storeSql(stack, statements);
  await restartBrigade(stack, 'SIGTERM');
  return out;
}

describe('the server admin and a tenant\'s sign-in settings', () => {
  let t;
  let victim;
  before(async () => {
    t = await stack.makeTenant();
    victim = await stack.makeUserWithKey(t.admin_key, 'victim-ext');
    const put = await stack.api(victim.key, 'PUT', '/v1/memory/diary', { value: 'private words' });
    assert.ok(put.status === 200 || put.status === 201, put.text);
    await setJwt(t, { issuer: `https://idp.example.test/${t.id}`, audience: AUD, alg: 'HS256', key: newSecret() });
  });

  test('PATCH jwt of an existing tenant by the server admin -> 403; its own secret signs nobody in', async () => {
    const mine = newSecret();
    const iss = `https://admin-owned.example.test/${t.id}`;
    const r = await stack.admin('PATCH', `/v1/tenants/${t.id}`, { jwt: { issuer: iss, audience: AUD, alg: 'HS256', key: mine } });
    assert.equal(r.status, 403, r.text);
    assert.equal(errorOf(r).type, 'permission_error');
    assert.match(errorOf(r).message, /tenant's admin/);
    // clearing is a change too
    assert.equal((await stack.admin('PATCH', `/v1/tenants/${t.id}`, { jwt: null })).status, 403);
    // the attack's second half: a token as the victim, signed with the admin's secret
    const tok = hs256({ iss, aud: AUD, sub: 'victim-ext', exp: now() + 300 }, mine);
    const mem = await stack.api(tok, 'GET', '/v1/memory/diary');
    assert.equal(mem.status, 401, mem.text);
    // the tenant's settings are as they were
    const list = await stack.admin('GET', '/v1/tenants');
    const row = list.body.data.find((x) => x.id === t.id);
    assert.equal(row.jwt.issuer, `https://idp.example.test/${t.id}`);
  });

  test('the server admin still sets jwt when creating a tenant, and its limits afterwards', async () => {
    const secret = newSecret();
    const iss = `https://at-creation.example.test/${stack.unique('x')}`;
    const r = await stack.admin('POST', '/v1/tenants', { name: stack.unique('created'), jwt: { issuer: iss, audience: AUD, alg: 'HS256', key: secret } });
    assert.equal(r.status, 201, r.text);
    const me = await stack.api(hs256({ iss, aud: AUD, sub: 'first', exp: now() + 300 }, secret), 'GET', '/v1/me');
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.tenant.id, r.body.id);
    const lim = await stack.admin('PATCH', `/v1/tenants/${r.body.id}`, { limits: { rpm: 100 } });
    assert.equal(lim.status, 200, lim.text);
  });

  test('a tenant admin naming another tenant -> 404', async () => {
    const other = await stack.makeTenant();
    const r = await stack.api(other.admin_key, 'PATCH', `/v1/tenants/${t.id}`, { jwt: { issuer: 'https://x.test', audience: AUD, alg: 'HS256', key: newSecret() } });
    assert.equal(r.status, 404, r.text);
  });

  test('every change of sign-in settings is audited: old and new issuer, audience, alg, key fingerprint — never the secret', async () => {
    const u = await stack.makeTenant();
    const s1 = newSecret();
    const s2 = newSecret();
    const iss1 = `https://one.example.test/${u.id}`;
    const iss2 = `https://two.example.test/${u.id}`;
    await setJwt(u, { issuer: iss1, audience: 'app-1', alg: 'HS256', key: s1 });
    await setJwt(u, { issuer: iss2, audience: 'app-2', alg: 'HS256', key: s2 });
    assert.equal((await stack.api(u.admin_key, 'PATCH', `/v1/tenants/${u.id}`, { jwt: null })).status, 200);

    const rows = await auditAll(u.admin_key, '&action=tenant.jwt.change');
    assert.equal(rows.length, 3, JSON.stringify(rows));
    const [a, b, c] = rows.map((e) => (typeof e.details === 'string' ? JSON.parse(e.details) : e.details));
    assert.equal(a.before, null);
    assert.deepEqual(a.after, { issuer: iss1, audience: 'app-1', alg: 'HS256', key_sha256: fingerprint(s1) });
    assert.deepEqual(b.before, a.after);
    assert.deepEqual(b.after, { issuer: iss2, audience: 'app-2', alg: 'HS256', key_sha256: fingerprint(s2) });
    assert.deepEqual(c.before, b.after);
    assert.equal(c.after, null);
    for (const e of rows) {
      assert.equal(e.tenant_id, u.id);
      assert.match(e.actor, /^tenant_admin:/);
    }
    // the server admin's view and the raw rows hold no secret either
    const all = JSON.stringify(await auditAll(stack.adminToken));
    for (const s of [s1, s2]) {
      assert.ok(!all.includes(s), 'a secret in the audit API');
      assert.deepEqual(dataDirHolds(s), [], 'a secret in the data directory');
    }
    const created = (await auditAll(stack.adminToken, '&action=tenant.create')).map((e) => JSON.stringify(e));
    assert.ok(created.length > 0);
  });
});

describe('tenant HS256 secrets in the database', () => {
  test('the database files never hold a tenant\'s secret, set at creation or later', async () => {
    const s1 = newSecret();
    const s2 = newSecret();
    const iss = `https://sealed.example.test/${stack.unique('s')}`;
    const r = await stack.admin('POST', '/v1/tenants', { name: stack.unique('sealed'), jwt: { issuer: iss, audience: AUD, alg: 'HS256', key: s1 } });
    assert.equal(r.status, 201, r.text);
    await setJwt({ id: r.body.id, admin_key: r.body.admin_key }, { issuer: iss, audience: AUD, alg: 'HS256', key: s2 });
    assert.deepEqual(dataDirHolds(s1), []);
    assert.deepEqual(dataDirHolds(s2), []);
    const stored = storeSql(stack, `SELECT jwt_key FROM tenants WHERE id = '${r.body.id}'`);
    assert.match(stored, /^sealed:v1:/);
    const me = await stack.api(hs256({ iss, aud: AUD, sub: 'x', exp: now() + 300 }, s2), 'GET', '/v1/me');
    assert.equal(me.status, 200, me.text);
  });

  test('a plaintext secret left by an older version is sealed at start, and no file keeps it', { timeout: 30_000 }, async () => {
    const t = await stack.makeTenant();
    const secret = newSecret();
    const iss = `https://legacy.example.test/${t.id}`;
    await setJwt(t, { issuer: iss, audience: AUD, alg: 'HS256', key: newSecret() });
    // what an older brigade wrote: the secret itself in jwt_key
    await withServerStopped(`UPDATE tenants SET jwt_key = '${secret}' WHERE id = '${t.id}';`);
    assert.match(stack.brigade.output(), /sealed 1 tenant JWT key/);
    assert.match(storeSql(stack, `SELECT jwt_key FROM tenants WHERE id = '${t.id}'`), /^sealed:v1:/);
    assert.deepEqual(dataDirHolds(secret), []);
    const me = await stack.api(hs256({ iss, aud: AUD, sub: 'legacy-user', exp: now() + 300 }, secret), 'GET', '/v1/me');
    assert.equal(me.status, 200, me.text);
  });

  test('a sealed key copied into another tenant\'s row does not open there', { timeout: 30_000 }, async () => {
    const a = await stack.makeTenant();
    const b = await stack.makeTenant();
    const sa = newSecret();
    const issA = `https://copy-a.example.test/${a.id}`;
    const issB = `https://copy-b.example.test/${b.id}`;
    await setJwt(a, { issuer: issA, audience: AUD, alg: 'HS256', key: sa });
    await setJwt(b, { issuer: issB, audience: AUD, alg: 'HS256', key: newSecret() });
    await withServerStopped(`UPDATE tenants SET jwt_key = (SELECT jwt_key FROM tenants WHERE id = '${a.id}') WHERE id = '${b.id}';`);
    assert.match(stack.brigade.output(), new RegExp(`tenant ${b.id}: its JWT key does not open`));
    const forged = await stack.api(hs256({ iss: issB, aud: AUD, sub: 'b-user', exp: now() + 300 }, sa), 'GET', '/v1/me');
    assert.equal(forged.status, 401, forged.text);
    const ok = await stack.api(hs256({ iss: issA, aud: AUD, sub: 'a-user', exp: now() + 300 }, sa), 'GET', '/v1/me');
    assert.equal(ok.status, 200, ok.text);
  });

  test('settings from before audiences were required: tokens refused with a clear 401 until the admin sets one', { timeout: 30_000 }, async () => {
    const t = await stack.makeTenant();
    const secret = newSecret();
    const iss = `https://no-aud.example.test/${t.id}`;
    await setJwt(t, { issuer: iss, audience: AUD, alg: 'HS256', key: secret });
    await withServerStopped(`UPDATE tenants SET jwt_audience = NULL WHERE id = '${t.id}';`);
    assert.match(stack.brigade.output(), new RegExp(`tenant ${t.id}: its JWT settings name no audience`));
    const r = await stack.api(hs256({ iss, aud: AUD, sub: 'u', exp: now() + 300 }, secret), 'GET', '/v1/me');
    assert.equal(r.status, 401, r.text);
    assert.match(errorOf(r).message, /no audience; its admin must set jwt\.audience/);
    await setJwt(t, { issuer: iss, audience: AUD, alg: 'HS256', key: secret });
    const ok = await stack.api(hs256({ iss, aud: AUD, sub: 'u', exp: now() + 300 }, secret), 'GET', '/v1/me');
    assert.equal(ok.status, 200, ok.text);
  });
});

describe('admin keys: rotation, and no lock-out', () => {
  test('list (prefixes only), create (shown once), revoke the old one; the last one is refused with 409', async () => {
    const t = await stack.makeTenant();
    const base = `/v1/tenants/${t.id}/admin-keys`;
    const l1 = await stack.api(t.admin_key, 'GET', base);
    assert.equal(l1.status, 200, l1.text);
    assert.equal(l1.body.data.length, 1);
    const first = l1.body.data[0];
    assert.equal(first.kind, 'tenant_admin');
    assert.ok(t.admin_key.startsWith(first.prefix));
    assert.ok(!JSON.stringify(l1.body).includes(t.admin_key), 'a listing shows prefixes only');
    assert.ok(!('hash' in first) && !('key' in first));

    // the only key: refused by both revocation routes
    const last = await stack.api(t.admin_key, 'DELETE', `${base}/${first.id}`);
    assert.equal(last.status, 409, last.text);
    assert.equal(errorOf(last).type, 'conflict_error');
    assert.equal(errorOf(last).code, 'last_admin_key');
    assert.equal((await stack.api(t.admin_key, 'DELETE', `/v1/keys/${first.id}`)).status, 409);
    assert.equal((await stack.api(t.admin_key, 'GET', '/v1/users')).status, 200, 'still in');

    // rotation
    const made = await stack.api(t.admin_key, 'POST', base, {});
    assert.equal(made.status, 201, made.text);
    assert.match(made.body.key, /^bk_adm_/);
    assert.equal(made.body.kind, 'tenant_admin');
    const fresh = made.body.key;
    const l2 = await stack.api(fresh, 'GET', base);
    assert.equal(l2.body.data.length, 2);
    assert.ok(!JSON.stringify(l2.body).includes(fresh), 'shown once: never in a listing');
    const rv = await stack.api(fresh, 'DELETE', `${base}/${first.id}`);
    assert.equal(rv.status, 200, rv.text);
    assert.equal(rv.body.revoked, true);
    assert.equal((await stack.api(t.admin_key, 'GET', '/v1/users')).status, 401, 'the leaked key is dead');
    assert.equal((await stack.api(fresh, 'DELETE', `${base}/${made.body.id}`)).status, 409, 'now the last one');

    // audited, with the key's prefix and never the key
    const rows = await auditAll(fresh);
    const c = rows.find((e) => e.action === 'key.create' && e.target === made.body.id);
    const r = rows.find((e) => e.action === 'key.revoke' && e.target === first.id);
    assert.ok(c && r, JSON.stringify(rows.map((e) => e.action)));
    assert.ok(!JSON.stringify(rows).includes(fresh));
  });

  test('a tenant admin naming another tenant gets 404; a user gets 403; the server admin may mint one', async () => {
    const a = await stack.makeTenant();
    const b = await stack.makeTenant();
    const bKeys = (await stack.api(b.admin_key, 'GET', `/v1/tenants/${b.id}/admin-keys`)).body.data;
    for (const [m, p] of [['GET', `/v1/tenants/${b.id}/admin-keys`], ['POST', `/v1/tenants/${b.id}/admin-keys`],
      ['DELETE', `/v1/tenants/${b.id}/admin-keys/${bKeys[0].id}`]]) {
      const r = await stack.api(a.admin_key, m, p, m === 'POST' ? {} : undefined);
      assert.equal(r.status, 404, `${m} ${p}: ${r.text}`);
    }
    const u = await stack.makeUserWithKey(a.admin_key);
    assert.equal((await stack.api(u.key, 'GET', `/v1/tenants/${a.id}/admin-keys`)).status, 403);
    // a user key id is not an admin key
    assert.equal((await stack.api(a.admin_key, 'DELETE', `/v1/tenants/${a.id}/admin-keys/${u.keyObj.id}`)).status, 404);

    // the way back in for a tenant that lost its keys: loud, not silent
    const m = await stack.admin('POST', `/v1/tenants/${b.id}/admin-keys`, {});
    assert.equal(m.status, 201, m.text);
    assert.equal((await stack.api(m.body.key, 'GET', '/v1/users')).status, 200);
    const seen = (await stack.api(b.admin_key, 'GET', `/v1/tenants/${b.id}/admin-keys`)).body.data.map((k) => k.id);
    assert.ok(seen.includes(m.body.id), "the tenant's admin sees the key the server admin made");
    const rows = await auditAll(b.admin_key, '&action=key.create');
    assert.ok(rows.some((e) => e.target === m.body.id && e.actor === 'server_admin'), JSON.stringify(rows));
    assert.equal((await stack.admin('GET', '/v1/tenants/ten_nosuch/admin-keys')).status, 404);
  });
});

describe('JWT looseness', () => {
  let t;
  const secret = newSecret();
  let iss;
  before(async () => {
    t = await stack.makeTenant();
    iss = `https://loose.example.test/${t.id}`;
    await setJwt(t, { issuer: iss, audience: AUD, alg: 'HS256', key: secret });
  });

  test('settings without an audience -> 400, at creation and later', async () => {
    const r = await stack.admin('POST', '/v1/tenants', { name: stack.unique('noaud'), jwt: { issuer: 'https://noaud.test', alg: 'HS256', key: newSecret() } });
    assert.equal(r.status, 400, r.text);
    assert.equal(errorOf(r).param, 'audience');
    const p = await stack.api(t.admin_key, 'PATCH', `/v1/tenants/${t.id}`, { jwt: { issuer: iss, alg: 'HS256', key: secret } });
    assert.equal(p.status, 400, p.text);
  });

  test('a token minted for another app of the same identity provider -> 401', async () => {
    for (const aud of ['another-app', ['another-app', 'third-app'], undefined]) {
      const r = await stack.api(hs256({ iss, aud, sub: 'u1', exp: now() + 300 }, secret), 'GET', '/v1/me');
      assert.equal(r.status, 401, `aud ${JSON.stringify(aud)}: ${r.text}`);
      assert.match(errorOf(r).message, /audience/);
    }
    assert.equal((await stack.api(hs256({ iss, aud: AUD, sub: 'u1', exp: now() + 300 }, secret), 'GET', '/v1/me')).status, 200);
  });

  test('sub with NUL or control characters, or over 255 bytes -> 401; 255 bytes pass', async () => {
    const victim = await stack.makeUserWithKey(t.admin_key, 'alice');
    const raw = (sub) => `{"iss":${JSON.stringify(iss)},"aud":"${AUD}","sub":${sub},"exp":${now() + 300}}`;
    for (const sub of ['"alice\\u0000admin"', '"alice\\u0000"', '"ali\\nce"', '"ali\\u001bce"', '"ali\\u007fce"', '"ali\\u0085ce"',
      JSON.stringify('s'.repeat(256)), JSON.stringify('s'.repeat(5000))]) {
      const r = await stack.api(hs256(raw(sub), secret), 'GET', '/v1/me');
      assert.equal(r.status, 401, `sub ${sub.slice(0, 40)}: ${r.text}`);
      assert.match(errorOf(r).message, /subject/);
    }
    const ok = await stack.api(hs256(raw(JSON.stringify('s'.repeat(255))), secret), 'GET', '/v1/me');
    assert.equal(ok.status, 200, ok.text);
    // alice is alice only with her own subject
    const me = await stack.api(hs256(raw('"alice"'), secret), 'GET', '/v1/me');
    assert.equal(me.body.user.id, victim.user.id);
  });

  test('an issuer already taken -> 409 that names no tenant', async () => {
    const other = await stack.makeTenant();
    const r = await stack.api(other.admin_key, 'PATCH', `/v1/tenants/${other.id}`, { jwt: { issuer: iss, audience: AUD, alg: 'HS256', key: newSecret() } });
    assert.equal(r.status, 409, r.text);
    assert.equal(errorOf(r).type, 'conflict_error');
    const holder = (await stack.admin('GET', '/v1/tenants')).body.data.find((x) => x.id === t.id);
    assert.ok(!r.text.includes(t.id) && !r.text.includes(holder.name), r.text);
  });
});

describe('one keep-alive connection, many keys', () => {
  /** GET /v1/me over the one socket of `agent`: {status, body, socket}. */
  const me = (agent, key) => new Promise((resolve, reject) => {
    const req = http.request(`${stack.brigadeUrl}/v1/me`, { agent, headers: { authorization: `Bearer ${key}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: text ? JSON.parse(text) : null, socket: res.socket }));
    });
    req.on('error', reject);
    req.end();
  });

  test('each request is its own key\'s; a near key, a revoked key and a disabled user are refused on the same socket', async () => {
    const t = await stack.makeTenant();
    const a = await stack.makeUserWithKey(t.admin_key, 'conn-a');
    const b = await stack.makeUserWithKey(t.admin_key, 'conn-b');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const seen = new Set();
      const expect = async (key, status, userId, code) => {
        const r = await me(agent, key);
        seen.add(r.socket);
        assert.equal(r.status, status, JSON.stringify(r.body));
        if (userId) assert.equal(r.body.user.id, userId);
        if (code) assert.equal(r.body.error.code, code);
      };
      await expect(a.key, 200, a.user.id);
      await expect(a.key, 200, a.user.id);
      await expect(b.key, 200, b.user.id);
      await expect(a.key, 200, a.user.id);
      const last = a.key.at(-1) === 'A' ? 'B' : 'A';
      await expect(a.key.slice(0, -1) + last, 401);
      await expect(a.key, 200, a.user.id);
      stack.must(await stack.api(t.admin_key, 'DELETE', `/v1/keys/${a.keyObj.id}`), 200, 'revoke');
      await expect(a.key, 401);
      await expect(b.key, 200, b.user.id);
      stack.must(await stack.api(t.admin_key, 'PATCH', `/v1/users/${b.user.id}`, { disabled: true }), 200, 'disable');
      await expect(b.key, 401, null, 'user_disabled');
      assert.equal(seen.size, 1, 'every request went over one connection');
    } finally {
      agent.destroy();
    }
  });
});
