// security_audit.test.mjs — attacks on the audit log by someone who can
// write the database but does not hold the signing key: delete the
// checkpoints and rewrite the chain, rewrite it and re-sign the checkpoints
// with their own key, cut the tail, delete the newest checkpoints (with or
// without the entries after an older one), delete a checkpoint in the
// middle, delete one while the server runs. Also: the time bound seals a
// quiet log, a crash leaves a tail that verify warns of and the restart
// seals, GET /v1/audit/verify is incremental and its full scan
// rate-limited, and a 401 stores a bounded path.
//
// The entry hash and checkpoint signature are recomputed here from
// docs/audit.md, as an attacker would: a verifier given the attacker's key
// accepts the forgery, so the failures below are the key's doing.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';

import { Child, copyStore, errorOf, eventually, runBrigade, sleep, storeCliArgs, storeQuery, storeSql, useStack } from './lib/harness.mjs';

const EVERY = 4;
const stack = useStack({
  extraYaml: `observability:\n  audit: {checkpoint_every: ${EVERY}, checkpoint_interval_s: 2}`,
});

// The database of a place (the stack, or a copyStore copy): SQLite's file
// or, with BRIGADE_E2E_STORE=postgres, a PostgreSQL database.
const sql = (place, statements) => storeSql(place, statements);
const query = (place, q) => storeQuery(place, q);

// ---- the documented encodings (docs/audit.md) ----
const u64 = (n) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; };
const str = (s) => { const b = Buffer.from(s ?? '', 'utf8'); return Buffer.concat([u64(b.length), b]); };
function entryHash(e) {
  return crypto.createHash('sha256').update(Buffer.concat([
    str('brigade-audit-entry-v1'), u64(e.seq), u64(e.ts), str(e.tenant_id), str(e.actor),
    str(e.credential), str(e.action), str(e.target), str(e.details), str(e.prev_hash)])).digest('hex');
}
function checkpointMessage(cp, prevSignature) {
  return Buffer.concat([str('brigade-audit-checkpoint-v2'), u64(cp.seq), str(cp.hash), u64(cp.ts),
    u64(cp.every), u64(cp.interval_s), u64(cp.flags), u64(cp.prev_seq), str(prevSignature)]);
}

/** Rehash every entry from seq 1 (after `edit` changed some rows in memory), write them back. */
function rehashAll(db, edit) {
  const rows = query(db, 'SELECT * FROM audit ORDER BY seq');
  edit(rows);
  let prev = '0'.repeat(64);
  const stmts = [];
  for (const e of rows) {
    e.prev_hash = prev;
    e.hash = entryHash(e);
    prev = e.hash;
    stmts.push(`UPDATE audit SET details = '${e.details.replace(/'/g, "''")}', ts = ${e.ts},`
      + ` prev_hash = '${e.prev_hash}', hash = '${e.hash}' WHERE seq = ${e.seq};`);
  }
  sql(db, stmts.join('\n'));
  return rows;
}

const world = {};
const copies = [];
function copyOf(name) {
  const c = copyStore(world.stopped, `brigade-secaudit-${name}-`);
  copies.push(c.dataDir);
  return { dir: c, db: c };
}
const verify = (place, ...extra) =>
  runBrigade(['audit', 'verify', '--data-dir', place.dataDir, '--pubkey', world.pubkey, ...storeCliArgs(place), ...extra]);

async function someActs(n) {
  for (let i = 0; i < n; i++) await stack.makeTenant();
}

