// observability.test.mjs — traces, metrics and logs from the outside:
// a client's traceparent is continued (response header and GET
// /v1/traces/{id}); a concurrent burst of requests is traced whole, none
// of its spans dropped; traces are scoped (another user's trace is 404),
// and no user can work out another's next trace id from its own to hide it;
// /metrics is valid Prometheus text (checked by a strict parser here) and
// its counters move with requests; spans reach an OTLP/HTTP receiver on
// loopback; a dead receiver does not slow requests; and stderr holds only
// JSON log lines, none carrying a key, token or secret used in the file;
// brigade's and mock-llm's threads carry names (/proc/PID/task/*/comm).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { after, describe, test } from 'node:test';

import { errorOf, eventually, startStack, useStack } from './lib/harness.mjs';

// ---- an OTLP/HTTP receiver on loopback ----

const received = [];   // parsed ExportTraceServiceRequest bodies
const receiver = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    if (req.method === 'POST' && req.url === '/v1/traces') {
      try { received.push({ contentType: req.headers['content-type'], body: JSON.parse(body) }); } catch { received.push({ bad: body }); }
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
  });
});
after(() => new Promise((r) => receiver.close(r)));

const stack = useStack(async () => {
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  const port = receiver.address().port;
  return {
    extraYaml: [
      'agents:',
      '  - {name: watcher, model: local-model, tools: []}',
      'observability:',
      '  logs: {format: json}',
      `  otlp: {endpoint: "http://127.0.0.1:${port}", interval_ms: 100, batch: 64}`,
    ].join('\n'),
  };
});

const secrets = [];   // every credential used: none may appear in the logs

async function userWithKey(tenant) {
  const u = await stack.makeUserWithKey(tenant.admin_key);
  secrets.push(u.key);
  return u;
}

async function newTenant() {
  const t = await stack.makeTenant();
  secrets.push(t.admin_key);
  return t;
}

const hex = (n) => crypto.randomBytes(n).toString('hex');
const chat = (key, content, headers = {}) => stack.api(key, 'POST', '/v1/chat/completions',
  { model: 'local-model', messages: [{ role: 'user', content }] }, headers);

/** GET the trace until it holds a span matching pred (spans are written in batches). */
async function traceWith(key, traceId, pred) {
  return eventually(async () => {
    const r = await stack.api(key, 'GET', `/v1/traces/${traceId}`);
    if (r.status !== 200) return null;
    return r.body.spans.some(pred) ? r.body : null;
  }, { timeoutMs: 5000, intervalMs: 100 });
}

// ---- splitmix64, the server's per-thread id generator (span ids are its
// raw output, traceparent.c), and its output function inverted: one output
// gives the generator's state, so every output after it, away ----

const M64 = (1n << 64n) - 1n;
const GOLDEN = 0x9E3779B97F4A7C15n;

function splitmixOut(z) {
  z = ((z ^ (z >> 30n)) * 0xBF58476D1CE4E5B9n) & M64;
  z = ((z ^ (z >> 27n)) * 0x94D049BB133111EBn) & M64;
  return z ^ (z >> 31n);
}

function unxorshift(y, s) {
  let x = y;
  for (let i = s; i < 64n; i += s) x = y ^ (x >> s);
  return x;
}

function inverse64(a) {   // a odd: Newton's iteration modulo 2^64
  let x = a;
  for (let i = 0; i < 5; i++) x = (x * (2n - a * x)) & M64;
  return x;
}

function splitmixStateOf(z) {
  z = unxorshift(z, 31n);
  z = (z * inverse64(0x94D049BB133111EBn)) & M64;
  z = unxorshift(z, 27n);
  z = (z * inverse64(0xBF58476D1CE4E5B9n)) & M64;
  return unxorshift(z, 30n);
}

const hexLE = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(v); return b.toString('hex'); };
const hexBE = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(v); return b.toString('hex'); };

/** What an attacker computes from traceparents it was sent: the next
 *  `ahead` outputs after every 8 bytes it saw (a span id, or a window of a
 *  trace id's random part), both byte orders, as 16-hex strings. */
function splitmixPredictions(traceparents, ahead = 256) {
  const out = new Set();
  for (const tp of traceparents) {
    const [, tid, sid] = tp.split('-');
    const seen = [sid, tid.slice(12, 28), tid.slice(14, 30), tid.slice(16, 32)];
    for (const h of seen) {
      const b = Buffer.from(h, 'hex');
      for (const state of [splitmixStateOf(b.readBigUInt64LE(0)), splitmixStateOf(b.readBigUInt64BE(0))]) {
        for (let j = 1n; j <= BigInt(ahead); j++) {
          const p = splitmixOut((state + j * GOLDEN) & M64);
          out.add(hexLE(p));
          out.add(hexBE(p));
        }
      }
    }
  }
  return out;
}

