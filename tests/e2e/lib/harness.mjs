// harness.mjs — starts real brigade servers on loopback for the end-to-end tests.
//
// Each test file calls useStack() once at top level: it registers node:test
// before()/after() hooks that pick free loopback ports, start `brigade
// mock-llm` and `brigade serve` as child processes (temp data dir, generated
// YAML config, random admin token), wait for their "listening on" lines, and
// stop them with SIGTERM (SIGKILL after 5 s) when the file is done. The
// returned object is filled in by before(): tests read stack.brigadeUrl,
// stack.admin(...), stack.makeTenant() and so on from inside test bodies.
//
// Nothing here talks to anything but 127.0.0.1.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

import OpenAI from 'openai';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The binary under test: $BRIGADE_BIN, else the repository's build/brigade. */
export const BRIGADE_BIN = process.env.BRIGADE_BIN
  ? path.resolve(process.env.BRIGADE_BIN)
  : path.resolve(here, '../../../build/brigade');

const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;

// Children still running when the test process exits are killed so that a
// crashed test file never leaves servers behind.
const live = new Set();

// The whole-suite check that logs hold no credential (scripts/test.sh sets
// BRIGADE_E2E_SECRETS_DIR, then runs tests/e2e/check_secrets.mjs): every
// credential the tests present or are given is noted there, and every
// child's stderr — where brigade logs — is kept there when it exits.
const SECRETS_DIR = process.env.BRIGADE_E2E_SECRETS_DIR || '';