describe('audit log while serving', () => {
  test('the time bound seals a quiet log within its interval', async () => {
    await someActs(EVERY * 3 + 1);
    const pk = await runBrigade(['audit', 'pubkey', '--data-dir', stack.dataDir]);
    world.pubkey = pk.stdout.trim();
    await eventually(async () => {
      const v = await runBrigade(['audit', 'verify', '--json', '--data-dir', stack.dataDir, ...storeCliArgs(stack)]);
      const j = JSON.parse(v.stdout);
      assert.equal(j.intact, true, v.stdout);
      assert.equal(j.last_checkpoint_seq, j.last_seq, 'the newest entry is sealed');
      assert.equal(j.unsealed, 0);
      return true;
    }, { timeoutMs: 8000, intervalMs: 300 });
  });

  test('GET /v1/audit/verify: full once, then incremental; the full scan is rate-limited', async () => {
    const a = await stack.admin('GET', '/v1/audit/verify');
    assert.equal(a.status, 200, a.text);
    assert.equal(a.body.intact, true, a.text);
    assert.equal(a.body.scan, 'full');
    assert.match(a.body.head.signature, /^[0-9a-f]{128}$/);
    await someActs(1);
    const b = await stack.admin('GET', '/v1/audit/verify');
    assert.equal(b.body.intact, true, b.text);
    assert.equal(b.body.scan, 'incremental');
    assert.equal(b.body.from_seq, a.body.head.seq, 'starts at the checkpoint verified before');
    assert.ok(b.body.entries < a.body.entries, 'reads only the entries since');
    const f = await stack.admin('GET', '/v1/audit/verify?full=true');
    assert.equal(f.status, 429);
    assert.equal(errorOf(f).type, 'rate_limit_error');
    assert.ok(Number(f.headers.get('retry-after')) >= 1);
    const bad = await stack.admin('GET', '/v1/audit/verify?full=maybe');
    assert.equal(bad.status, 400);
    assert.equal(errorOf(bad).param, 'full');
    const t = await stack.makeTenant();
    const tf = await stack.api(t.admin_key, 'GET', '/v1/audit/verify?full=true');
    assert.equal(tf.status, 403);
  });

  test('a 401 stores at most 256 bytes of its path, cut on a character', async () => {
    await sleep(1100);              // one auth.failure entry per source per second
    const long = '/v1/users/' + 'a'.repeat(7000);
    const r = await stack.api('bk_usr_nope', 'GET', long);
    assert.equal(r.status, 401);
    // raw UTF-8 bytes in the target, as a hostile client can send them
    await sleep(1100);
    const rawPath = '/v1/users/' + 'x'.repeat(240) + 'é'.repeat(100);
    const status = await new Promise((resolve, reject) => {
      const s = net.connect(stack.port, '127.0.0.1', () => {
        s.write(Buffer.from(`GET ${rawPath} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer nope\r\nconnection: close\r\n\r\n`, 'utf8'));
      });
      let out = '';
      s.on('data', (d) => { out += d; });
      s.on('end', () => resolve(Number(out.split(' ')[1])));
      s.on('error', reject);
    });
    const entries = [];
    let after = 0;
    for (;;) {
      const p = await stack.admin('GET', `/v1/audit?action=auth.failure&limit=1000&after=${after}`);
      entries.push(...p.body.data);
      if (!p.body.has_more) break;
      after = p.body.next_after;
    }
    const mine = entries.filter((e) => e.details.path.startsWith('/v1/users/'));
    const ascii = mine.find((e) => e.details.path.startsWith('/v1/users/aaa'));
    assert.ok(ascii, 'the long path was recorded');
    assert.ok(Buffer.byteLength(ascii.details.path) <= 256, `${Buffer.byteLength(ascii.details.path)} bytes`);
    assert.ok(ascii.details.path.endsWith('…'));
    assert.equal(ascii.details.path_bytes, long.length);
    if (status === 401) {
      const utf = mine.find((e) => e.details.path.startsWith('/v1/users/xxx'));
      assert.ok(utf, 'the UTF-8 path was recorded');
      assert.ok(Buffer.byteLength(utf.details.path) <= 256);
      assert.ok(!utf.details.path.includes('\ufffd'), 'no character cut in half');
      assert.match(utf.details.path, /^\/v1\/users\/x+é+…$/);
    } else {
      assert.equal(status, 400, 'a non-ASCII target is refused outright, or recorded bounded');
    }
  });

  test('a published head; stopped cleanly, the whole log is sealed', async () => {
    const h = await runBrigade(['audit', 'head', '--data-dir', stack.dataDir, '--pubkey', world.pubkey,
      ...storeCliArgs(stack)]);
    assert.equal(h.code, 0, h.stdout + h.stderr);
    const head = JSON.parse(h.stdout);
    assert.equal(head.object, 'audit_head');
    assert.equal(head.public_key, world.pubkey);
    world.headFile = path.join(stack.dataDir, '..', `head-${process.pid}.json`);
    fs.writeFileSync(world.headFile, h.stdout);
    world.head = head;
    await someActs(EVERY * 2 + 2);   // the log moves on past the published head
    const info = await stack.brigade.stop();
    assert.equal(info.code, 0);
    world.stopped = { dataDir: stack.dataDir, configPath: stack.configPath };
    const v = await verify(stack, '--head', world.headFile, '--json');
    const j = JSON.parse(v.stdout);
    assert.equal(v.code, 0, v.stdout);
    assert.equal(j.unsealed, 0, 'the shutdown checkpoint covers the tail');
    assert.deepEqual(j.warnings, []);
  });
});

