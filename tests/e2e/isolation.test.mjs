// isolation.test.mjs — nobody is served another's plate. Two tenants with
// several users each: a user cannot read, list or change anything of another
// user, a tenant admin cannot see or change another tenant, and usage is
// only ever the caller's own. Another's object is 404, never 403, so its
// existence is not revealed (invariant 2, docs/architecture.md).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, test } from 'node:test';

import { eventually, useStack } from './lib/harness.mjs';

// A: tenant with users a1, a2; B: tenant with user b1 (and a user with the
// same external id as a1, to show ids are per tenant).
let A; let B;
let a1; let a2; let b1; let bSame;

const stack = useStack({}, async () => {
  A = await stack.makeTenant();
  B = await stack.makeTenant();
  a1 = await stack.makeUserWithKey(A.admin_key, 'same-ext');
  a2 = await stack.makeUserWithKey(A.admin_key, 'a2');
  b1 = await stack.makeUserWithKey(B.admin_key, 'b1');
  bSame = await stack.makeUserWithKey(B.admin_key, 'same-ext');

  // Usage with distinct token counts per user so sums identify whose it is.
  const spend = async (who, n) => {
    const c = await stack.openaiClient(who.key).chat.completions.create({
      model: 'local-model', messages: [{ role: 'user', content: `spend [[tokens:${n}]]` }],
    });
    assert.equal(c.usage.completion_tokens, n);
  };
  await spend(a1, 3);
  await spend(a2, 5);
  await spend(a2, 5);
  await spend(b1, 7);
  await spend(bSame, 11);
  // Wait for the usage flush (200 ms batches).
  await eventually(async () => {
    const r = await stack.api(B.admin_key, 'GET', '/v1/usage?group_by=user');
    const total = (r.body?.data ?? []).reduce((s, x) => s + x.output_tokens, 0);
    return total === 18;
  }, { timeoutMs: 4000 });
});

const is404 = (r, what) => {
  assert.equal(r.status, 404, `${what}: expected 404, got ${r.status}: ${r.text}`);
  assert.equal(r.body?.error?.type, 'not_found_error', what);
};

describe('same external id in two tenants', () => {
  test('two distinct users, each seeing its own tenant', async () => {
    assert.notEqual(a1.user.id, bSame.user.id);
    const m1 = await stack.api(a1.key, 'GET', '/v1/me');
    const m2 = await stack.api(bSame.key, 'GET', '/v1/me');
    assert.equal(m1.body.tenant.id, A.id);
    assert.equal(m2.body.tenant.id, B.id);
    assert.equal(m1.body.user.id, a1.user.id);
    assert.equal(m2.body.user.id, bSame.user.id);
  });
});

