// runs_load.mjs — the load generator of bench/runs.sh: makes users, keys and
// sessions over brigade's HTTP API, then holds many streaming agent runs open
// at once (sampling brigade's memory from /proc while they are in flight),
// and times short runs one by one and at a fixed concurrency.
//
// Plain `net` sockets and a small HTTP/1.1 + chunked + SSE reader instead of
// node's http client: at 10 000 open streams the generator shares the two
// cores with brigade, so it should cost as little per stream as it can.
//
//   node bench/runs_load.mjs setup --url U --admin-token T --users 100 \
//        --hold-agent hold --hold-sessions 10000 --step-agents plain,clocked \
//        --step-sessions 256 --out sessions.json
//   node bench/runs_load.mjs hold  --url U --file sessions.json --n 10000 \
//        --window 512 --pid PID --timeout-ms 120000 --out hold.json
//   node bench/runs_load.mjs steps --url U --file sessions.json --agent plain \
//        --content "hi" --runs 1000 --conc 1 --out steps.json
//   node bench/runs_load.mjs history --url U --file sessions.json --agent looped \
//        --content "… [[tool_loop:8]]" --histories 0,3,10 --sessions 20 --out history.json
//
// Every subcommand prints one JSON object (also written to --out) and exits 0
// when it could measure, even if runs failed: the errors are part of the
// result. Only loopback URLs are accepted.
import net from 'node:net';
import fs from 'node:fs';

// ---- arguments -------------------------------------------------------------
function parseArgs(argv) {
  const o = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const k = a.slice(2);
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) o[k] = true;
      else { o[k] = v; i++; }
    } else o._.push(a);
  }
  return o;
}
const args = parseArgs(process.argv.slice(2));
const cmd = args._[0];
function die(msg) { process.stderr.write(`runs_load: ${msg}\n`); process.exit(2); }
function num(name, def) {
  const v = args[name] === undefined ? def : Number(args[name]);
  if (!Number.isFinite(v) || v < 0) die(`--${name} must be a non-negative number`);
  return v;
}
const base = new URL(args.url || die('--url is required'));
if (!['127.0.0.1', 'localhost', '[::1]'].includes(base.hostname)) die('only loopback URLs');
const host = base.hostname === '[::1]' ? '::1' : base.hostname;
const port = Number(base.port || 80);

function emit(result) {
  const text = JSON.stringify(result, null, 1);
  if (args.out) fs.writeFileSync(args.out, text + '\n');
  process.stdout.write(text + '\n');
}