/** The 8-byte windows of a trace id's random part (after its 6-byte time). */
const randomWindows = (tid) => [tid.slice(12, 28), tid.slice(14, 30), tid.slice(16, 32)];

// ---- a strict Prometheus text format 0.0.4 parser ----

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseLabels(s, where) {
  // s: the text between { and }, escapes \\ \" \n only.
  const labels = {};
  let i = 0;
  while (i < s.length) {
    const eq = s.indexOf('=', i);
    if (eq < 0) throw new Error(`${where}: label without =`);
    const name = s.slice(i, eq);
    if (!LABEL.test(name)) throw new Error(`${where}: bad label name ${name}`);
    if (s[eq + 1] !== '"') throw new Error(`${where}: label value not quoted`);
    let v = '';
    let j = eq + 2;
    for (;; j++) {
      if (j >= s.length) throw new Error(`${where}: unterminated label value`);
      const c = s[j];
      if (c === '\\') {
        const n = s[++j];
        if (n === '\\') v += '\\'; else if (n === '"') v += '"'; else if (n === 'n') v += '\n';
        else throw new Error(`${where}: bad escape \\${n}`);
      } else if (c === '"') break;
      else if (c === '\n') throw new Error(`${where}: raw newline in label value`);
      else v += c;
    }
    if (name in labels) throw new Error(`${where}: label ${name} twice`);
    labels[name] = v;
    i = j + 1;
    if (i < s.length) {
      if (s[i] !== ',') throw new Error(`${where}: expected , after label`);
      i++;
    }
  }
  return labels;
}

function parseValue(v, where) {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  if (v === 'NaN') return NaN;
  if (!/^-?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+)$/.test(v)) throw new Error(`${where}: bad value ${v}`);
  return Number(v);
}

/** Parse exposition text: {families: {name: {type, help, samples: [{name, labels, value}]}}}. */
function parseExposition(text) {
  assert.ok(text.endsWith('\n'), 'exposition must end with a newline');
  const families = {};
  const seenFamilies = new Set();
  let current = null;
  const familyOf = (sample) => {
    // a histogram's _bucket/_sum/_count samples, a summary's _sum/_count
    for (const suf of ['_bucket', '_sum', '_count']) {
      if (sample.endsWith(suf)) {
        const base = sample.slice(0, -suf.length);
        const type = families[base]?.type;
        if (type === 'histogram' || (type === 'summary' && suf !== '_bucket')) return base;
      }
    }
    return sample;
  };
  text.split('\n').slice(0, -1).forEach((line, n) => {
    const where = `line ${n + 1} "${line}"`;
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) {
      const rest = line.slice(7);
      const sp = rest.indexOf(' ');
      const name = sp < 0 ? rest : rest.slice(0, sp);
      const arg = sp < 0 ? '' : rest.slice(sp + 1);
      if (!NAME.test(name)) throw new Error(`${where}: bad metric name`);
      const f = families[name] || (families[name] = { samples: [] });
      if (line.startsWith('# HELP ')) {
        if (f.help !== undefined) throw new Error(`${where}: HELP twice for ${name}`);
        f.help = arg;
      } else {
        if (f.type !== undefined) throw new Error(`${where}: TYPE twice for ${name}`);
        if (f.samples.length) throw new Error(`${where}: TYPE after samples`);
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(arg)) throw new Error(`${where}: bad type`);
        f.type = arg;
      }
      if (current !== name) {
        if (seenFamilies.has(name)) throw new Error(`${where}: family ${name} is split`);
        seenFamilies.add(name);
        current = name;
      }
      return;
    }
    if (line.startsWith('#') || line === '') return;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/);
    if (!m) throw new Error(`${where}: not a sample`);
    const fam = familyOf(m[1]);
    if (fam !== current) throw new Error(`${where}: sample of ${fam} outside its family block`);
    const labels = m[3] !== undefined ? parseLabels(m[3], where) : {};
    families[fam].samples.push({ name: m[1], labels, value: parseValue(m[4], where) });
  });
  // histogram rules: per series, buckets ascending by le, cumulative, +Inf == _count
  for (const [name, f] of Object.entries(families)) {
    if (f.type !== 'histogram') continue;
    const series = new Map();
    for (const s of f.samples) {
      const { le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      const e = series.get(key) || { buckets: [], sum: null, count: null };
      series.set(key, e);
      if (s.name === `${name}_bucket`) {
        assert.ok(le !== undefined, `${name}: bucket without le`);
        e.buckets.push([parseValue(le, name), s.value]);
      } else if (s.name === `${name}_sum`) e.sum = s.value;
      else if (s.name === `${name}_count`) e.count = s.value;
    }
    for (const [key, e] of series) {
      assert.ok(e.buckets.length > 0 && e.sum !== null && e.count !== null, `${name}${key}: incomplete histogram`);
      for (let i = 1; i < e.buckets.length; i++) {
        assert.ok(e.buckets[i][0] > e.buckets[i - 1][0], `${name}${key}: le not ascending`);
        assert.ok(e.buckets[i][1] >= e.buckets[i - 1][1], `${name}${key}: buckets not cumulative`);
      }
      const last = e.buckets[e.buckets.length - 1];
      assert.equal(last[0], Infinity, `${name}${key}: no +Inf bucket`);
      assert.equal(last[1], e.count, `${name}${key}: +Inf bucket != _count`);
    }
  }
  return families;
}