describe('user vs user', () => {
  test('user a1 cannot read user a2 (same tenant) or b1 (other tenant)', async () => {
    is404(await stack.api(a1.key, 'GET', `/v1/users/${a2.user.id}`), 'a1 GET a2');
    is404(await stack.api(a1.key, 'GET', `/v1/users/${b1.user.id}`), 'a1 GET b1');
  });

  test("user a1 cannot list a2's or b1's keys", async () => {
    is404(await stack.api(a1.key, 'GET', `/v1/users/${a2.user.id}/keys`), 'a1 GET a2 keys');
    is404(await stack.api(a1.key, 'GET', `/v1/users/${b1.user.id}/keys`), 'a1 GET b1 keys');
  });

  test("user a1 cannot revoke a2's key; a2's key keeps working", async () => {
    const r = await stack.api(a1.key, 'DELETE', `/v1/keys/${a2.keyObj.id}`);
    assert.ok(r.status === 404 || r.status === 403, `a1 DELETE a2 key: ${r.status} ${r.text}`);
    assert.equal((await stack.api(a2.key, 'GET', '/v1/me')).status, 200);
  });

  test('user a1 cannot change or delete a2 or b1', async () => {
    for (const [victim, name] of [[a2, 'a2'], [b1, 'b1']]) {
      const p = await stack.api(a1.key, 'PATCH', `/v1/users/${victim.user.id}`, { disabled: true });
      assert.ok(p.status === 404 || p.status === 403, `PATCH ${name}: ${p.status}`);
      const d = await stack.api(a1.key, 'DELETE', `/v1/users/${victim.user.id}`);
      assert.ok(d.status === 404 || d.status === 403, `DELETE ${name}: ${d.status}`);
      const k = await stack.api(a1.key, 'POST', `/v1/users/${victim.user.id}/keys`, {});
      assert.ok(k.status === 404 || k.status === 403, `POST keys of ${name}: ${k.status}`);
      assert.equal((await stack.api(victim.key, 'GET', '/v1/me')).status, 200, `${name} still works`);
    }
  });

  test('user listing /v1/users sees at most itself', async () => {
    const r = await stack.api(a1.key, 'GET', '/v1/users');
    if (r.status === 403) return; // listing users is an admin act
    assert.equal(r.status, 200, r.text);
    for (const u of r.body.data) assert.equal(u.id, a1.user.id, `user a1 listed ${u.id}`);
  });

  test("a user's usage is only its own", async () => {
    const check = async (who, outTokens, requests) => {
      const r = await stack.api(who.key, 'GET', '/v1/usage?group_by=model');
      assert.equal(r.status, 200, r.text);
      const out = r.body.data.reduce((s, x) => s + x.output_tokens, 0);
      const req = r.body.data.reduce((s, x) => s + x.requests, 0);
      assert.equal(out, outTokens, `usage output_tokens of ${who.user.external_id}`);
      assert.equal(req, requests);
    };
    await check(a1, 3, 1);
    await check(a2, 10, 2);
    await check(b1, 7, 1);
    await check(bSame, 11, 1);
  });

  test("a user asking for another's usage (?user=) gets its own or nothing", async () => {
    for (const q of [`user=${a2.user.id}`, `user=${b1.user.id}`]) {
      const r = await stack.api(a1.key, 'GET', `/v1/usage?group_by=model&${q}`);
      if (r.status === 404 || r.status === 403 || r.status === 400) continue;
      assert.equal(r.status, 200);
      const out = r.body.data.reduce((s, x) => s + x.output_tokens, 0);
      assert.ok(out === 3 || out === 0, `a1 with ${q} saw ${out} output tokens (a1 has 3)`);
    }
  });

  test('group_by=user as a user shows only that user', async () => {
    const r = await stack.api(a2.key, 'GET', '/v1/usage?group_by=user');
    if (r.status === 400 || r.status === 403) return; // allowed to refuse
    assert.equal(r.status, 200);
    assert.ok(r.body.data.length <= 1, JSON.stringify(r.body.data));
    assert.equal(r.body.data.reduce((s, x) => s + x.output_tokens, 0), 10);
  });
});

