// mcp_http.test.mjs — MCP servers over the streamable HTTP transport:
//   - a small recording server (lib/mcp_http_server.mjs): the Accept header,
//     Mcp-Session-Id kept per user (two users, two sessions), the
//     MCP-Protocol-Version header on every request after initialize, a JSON
//     answer and an SSE answer with progress, a 404 for a forgotten session
//     answered by a new initialize, DELETE of every session at shutdown, and
//     never the caller's brigade key;
//   - @modelcontextprotocol/server-everything in its streamableHttp mode:
//     echo, get-sum and a long-running call with progress.

import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';

import { spawn } from 'node:child_process';

import { auditEntries, eventually, freePort, useStack } from './lib/harness.mjs';
import { newSession, streamMessage, toolMarker } from './lib/agents.mjs';
import { startMcpHttpServer } from './lib/mcp_http_server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
let mini;
let pusher;
let everything;
after(async () => {
  if (mini) await mini.close();
  if (pusher) await pusher.close();
  if (everything?.proc && everything.proc.exitCode === null) {
    everything.proc.kill('SIGTERM');
    await new Promise((r) => { everything.proc.once('exit', r); setTimeout(r, 3000); });
  }
});

/** server-everything's HTTP mode, started by the test (brigade only calls it). */
function startEverything(port) {
  const proc = spawn(process.execPath, [
    path.join(here, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js'), 'streamableHttp',
  ], { env: { PATH: process.env.PATH, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server-everything did not start: ${out}`)), 15000);
    const look = (d) => {
      out += d;
      if (/listening on port/.test(out)) { clearTimeout(timer); resolve(); }
    };
    proc.stdout.on('data', look);
    proc.stderr.on('data', look);
    proc.on('exit', () => { clearTimeout(timer); reject(new Error(`server-everything exited: ${out}`)); });
  });
  return { proc, ready };
}

let tenant, alice, bob;
const stack = useStack(async () => {
  mini = await startMcpHttpServer();
  pusher = await startMcpHttpServer({ push: true });
  const port = await freePort();
  everything = { port, url: `http://127.0.0.1:${port}/mcp` };
  return {
    extraYaml: [
      'mcp_servers:',
      '  - name: mini',
      '    transport: http',
      `    url: ${JSON.stringify(mini.url)}`,
      '    headers: {X-Api-Key: configured-key}',
      '    allow_private_networks: true',
      '  - name: everything',
      '    transport: http',
      `    url: ${JSON.stringify(everything.url)}`,
      '    tools: [echo, get-sum, trigger-long-running-operation]',
      '    allow_private_networks: true',
      // the same server, without the operator's permission: egress refuses it
      '  - name: fenced',
      '    transport: http',
      `    url: ${JSON.stringify(mini.url)}`,
      '  - name: pusher',
      '    transport: http',
      `    url: ${JSON.stringify(pusher.url)}`,
      '    allow_private_networks: true',
      'agents:',
      '  - {name: mini, model: local-model, tools: ["mini__*"], max_steps: 4}',
      '  - {name: pusher, model: local-model, tools: ["pusher__*"], max_steps: 4}',
      '  - {name: fenced, model: local-model, tools: ["fenced__*"], max_steps: 4}',
      '  - {name: ev, model: local-model, tools: ["everything__*"], max_steps: 4}',
    ].join('\n'),
  };
}, async (s) => {
  const ev = startEverything(everything.port);
  everything.proc = ev.proc;
  await ev.ready;
  tenant = await s.makeTenant();
  alice = await s.makeUserWithKey(tenant.admin_key, s.unique('alice'));
  bob = await s.makeUserWithKey(tenant.admin_key, s.unique('bob'));
});

async function callTool(key, agent, tool, args) {
  const s = await newSession(stack, key, agent);
  const res = await streamMessage(stack, key, s.id, `Go. ${toolMarker(tool, args)}`);
  const tr = res.events.find((e) => e.event === 'tool.result');
  return { res, seq: res.events.map((e) => e.event), result: tr ? tr.data : null };
}

describe('the streamable HTTP transport (a recording server)', () => {
  test('a JSON answer; the headers of every request; never the caller\'s key', async () => {
    const { result, seq } = await callTool(alice.key, 'mini', 'mini__echo', { text: 'hi' });
    assert.equal(seq.at(-1), 'run.completed', seq.join(','));
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.match(result.preview, /echo hi/);
    const posts = mini.requests.filter((r) => r.method === 'POST');
    assert.ok(posts.length >= 4, 'initialize, initialized, tools/list, tools/call');
    const init = posts.find((r) => r.body.method === 'initialize');
    assert.equal(init.body.params.protocolVersion, '2025-11-25');
    assert.equal(init.headers['mcp-session-id'], undefined);
    for (const r of posts) {
      assert.equal(r.headers.accept, 'application/json, text/event-stream');
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.headers['x-api-key'], 'configured-key');
      assert.equal(r.headers.authorization, undefined);
      assert.ok(!JSON.stringify(r).includes(alice.key), 'the caller\'s key reached the server');
      if (r === init) continue;
      assert.ok(r.headers['mcp-session-id'], `${r.body.method}: no session id`);
      assert.equal(r.headers['mcp-protocol-version'], '2025-06-18', r.body.method);
    }
  });

  test('an SSE answer: progress as tool.progress, then the result', async () => {
    const { result, res } = await callTool(alice.key, 'mini', 'mini__stream', { text: 'down the pipe' });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.match(result.preview, /streamed down the pipe/);
    const p = res.events.find((e) => e.event === 'tool.progress');
    assert.ok(p, res.events.map((e) => e.event).join(','));
    assert.equal(p.data.progress, 1);
    assert.equal(p.data.total, 2);
  });

  test('a stream closed before its answer is resumed with GET and Last-Event-ID, after its retry time', async () => {
    const { result } = await callTool(alice.key, 'mini', 'mini__cut', { text: 'later' });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.match(result.preview, /resumed later/);
    const post = mini.requests.findLast((r) => r.method === 'POST' && r.body?.params?.name === 'cut');
    const get = mini.requests.findLast((r) => r.method === 'GET');
    assert.match(get.headers['last-event-id'], /^c1-/);
    assert.equal(get.headers.accept, 'text/event-stream');
    assert.equal(get.headers['mcp-session-id'], post.headers['mcp-session-id']);
    assert.ok(get.at - post.cutAt >= 250, `resumed after ${get.at - post.cutAt} ms, retry was 300`);
  });

  test('one MCP session per user on a shared server', async () => {
    const a = await callTool(alice.key, 'mini', 'mini__echo', { text: 'a' });
    const b = await callTool(bob.key, 'mini', 'mini__echo', { text: 'b' });
    const sidOf = (r) => r.result.preview.match(/\(([^)]+)\)/)[1];
    assert.notEqual(sidOf(a), sidOf(b));
    const a2 = await callTool(alice.key, 'mini', 'mini__echo', { text: 'a2' });
    assert.equal(sidOf(a2), sidOf(a));
  });

  test('a 404 for a forgotten session: that call fails clearly, the next one initializes again', async () => {
    const before = await callTool(alice.key, 'mini', 'mini__echo', { text: 'x' });
    const oldSid = before.result.preview.match(/\(([^)]+)\)/)[1];
    mini.forget();
    const n0 = mini.requests.filter((r) => r.body?.method === 'initialize').length;
    const failed = await callTool(alice.key, 'mini', 'mini__echo', { text: 'y' });
    assert.equal(failed.seq.at(-1), 'run.completed');
    await eventually(async () => {
      const again = await callTool(alice.key, 'mini', 'mini__echo', { text: 'z' });
      assert.equal(again.result.ok, true, JSON.stringify(again.result));
      assert.notEqual(again.result.preview.match(/\(([^)]+)\)/)[1], oldSid);
      return true;
    }, { timeoutMs: 8000, intervalMs: 300 });
    assert.ok(mini.requests.filter((r) => r.body?.method === 'initialize').length > n0);
  });
});