function sampleValue(fams, family, sampleName, labels) {
  const f = fams[family];
  if (!f) return 0;
  const s = f.samples.find((x) => x.name === sampleName &&
    Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s ? s.value : 0;
}

async function scrape() {
  const r = await stack.admin('GET', '/metrics');
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return parseExposition(r.text);
}

// ---- tests ----

describe('trace context', () => {
  test('a client traceparent is continued, in the response and in GET /v1/traces/{id}', async () => {
    const t = await newTenant();
    const u = await userWithKey(t);
    const traceId = hex(16);
    const parentId = hex(8);
    const r = await chat(u.key, 'hello [[tokens:3]]', { traceparent: `00-${traceId}-${parentId}-01` });
    assert.equal(r.status, 200, r.text);
    const tp = r.headers.get('traceparent');
    assert.match(tp, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const [, tid, sid] = tp.split('-');
    assert.equal(tid, traceId, 'same trace id');
    assert.notEqual(sid, parentId, 'our own span id');

    const trace = await traceWith(u.key, traceId, (s) => s.name === 'POST /v1/chat/completions');
    assert.equal(trace.trace_id, traceId);
    const server = trace.spans.find((s) => s.name === 'POST /v1/chat/completions');
    assert.equal(server.span_id, sid, 'the span named in the response');
    assert.equal(server.parent_span_id, parentId, 'child of the client span');
    assert.equal(server.kind, 'server');
    assert.equal(server.attributes['http.request.method'], 'POST');
    assert.equal(server.attributes['http.route'], '/v1/chat/completions');
    assert.equal(server.attributes['url.path'], undefined, 'the route pattern, never the raw path');
    assert.equal(server.attributes['http.response.status_code'], 200);
    assert.match(server.start_unix_nano, /^\d+$/);
    assert.ok(server.duration_ms >= 0);
    const auth = await traceWith(u.key, traceId, (s) => s.name === 'authenticate');
    const authSpan = auth.spans.find((s) => s.name === 'authenticate');
    assert.equal(authSpan.parent_span_id, sid);
    assert.equal(authSpan.attributes['brigade.auth.result'], 'ok');
    // the tree: the server span is a root (its parent is the client's), auth under it
    const root = auth.tree.find((s) => s.span_id === sid);
    assert.ok(root, 'server span is a root of the tree');
    assert.ok(root.children.some((c) => c.name === 'authenticate'));
  });

  test('GET responses carry traceparent; a malformed one starts a new trace', async () => {
    const t = await newTenant();
    const u = await userWithKey(t);
    const plain = await stack.api(u.key, 'GET', '/v1/me');
    assert.equal(plain.status, 200);
    assert.match(plain.headers.get('traceparent'), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const badTrace = 'ABCDEF0123456789ABCDEF0123456789';   // upper case: invalid
    for (const bad of [`00-${badTrace}-00f067aa0ba902b7-01`, `01-${hex(16)}-${hex(8)}-01`,
      `00-${'0'.repeat(32)}-${hex(8)}-01`, 'garbage']) {
      const r = await stack.api(u.key, 'GET', '/v1/me', undefined, { traceparent: bad });
      assert.equal(r.status, 200);
      const tid = r.headers.get('traceparent').split('-')[1];
      assert.ok(!bad.includes(tid), `malformed ${bad} was continued`);
      assert.notEqual(tid, '0'.repeat(32));
    }
  });

  test('traces are scoped: other users and tenants get 404, the tenant admin sees its own', async () => {
    const t = await newTenant();
    const other = await newTenant();
    const a = await userWithKey(t);
    const b = await userWithKey(t);
    const c = await userWithKey(other);
    const traceId = hex(16);
    const r = await chat(a.key, 'private [[tokens:2]]', { traceparent: `00-${traceId}-${hex(8)}-01` });
    assert.equal(r.status, 200, r.text);
    await traceWith(a.key, traceId, (s) => s.name === 'POST /v1/chat/completions');
    await traceWith(t.admin_key, traceId, (s) => s.name === 'POST /v1/chat/completions');
    for (const [who, key] of [['same-tenant user', b.key], ['other tenant user', c.key], ['other tenant admin', other.admin_key]]) {
      const x = await stack.api(key, 'GET', `/v1/traces/${traceId}`);
      assert.equal(x.status, 404, `${who}: ${x.text}`);
      assert.equal(errorOf(x).type, 'not_found_error');
    }
    // unknown and malformed ids look the same
    for (const id of [hex(16), 'not-a-trace', traceId.toUpperCase()]) {
      const x = await stack.api(a.key, 'GET', `/v1/traces/${id}`);
      assert.equal(x.status, 404, id);
    }
    // the server admin does not read tenant data
    const s = await stack.admin('GET', `/v1/traces/${traceId}`);
    assert.equal(s.status, 403);
    // B joins A's trace with a forged traceparent: now neither user can read it
    await chat(b.key, 'intruder [[tokens:1]]', { traceparent: `00-${traceId}-${hex(8)}-01` });
    await eventually(async () => (await stack.api(a.key, 'GET', `/v1/traces/${traceId}`)).status === 404,
      { timeoutMs: 5000 });
    assert.equal((await stack.api(b.key, 'GET', `/v1/traces/${traceId}`)).status, 404);
  });
  // The tracer hands each flush to the store's writer without waiting for
  // its commit, and takes the next spans meanwhile (src/obs/tracer.c). A
  // burst of concurrent requests from two tenants must come out with every
  // request's trace whole, and none of its spans dropped.
  test('a concurrent burst: every request is traced, whole, and readable by its owner', async () => {
    const owners = [await userWithKey(await newTenant()), await userWithKey(await newTenant())];
    const dropped = (m) => sampleValue(m, 'brigade_trace_spans_dropped_total', 'brigade_trace_spans_dropped_total', {});
    const before = dropped(await scrape());
    // one request alone first: how many spans a request's trace has
    const first = await chat(owners[0].key, 'alone [[tokens:2]]');
    assert.equal(first.status, 200, first.text);
    const firstId = first.headers.get('traceparent').split('-')[1];
    const alone = await traceWith(owners[0].key, firstId, (s) => s.name === 'POST /v1/chat/completions');
    // a call that waited for an upstream slot has a queue.wait span more
    const namesOf = (t) => t.spans.map((s) => s.name).filter((n) => n !== 'queue.wait').sort();
    const expected = namesOf(alone);
    assert.ok(expected.length >= 2, `a request's trace holds its server span and its model call (${expected})`);

    const N = 300, inFlight = 32;
    const ids = [];
    let next = 0;
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (next < N) {
        const i = next++;
        const who = owners[i % 2];
        const r = await chat(who.key, `burst ${i} [[tokens:2]]`);
        assert.equal(r.status, 200, r.text);
        ids.push([who.key, r.headers.get('traceparent').split('-')[1]]);
      }
    }));
    assert.equal(ids.length, N);
    for (const [key, id] of ids) {
      const t = await eventually(async () => {
        const r = await stack.api(key, 'GET', `/v1/traces/${id}`);
        return r.status === 200 && namesOf(r.body).length >= expected.length ? r.body : null;
      }, { timeoutMs: 5000, intervalMs: 50 });
      assert.deepEqual(namesOf(t), expected, `trace ${id}`);
      assert.equal(new Set(t.spans.map((s) => s.span_id)).size, t.spans.length, `trace ${id}: a span stored twice`);
    }
    assert.equal(dropped(await scrape()), before, 'no span was dropped');
  });

  // Anyone may add spans to a trace id they name, and a trace with a
  // foreign span is shown to nobody: the defence is that no one can name
  // another user's trace id. Server-made ids are 48 bits of ms and 80 bits
  // of SipHash under a per-process key (traceparent.c); made straight from
  // splitmix64, as they once were, B could compute A's next id from its own
  // traceparents (span ids are still that generator's output) and hide A's
  // trace. B here gets A's millisecond for free, which it would have to try
  // value by value.
  test('a user cannot work out another user\'s next trace id from its own, so cannot hide that trace', async () => {
    const t = await newTenant();
    const a = await userWithKey(t);
    const b = await userWithKey(t);
    // The attack works on ids made the old way: an output, two bytes of the
    // next, the span id; a few child spans; the next request's trace id.
    let s = BigInt('0x' + hex(8));
    const next = () => { s = (s + GOLDEN) & M64; return splitmixOut(s); };
    const oldTp = () => `00-${'0'.repeat(12)}${hexLE(next())}${hexLE(next()).slice(0, 4)}-${hexLE(next())}-01`;
    const oldB = oldTp();
    next(); next(); next();
    const oldA = oldTp().split('-')[1];
    assert.ok(randomWindows(oldA).some((w) => splitmixPredictions([oldB]).has(w)), 'the attack predicts old-style ids');

    // B's own requests: what it is shown
    const seen = [];
    for (let i = 0; i < 4; i++) {
      const r = await stack.api(b.key, 'GET', '/v1/me');
      assert.equal(r.status, 200);
      seen.push(r.headers.get('traceparent'));
    }
    const ra = await chat(a.key, 'mine [[tokens:2]]');
    assert.equal(ra.status, 200, ra.text);
    const aTrace = ra.headers.get('traceparent').split('-')[1];
    const predictions = splitmixPredictions(seen);
    for (const w of randomWindows(aTrace)) {
      assert.ok(!predictions.has(w), `A's trace id ${aTrace} follows from B's traceparents ${seen.join(' ')}`);
    }
    // B sends spans into its best guesses, with A's own millisecond
    const [, , lastSpan] = seen[seen.length - 1].split('-');
    let g = splitmixStateOf(Buffer.from(lastSpan, 'hex').readBigUInt64LE(0));
    const guesses = [];
    for (let j = 0; j < 32; j++) {
      g = (g + GOLDEN) & M64;
      const after = hexLE(splitmixOut((g + GOLDEN) & M64)).slice(0, 4);
      guesses.push(aTrace.slice(0, 12) + hexLE(splitmixOut(g)) + after);
    }
    for (const id of guesses) {
      const r = await stack.api(b.key, 'GET', '/v1/me', undefined, { traceparent: `00-${id}-${hex(8)}-01` });
      assert.equal(r.status, 200);
    }
    // once B's planted spans are stored, A still reads its trace; B does not
    await traceWith(b.key, guesses[guesses.length - 1], (sp) => sp.name === 'GET /v1/me');
    const mine = await traceWith(a.key, aTrace, (sp) => sp.name === 'POST /v1/chat/completions').catch(() => null);
    assert.ok(mine, `A cannot read its trace ${aTrace}: B's spans sent into ${guesses.length} guessed ids hid it`);
    assert.equal((await stack.api(b.key, 'GET', `/v1/traces/${aTrace}`)).status, 404);
  });
});