describe('tenant admin vs another tenant', () => {
  test('admin A cannot read, change or delete user b1', async () => {
    is404(await stack.api(A.admin_key, 'GET', `/v1/users/${b1.user.id}`), 'GET b1');
    is404(await stack.api(A.admin_key, 'PATCH', `/v1/users/${b1.user.id}`, { disabled: true }), 'PATCH b1');
    is404(await stack.api(A.admin_key, 'DELETE', `/v1/users/${b1.user.id}`), 'DELETE b1');
    is404(await stack.api(A.admin_key, 'GET', `/v1/users/${b1.user.id}/keys`), 'GET b1 keys');
    is404(await stack.api(A.admin_key, 'POST', `/v1/users/${b1.user.id}/keys`, {}), 'POST b1 keys');
    const me = await stack.api(b1.key, 'GET', '/v1/me');
    assert.equal(me.status, 200, 'b1 untouched');
    assert.equal(me.body.user.disabled, false);
  });

  test("admin A cannot revoke b1's key", async () => {
    is404(await stack.api(A.admin_key, 'DELETE', `/v1/keys/${b1.keyObj.id}`), 'DELETE b1 key');
    assert.equal((await stack.api(b1.key, 'GET', '/v1/me')).status, 200);
  });

  test('admin A cannot patch tenant B', async () => {
    const r = await stack.api(A.admin_key, 'PATCH', `/v1/tenants/${B.id}`, { jwt: { issuer: 'https://evil.test', audience: 'brigade', alg: 'HS256', key: 'k'.repeat(40) } });
    is404(r, 'PATCH tenant B');
  });

  test("admin A's user list holds only A's users", async () => {
    const r = await stack.api(A.admin_key, 'GET', '/v1/users?limit=100');
    assert.equal(r.status, 200);
    const ids = r.body.data.map((u) => u.id).sort();
    assert.deepEqual(ids, [a1.user.id, a2.user.id].sort());
    for (const u of r.body.data) assert.equal(u.tenant_id, A.id);
  });

  test("admin A's usage by user shows a1 and a2 only, with their own numbers", async () => {
    const r = await stack.api(A.admin_key, 'GET', '/v1/usage?group_by=user');
    assert.equal(r.status, 200, r.text);
    const groups = Object.fromEntries(r.body.data.map((x) => [x.group, x]));
    const keys = Object.keys(groups);
    assert.ok(!keys.includes(b1.user.id) && !keys.includes(bSame.user.id), `B's users in A's usage: ${keys}`);
    const total = r.body.data.reduce((s, x) => s + x.output_tokens, 0);
    assert.equal(total, 13, 'A total output tokens = 3 + 5 + 5');
    // The group may be the user id or the external id.
    const g1 = groups[a1.user.id] ?? groups['same-ext'];
    const g2 = groups[a2.user.id] ?? groups.a2;
    assert.ok(g1 && g2, `groups ${keys}`);
    assert.equal(g1.output_tokens, 3);
    assert.equal(g2.output_tokens, 10);
  });

  test("admin A asking for b1's usage (?user=) gets nothing of B", async () => {
    const r = await stack.api(A.admin_key, 'GET', `/v1/usage?group_by=model&user=${b1.user.id}`);
    if (r.status === 404) return;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.data.reduce((s, x) => s + x.output_tokens, 0), 0);
  });

  test("admin B's usage by user shows b1 and bSame only", async () => {
    const r = await stack.api(B.admin_key, 'GET', '/v1/usage?group_by=user');
    assert.equal(r.status, 200);
    assert.equal(r.body.data.reduce((s, x) => s + x.output_tokens, 0), 18);
    assert.equal(r.body.data.length, 2);
  });
});

describe('JWTs do not cross tenants', () => {
  test("a token signed with A's secret naming B's issuer is refused", async () => {
    const secretA = crypto.randomBytes(16).toString('hex');
    const secretB = crypto.randomBytes(16).toString('hex');
    const issA = `https://a.example.test/${A.id}`;
    const issB = `https://b.example.test/${B.id}`;
    const patchA = await stack.api(A.admin_key, 'PATCH', `/v1/tenants/${A.id}`, { jwt: { issuer: issA, audience: 'brigade', alg: 'HS256', key: secretA } });
    assert.equal(patchA.status, 200, patchA.text);
    const patchB = await stack.api(B.admin_key, 'PATCH', `/v1/tenants/${B.id}`, { jwt: { issuer: issB, audience: 'brigade', alg: 'HS256', key: secretB } });
    assert.equal(patchB.status, 200, patchB.text);
    const sign = (payload, secret) => {
      const h = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
      const p = Buffer.from(JSON.stringify(payload)).toString('base64url');
      return `${h}.${p}.${crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url')}`;
    };
    const exp = Math.floor(Date.now() / 1000) + 300;
    const ok = await stack.api(sign({ iss: issA, aud: 'brigade', sub: 'same-ext', exp }, secretA), 'GET', '/v1/me');
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.user.id, a1.user.id, "A's token with sub same-ext is A's user");
    const okB = await stack.api(sign({ iss: issB, aud: 'brigade', sub: 'same-ext', exp }, secretB), 'GET', '/v1/me');
    assert.equal(okB.body.user.id, bSame.user.id, "B's token with sub same-ext is B's user");
    const forged = await stack.api(sign({ iss: issB, aud: 'brigade', sub: 'b1', exp }, secretA), 'GET', '/v1/me');
    assert.equal(forged.status, 401, forged.text);
  });
});