describe('attacks with write access to the database, without the key', () => {
  test('delete the checkpoints, then rewrite and rehash the chain', async (t) => {
    t.after(() => { for (const d of copies) fs.rmSync(d, { recursive: true, force: true }); });
    const { dir, db } = copyOf('nocp');
    sql(db, 'DELETE FROM audit_checkpoints');
    rehashAll(db, (rows) => { rows[2].details = '{"name":"forged"}'; });
    const v = await verify(dir, ...(storeCliArgs(dir).length ? [] : ['--config', stack.configPath]));
    assert.equal(v.code, 1, v.stdout);
    assert.match(v.stdout, /TAMPERED unsealed at seq 1: \d+ entries after seq 0 have no checkpoint, but one is signed every 4 entries/);
    const h = await verify(dir, '--head', world.headFile);
    assert.equal(h.code, 1);
    assert.match(h.stdout, /published head/);
  });

  test('rewrite the chain and re-sign every checkpoint with another key', async () => {
    const { dir, db } = copyOf('resign');
    const rows = rehashAll(db, (r) => { r[2].details = '{"name":"forged"}'; });
    const bySeq = new Map(rows.map((e) => [e.seq, e]));
    const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
    const cps = query(db, 'SELECT * FROM audit_checkpoints ORDER BY seq');
    let prevSig = '';
    const stmts = [];
    for (const cp of cps) {
      cp.hash = bySeq.get(cp.seq).hash;
      const sig = crypto.sign(null, checkpointMessage(cp, prevSig), privateKey).toString('hex');
      stmts.push(`UPDATE audit_checkpoints SET hash = '${cp.hash}', signature = '${sig}' WHERE seq = ${cp.seq};`);
      prevSig = sig;
    }
    sql(db, stmts.join('\n'));
    // the forgery is well made: the attacker's own key accepts it …
    const theirs = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('hex');
    const ok = await runBrigade(['audit', 'verify', '--data-dir', dir.dataDir, '--pubkey', theirs, ...storeCliArgs(dir)]);
    assert.equal(ok.code, 0, ok.stdout);
    // … the server's key does not
    const v = await verify(dir);
    assert.equal(v.code, 1);
    assert.match(v.stdout, /TAMPERED checkpoint at seq \d+: checkpoint at seq \d+ has a bad signature/);
  });

  test('cut the tail back to an older checkpoint: caught with --head', async () => {
    const { dir, db } = copyOf('cut');
    const older = query(db, `SELECT max(seq) AS s FROM audit_checkpoints WHERE seq < ${world.head.seq}`)[0].s;
    assert.ok(older > 0);
    sql(db, `DELETE FROM audit WHERE seq > ${older}; DELETE FROM audit_checkpoints WHERE seq > ${older};`);
    const v = await verify(dir, '--head', world.headFile);
    assert.equal(v.code, 1, v.stdout);
    assert.match(v.stdout, new RegExp(`TAMPERED deleted at seq ${older + 1}: the log ends at seq ${older}, but the published head is at seq ${world.head.seq}`));
    // The residual risk (docs/audit.md): without a published head, a log
    // cut exactly at a checkpoint looks like a shorter log.
    const bare = await verify(dir);
    assert.equal(bare.code, 0, bare.stdout);
  });

  test('delete the newest checkpoints, keep the entries: caught by the bound', async () => {
    const { dir, db } = copyOf('newest');
    const last = query(db, 'SELECT max(seq) AS s FROM audit')[0].s;
    const keep = query(db, `SELECT max(seq) AS s FROM audit_checkpoints WHERE seq <= ${last - EVERY}`)[0].s;
    sql(db, `DELETE FROM audit_checkpoints WHERE seq > ${keep}`);
    const v = await verify(dir);
    assert.equal(v.code, 1, v.stdout);
    assert.match(v.stdout, new RegExp(`TAMPERED unsealed at seq ${keep + 1}: \\d+ entries after seq ${keep} have no checkpoint, but one is signed every 4 entries: the checkpoints after it were deleted`));
  });

  test('delete the newest checkpoints and the entries after an older one, forge a short tail', async () => {
    const { dir, db } = copyOf('replace');
    const older = query(db, `SELECT max(seq) AS s FROM audit_checkpoints WHERE seq < ${world.head.seq}`)[0].s;
    sql(db, `DELETE FROM audit_checkpoints WHERE seq > ${older}`);
    // rewrite the entries after it (fewer than the bound, fresh timestamps)
    const rows = query(db, `SELECT * FROM audit WHERE seq >= ${older} ORDER BY seq`);
    sql(db, `DELETE FROM audit WHERE seq > ${older + EVERY - 1}`);
    let prev = rows[0].hash;
    const now = Math.floor(Date.now() / 1000);
    const stmts = [];
    for (const e of rows.slice(1, EVERY)) {
      Object.assign(e, { details: '{"name":"forged"}', ts: Math.max(now, rows[0].ts), prev_hash: prev });
      e.hash = entryHash(e);
      prev = e.hash;
      stmts.push(`UPDATE audit SET details = '${e.details}', ts = ${e.ts}, prev_hash = '${e.prev_hash}', hash = '${e.hash}' WHERE seq = ${e.seq};`);
    }
    sql(db, stmts.join('\n'));
    const v = await verify(dir, '--head', world.headFile);
    assert.equal(v.code, 1, v.stdout);
    assert.match(v.stdout, /published head/);
  });

  test('delete a checkpoint in the middle: the next one chains to it', async () => {
    const { dir, db } = copyOf('middle');
    const cps = query(db, 'SELECT seq FROM audit_checkpoints ORDER BY seq').map((r) => r.seq);
    assert.ok(cps.length >= 3);
    const gone = cps[1];
    sql(db, `DELETE FROM audit_checkpoints WHERE seq = ${gone}`);
    const v = await verify(dir);
    assert.equal(v.code, 1, v.stdout);
    assert.match(v.stdout, new RegExp(`TAMPERED checkpoint at seq ${gone}: the checkpoint at seq ${gone} was deleted \\(the checkpoint at seq ${cps[2]} chains to it\\)`));
  });
});