describe('metrics', () => {
  test('/metrics is valid exposition format and per-route counters move', async () => {
    const t = await newTenant();
    const u = await userWithKey(t);
    const before = await scrape();
    const labels = { method: 'GET', route: '/v1/me', status: '200' };
    const c0 = sampleValue(before, 'brigade_http_server_requests_total', 'brigade_http_server_requests_total', labels);
    const h0 = sampleValue(before, 'brigade_http_server_request_duration_seconds',
      'brigade_http_server_request_duration_seconds_count', { method: 'GET', route: '/v1/me' });
    for (let i = 0; i < 5; i++) assert.equal((await stack.api(u.key, 'GET', '/v1/me')).status, 200);
    const bad = await stack.api('bk_usr_' + hex(20), 'GET', '/v1/me');
    assert.equal(bad.status, 401);
    const after = await eventually(async () => {
      const f = await scrape();
      const done = sampleValue(f, 'brigade_http_server_requests_total', 'brigade_http_server_requests_total', labels) >= c0 + 5 &&
        sampleValue(f, 'brigade_http_server_request_duration_seconds', 'brigade_http_server_request_duration_seconds_count',
          { method: 'GET', route: '/v1/me' }) >= h0 + 6;
      return done ? f : null;
    });
    assert.equal(sampleValue(after, 'brigade_http_server_requests_total', 'brigade_http_server_requests_total', labels), c0 + 5);
    assert.equal(sampleValue(after, 'brigade_http_server_request_duration_seconds',
      'brigade_http_server_request_duration_seconds_count', { method: 'GET', route: '/v1/me' }), h0 + 6,
      'the latency histogram has no status label: the 401 counts too');
    assert.ok(sampleValue(after, 'brigade_http_server_requests_total', 'brigade_http_server_requests_total',
      { method: 'GET', route: '/v1/me', status: '401' }) >= 1);
    // the route label is the pattern, never a raw path with ids in it
    const routes = after.brigade_http_server_requests_total.samples.map((s) => s.labels.route);
    assert.ok(!routes.some((r) => /usr_|ten_|sess_|[0-9a-f]{24}/.test(r)), routes.join(' '));
    // the older families are still there
    for (const f of ['brigade_http_requests_total', 'brigade_auth_failures_total', 'brigade_otlp_spans_dropped_total']) {
      assert.ok(after[f], `${f} missing`);
      assert.equal(after[f].type, 'counter');
    }
    assert.equal(after.brigade_http_server_request_duration_seconds.type, 'histogram');
  });

  test("the store writer's commits, and how long usage rows wait to be committed", async () => {
    const t = await newTenant();
    const u = await userWithKey(t);
    const one = (f, name, family = name) => sampleValue(f, family, name, {});
    const wait = (f, part) => one(f, `brigade_store_usage_wait_seconds_${part}`, 'brigade_store_usage_wait_seconds');
    const before = await scrape();
    for (let i = 0; i < 3; i++) assert.equal((await chat(u.key, 'count [[tokens:2]]')).status, 200);
    const after = await eventually(async () => {
      const f = await scrape();
      return one(f, 'brigade_store_usage_rows_total') >= one(before, 'brigade_store_usage_rows_total') + 3 ? f : null;
    }, { timeoutMs: 4000 });
    assert.equal(after.brigade_store_commits_total.type, 'counter');
    assert.ok(one(after, 'brigade_store_commits_total') > one(before, 'brigade_store_commits_total'));
    assert.equal(after.brigade_store_usage_wait_seconds.type, 'summary');
    const n = wait(after, 'count') - wait(before, 'count');
    const sum = wait(after, 'sum') - wait(before, 'sum');
    assert.ok(n >= 1, 'a commit with usage rows is counted');
    // an idle writer commits a row within STORE_USAGE_FLUSH_MS (200 ms); the
    // bound here is loose for a loaded test machine, not the documented one
    assert.ok(sum >= 0 && sum / n < 2, `mean wait ${sum / n} s`);
    const max = one(after, 'brigade_store_usage_wait_max_seconds');
    assert.ok(max >= sum / n - 0.0015 && max < 30, `max wait ${max} s, mean ${sum / n} s over ${n}`);
    // the writer's backlog and what a full queue refused: none here
    assert.equal(after.brigade_store_usage_queued.type, 'gauge');
    assert.ok(one(after, 'brigade_store_usage_queued') >= 0);
    assert.equal(after.brigade_store_usage_dropped_total.type, 'counter');
    assert.equal(one(after, 'brigade_store_usage_dropped_total'), 0);
  });

  test('/metrics needs the server admin token, and says so', async () => {
    const t = await newTenant();
    const none = await stack.api(null, 'GET', '/metrics');
    assert.equal(none.status, 401);
    assert.match(errorOf(none).message, /GET \/metrics needs the server admin token/);
    assert.equal((await stack.api(t.admin_key, 'GET', '/metrics')).status, 403);
  });

  test('the process totals count agent runs like gateway calls, and equal the per-tenant sums', async () => {
    const t = await newTenant();
    const u = await userWithKey(t);
    const sum = (f, name, pred = () => true) => (f[name] ? f[name].samples.filter(pred).reduce((a, x) => a + x.value, 0) : 0);
    const before = await scrape();
    const calls0 = sum(before, 'brigade_upstream_calls_total');
    const s = await stack.api(u.key, 'POST', '/v1/sessions', { agent: 'watcher' });
    assert.equal(s.status, 201, s.text);
    const m = await stack.api(u.key, 'POST', `/v1/sessions/${s.body.id}/messages`, { content: 'hi [[tokens:4]]' });
    assert.equal(m.status, 200, m.text);
    assert.equal(m.body.run.status, 'completed');
    const after = await scrape();
    assert.equal(sum(after, 'brigade_upstream_calls_total') - calls0, 1, 'the run\'s model call is counted');
    for (const [total, dir] of [['brigade_input_tokens_total', 'input'], ['brigade_output_tokens_total', 'output']]) {
      assert.equal(sum(after, total), sum(after, 'brigade_tokens_total', (x) => x.labels.direction === dir),
        `${total} is the sum of brigade_tokens_total{direction="${dir}"}`);
    }
    assert.equal(sum(after, 'brigade_cost_nanodollars_total'), sum(after, 'brigade_cost_nanodollars_by_model_total'));
    assert.ok(!after.brigade_runs_active, 'one active-runs gauge: brigade_active_runs');
    assert.ok(after.brigade_active_runs);
    assert.match(after.brigade_upstream_calls_total.help || '', /agent runs/);
  });
});