// ---- JSON API calls (setup) ------------------------------------------------
async function api(method, path, token, body) {
  const r = await fetch(new URL(path, base), {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path} -> HTTP ${r.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}
// Run fn(i) for i in [0, n) with at most `conc` at a time.
async function pool(n, conc, fn) {
  let next = 0;
  const worker = async () => { while (next < n) { const i = next++; await fn(i); } };
  await Promise.all(Array.from({ length: Math.min(conc, n) }, worker));
}

async function setup() {
  const users = num('users', 100);
  const holdN = num('hold-sessions', 10000);
  const holdAgent = args['hold-agent'] || 'hold';
  const stepAgents = (args['step-agents'] || '').split(',').filter(Boolean);
  const stepN = num('step-sessions', 256);
  const conc = num('conc', 16);
  const t0 = performance.now();
  const tenant = await api('POST', '/v1/tenants', args['admin-token'] || die('--admin-token'), { name: 'bench-runs' });
  const adm = tenant.admin_key;
  const keys = new Array(users);
  await pool(users, conc, async (i) => {
    const u = await api('POST', '/v1/users', adm, { external_id: `bench-${i}` });
    keys[i] = (await api('POST', `/v1/users/${u.id}/keys`, adm, {})).key;
  });
  // Sessions are spread over the users round-robin: session j belongs to
  // user j % users, so every user holds about the same number of runs.
  const mk = async (agent, n) => {
    const out = new Array(n);
    await pool(n, conc, async (j) => {
      const key = keys[j % users];
      out[j] = { key, id: (await api('POST', '/v1/sessions', key, { agent })).id };
    });
    return out;
  };
  const sessions = { [holdAgent]: await mk(holdAgent, holdN) };
  for (const a of stepAgents) sessions[a] = await mk(a, stepN);
  const file = args.file || die('--file is required');
  fs.writeFileSync(file, JSON.stringify({ users, sessions }));
  emit({ users, sessions: Object.fromEntries(Object.entries(sessions).map(([k, v]) => [k, v.length])),
         seconds: +((performance.now() - t0) / 1000).toFixed(2) });
}

// ---- one streaming run over a raw socket -----------------------------------
// Calls done(outcome) exactly once; outcome = {ok, kind, msg, started, t_*}.
// kind: completed | failed (run.failed) | http (non-200) | conn (socket error
// or close before the end) | timeout.
const CRLFCRLF = Buffer.from('\r\n\r\n');
function startRun(sess, content, hooks, done) {
  const body = JSON.stringify({ content, stream: true });
  const req = `POST /v1/sessions/${sess.id}/messages HTTP/1.1\r\nHost: ${base.host}\r\n` +
    `Authorization: Bearer ${sess.key}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
  const s = net.connect({ host, port });
  let finished = false, started = false, tWrite = 0;
  let head = true, status = 0, chunked = false, pend = null;   // raw bytes not yet decoded
  let chunkLeft = -1;   // bytes left in the current chunk (+2 for its CRLF); -1 = expect size line
  let sse = '', errBody = '';
  const finish = (kind, msg) => {
    if (finished) return;
    finished = true;
    s.destroy();
    done({ ok: kind === 'completed', kind, msg, started, tWrite, tEnd: performance.now() });
  };
  const onEvent = (name, data) => {
    if (name === 'run.started') { started = true; hooks.started?.(); }
    else if (name === 'run.completed') finish('completed');
    else if (name === 'run.failed') finish('failed', `run.failed ${data.slice(0, 300)}`);
  };
  const onSse = (text) => {
    sse += text;
    let k;
    while ((k = sse.indexOf('\n\n')) >= 0) {
      const block = sse.slice(0, k);
      sse = sse.slice(k + 2);
      let name = 'message', data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data += line.slice(5).trim();
      }
      if (!block.startsWith(':')) onEvent(name, data);
      if (finished) return;
    }
  };
  s.setNoDelay(true);
  s.on('connect', () => { tWrite = performance.now(); s.write(req); });
  s.on('data', (d) => {
    pend = pend ? Buffer.concat([pend, d]) : d;
    if (head) {
      const k = pend.indexOf(CRLFCRLF);
      if (k < 0) { if (pend.length > 65536) finish('http', 'response head too large'); return; }
      const lines = pend.subarray(0, k).toString('latin1').split('\r\n');
      status = Number(lines[0].split(' ')[1]);
      chunked = lines.some((l) => /^transfer-encoding:\s*chunked/i.test(l));
      pend = pend.subarray(k + 4);
      head = false;
    }
    if (status !== 200 || !chunked) {   // an error answer: keep its body for the report
      errBody += pend.toString('utf8');
      pend = null;
      if (status !== 200 && errBody.length > 200) finish('http', `HTTP ${status}: ${errBody.slice(0, 300)}`);
      return;
    }
    // Decode chunked transfer coding into SSE text.
    for (;;) {
      if (chunkLeft < 0) {
        const k = pend.indexOf('\r\n');
        if (k < 0) break;
        chunkLeft = parseInt(pend.subarray(0, k).toString('latin1'), 16);
        if (!Number.isFinite(chunkLeft)) return finish('conn', 'bad chunk size');
        pend = pend.subarray(k + 2);
        if (chunkLeft === 0) return finish('conn', 'stream ended without run.completed');
        chunkLeft += 2;
      }
      if (pend.length === 0) break;
      const take = Math.min(chunkLeft, pend.length);
      // The chunk's trailing CRLF is part of chunkLeft; never hand it to SSE.
      const dataBytes = Math.max(0, Math.min(take, chunkLeft - 2));
      if (dataBytes) onSse(pend.subarray(0, dataBytes).toString('utf8'));
      if (finished) return;
      chunkLeft -= take;
      pend = pend.subarray(take);
      if (chunkLeft === 0) chunkLeft = -1;
    }
    if (pend && pend.length === 0) pend = null;
  });
  s.on('error', (e) => finish('conn', `socket: ${e.code || e.message}`));
  s.on('close', () => {
    if (status && status !== 200) finish('http', `HTTP ${status}: ${errBody.slice(0, 300)}`);
    else finish('conn', head ? 'closed before a response' : 'closed before run.completed');
  });
  return { timeout: () => finish('timeout', started ? 'no run.completed in time' : 'no run.started in time') };
}

// ---- /proc sampling --------------------------------------------------------
function procStatus(pid) {
  const t = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number((t.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [0, 0])[1]);
  return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile'),
           threads: kb('Threads') };
}
function procTicks(pid) {   // utime + stime, clock ticks
  const t = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = t.slice(t.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}
function procFds(pid) { try { return fs.readdirSync(`/proc/${pid}/fd`).length; } catch { return -1; } }
function smapsRollup(pid) {
  try {
    const out = {};
    for (const m of fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').matchAll(/^(\w+):\s+(\d+) kB/gm)) out[m[1]] = Number(m[2]);
    return out;
  } catch { return null; }
}
// Anonymous memory by mapping: [heap], and the big anonymous regions (glibc
// malloc arenas of the loop threads are 64 MiB-aligned anonymous mappings).
function smapsTop(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8');
    const maps = [];
    let cur = null;
    for (const line of text.split('\n')) {
      const h = line.match(/^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/);
      if (h) { cur = { range: `${h[1]}-${h[2]}`, name: h[3] || '[anon]', size: 0, rss: 0 }; maps.push(cur); continue; }
      const m = line.match(/^(Size|Rss):\s+(\d+) kB/);
      if (m && cur) cur[m[1].toLowerCase()] = Number(m[2]);
    }
    maps.sort((a, b) => b.rss - a.rss);
    return maps.slice(0, 8);
  } catch { return null; }
}

// ---- hold: N concurrent streaming runs -------------------------------------
async function hold() {
  const data = JSON.parse(fs.readFileSync(args.file || die('--file is required'), 'utf8'));
  const agent = args.agent || 'hold';
  const sessions = data.sessions[agent] || die(`no sessions for agent ${agent}`);
  const n = num('n', sessions.length);
  if (n > sessions.length) die(`only ${sessions.length} sessions for ${n} runs`);
  const windowMax = num('window', 512);        // runs connected but not yet started
  const timeoutMs = num('timeout-ms', 120000);
  const pid = Number(args.pid || die('--pid is required'));
  const content = args.content || 'Hello, please answer.';

  const cpu0 = procTicks(pid);
  const mem0 = procStatus(pid);
  const gen0 = process.cpuUsage();
  const t0 = performance.now();
  let launched = 0, startedN = 0, ended = 0, waiting = 0, inflight = 0, maxInflight = 0;
  let tFirstStarted = null, tAllStarted = null, tFirstEnd = null, tAllEnded = null;
  const counts = { completed: 0, failed: 0, http: 0, conn: 0, timeout: 0, not_started: 0 };
  const firstErrors = [];
  const handles = [];
  let peak = { ...mem0, inflight: 0, t: 0 };
  let atFull = null;   // snapshot when all N runs were in flight at once
  const samples = [];

  let resolveAll;
  const allDone = new Promise((r) => { resolveAll = r; });

  const pump = () => {
    while (launched < n && waiting < windowMax) {
      const i = launched++;
      waiting++;
      let wasStarted = false;
      handles.push(startRun(sessions[i], content, {
        started: () => {
          wasStarted = true; waiting--; startedN++; inflight++;
          if (inflight > maxInflight) maxInflight = inflight;
          if (startedN === 1) tFirstStarted = performance.now();
          if (startedN === n) tAllStarted = performance.now();
          if (inflight === n) snapshotFull();
          pump();
        },
      }, (o) => {
        if (!wasStarted) { waiting--; counts.not_started += o.kind === 'completed' ? 0 : 1; pump(); }
        else inflight--;
        if (tFirstEnd === null) tFirstEnd = performance.now();
        counts[o.kind]++;
        if (!o.ok && firstErrors.length < 5) firstErrors.push(`${o.kind}: ${o.msg}`);
        if (++ended === n) { tAllEnded = performance.now(); resolveAll(); }
      }));
    }
  };

  // Sample brigade's memory every 50 ms; the fd count (a readdir of ~10k
  // entries) and smaps once, at the moment the last run has started while
  // none has ended (all N in flight), and at the last sample before the
  // first run ends (the memory of N held runs, before completions add any).
  let heldMax = 0;   // highest VmRSS seen while all N were in flight and none had ended
  const sample = () => {
    let st;
    try { st = procStatus(pid); } catch { return null; }
    const t = Math.round(performance.now() - t0);
    samples.push([t, st.rss, inflight]);
    if (st.rss > peak.rss) peak = { ...st, inflight, t };
    if (ended === 0 && inflight === n && startedN === n) heldMax = Math.max(heldMax, st.rss);
    return { ...st, t };
  };
  function snapshotFull() {
    if (atFull) return;
    const st = sample();
    if (st) atFull = { ...st, inflight, fds: procFds(pid), smaps_rollup: smapsRollup(pid), top_maps: smapsTop(pid) };
  }
  const sampler = setInterval(sample, 50);
  const deadline = setTimeout(() => { for (const h of handles) h.timeout(); }, timeoutMs);

  pump();
  await allDone;
  clearInterval(sampler);
  clearTimeout(deadline);
  const tEnd = performance.now();
  const cpu1 = procTicks(pid);
  const mem1 = procStatus(pid);
  const secs = (x) => (x === null ? null : +((x - t0) / 1000).toFixed(3));
  emit({
    n, window: windowMax, counts, first_errors: firstErrors,
    max_in_flight: maxInflight,
    all_in_flight_at_once: maxInflight === n,
    t_first_started_s: secs(tFirstStarted), t_all_started_s: secs(tAllStarted),
    // How long all N were open together: from the last start to the first end.
    all_open_s: tAllStarted !== null && tFirstEnd !== null && tFirstEnd > tAllStarted ? +((tFirstEnd - tAllStarted) / 1000).toFixed(3) : 0, t_first_end_s: secs(tFirstEnd), t_all_ended_s: secs(tAllEnded),
    wall_s: secs(tEnd),
    cpu_ticks: cpu1 - cpu0,
    // The generator's own cost, for judging whether it limited the ramp-up.
    generator_cpu_s: (() => { const u = process.cpuUsage(gen0); return +((u.user + u.system) / 1e6).toFixed(2); })(),
    generator_rss_kb: Math.round(process.memoryUsage().rss / 1024),
    mem_before_kb: mem0, mem_peak_kb: peak, mem_at_full: atFull, mem_held_max_kb: heldMax || null,
    mem_after_kb: mem1,
    samples_every_50ms: samples.filter((_, i) => i % 10 === 0),
  });
}

// ---- steps: timed runs at a fixed concurrency -----------------------------
function pct(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
async function steps() {
  const data = JSON.parse(fs.readFileSync(args.file || die('--file is required'), 'utf8'));
  const agent = args.agent || die('--agent is required');
  const sessions = data.sessions[agent] || die(`no sessions for agent ${agent}`);
  const runs = num('runs', 1000), conc = Math.max(1, num('conc', 1)), warm = num('warmup', 20);
  const content = args.content || 'Hello.';
  const timeoutMs = num('timeout-ms', 30000);
  if (conc > sessions.length) die(`conc ${conc} > ${sessions.length} sessions`);
  const pid = args.pid ? Number(args.pid) : null;
  const one = (sess) => new Promise((resolve) => {
    const h = startRun(sess, content, {}, resolve);
    const t = setTimeout(() => h.timeout(), timeoutMs);
    t.unref();
  });
  // Worker w uses sessions w, w+conc, w+2·conc, … in turn, so no session
  // ever has two runs at once and each session's history stays short.
  const perWorker = Math.ceil(sessions.length / conc);
  const times = [], counts = { completed: 0, failed: 0, http: 0, conn: 0, timeout: 0 }, firstErrors = [];
  const work = async (w, count, record) => {
    for (let k = 0; k < count; k++) {
      const sess = sessions[w + conc * (k % perWorker)] || sessions[w];
      const o = await one(sess);
      if (!record) continue;
      counts[o.kind]++;
      if (o.ok) times.push(o.tEnd - o.tWrite);
      else if (firstErrors.length < 5) firstErrors.push(`${o.kind}: ${o.msg}`);
    }
  };
  await Promise.all(Array.from({ length: conc }, (_, w) => work(w, Math.ceil(warm / conc), false)));
  const cpu0 = pid ? procTicks(pid) : 0;
  const t0 = performance.now();
  // Exactly `runs` runs: the first runs % conc workers do one more.
  await Promise.all(Array.from({ length: conc }, (_, w) => work(w, Math.floor(runs / conc) + (w < runs % conc ? 1 : 0), true)));
  const wall = (performance.now() - t0) / 1000;
  times.sort((a, b) => a - b);
  const ms = (x) => (x === null ? null : +x.toFixed(3));
  emit({
    agent, conc, runs: times.length + Object.values(counts).reduce((a, b) => a + b, 0) - counts.completed,
    counts, first_errors: firstErrors,
    p50_ms: ms(pct(times, 50)), p90_ms: ms(pct(times, 90)), p99_ms: ms(pct(times, 99)),
    min_ms: ms(times[0] ?? null), max_ms: ms(times[times.length - 1] ?? null),
    runs_per_s: +(counts.completed / wall).toFixed(1),
    cpu_ticks: pid ? procTicks(pid) - cpu0 : null,
  });
}

// ---- history: one step's time as brigade's own trace shows it, by history -
// For each history length H (--histories, in earlier runs of the agent on
// the session): --sessions new sessions of the user of the file's first
// session of --agent, H untimed runs on each, then one run each whose trace
// (GET /v1/traces/{id}, from the answer's traceparent) gives, from the
// spans: the time per step (first model call's start → last's, over the
// steps between), the start (request → first model call) and the end (last
// model call's end → the run's end: its durable commit). One run at a time.
async function history() {
  const data = JSON.parse(fs.readFileSync(args.file || die('--file is required'), 'utf8'));
  const agent = args.agent || die('--agent is required');
  const key = (data.sessions[agent] || die(`no sessions for agent ${agent}`))[0].key;
  const content = args.content || die('--content is required');
  const per = num('sessions', 20);
  const hs = String(args.histories || '0,3,10').split(',').map(Number);
  if (hs.some((h) => !Number.isInteger(h) || h < 0 || h > 50)) die('--histories: integers 0..50');
  const post = async (sid) => {
    const r = await fetch(new URL(`/v1/sessions/${sid}/messages`, base), {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ content }) });
    const text = await r.text();
    if (!r.ok) throw new Error(`POST message -> HTTP ${r.status}: ${text.slice(0, 200)}`);
    const body = JSON.parse(text);
    if (body.run?.status !== 'completed') throw new Error(`run ended ${body.run?.status}: ${text.slice(0, 200)}`);
    return (r.headers.get('traceparent') || '').split('-')[1];
  };
  const med = (a) => (a.length ? Math.round(a.slice().sort((x, y) => x - y)[a.length >> 1]) : null);
  const rows = [];
  for (const h of hs) {
    const ids = [];
    for (let i = 0; i < per; i++) ids.push((await api('POST', '/v1/sessions', key, { agent })).id);
    for (let k = 0; k < h; k++) for (const sid of ids) await post(sid);
    const traces = [];
    for (const sid of ids) traces.push(await post(sid));
    const step = [], start = [], end = [], total = [], messages = [];
    for (const t of traces) {
      // A trace's spans are written as they are flushed (within a second):
      // read until the request's span, the run's and its model calls are in.
      let sp = [], req, run, chats = [];
      for (let tries = 0; tries < 50; tries++) {
        const r = await fetch(new URL(`/v1/traces/${t}`, base), { headers: { authorization: `Bearer ${key}` } });
        if (r.ok) {
          sp = (await r.json()).spans.map((x) => ({ n: x.name, s: Number(BigInt(x.start_unix_nano) / 1000n),
                                                    e: Number(BigInt(x.end_unix_nano) / 1000n),
                                                    root: x.parent_span_id === null }))
            .sort((a, b) => a.s - b.s);
          req = sp.find((x) => x.root);
          run = sp.find((x) => x.n.startsWith('run '));
          chats = sp.filter((x) => x.n.startsWith('chat '));
          if (req && run && chats.length >= 2) break;
        } else {
          await r.text();
        }
        await new Promise((res) => setTimeout(res, 100));
      }
      if (!req || !run || chats.length < 2) throw new Error(`trace ${t}: no request or run span, or fewer than 2 model calls`);
      step.push((chats.at(-1).s - chats[0].s) / (chats.length - 1));
      start.push(chats[0].s - req.s);
      end.push(run.e - chats.at(-1).e);
      total.push(req.e - req.s);
    }
    const msgs = await api('GET', `/v1/sessions/${ids[0]}`, key);
    rows.push({ prior_runs: h, session_messages: msgs.message_count ?? null, runs: traces.length,
                step_us_p50: med(step), start_us_p50: med(start), end_us_p50: med(end), total_us_p50: med(total) });
  }
  emit({ agent, content, rows });
}

const main = { setup, hold, steps, history }[cmd];
if (!main) die('usage: runs_load.mjs setup|hold|steps|history --url URL …');
main().catch((e) => die(e.stack || String(e)));