/** Note a credential that must never appear in a log (16+ characters). */
export function noteSecret(s) {
  if (!SECRETS_DIR || typeof s !== 'string' || s.length < 16) return;
  fs.appendFileSync(path.join(SECRETS_DIR, 'secrets.txt'), s.replace(/\n/g, '') + '\n');
}
process.on('exit', () => {
  for (const c of live) {
    try { c.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

/** A free TCP port on 127.0.0.1: listen on port 0, read it, close. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix = 'brigade-e2e-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll fn until it returns a truthy value (returned) or timeoutMs passes;
 *  the last error (or falsy result) is reported on timeout. */
export async function eventually(fn, { timeoutMs = 3000, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      lastErr = new Error('condition still false');
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() >= deadline) throw lastErr;
    await sleep(intervalMs);
  }
}

/**
 * A started child process: its output is kept so failures can show it, and
 * `exited` resolves to {code, signal} when it ends.
 */
export class Child {
  // bin: another program than brigade (e.g. redis-server, lib/redis.mjs)
  constructor(name, args, { env = {}, cwd, bin } = {}) {
    if (!bin && !fs.existsSync(BRIGADE_BIN)) {
      throw new Error(`brigade binary not found at ${BRIGADE_BIN} (set BRIGADE_BIN)`);
    }
    this.name = name;
    this.stdout = '';
    this.stderr = '';
    this.proc = spawn(bin || BRIGADE_BIN, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(this.proc);
    this.exitInfo = null;
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        live.delete(this.proc);
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
      this.proc.on('error', (err) => {
        live.delete(this.proc);
        this.exitInfo = { code: null, signal: null, error: err };
        resolve(this.exitInfo);
      });
    });
    this.proc.stdout.setEncoding('utf8');
    this.proc.stderr.setEncoding('utf8');
    this.proc.stdout.on('data', (d) => { this.stdout += d; });
    this.proc.stderr.on('data', (d) => { this.stderr += d; });
    if (SECRETS_DIR) {
      // 'close' comes after the last output, unlike 'exit'
      this.proc.on('close', () => {
        fs.writeFileSync(path.join(SECRETS_DIR, `stderr-${process.pid}-${this.proc.pid}.log`), this.stderr);
      });
    }
  }

  get pid() { return this.proc.pid; }

  /** Output so far, for failure messages (the tail only). */
  output() {
    const tail = (s) => (s.length > 4000 ? '…' + s.slice(-4000) : s);
    return `--- ${this.name} stdout ---\n${tail(this.stdout)}\n--- ${this.name} stderr ---\n${tail(this.stderr)}`;
  }

  /** Wait for a line of stdout matching re; returns the match. */
  waitFor(re, timeoutMs = START_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.stdout.match(re);
        if (m) { cleanup(); resolve(m); return true; }
        return false;
      };
      const onData = () => { check(); };
      const onExit = () => {
        if (check()) return;
        cleanup();
        reject(new Error(`${this.name} exited (${JSON.stringify(this.exitInfo)}) before printing ${re}\n${this.output()}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.name} did not print ${re} within ${timeoutMs} ms\n${this.output()}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.proc.stdout.off('data', onData);
        this.proc.off('exit', onExit);
      };
      this.proc.stdout.on('data', onData);
      this.proc.on('exit', onExit);
      if (this.exitInfo) onExit(); else check();
    });
  }

  /** SIGTERM, then SIGKILL after the grace period. Resolves to the exit info
   *  plus `killed: true` if SIGKILL was needed. */
  async stop(graceMs = STOP_GRACE_MS) {
    if (this.exitInfo) return this.exitInfo;
    this.proc.kill('SIGTERM');
    let timer;
    const timedOut = new Promise((r) => { timer = setTimeout(() => r('timeout'), graceMs); });
    const res = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (res === 'timeout') {
      this.proc.kill('SIGKILL');
      const info = await this.exited;
      return { ...info, killed: true };
    }
    return res;
  }
}

/** Run the binary to completion (for CLI tests): {code, signal, stdout, stderr}. */
export function runBrigade(args, { env = {}, timeoutMs = 10_000, cwd } = {}) {
  const c = new Child(`brigade ${args.join(' ')}`, args, { env, cwd });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      c.proc.kill('SIGKILL');
      reject(new Error(`brigade ${args.join(' ')} did not finish within ${timeoutMs} ms\n${c.output()}`));
    }, timeoutMs);
    c.exited.then((info) => {
      clearTimeout(timer);
      // stdout/stderr 'data' events may trail 'exit' slightly.
      setImmediate(() => resolve({ ...info, stdout: c.stdout, stderr: c.stderr }));
    });
  });
}

function yamlScalar(v) {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

function yamlFlow(obj) {
  return '{' + Object.entries(obj).map(([k, v]) => `${k}: ${yamlScalar(v)}`).join(', ') + '}';
}

// BRIGADE_E2E_STORE=postgres: every stack keeps its data in a fresh database
// of the PostgreSQL server at BRIGADE_E2E_PG_URL (start one with
// `scripts/pg-test.sh start DIR`, which prints the URL). Default: SQLite in
// the stack's data directory.
const E2E_STORE = process.env.BRIGADE_E2E_STORE || 'sqlite';
if (E2E_STORE !== 'sqlite' && E2E_STORE !== 'postgres') {
  throw new Error(`BRIGADE_E2E_STORE=${E2E_STORE}: want sqlite or postgres`);
}

/** True when the stacks keep their data in PostgreSQL: tests that edit the
 *  SQLite file itself skip there (the PostgreSQL twins are unit tests). */
export const E2E_ON_POSTGRES = E2E_STORE === 'postgres';

/** The arguments that point a CLI (brigade audit, admin vault) at a stack's
 *  store: nothing on SQLite (the data directory holds it); on PostgreSQL the
 *  stack's configuration, which names the database. */
export function storeCliArgs(stack) {
  return E2E_ON_POSTGRES ? ['--config', stack.configPath] : [];
}

/** The PostgreSQL URL of a stack's (or copyStore place's) database. */
function pgUrlOf(place) {
  const m = /^store: \{kind: postgres, url: (".*")\}$/m.exec(fs.readFileSync(place.configPath, 'utf8'));
  if (!m) throw new Error(`no PostgreSQL store in ${place.configPath}`);
  return JSON.parse(m[1]);
}

/** Rows of a SELECT on a stack's store as objects (JSON numbers for
 *  integers on both backends). */
export function storeQuery(place, q) {
  let r;
  if (E2E_ON_POSTGRES) {
    r = spawnSync('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', pgUrlOf(place),
      '-c', `SELECT coalesce(json_agg(t), '[]') FROM (${q}) t`], { encoding: 'utf8' });
  } else {
    r = spawnSync('python3', ['-c',
      'import sqlite3,sys,json\nc=sqlite3.connect(sys.argv[1])\nc.row_factory=sqlite3.Row\n'
      + 'print(json.dumps([dict(x) for x in c.execute(sys.argv[2])]))',
      path.join(place.dataDir, 'brigade.db'), q], { encoding: 'utf8' });
  }
  if (r.status !== 0) throw new Error(`query failed (${E2E_STORE}): ${r.stderr}\n${q}`);
  return JSON.parse(r.stdout);
}

/** A copy of a stopped stack's data for a test to tamper with: its data
 *  directory (key files; SQLite's database) and, on PostgreSQL, a copy of
 *  its database (CREATE DATABASE … TEMPLATE) named by the copy's
 *  brigade.yaml. Returns a place {dataDir, configPath} for storeSql,
 *  storeQuery and storeCliArgs. */
export function copyStore(place, prefix = 'brigade-copy-') {
  const d = tempDir(prefix);
  fs.cpSync(place.dataDir, d, { recursive: true });
  fs.rmSync(path.join(d, 'serve.lock'), { force: true });
  const copy = { dataDir: d, configPath: path.join(d, 'brigade.yaml') };
  if (E2E_ON_POSTGRES) {
    const from = new URL(pgUrlOf(place));
    const db = 'brigade_e2e_' + randomBytes(6).toString('hex');
    execFileSync('psql', ['-X', '-q', '-d', process.env.BRIGADE_E2E_PG_URL, '-c',
      `CREATE DATABASE ${db} TEMPLATE ${from.pathname.slice(1)}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    from.pathname = '/' + db;
    const cfg = fs.readFileSync(place.configPath, 'utf8')
      .replace(/^store: .*$/m, `store: {kind: postgres, url: ${JSON.stringify(from.toString())}}`);
    fs.writeFileSync(copy.configPath, cfg);
  }
  return copy;
}

/** Run SQL on a stack's store, as an older version or an attacker with
 *  access to the database would (the server stopped, or not): SQLite's file
 *  in the data directory (the sqlite3 CLI, else python3), or the stack's
 *  PostgreSQL database (psql). Keep the SQL to what both accept. Returns
 *  the rows, columns joined by "|". */
export function storeSql(stack, statements) {
  let r;
  if (E2E_ON_POSTGRES) {
    r = spawnSync('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', pgUrlOf(stack),
      '-c', statements], { encoding: 'utf8' });
  } else {
    const db = path.join(stack.dataDir, 'brigade.db');
    const hasCli = spawnSync('sh', ['-c', 'command -v sqlite3'], { encoding: 'utf8' }).status === 0;
    // the server may be writing: wait for its lock as it waits for ours
    r = hasCli
      ? spawnSync('sqlite3', [db, '.timeout 5000', statements], { encoding: 'utf8' })
      : spawnSync('python3', ['-c',
        'import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nfor r in c.execute(sys.argv[2]) if sys.argv[2].lstrip().upper().startswith("SELECT") else c.executescript(sys.argv[2]): print("|".join(map(str,r)))\nc.commit()',
        db, statements], { encoding: 'utf8' });
  }
  if (r.status !== 0) throw new Error(`sql failed (${E2E_STORE}): ${r.stderr}\n${statements}`);
  return r.stdout.trim();
}

/** The `store:` section of a stack's config ('' for SQLite): a new database each time. */
function storeSection() {
  if (E2E_STORE !== 'postgres') return '';
  const base = process.env.BRIGADE_E2E_PG_URL;
  if (!base) throw new Error('BRIGADE_E2E_STORE=postgres needs BRIGADE_E2E_PG_URL (scripts/pg-test.sh start DIR)');
  const db = 'brigade_e2e_' + randomBytes(6).toString('hex');
  execFileSync('psql', ['-X', '-q', '-d', base, '-c', `CREATE DATABASE ${db}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  const u = new URL(base);
  u.pathname = '/' + db;
  return `store: {kind: postgres, url: ${JSON.stringify(u.toString())}}`;
}

/** The `store:` line of the config written in dataDir ('' on SQLite): a second
 *  instance given it (makeConfig's storeYaml) shares the first one's database. */
export function storeYamlOf(dataDir) {
  const m = fs.readFileSync(path.join(dataDir, 'brigade.yaml'), 'utf8').match(/^store: .*$/m);
  return m ? m[0] : '';
}

/** The YAML config the tests use (the lead's test config plus extras).
 *  storeYaml: the store section to use instead of a fresh database
 *  (storeYamlOf another stack's data directory). */
export function makeConfig({ port, dataDir, mockPort, limits = {}, extraProviders = [], extraModels = [], upstreamTimeoutMs = 2000, extraYaml = '', tiers = null, storeYaml = null }) {
  const lim = { max_body_bytes: 65536, header_timeout_ms: 2000, ...limits };
  const providers = [
    // The gateway tests send many deliberate faults to this provider: its breaker stays closed.
    { name: 'upstream-mock', kind: 'openai', base_url: `http://127.0.0.1:${mockPort}/v1`, api_key: 'test-key', timeout_ms: upstreamTimeoutMs, breaker_failures: 0, breaker_error_rate: 0 },
    { name: 'local', kind: 'mock' },
    // "{mock}" in a base_url is the mock-llm of this stack.
    ...extraProviders.map((p) => (typeof p.base_url === 'string'
      ? { ...p, base_url: p.base_url.replace('{mock}', `http://127.0.0.1:${mockPort}`) } : p)),
  ];
  const models = [
    { name: 'gpt-test', provider: 'upstream-mock', upstream_model: 'mock-gpt', input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0 },
    { name: 'local-model', provider: 'local', input_usd_per_mtok: 0.5, output_usd_per_mtok: 1.5 },
    ...extraModels,
  ];
  return [
    '# generated by tests/e2e/lib/harness.mjs',
    'server:',
    `  listen: "127.0.0.1:${port}"`,
    `  data_dir: ${JSON.stringify(dataDir)}`,
    `  limits: ${yamlFlow(lim)}`,
    'providers:',
    ...providers.map((p) => `  - ${yamlFlow(p)}`),
    'models:',
    ...models.map((m) => `  - ${yamlFlow(m)}`),
    `tiers: [${(tiers || [{ name: 'default' }, { name: 'gold' }]).map(yamlFlow).join(', ')}]`,
    'default_tier: default',
    // More top-level sections (tools:, agents:), written by the test as YAML.
    ...(extraYaml ? [extraYaml.replace(/\n+$/, '')] : []),
    ...(storeYaml !== null ? (storeYaml ? [storeYaml] : [])
      : E2E_STORE === 'postgres' ? [storeSection()] : []),
    '',
  ].join('\n');
}

/** Parse a fetch Response: {status, headers, body (JSON or text), text}. */
export async function readResponse(res) {
  const text = await res.text();
  let body = text;
  try { body = text.length ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body, text };
}

/**
 * Start mock-llm and brigade serve. Returns the stack object (see useStack).
 * Options: limits (server.limits overrides), extraProviders / extraModels
 * (more config entries), extraYaml (more top-level YAML, e.g. `tools:` and
 * `agents:`), withMock (default true), env, port (brigade's; default a free one).
 */
export async function startStack(opts = {}, stack = {}) {
  stack.children = [];
  const dataDir = tempDir();
  stack.dataDir = dataDir;
  stack.adminToken = 'adm-' + randomBytes(16).toString('hex');
  noteSecret(stack.adminToken);

  const mockPort = await freePort();
  stack.mock = new Child('mock-llm', ['mock-llm', '--listen', `127.0.0.1:${mockPort}`]);
  stack.children.push(stack.mock);
  const mm = await stack.mock.waitFor(/mock-llm listening on (http:\/\/[^\s]+)/);
  stack.mockUrl = mm[1].replace(/\/$/, '');

  // opts.port: a port chosen by the test (an OAuth client's redirect_uri names it)
  const port = opts.port || await freePort();
  stack.port = port;
  const configPath = path.join(dataDir, 'brigade.yaml');
  stack.configPath = configPath;
  fs.writeFileSync(configPath, makeConfig({ port, dataDir, mockPort, ...opts }));
  stack.brigade = new Child('brigade serve', ['serve', '--config', configPath], {
    env: { BRIGADE_ADMIN_TOKEN: stack.adminToken, ...(opts.env || {}) },
  });
  stack.children.push(stack.brigade);
  const bm = await stack.brigade.waitFor(/listening on (http:\/\/[^\s]+)/);
  stack.brigadeUrl = bm[1].replace(/\/$/, '');
  const u = new URL(stack.brigadeUrl);
  stack.host = u.hostname;
  stack.port = Number(u.port);

  /** Any request: key may be null (no Authorization). */
  stack.api = async (key, method, p, body, headers = {}) => {
    const h = { ...headers };
    if (key) h.authorization = `Bearer ${key}`;
    noteSecret(key);
    let payload;
    if (body !== undefined) {
      if (typeof body === 'string' || body instanceof Uint8Array) {
        payload = body;
      } else {
        payload = JSON.stringify(body);
      }
      if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
    }
    const res = await fetch(stack.brigadeUrl + p, { method, headers: h, body: payload });
    const out = await readResponse(res);
    if (out.body && typeof out.body === 'object') {
      noteSecret(out.body.key);          // a new user key, shown once
      noteSecret(out.body.admin_key);    // a new tenant's admin key
    }
    return out;
  };
  stack.admin = (method, p, body) => stack.api(stack.adminToken, method, p, body);

  let seq = 0;
  const unique = (base) => `${base}-${process.pid}-${++seq}-${randomBytes(3).toString('hex')}`;
  stack.unique = unique;

  const must = (r, status, what) => {
    if (r.status !== status) {
      throw new Error(`${what}: expected ${status}, got ${r.status}: ${r.text.slice(0, 500)}`);
    }
    return r.body;
  };
  stack.must = must;

  /** A new tenant: {id, name, admin_key, ...}. */
  stack.makeTenant = async (name = unique('tenant')) =>
    must(await stack.admin('POST', '/v1/tenants', { name }), 201, 'POST /v1/tenants');

  /** A new user of the tenant whose admin key is given. */
  stack.makeUser = async (tenantAdminKey, externalId = unique('user'), extra = {}) =>
    must(await stack.api(tenantAdminKey, 'POST', '/v1/users', { external_id: externalId, ...extra }), 201, 'POST /v1/users');

  /** A new key of a user: {id, key, prefix, user_id, created_at}. */
  stack.makeUserKey = async (tenantAdminKey, userId) =>
    must(await stack.api(tenantAdminKey, 'POST', `/v1/users/${userId}/keys`, {}), 201, `POST /v1/users/${userId}/keys`);

  /** User plus key in one step: {user, key (string), keyObj}. */
  stack.makeUserWithKey = async (tenantAdminKey, externalId, extra) => {
    const user = await stack.makeUser(tenantAdminKey, externalId, extra);
    const keyObj = await stack.makeUserKey(tenantAdminKey, user.id);
    return { user, key: keyObj.key, keyObj };
  };

  stack.openaiClient = (key) => new OpenAI({ apiKey: key, baseURL: stack.brigadeUrl + '/v1', maxRetries: 0, timeout: 20_000 });

  stack.mockStats = async () => {
    const r = await fetch(stack.mockUrl + '/mock/stats');
    return readResponse(r);
  };

  /** Stop every child (brigade first); returns their exit infos by name. */
  stack.stop = async () => {
    const out = {};
    for (const c of [...stack.children].reverse()) out[c.name] = await c.stop();
    return out;
  };
  return stack;
}

/**
 * Register before/after hooks that start and stop a stack for this test file.
 * Returns an object that before() fills with the stack's fields. `opts` may
 * be an async function (called first in the hook, so it can start helper
 * servers whose ports go into the config); `setup(stack)` runs once the
 * stack is up (make the file's tenants and users there, not in another
 * root-level before()).
 */
export function useStack(opts = {}, setup = null) {
  const holder = {};
  // One before() does everything: node 20 runs several root-level before()
  // hooks concurrently, so a second hook could not rely on the stack.
  before(async () => {
    const o = typeof opts === 'function' ? await opts() : opts;
    try {
      await startStack(o, holder);
    } catch (e) {
      // Stop whatever did start, then fail the file with the child output.
      for (const c of (holder.children || [])) await c.stop(1000);
      holder.children = [];
      throw e;
    }
    if (setup) await setup(holder);
  }, { timeout: 30_000 });
  after(async () => {
    if (holder.stop) holder.exitInfo = await holder.stop();
    if (holder.dataDir && !process.env.BRIGADE_E2E_KEEP) {
      fs.rmSync(holder.dataDir, { recursive: true, force: true });
    }
  }, { timeout: 20_000 });
  return holder;
}

/** Every audit entry the credential may read (GET /v1/audit, all pages). */
export async function auditEntries(stack, key, query = '') {
  const out = [];
  let after = 0;
  for (;;) {
    const r = await stack.api(key, 'GET', `/v1/audit?limit=1000&after=${after}${query}`);
    if (r.status !== 200) throw new Error(`GET /v1/audit -> ${r.status}: ${r.text}`);
    out.push(...r.body.data);
    if (!r.body.has_more) return out;
    after = r.body.next_after;
  }
}

/** Assert the OpenAI error envelope: {error: {type, code, message, param}}. */
export function errorOf(r) {
  if (!r.body || typeof r.body !== 'object' || !r.body.error) {
    throw new Error(`expected an error envelope, got ${r.status}: ${String(r.text).slice(0, 300)}`);
  }
  return r.body.error;
}