describe('OTLP export', () => {
  test("the gateway request's spans reach the receiver", async () => {
    const t = await newTenant();
    const u = await userWithKey(t);
    const traceId = hex(16);
    const r = await chat(u.key, 'export me [[tokens:2]]', { traceparent: `00-${traceId}-${hex(8)}-01` });
    assert.equal(r.status, 200, r.text);
    const spans = await eventually(() => {
      const all = [];
      for (const req of received) {
        for (const rs of req.body?.resourceSpans || []) {
          for (const ss of rs.scopeSpans || []) for (const s of ss.spans || []) all.push({ s, rs, req });
        }
      }
      const mine = all.filter((x) => x.s.traceId === traceId);
      return mine.some((x) => x.s.name === 'POST /v1/chat/completions') ? mine : null;
    }, { timeoutMs: 5000 });
    const server = spans.find((x) => x.s.name === 'POST /v1/chat/completions');
    assert.match(server.req.contentType, /application\/json/);
    const svc = server.rs.resource.attributes.find((a) => a.key === 'service.name');
    assert.equal(svc.value.stringValue, 'brigade');
    assert.match(server.s.spanId, /^[0-9a-f]{16}$/);
    assert.equal(server.s.kind, 2);
    assert.match(server.s.startTimeUnixNano, /^\d+$/);
    assert.ok(BigInt(server.s.endTimeUnixNano) >= BigInt(server.s.startTimeUnixNano));
    const attr = (k) => server.s.attributes.find((a) => a.key === k)?.value;
    assert.equal(attr('http.route').stringValue, '/v1/chat/completions');
    assert.equal(attr('http.response.status_code').intValue, '200');
    assert.ok(spans.some((x) => x.s.name === 'authenticate' && x.s.parentSpanId === server.s.spanId));
  });

  test('a dead receiver does not slow requests; dropped spans are counted', async () => {
    // A port that was free a moment ago: nothing listens there.
    const dead = http.createServer();
    await new Promise((r) => dead.listen(0, '127.0.0.1', r));
    const deadPort = dead.address().port;
    await new Promise((r) => dead.close(r));
    const s2 = await startStack({
      extraYaml: `observability:\n  otlp: {endpoint: "http://127.0.0.1:${deadPort}", interval_ms: 50, batch: 16, timeout_ms: 200}`,
    });
    try {
      const tn = s2.must(await s2.admin('POST', '/v1/tenants', { name: s2.unique('dead') }), 201, 'tenant');
      const usr = s2.must(await s2.api(tn.admin_key, 'POST', '/v1/users', { external_id: 'u' }), 201, 'user');
      const key = s2.must(await s2.api(tn.admin_key, 'POST', `/v1/users/${usr.id}/keys`, {}), 201, 'key').key;
      secrets.push(tn.admin_key, key);
      const times = [];
      for (let i = 0; i < 30; i++) {
        const t0 = performance.now();
        const r = await s2.api(key, 'POST', '/v1/chat/completions', { model: 'local-model', messages: [{ role: 'user', content: `n${i} [[tokens:1]]` }] });
        times.push(performance.now() - t0);
        assert.equal(r.status, 200, r.text);
      }
      times.sort((a, b) => a - b);
      const p95 = times[Math.floor(times.length * 0.95)];
      assert.ok(p95 < 250, `p95 latency ${p95.toFixed(1)} ms with a dead collector`);
      await eventually(async () => {
        const m = await s2.admin('GET', '/metrics');
        const f = parseExposition(m.text);
        return sampleValue(f, 'brigade_otlp_spans_dropped_total', 'brigade_otlp_spans_dropped_total', {}) > 0;
      }, { timeoutMs: 5000 });
    } finally {
      await s2.stop();
    }
  });
});