describe('the GET stream: what a server sends on its own', () => {
  test('opened after initialize; a list_changed on it relists; resumed with Last-Event-ID', async () => {
    const { result } = await callTool(alice.key, 'pusher', 'pusher__echo', { text: 'hi' });
    assert.equal(result.ok, true, JSON.stringify(result));
    let gets;
    await eventually(async () => {
      gets = pusher.requests.filter((r) => r.method === 'GET');
      return gets.length >= 2 || null;
    }, { timeoutMs: 8000 });
    const [first, second] = gets;
    assert.equal(first.headers.accept, 'text/event-stream');
    assert.ok(first.headers['mcp-session-id'], 'the session\'s stream');
    assert.equal(first.headers['mcp-protocol-version'], '2025-06-18');
    assert.equal(first.headers['last-event-id'], undefined);
    assert.equal(first.headers.authorization, undefined);
    assert.ok(!JSON.stringify(first.headers).includes(alice.key), 'never the brigade key');
    // closed after event p1 (retry: 200): opened again from there
    assert.equal(second.headers['last-event-id'], 'p1');
    assert.equal(second.headers['mcp-session-id'], first.headers['mcp-session-id']);
    assert.ok(second.at - first.at >= 150, `reopened after the stream's retry (${second.at - first.at} ms)`);
    // each tools/list_changed made brigade list the tools again
    await eventually(async () => {
      const lists = pusher.requests.filter((r) => r.method === 'POST' && r.body?.method === 'tools/list' &&
        r.headers['mcp-session-id'] === first.headers['mcp-session-id']);
      // the first listing (p1 came while it was being made), then one for p2,
      // received after the reopened stream (by arrival order: both can fall
      // in the same millisecond)
      return lists.length >= 2 && pusher.requests.indexOf(lists.at(-1)) > pusher.requests.indexOf(second) ? true : null;
    }, { timeoutMs: 8000 }).catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(pusher.requests.map((r) => [r.method, r.body?.method,
        r.headers['last-event-id'], r.headers['mcp-session-id']?.slice(0, 8)]))}`);
    });
  });

  test('a server without one (405) is asked once per session', async () => {
    const before = mini.requests.filter((r) => r.method === 'GET' && !r.headers['last-event-id']).length;
    const carol = await stack.makeUserWithKey(tenant.admin_key, stack.unique('carol'));
    const { result } = await callTool(carol.key, 'mini', 'mini__echo', { text: 'once' });
    assert.equal(result.ok, true, JSON.stringify(result));
    await new Promise((r) => setTimeout(r, 1500));   // longer than a reopen would wait
    const sessions = new Set(mini.requests.filter((r) => r.method === 'GET' && !r.headers['last-event-id'])
      .slice(before).map((r) => r.headers['mcp-session-id']));
    const gets = mini.requests.filter((r) => r.method === 'GET' && !r.headers['last-event-id']).length - before;
    assert.ok(gets >= 1, 'the stream was asked for');
    assert.equal(gets, sessions.size, 'one GET per session, no retry after 405');
  });
});

describe('egress', () => {
  test('an http MCP server on loopback is refused unless the operator allows it by name', async () => {
    const before = mini.requests.length;
    const { res, result } = await callTool(alice.key, 'fenced', 'fenced__echo', { text: 'hi' });
    const text = JSON.stringify(res.events);
    // the server never answered initialize, so it has no tools to call
    assert.ok(result && result.ok === false, text.slice(0, 500));
    assert.equal(res.events.at(-1).event, 'run.completed', 'the run goes on');
    assert.equal(mini.requests.length, before, 'nothing reached the server');
    // why, in brigade's log: the address class, never a request sent
    await eventually(async () => /may not be reached[^\n]*loopback/.test(stack.brigade.output()) || null,
      { timeoutMs: 5000 });
    // and an egress.refuse audit entry in the tenant's log: the server, the
    // class and the address, not the URL (as for an HTTP tool)
    let entry;
    await eventually(async () => {
      entry = (await auditEntries(stack, tenant.admin_key))
        .find((x) => x.action === 'egress.refuse' && x.target === 'fenced');
      return Boolean(entry);
    }, { timeoutMs: 5000 });
    assert.equal(entry.details.mcp_server, 'fenced');
    assert.equal(entry.details.class, 'loopback');
    assert.equal(entry.details.address, '127.0.0.1');
    assert.equal(entry.actor, alice.user.id, 'the user whose instance it was');
    assert.ok(!JSON.stringify(entry).includes(mini.url), 'the URL is not in the audit entry');
    // the server that may reach loopback is never audited as refused
    const entries = await auditEntries(stack, tenant.admin_key);
    assert.ok(!entries.some((x) => x.action === 'egress.refuse' && x.target === 'mini'));
  });
});

describe('server-everything over streamable HTTP', () => {
  test('echo and get-sum', async () => {
    const e = await callTool(alice.key, 'ev', 'everything__echo', { message: 'over http' });
    assert.equal(e.result.ok, true, JSON.stringify(e.result));
    assert.match(e.result.preview, /over http/);
    const s = await callTool(alice.key, 'ev', 'everything__get-sum', { a: 20, b: 22 });
    assert.equal(s.result.ok, true, JSON.stringify(s.result));
    assert.match(s.result.preview, /42/);
  });

  test('a long-running call streams its progress', async () => {
    const { result, res } = await callTool(bob.key, 'ev', 'everything__trigger-long-running-operation', { duration: 1, steps: 2 });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.ok(res.events.filter((e) => e.event === 'tool.progress').length >= 1);
  });
});

describe('shutdown', () => {
  test('every session is DELETEd when brigade stops', async () => {
    const live = new Set(mini.requests.filter((r) => r.method === 'POST' && r.headers['mcp-session-id'])
      .map((r) => r.headers['mcp-session-id']));
    const info = await stack.brigade.stop();
    assert.equal(info.code, 0, stack.brigade.output().slice(-1500));
    const deleted = new Set(mini.requests.filter((r) => r.method === 'DELETE').map((r) => r.headers['mcp-session-id']));
    assert.ok(deleted.size >= 2, `deleted ${deleted.size}`);
    for (const d of deleted) assert.ok(live.has(d));
  });
});
