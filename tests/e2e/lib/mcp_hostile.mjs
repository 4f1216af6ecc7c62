// mcp_hostile.mjs — an MCP server over stdio that tries to escape its
// sandbox, for tests/e2e/mcp_sandbox.test.mjs. Each tool reports what it
// could do as text ("OK …" or "ERR CODE …"); it never decides whether that
// was allowed — the test does.
//   read {path}        the file's first 4000 bytes
//   list {path}        the directory's entries
//   write {path}       writes a file there
//   environ {}         /proc/1/environ and every /proc/N/environ it can read
//   procs {}           the pids it can see in /proc, its uid, hostname
//   connect {port}     a TCP connection to 127.0.0.1:port (2 s at most)
//   forkbomb {}        starts `f(){ f & f & sleep 30; }; f` in sh, counts
//                      the most processes it sees for 2 s, tries one more
//                      spawn; then kills the bomb
//   sleeper {marker}   leaves `sh -c "sleep 3000; : MARKER"` behind in a session of its own
//                      (setsid: not in the server's process group), with
//                      the marker in its command line
// At start it writes one line to stderr ("hostile: up in DIR"), which
// brigade logs. Every test using it stops by itself: the process ends
// with its stdin.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';

process.stderr.write(`hostile: up in ${process.cwd()}\n`);
const tools = ['read', 'list', 'write', 'environ', 'procs', 'connect', 'forkbomb', 'sleeper'];
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (line.trim()) handle(JSON.parse(line)).catch((e) => process.stderr.write(`hostile: ${e}\n`));
  }
});
process.stdin.on('end', () => process.exit(0));

const send = (m) => process.stdout.write(JSON.stringify(m) + '\n');
const tool = (name) => ({ name, description: `the ${name} tool`, inputSchema: { type: 'object' } });
const err = (e) => `ERR ${e.code || e.message}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function pids() {
  return fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n));
}

async function run(name, a) {
  switch (name) {
    case 'read':
      try { return 'OK ' + fs.readFileSync(a.path).subarray(0, 4000).toString('utf8'); } catch (e) { return err(e); }
    case 'list':
      try { return 'OK ' + JSON.stringify(fs.readdirSync(a.path)); } catch (e) { return err(e); }
    case 'write':
      try { fs.writeFileSync(a.path, 'escaped'); return 'OK written'; } catch (e) { return err(e); }
    case 'environ': {
      const out = {};
      for (const p of ['1', 'self', ...pids()]) {
        try { out[p] = fs.readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').filter(Boolean); } catch (e) { out[p] = err(e); }
      }
      return 'OK ' + JSON.stringify(out);
    }
    case 'procs':
      return 'OK ' + JSON.stringify({ pids: pids(), uid: process.getuid(), hostname: os.hostname(), cwd: process.cwd() });
    case 'connect':
      return await new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: a.port });
        const t = setTimeout(() => { s.destroy(); resolve('ERR timeout'); }, 2000);
        s.on('connect', () => { clearTimeout(t); s.destroy(); resolve('OK connected'); });
        s.on('error', (e) => { clearTimeout(t); resolve(err(e)); });
      });
    case 'forkbomb': {
      // each process starts two more, then holds its place: the count
      // climbs to whatever bound there is and stays there
      let bomb;
      try {
        bomb = spawn('/bin/sh', ['-c', 'f(){ f & f & sleep 30; }; f'], { detached: true, stdio: 'ignore' });
        bomb.on('error', () => {});
      } catch (e) { return 'ERR could not start the bomb: ' + err(e); }
      let seen = 0;
      for (let i = 0; i < 40; i++) {
        seen = Math.max(seen, pids().length);
        await sleep(50);
      }
      const more = spawnSync('/bin/true');
      const after = more.error ? err(more.error) : `status ${more.status}`;
      for (let i = 0; i < 40; i++) {
        try { process.kill(-bomb.pid, 'SIGKILL'); } catch { break; }
        await sleep(50);
      }
      return `OK seen=${seen} spawn-after=${after}`;
    }
    case 'sleeper': {
      const c = spawn("/bin/sh", ["-c", `sleep 3000; : ${a.marker}`], { detached: true, stdio: 'ignore' });
      c.on('error', () => {});
      c.unref();
      return `OK pid ${c.pid}`;
    }
    default:
      return 'ERR no such tool';
  }
}

async function handle(m) {
  if (m.method === 'initialize') {
    send({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'hostile', version: '1' } } });
  } else if (m.method === 'tools/list') {
    send({ jsonrpc: '2.0', id: m.id, result: { tools: tools.map(tool) } });
  } else if (m.method === 'tools/call') {
    const text = await run(m.params.name, m.params.arguments || {});
    send({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text }] } });
  } else if (m.id !== undefined && m.method) {
    send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'method not found' } });
  }
}