describe('logs', () => {
  test('stderr is JSON lines and holds no key, token or secret', async () => {
    // A JWT tenant, a valid and a forged token, bad keys: everything the
    // identity path might be tempted to log.
    const t = await newTenant();
    const secret = hex(32);
    const issuer = `https://idp.example.test/${t.id}`;
    assert.equal((await stack.api(t.admin_key, 'PATCH', `/v1/tenants/${t.id}`, { jwt: { issuer, audience: 'brigade', alg: 'HS256', key: secret } })).status, 200);
    const b64 = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const sign = (claims, key) => {
      const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
      return `${input}.${crypto.createHmac('sha256', key).update(input).digest('base64url')}`;
    };
    const good = sign({ iss: issuer, aud: 'brigade', sub: 'log-sub', iat: now, exp: now + 300 }, secret);
    const forged = sign({ iss: issuer, aud: 'brigade', sub: 'log-sub', iat: now, exp: now + 300 }, 'wrong-' + secret);
    const expired = sign({ iss: issuer, aud: 'brigade', sub: 'log-sub', iat: now - 600, exp: now - 300 }, secret);
    secrets.push(secret, good, forged, expired, stack.adminToken);
    assert.equal((await stack.api(good, 'GET', '/v1/me')).status, 200);
    assert.equal((await chat(good, 'jwt chat [[tokens:1]]')).status, 200);
    assert.equal((await stack.api(forged, 'GET', '/v1/me')).status, 401);
    assert.equal((await stack.api(expired, 'GET', '/v1/me')).status, 401);
    const fakeKey = 'bk_usr_' + hex(24);
    secrets.push(fakeKey);
    assert.equal((await stack.api(fakeKey, 'GET', '/v1/me')).status, 401);
    // an upstream fault makes the gateway log its retries
    const u = await userWithKey(t);
    await stack.api(u.key, 'POST', '/v1/chat/completions', { model: 'gpt-test', messages: [{ role: 'user', content: 'x [[fault:server_error:1]]' }] });

    const err = stack.brigade.stderr;
    for (const s of secrets) {
      assert.ok(!err.includes(s), `a credential (${s.slice(0, 10)}…) appears in stderr`);
      // nor its secret tail (a key's public prefix may be shown; the rest never)
      assert.ok(!err.includes(s.slice(-16)), `the tail of a credential (${s.slice(0, 10)}…) appears in stderr`);
    }
    const lines = err.split('\n').filter((l) => l.trim() !== '');
    assert.ok(lines.length > 0, 'brigade logged nothing');
    for (const line of lines) {
      let o;
      assert.doesNotThrow(() => { o = JSON.parse(line); }, `not a JSON log line: ${line}`);
      assert.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, line);
      assert.ok(['debug', 'info', 'warn', 'error'].includes(o.level), line);
      assert.equal(typeof o.msg, 'string', line);
    }
  });
});

