// audit.test.mjs — the tamper-evident audit log: admin acts and
// authentication failures become entries with the right actor and
// credential; GET /v1/audit is scoped (tenant admins see their tenant,
// users get 403) and paged; failures are rate-bound; `brigade audit verify`
// works while the server runs, and after the server stops names the entry
// an edit, a deletion, an insertion or a swap in the database touched
// (SQLite's file, or PostgreSQL with BRIGADE_E2E_STORE=postgres);
// GET /v1/audit/verify reports the tampering after a restart.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';

import { Child, auditEntries, copyStore, errorOf, runBrigade, storeCliArgs, storeSql, tempDir, useStack } from './lib/harness.mjs';

// A checkpoint every 4 entries, so a short test has signed checkpoints.
const stack = useStack({ extraYaml: 'observability:\n  audit: {checkpoint_every: 4}' });

const auditAll = (key, query = '') => auditEntries(stack, key, query);

const world = {};

describe('audit entries', () => {
  test('admin acts are recorded with actor and credential', async () => {
    const a = await stack.makeTenant();
    const b = await stack.makeTenant();
    const u = await stack.makeUser(a.admin_key);
    const k = await stack.makeUserKey(a.admin_key, u.id);
    const rv = await stack.api(a.admin_key, 'DELETE', `/v1/keys/${k.id}`);
    assert.equal(rv.status, 200);
    const gone = await stack.makeUser(a.admin_key);
    assert.equal((await stack.api(a.admin_key, 'DELETE', `/v1/users/${gone.id}`)).status, 200);
    const ub = await stack.makeUserWithKey(b.admin_key);
    Object.assign(world, { a, b, u, k, gone, ub });

    const all = await auditAll(stack.adminToken);
    const find = (action, target) => all.find((e) => e.action === action && e.target === target);

    const tc = find('tenant.create', a.id);
    assert.ok(tc, 'tenant.create entry');
    assert.equal(tc.actor, 'server_admin');
    assert.equal(tc.credential, 'admin-token');
    assert.equal(tc.tenant_id, a.id);
    assert.equal(tc.details.name, a.name);

    const uc = find('user.create', u.id);
    assert.ok(uc, 'user.create entry');
    assert.match(uc.actor, /^tenant_admin:key_/);
    assert.equal(uc.credential, uc.actor.slice('tenant_admin:'.length));
    assert.equal(uc.tenant_id, a.id);

    const kc = find('key.create', k.id);
    assert.ok(kc, 'key.create entry');
    assert.equal(kc.details.user_id, u.id);
    assert.equal(kc.credential, uc.credential);
    assert.ok(!JSON.stringify(kc).includes(k.key), 'the key itself is never in the log');

    assert.ok(find('key.revoke', k.id), 'key.revoke entry');
    const ud = find('user.delete', gone.id);
    assert.ok(ud, 'user.delete entry (the tombstone)');
    assert.ok(ud.details.erased.includes('memory'));

    // the chain fields
    for (let i = 1; i < all.length; i++) {
      assert.equal(all[i].seq, all[i - 1].seq + 1);
      assert.equal(all[i].prev_hash, all[i - 1].hash);
      assert.match(all[i].hash, /^[0-9a-f]{64}$/);
    }
  });

  test('an authentication failure is recorded without the secret, rate-bound', async () => {
    const secret = 'bk_adm_' + 'x'.repeat(43);
    const before = (await auditAll(stack.adminToken, '&action=auth.failure')).length;
    const r = await stack.api(secret, 'GET', '/v1/users');
    assert.equal(r.status, 401);
    const entries = await auditAll(stack.adminToken, '&action=auth.failure');
    assert.equal(entries.length, before + 1, 'one auth.failure entry');
    const last = entries[entries.length - 1];
    assert.equal(last.actor, 'anonymous');
    assert.equal(last.credential, 'admin_key');
    assert.equal(last.tenant_id, '');
    assert.equal(last.details.source, '127.0.0.1');
    assert.equal(last.details.path, '/v1/users');
    assert.ok(!JSON.stringify(entries).includes('x'.repeat(43)), 'the presented secret is not stored');

    // A flood: 40 failures in a burst make at most a few entries.
    const n0 = entries.length;
    await Promise.all(Array.from({ length: 40 }, () => stack.api('bk_usr_nope', 'GET', '/v1/me')));
    const n1 = (await auditAll(stack.adminToken, '&action=auth.failure')).length;
    assert.ok(n1 - n0 <= 3, `40 failures made ${n1 - n0} entries`);
  });

  test('a tenant admin sees only its tenant; users get 403', async () => {
    const { a, b, ub } = world;
    const ea = await auditAll(a.admin_key);
    assert.ok(ea.length >= 5);
    assert.ok(ea.every((e) => e.tenant_id === a.id), 'only tenant a');
    assert.ok(!ea.some((e) => e.action === 'auth.failure'));
    const eb = await auditAll(b.admin_key);
    assert.ok(eb.every((e) => e.tenant_id === b.id));
    assert.ok(eb.some((e) => e.action === 'user.create' && e.target === ub.user.id));

    for (const p of ['/v1/audit', '/v1/audit/verify']) {
      const r = await stack.api(ub.key, 'GET', p);
      assert.equal(r.status, 403, p);
      assert.equal(errorOf(r).type, 'permission_error');
    }
    // a tenant admin may not pick another tenant
    const r = await stack.api(a.admin_key, 'GET', `/v1/audit?tenant=${b.id}`);
    assert.equal(r.status, 400);
    assert.equal(errorOf(r).param, 'tenant');
    // the server admin may
    const onlyB = await auditAll(stack.adminToken, `&tenant=${b.id}`);
    assert.deepEqual(onlyB.map((e) => e.seq), eb.map((e) => e.seq));
  });

  test('filters, pagination and bad parameters', async () => {
    const { a } = world;
    const p1 = await stack.api(a.admin_key, 'GET', '/v1/audit?limit=2');
    assert.equal(p1.body.data.length, 2);
    assert.equal(p1.body.has_more, true);
    const p2 = await stack.api(a.admin_key, 'GET', `/v1/audit?limit=2&after=${p1.body.next_after}`);
    assert.ok(p2.body.data[0].seq > p1.body.data[1].seq);
    const byAction = await auditAll(a.admin_key, '&action=key.create');
    assert.ok(byAction.length >= 1 && byAction.every((e) => e.action === 'key.create'));
    const actor = byAction[0].actor;
    const byActor = await auditAll(a.admin_key, `&actor=${encodeURIComponent(actor)}`);
    assert.ok(byActor.every((e) => e.actor === actor));
    const future = await auditAll(a.admin_key, '&from=2999-01-01');
    assert.equal(future.length, 0);
    for (const q of ['limit=0', 'limit=1001', 'after=-1', 'from=yesterday', 'to=2026-13-45x']) {
      const r = await stack.api(a.admin_key, 'GET', `/v1/audit?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(errorOf(r).type, 'invalid_request_error');
    }
  });

  test('verify: intact over HTTP and on the command line while serving', async () => {
    const s = await stack.admin('GET', '/v1/audit/verify');
    assert.equal(s.status, 200);
    assert.equal(s.body.intact, true, JSON.stringify(s.body));
    assert.equal(s.body.first_bad_seq, null);
    assert.ok(s.body.checkpoints >= 1, 'checkpoints every 4 entries');
    assert.equal(s.body.signatures_checked, true);
    const t = await stack.api(world.a.admin_key, 'GET', '/v1/audit/verify');
    assert.equal(t.body.intact, true);
    assert.equal(t.body.problems, undefined, 'a tenant admin gets the verdict only');

    const v = await runBrigade(['audit', 'verify', '--data-dir', stack.dataDir, ...storeCliArgs(stack)]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /intact/);
    const pk = await runBrigade(['audit', 'pubkey', '--data-dir', stack.dataDir]);
    assert.equal(pk.code, 0);
    assert.match(pk.stdout.trim(), /^[0-9a-f]{64}$/);
    world.pubkey = pk.stdout.trim();
    const pinned = await runBrigade(['audit', 'verify', '--data-dir', stack.dataDir, '--pubkey', world.pubkey,
      ...storeCliArgs(stack)]);
    assert.equal(pinned.code, 0, pinned.stdout);
  });

  test('audit command line: --help and bad usage', async () => {
    const h = await runBrigade(['audit', '--help']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /verify/);
    assert.match(h.stdout, /--data-dir/);
    assert.equal((await runBrigade(['audit'])).code, 2);
    assert.equal((await runBrigade(['audit', 'frobnicate'])).code, 2);
    assert.equal((await runBrigade(['audit', 'verify', '--bogus'])).code, 2);
    assert.equal((await runBrigade(['audit', 'verify', '--pubkey', 'xyz', '--data-dir', stack.dataDir,
      ...storeCliArgs(stack)])).code, 2);
    const none = tempDir('brigade-audit-none-');
    const r = await runBrigade(['audit', 'verify', '--data-dir', none]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /no database/);
    fs.rmSync(none, { recursive: true, force: true });
  });
});

describe('tampering, with the server stopped', () => {
  const copies = [];
  const copyOf = (name) => {
    const c = copyStore(stack, `brigade-audit-${name}-`);
    copies.push(c.dataDir);
    return c;
  };

  test('verify names the edited, deleted, inserted and swapped entry', async (t) => {
    t.after(() => { if (!process.env.BRIGADE_E2E_KEEP) for (const d of copies) fs.rmSync(d, { recursive: true, force: true }); });
    const all = await auditAll(stack.adminToken);
    const kc = all.find((e) => e.action === 'key.create' && e.target === world.k.id).seq;
    const uc = all.find((e) => e.action === 'user.create' && e.target === world.u.id).seq;
    assert.ok(all[all.length - 1].seq > kc + 2 && kc > 2);
    world.tamperedSeq = kc;
    const info = await stack.brigade.stop();
    assert.equal(info.code, 0);

    const cases = [
      ['edit', `UPDATE audit SET details = '{"user_id":"usr_forged"}' WHERE seq = ${kc}`,
        new RegExp(`TAMPERED modified at seq ${kc}`)],
      ['delete', `DELETE FROM audit WHERE seq = ${uc}`,
        new RegExp(`TAMPERED deleted at seq ${uc}:.*gap between seq ${uc - 1} and ${uc + 1}`)],
      ['insert', `UPDATE audit SET seq = -seq - 1 WHERE seq >= ${kc};
                  UPDATE audit SET seq = -seq WHERE seq < 0;
                  INSERT INTO audit (seq, ts, tenant_id, actor, credential, action, target, details, prev_hash, hash)
                    SELECT ${kc}, ts, tenant_id, 'server_admin', 'admin-token', 'key.revoke', 'key_forged', '{}', hash,
                           '${'e'.repeat(64)}' FROM audit WHERE seq = ${kc - 1};`,
        new RegExp(`TAMPERED inserted at seq ${kc}`)],
      ['swap', `UPDATE audit SET seq = -1 WHERE seq = ${kc};
                UPDATE audit SET seq = ${kc} WHERE seq = ${kc + 1};
                UPDATE audit SET seq = ${kc + 1} WHERE seq = -1;`,
        new RegExp(`TAMPERED reordered at seq ${kc}:.*${kc} and ${kc + 1}`)],
    ];
    for (const [name, statements, want] of cases) {
      const c = copyOf(name);
      storeSql(c, statements);
      const v = await runBrigade(['audit', 'verify', '--data-dir', c.dataDir, '--pubkey', world.pubkey,
        ...storeCliArgs(c)]);
      assert.equal(v.code, 1, `${name}: ${v.stdout}${v.stderr}`);
      assert.match(v.stdout, want, `${name}:\n${v.stdout}`);
      assert.match(v.stdout, /tampered/);
      const j = await runBrigade(['audit', 'verify', '--json', '--data-dir', c.dataDir, ...storeCliArgs(c)]);
      assert.equal(JSON.parse(j.stdout).intact, false);
    }

    // a forged checkpoint: its signature made with another key
    const c = copyOf('checkpoint');
    storeSql(c, `UPDATE audit_checkpoints SET signature = '${'ab'.repeat(64)}' WHERE seq = 4`);
    const v = await runBrigade(['audit', 'verify', '--data-dir', c.dataDir, '--pubkey', world.pubkey,
      ...storeCliArgs(c)]);
    assert.equal(v.code, 1);
    assert.match(v.stdout, /TAMPERED checkpoint at seq 4: checkpoint at seq 4 has a bad signature/);

    // the untouched original is still intact, with the shutdown checkpoint
    const ok = await runBrigade(['audit', 'verify', '--data-dir', stack.dataDir, ...storeCliArgs(stack)]);
    assert.equal(ok.code, 0, ok.stdout);
  });

  test('GET /v1/audit/verify reports the tampering after a restart', async () => {
    const kc = world.tamperedSeq;
    storeSql(stack, `UPDATE audit SET target = 'key_other' WHERE seq = ${kc}`);
    const fresh = new Child('brigade serve (restarted)', ['serve', '--config', stack.configPath], {
      env: { BRIGADE_ADMIN_TOKEN: stack.adminToken },
    });
    stack.children.push(fresh);
    stack.brigade = fresh;
    const m = await fresh.waitFor(/listening on (http:\/\/[^\s]+)/);
    stack.brigadeUrl = m[1].replace(/\/$/, '');
    const s = await stack.admin('GET', '/v1/audit/verify');
    assert.equal(s.status, 200);
    assert.equal(s.body.intact, false);
    assert.equal(s.body.first_bad_seq, kc);
    assert.equal(s.body.problems[0].kind, 'modified');
    const t = await stack.api(world.a.admin_key, 'GET', '/v1/audit/verify');
    assert.equal(t.body.intact, false);
    assert.equal(t.body.first_bad_seq, kc);
    assert.equal(t.body.problems, undefined);
  });
});
