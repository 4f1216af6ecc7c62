// mcp_instances.mjs — what a per-user stdio MCP server costs, sandboxed and
// not: the first call of a user whose instance is not running (start,
// initialize, tools/list and the call, as a run sees them) against a call
// of a running instance, and the resident memory of each idle instance
// (every process of it: bubblewrap's two and the server, or the server
// alone). Uses the e2e harness: a brigade and the mock model on loopback.
//
//   cd tests/e2e && BRIGADE_BIN=$PWD/../../build/brigade \
//     node ../../bench/mcp_instances.mjs [USERS]     (default 10)
//
// Prints one JSON object. Servers: server-everything (stdio) and the
// minimal server of the tests (lib/mcp_faulty.mjs), each twice — with the
// default sandbox and with `sandbox: false`.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startStack } from '../tests/e2e/lib/harness.mjs';
import { newSession, streamMessage, toolMarker } from '../tests/e2e/lib/agents.mjs';

const USERS = Number(process.argv[2] || 10);
const e2e = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'tests', 'e2e');
const everything = path.join(e2e, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const minimal = path.join(e2e, 'lib', 'mcp_faulty.mjs');
const node = JSON.stringify(process.execPath);

const servers = [
  { name: 'ev-box', args: `[${JSON.stringify(everything)}, stdio]`, sandbox: '', tool: 'echo', targs: { message: 'x' } },
  { name: 'ev-open', args: `[${JSON.stringify(everything)}, stdio]`, sandbox: 'sandbox: false', tool: 'echo', targs: { message: 'x' } },
  { name: 'min-box', args: `[${JSON.stringify(minimal)}, normal]`, sandbox: '', tool: 'ok', targs: {} },
  { name: 'min-open', args: `[${JSON.stringify(minimal)}, normal]`, sandbox: 'sandbox: false', tool: 'ok', targs: {} },
];

const yaml = [
  'mcp_servers:',
  ...servers.map((s) => `  - {name: ${s.name}, command: ${node}, args: ${s.args}, idle_timeout_s: 3600, max_instances: 512${s.sandbox ? ', ' + s.sandbox : ''}}`),
  'agents:',
  ...servers.map((s) => `  - {name: a-${s.name}, model: local-model, tools: [${s.name}__${s.tool}], max_steps: 3}`),
].join('\n');

const pct = (xs, p) => {
  const v = [...xs].sort((a, b) => a - b);
  return Math.round(v[Math.min(v.length - 1, Math.floor((v.length * p) / 100))] * 10) / 10;
};

/** pid → {ppid, args, rss (kB)} of every process. */
function processTable() {
  const t = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const status = fs.readFileSync(`/proc/${d}/status`, 'utf8');
      const ppid = Number(/PPid:\s+(\d+)/.exec(status)[1]);
      const rss = Number((/VmRSS:\s+(\d+)/.exec(status) || [0, 0])[1]);
      const args = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ');
      let cwd = '';
      try { cwd = fs.readlinkSync(`/proc/${d}/cwd`); } catch { /* gone */ }
      t.set(Number(d), { ppid, args, rss, cwd });
    } catch { /* gone */ }
  }
  return t;
}

/** Resident kB of each instance of `server`: brigade's child for it (bwrap,
 * whose arguments name the instance's directory; or the server, working
 * in it) and everything beneath. */
function instanceRss(table, brigadePid, dataDir, server) {
  const dir = path.join(dataDir, 'mcp', server) + '/';
  const subtree = (pid) => {
    let sum = table.get(pid).rss;
    for (const [p, e] of table) if (e.ppid === pid) sum += subtree(p);
    return sum;
  };
  const out = [];
  for (const [pid, e] of table)
    if (e.ppid === brigadePid && (e.args.includes(dir) || e.cwd.startsWith(dir))) out.push(subtree(pid));
  return out;
}

const stack = await startStack({ extraYaml: yaml });
try {
  const tenant = await stack.makeTenant();
  const users = [];
  for (let i = 0; i < USERS; i++) users.push(await stack.makeUserWithKey(tenant.admin_key, stack.unique('u' + i)));
  const result = { users: USERS, servers: {} };
  for (const s of servers) {
    const first = [], warm = [];
    for (const u of users) {
      for (const list of [first, warm]) {
        const sess = await newSession(stack, u.key, `a-${s.name}`);
        const t0 = performance.now();
        const r = await streamMessage(stack, u.key, sess.id, `Go. ${toolMarker(`${s.name}__${s.tool}`, s.targs)}`);
        const ms = performance.now() - t0;
        const tr = r.events.find((e) => e.event === 'tool.result');
        if (!tr || !tr.data.ok) throw new Error(`${s.name}: ${JSON.stringify(tr && tr.data)}`);
        list.push(ms);
      }
    }
    await new Promise((r) => setTimeout(r, 1500));   // idle: let start-up garbage settle
    const rss = instanceRss(processTable(), stack.brigade.proc.pid, stack.dataDir, s.name);
    result.servers[s.name] = {
      first_run_ms: { p50: pct(first, 50), p90: pct(first, 90), max: pct(first, 100) },
      warm_run_ms: { p50: pct(warm, 50), p90: pct(warm, 90), max: pct(warm, 100) },
      instances: rss.length,
      idle_rss_mb: rss.length ? { p50: Math.round(pct(rss, 50) / 102.4) / 10, max: Math.round(pct(rss, 100) / 102.4) / 10 } : null,
    };
  }
  console.log(JSON.stringify(result, null, 1));
} finally {
  await stack.stop();
  fs.rmSync(stack.dataDir, { recursive: true, force: true });
}