// ---- thread names: what an operator's `top -H` shows ----

describe('thread names', () => {
  const threadNames = (pid) => fs.readdirSync(`/proc/${pid}/task`)
    .map((tid) => { try { return fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim(); } catch { return null; } })
    .filter((n) => n !== null);

  test('brigade serve names its loop, writer, tracer, otlp and pool threads', { skip: process.platform !== 'linux' }, async () => {
    const names = threadNames(stack.brigade.proc.pid);
    for (const want of ['loop-0', 'writer', 'tracer', 'otlp', 'pool']) {
      assert.ok(names.includes(want), `no thread named ${want} in ${JSON.stringify(names)}`);
    }
    // Every loop thread has its own number (libuv's pool workers, which would
    // inherit a loop's name, are named "pool"); no name is longer than Linux allows.
    const loops = names.filter((n) => /^loop-\d+$/.test(n));
    assert.equal(new Set(loops).size, loops.length, `loop names repeat: ${JSON.stringify(loops)}`);
    for (const n of names) assert.ok(n.length <= 15, n);
  });

  test('mock-llm names its loop threads', { skip: process.platform !== 'linux' }, async () => {
    const names = threadNames(stack.mock.proc.pid);
    assert.ok(names.includes('loop-0'), `no loop-0 in ${JSON.stringify(names)}`);
  });
});