describe('crash and restart; tampering under a running server', () => {
  const restart = async () => {
    const fresh = new Child('brigade serve (restarted)', ['serve', '--config', stack.configPath], {
      env: { BRIGADE_ADMIN_TOKEN: stack.adminToken },
    });
    stack.children.push(fresh);
    stack.brigade = fresh;
    const m = await fresh.waitFor(/listening on (http:\/\/[^\s]+)/);
    stack.brigadeUrl = m[1].replace(/\/$/, '');
    return fresh;
  };

  test('a crash leaves an unsealed tail (a warning); the restart seals it', async () => {
    const s = await restart();
    await someActs(1);
    s.proc.kill('SIGKILL');                  // before the 2 s time bound
    await s.exited;
    const v = await verify(stack, '--json');
    const j = JSON.parse(v.stdout);
    assert.equal(v.code, 0, v.stdout);
    assert.ok(j.unsealed >= 1, v.stdout);
    assert.match(j.warnings.join('\n'), /unsealed tail of \d+ entr/);
    fs.rmSync(path.join(stack.dataDir, 'serve.lock'), { force: true });
    await restart();
    const after = await verify(stack, '--json');
    const k = JSON.parse(after.stdout);
    assert.equal(after.code, 0, after.stdout);
    assert.equal(k.unsealed, 0);
    assert.match(k.warnings.join('\n'), /made at a restart after an unclean stop/);
  });

  test('checkpoints deleted while the server runs: its next checkpoint keeps the deletion on record', async () => {
    const g = await stack.admin('GET', '/v1/audit/verify');
    assert.equal(g.body.intact, true, g.text);
    const db = stack;
    const newest = query(db, 'SELECT max(seq) AS s FROM audit_checkpoints')[0].s;
    sql(db, `DELETE FROM audit_checkpoints WHERE seq = ${newest}`);
    // the server remembers what it verified
    const h = await stack.admin('GET', '/v1/audit/verify');
    assert.equal(h.body.intact, false, h.text);
    assert.equal(h.body.scan, 'incremental');
    assert.match(h.body.problems[0].message, /verified before, was deleted/);
    await someActs(EVERY);
    await eventually(async () => {
      const v = await verify(stack);
      assert.equal(v.code, 1, v.stdout);
      assert.match(v.stdout, new RegExp(`the checkpoint at seq ${newest} was deleted`));
      return true;
    }, { timeoutMs: 6000, intervalMs: 300 });
  });
});
