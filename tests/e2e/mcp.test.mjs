// mcp.test.mjs — tools of real MCP servers from npm, over stdio, used by
// agents through the mock model's [[tool:…]] marker:
//   - @modelcontextprotocol/server-everything: echo, get-sum, a long-running
//     call with progress (tool.progress events) and one cancelled with its
//     run, an image and a resource turned into text for the model, and
//     get-env showing the server got nothing of brigade's environment but
//     PATH and what its configuration gives;
//   - @modelcontextprotocol/server-memory: per-user instances, each with its
//     own knowledge graph in its own directory;
//   - @modelcontextprotocol/server-filesystem: per-user directories, Alice's
//     agent cannot list or read Bob's files;
//   - a server that crashes, hangs or never starts (lib/mcp_faulty.mjs):
//     the tool call ends with a clear error, the run goes on;
//   - a server's allow-list, and output past the agent's cap cut.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';

import { auditEntries, eventually, noteSecret, useStack } from './lib/harness.mjs';
import { newSession, openStream, streamMessage, toolMarker } from './lib/agents.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = (name) => path.join(here, 'node_modules', '@modelcontextprotocol', name, 'dist', 'index.js');
const node = process.execPath;
const CANARY = 'brigade-secret-canary-' + process.pid;
noteSecret(CANARY);

let tenant;
let alice, bob;
const stack = useStack({
  extraYaml: [
    'mcp_servers:',
    `  - name: everything`,
    `    command: ${JSON.stringify(node)}`,
    `    args: [${JSON.stringify(pkg('server-everything'))}, stdio]`,
    '    env: {GIVEN_VAR: given-value}',
    '    tools: [echo, get-sum, get-env, trigger-long-running-operation, get-tiny-image, get-resource-reference]',
    '    call_timeout_ms: 20000',
    `  - name: memgraph`,
    `    command: ${JSON.stringify(node)}`,
    `    args: [${JSON.stringify(pkg('server-memory'))}]`,
    '    env: {MEMORY_FILE_PATH: "{workdir}/memory.jsonl"}',
    `  - name: files`,
    `    command: ${JSON.stringify(node)}`,
    `    args: [${JSON.stringify(pkg('server-filesystem'))}, "{workdir}"]`,
    `  - name: faulty`,
    `    command: ${JSON.stringify(node)}`,
    `    args: [${JSON.stringify(path.join(here, 'lib', 'mcp_faulty.mjs'))}, normal, "{workdir}"]`,
    '    call_timeout_ms: 1500',
    `  - name: silent`,
    `    command: ${JSON.stringify(node)}`,
    `    args: [${JSON.stringify(path.join(here, 'lib', 'mcp_faulty.mjs'))}, silent]`,
    '    startup_timeout_ms: 1000',
    `  - name: lru`,
    `    command: ${JSON.stringify(node)}`,
    `    args: [${JSON.stringify(path.join(here, 'lib', 'mcp_faulty.mjs'))}, normal, "{workdir}"]`,
    '    max_instances: 1',
    `  - name: idle`,
    `    command: ${JSON.stringify(node)}`,
    `    args: [${JSON.stringify(path.join(here, 'lib', 'mcp_faulty.mjs'))}, normal, "{workdir}"]`,
    '    idle_timeout_s: 1',
    `  - name: noping`,
    `    command: ${JSON.stringify(node)}`,
    `    args: [${JSON.stringify(path.join(here, 'lib', 'mcp_faulty.mjs'))}, noping, "{workdir}"]`,
    '    ping_interval_s: 1',
    '    call_timeout_ms: 1000',
    `  - name: pinged`,
    `    command: ${JSON.stringify(node)}`,
    `    args: [${JSON.stringify(path.join(here, 'lib', 'mcp_faulty.mjs'))}, normal, "{workdir}"]`,
    '    ping_interval_s: 1',
    '  - {name: missing, command: /nonexistent/mcp-server}',
    `  - {name: older, command: ${JSON.stringify(node)}, args: [${JSON.stringify(path.join(here, 'lib', 'mcp_faulty.mjs'))}, "v:2025-03-26"]}`,
    `  - {name: ancient, command: ${JSON.stringify(node)}, args: [${JSON.stringify(path.join(here, 'lib', 'mcp_faulty.mjs'))}, "v:2024-11-05"]}`,
    `  - {name: quits, command: ${JSON.stringify(node)}, args: ["-e", "process.exit(2)"]}`,
    'agents:',
    '  - {name: broken, model: local-model, tools: [missing__x, quits__x], max_steps: 4}',
    '  - {name: versions, model: local-model, tools: [older__ok, ancient__ok], max_steps: 4}',
    '  - {name: noping, model: local-model, tools: [noping__ok, pinged__ok], max_steps: 4}',
    '  - {name: lru, model: local-model, tools: [lru__ok], max_steps: 4}',
    '  - {name: idle, model: local-model, tools: [idle__ok], max_steps: 4}',
    '  - {name: ev, model: local-model, tools: [memory, "everything__*"], max_steps: 4}',
    '  - {name: ev-named, model: local-model, tools: [everything__echo], max_steps: 4}',
    '  - {name: graph, model: local-model, tools: [memgraph__create_entities, memgraph__read_graph], max_steps: 4}',
    '  - {name: fs, model: local-model, tools: ["files__*"], max_steps: 4}',
    '  - {name: faulty, model: local-model, tools: ["faulty__*"], max_steps: 4, max_tool_output_bytes: 2000}',
    '  - {name: silent, model: local-model, tools: [silent__ok], max_steps: 4}',
  ].join('\n'),
  env: { BRIGADE_CANARY_SECRET: CANARY },
}, async (s) => {
  tenant = await s.makeTenant();
  alice = await s.makeUserWithKey(tenant.admin_key, s.unique('alice'));
  bob = await s.makeUserWithKey(tenant.admin_key, s.unique('bob'));
});

const names = (events) => events.map((e) => e.event);

/** One streamed message calling one tool: {res, result (tool.result data), seq}. */
async function callTool(key, agent, tool, args, sid) {
  const s = sid ? { id: sid } : await newSession(stack, key, agent);
  const res = await streamMessage(stack, key, s.id, `Go. ${toolMarker(tool, args)}`);
  const seq = names(res.events);
  const tr = res.events.find((e) => e.event === 'tool.result');
  return { res, seq, result: tr ? tr.data : null, sid: s.id };
}

/** The whole tool output the model saw (the transcript's tool message). */
async function toolOutput(key, sid) {
  const r = await stack.api(key, 'GET', `/v1/sessions/${sid}/messages`);
  const m = r.body.data.filter((x) => x.role === 'tool').at(-1);
  return m ? m.content : null;
}

describe('server-everything over stdio', () => {
  test('echo: the call reaches the server, its text reaches the model, the run completes', async () => {
    const { seq, result, res } = await callTool(alice.key, 'ev', 'everything__echo', { message: 'hello mcp' });
    assert.equal(seq.at(-1), 'run.completed', res.text.slice(-600));
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.match(result.preview, /hello mcp/);
    assert.match(res.events.at(-1).data.message.content, /hello mcp/);
    // audited as a tool call naming the server, never with a secret
    await eventually(async () => {
      const entries = await auditEntries(stack, tenant.admin_key);
      const e = entries.find((x) => x.action === 'tool.call' && x.target === 'everything__echo' && x.details.run_id === result.run_id);
      if (!e) return false;
      assert.equal(e.details.mcp_server, 'everything');
      assert.equal(e.details.ok, true);
      return true;
    }, { timeoutMs: 3000 });
  });

  test('get-sum: arguments pass through as numbers', async () => {
    const { result } = await callTool(alice.key, 'ev', 'everything__get-sum', { a: 2, b: 40 });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.match(result.preview, /42/);
  });

  test('an agent naming one tool gets that tool only; a tool outside the server allow-list is refused', async () => {
    const named = await callTool(alice.key, 'ev-named', 'everything__get-sum', { a: 1, b: 1 });
    assert.equal(named.result.ok, false);
    assert.equal(named.seq.at(-1), 'run.completed');
    const outside = await callTool(alice.key, 'ev', 'everything__gzip-file-as-resource', {});
    assert.equal(outside.result.ok, false, JSON.stringify(outside.result));
    assert.equal(outside.seq.at(-1), 'run.completed');
  });

  test('get-env: the server sees PATH and what its config gives, nothing else of brigade\'s environment', async () => {
    const { result, sid } = await callTool(alice.key, 'ev', 'everything__get-env', {});
    assert.equal(result.ok, true, JSON.stringify(result));
    const out = await toolOutput(alice.key, sid);
    assert.ok(!out.includes(CANARY), 'brigade\'s secret reached the server');
    const env = JSON.parse(out);
    assert.deepEqual(Object.keys(env).sort(), ['GIVEN_VAR', 'PATH'], out.slice(0, 400));
    assert.equal(env.GIVEN_VAR, 'given-value');
    assert.ok(!('BRIGADE_ADMIN_TOKEN' in env));
  });

  test('a long-running call reports progress as tool.progress events, then its result', async () => {
    const { seq, result, res } = await callTool(alice.key, 'ev', 'everything__trigger-long-running-operation', { duration: 1, steps: 3 });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.match(result.preview, /Long running operation completed/);
    const progress = res.events.filter((e) => e.event === 'tool.progress');
    assert.ok(progress.length >= 2, seq.join(','));
    assert.equal(progress[0].data.total, 3);
    assert.ok(progress.at(-1).data.progress >= progress[0].data.progress);
    assert.ok(seq.indexOf('tool.progress') < seq.indexOf('tool.result'));
  });

  test('cancelling the run stops waiting for the call; the user\'s instance still answers afterwards', async () => {
    const s = await newSession(stack, alice.key, 'ev');
    const st = openStream(stack, alice.key, s.id, `Go. ${toolMarker('everything__trigger-long-running-operation', { duration: 30, steps: 30 })}`);
    const runId = (await st.next('run.started')).data.run_id;
    await st.next('tool.progress');
    const t0 = Date.now();
    const c = await stack.api(alice.key, 'POST', `/v1/runs/${runId}/cancel`);
    assert.equal(c.status, 200, c.text);
    assert.equal(c.body.status, 'cancelled');
    assert.ok(Date.now() - t0 < 3000, 'the cancel waited for the tool');
    const done = await st.done;
    assert.equal(done.events.at(-1).data.status, 'cancelled');
    const again = await callTool(alice.key, 'ev', 'everything__echo', { message: 'still here' });
    assert.equal(again.result.ok, true, JSON.stringify(again.result));
  });

  test('an image and a resource become text the model can read', async () => {
    const img = await callTool(alice.key, 'ev', 'everything__get-tiny-image', {});
    assert.equal(img.result.ok, true, JSON.stringify(img.result));
    const imgOut = await toolOutput(alice.key, img.sid);
    assert.match(imgOut, /\[image image\/png, \d+ bytes base64: not shown\]/);
    const rs = await callTool(alice.key, 'ev', 'everything__get-resource-reference', { resourceType: 'Text', resourceId: 1 });
    assert.equal(rs.result.ok, true, JSON.stringify(rs.result));
    const rsOut = await toolOutput(alice.key, rs.sid);
    assert.match(rsOut, /\[resource [a-z]+:\/\/\S+\]/);
  });
});

describe('per-user instances', () => {
  test('server-memory: Alice\'s knowledge graph is not Bob\'s', async () => {
    const entity = { name: 'AliceProject', entityType: 'project', observations: ['due friday'] };
    const made = await callTool(alice.key, 'graph', 'memgraph__create_entities', { entities: [entity] });
    assert.equal(made.result.ok, true, JSON.stringify(made.result));
    const mine = await callTool(alice.key, 'graph', 'memgraph__read_graph', {});
    assert.match(await toolOutput(alice.key, mine.sid), /AliceProject/);
    const theirs = await callTool(bob.key, 'graph', 'memgraph__read_graph', {});
    assert.equal(theirs.result.ok, true, JSON.stringify(theirs.result));
    assert.doesNotMatch(await toolOutput(bob.key, theirs.sid), /AliceProject/);
    // each graph lives in its user's own directory
    const base = path.join(stack.dataDir, 'mcp', 'memgraph', tenant.id);
    assert.ok(fs.existsSync(path.join(base, alice.user.id, 'memory.jsonl')));
    assert.ok(!fs.existsSync(path.join(base, bob.user.id, 'memory.jsonl')) ||
      !fs.readFileSync(path.join(base, bob.user.id, 'memory.jsonl'), 'utf8').includes('AliceProject'));
  });

  test('server-filesystem: Alice\'s agent cannot list or read Bob\'s files', async () => {
    const w = await callTool(bob.key, 'fs', 'files__write_file', { path: 'bob-notes.txt', content: 'bob private' });
    assert.equal(w.result.ok, true, JSON.stringify(w.result));
    const bobList = await callTool(bob.key, 'fs', 'files__list_directory', { path: '.' });
    assert.match(await toolOutput(bob.key, bobList.sid), /bob-notes\.txt/);
    const aliceList = await callTool(alice.key, 'fs', 'files__list_directory', { path: '.' });
    assert.equal(aliceList.result.ok, true, JSON.stringify(aliceList.result));
    assert.doesNotMatch(await toolOutput(alice.key, aliceList.sid), /bob-notes/);
    const bobDir = path.join(stack.dataDir, 'mcp', 'files', tenant.id, bob.user.id);
    assert.ok(fs.existsSync(path.join(bobDir, 'bob-notes.txt')));
    for (const p of [path.join(bobDir, 'bob-notes.txt'), '../' + bob.user.id + '/bob-notes.txt']) {
      const r = await callTool(alice.key, 'fs', 'files__read_text_file', { path: p });
      assert.equal(r.result.ok, false, `${p}: ${JSON.stringify(r.result)}`);
      assert.doesNotMatch(await toolOutput(alice.key, r.sid), /bob private/);
      assert.equal(r.seq.at(-1), 'run.completed');
    }
    const ls = await callTool(alice.key, 'fs', 'files__list_directory', { path: bobDir });
    assert.equal(ls.result.ok, false);
    assert.doesNotMatch(await toolOutput(alice.key, ls.sid), /bob-notes/);
  });
});

/** Processes whose arguments name this directory (a server given "{workdir}"):
 * the server itself, and, when it runs sandboxed (the default), bubblewrap's
 * two (the one outside and the pid namespace's first) unless `serverOnly`. */
function processesIn(dir, { serverOnly = true } = {}) {
  return execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n')
    .filter((l) => l.includes(dir) && !(serverOnly && /^\S*bwrap /.test(l)));
}

describe('instances: bounded and reaped', () => {
  test('max_instances: 1 — Bob\'s instance stops Alice\'s, the least recently used; Alice gets a new one', async () => {
    const dirOf = (u) => path.join(stack.dataDir, 'mcp', 'lru', tenant.id, u.user.id);
    const a = await callTool(alice.key, 'lru', 'lru__ok', {});
    assert.equal(a.result.ok, true, JSON.stringify(a.result));
    assert.equal(processesIn(dirOf(alice)).length, 1);
    const b = await callTool(bob.key, 'lru', 'lru__ok', {});
    assert.equal(b.result.ok, true, JSON.stringify(b.result));
    await eventually(() => processesIn(dirOf(alice)).length === 0, { timeoutMs: 5000 });
    assert.equal(processesIn(dirOf(bob)).length, 1);
    const a2 = await callTool(alice.key, 'lru', 'lru__ok', {});
    assert.equal(a2.result.ok, true, JSON.stringify(a2.result));
    await eventually(() => processesIn(dirOf(bob)).length === 0, { timeoutMs: 5000 });
  });

  test('idle_timeout_s: an unused instance is stopped, and started again on the next call', async () => {
    const dir = path.join(stack.dataDir, 'mcp', 'idle', tenant.id, alice.user.id);
    const a = await callTool(alice.key, 'idle', 'idle__ok', {});
    assert.equal(a.result.ok, true, JSON.stringify(a.result));
    await eventually(() => processesIn(dir, { serverOnly: false }).length === 0, { timeoutMs: 6000, intervalMs: 200 });
    const again = await callTool(alice.key, 'idle', 'idle__ok', {});
    assert.equal(again.result.ok, true, JSON.stringify(again.result));
  });
});

describe('the protocol around calls', () => {
  const dir = () => path.join(stack.dataDir, 'mcp', 'faulty', tenant.id, bob.user.id);

  test('brigade answers the server\'s ping', async () => {
    const c = await callTool(bob.key, 'faulty', 'faulty__ok', {});
    assert.equal(c.result.ok, true, JSON.stringify(c.result));
    await eventually(() => fs.existsSync(path.join(dir(), 'pong')), { timeoutMs: 3000 });
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir(), 'pong'), 'utf8')).result, {});
  });

  test('a call past call_timeout_ms, and one whose run is cancelled, are cancelled at the server', async () => {
    const before = fs.readdirSync(dir()).filter((f) => f.startsWith('cancelled-')).length;
    const c = await callTool(bob.key, 'faulty', 'faulty__hang', {});
    assert.equal(c.result.ok, false);
    await eventually(() => fs.readdirSync(dir()).filter((f) => f.startsWith('cancelled-')).length === before + 1, { timeoutMs: 3000 });
    const s = await newSession(stack, bob.key, 'faulty');
    const st = openStream(stack, bob.key, s.id, `Go. ${toolMarker('faulty__hang', {})}`);
    const runId = (await st.next('tool.call')).data.run_id;
    await new Promise((r) => setTimeout(r, 200));
    const cancel = await stack.api(bob.key, 'POST', `/v1/runs/${runId}/cancel`);
    assert.equal(cancel.body.status, 'cancelled');
    await st.done;
    await eventually(() => fs.readdirSync(dir()).filter((f) => f.startsWith('cancelled-')).length === before + 2, { timeoutMs: 3000 });
    const reasons = fs.readdirSync(dir()).filter((f) => f.startsWith('cancelled-'))
      .map((f) => JSON.parse(fs.readFileSync(path.join(dir(), f), 'utf8')).reason);
    assert.ok(reasons.includes('timed out') && reasons.includes('the run was cancelled'), reasons.join(','));
  });

  test('notifications/tools/list_changed: the next run sees the new tool', async () => {
    const first = await callTool(bob.key, 'faulty', 'faulty__extra', {});
    assert.equal(first.result.ok, false, 'extra is not there yet');
    const g = await callTool(bob.key, 'faulty', 'faulty__grow', {});
    assert.equal(g.result.ok, true, JSON.stringify(g.result));
    await eventually(async () => {
      const again = await callTool(bob.key, 'faulty', 'faulty__extra', {});
      assert.equal(again.result.ok, true, JSON.stringify(again.result));
      return true;
    }, { timeoutMs: 3000, intervalMs: 200 });
  });
});

describe('servers that hang while idle', () => {
  test('an idle instance that does not answer a ping is stopped; one that does stays; the next call starts it again', async () => {
    const dirOf = (server) => path.join(stack.dataDir, 'mcp', server, tenant.id, alice.user.id);
    const s = await newSession(stack, alice.key, 'noping');
    for (const tool of ['noping__ok', 'pinged__ok']) {
      const r = await streamMessage(stack, alice.key, s.id, `Go. ${toolMarker(tool, {})}`);
      assert.equal(r.events.find((e) => e.event === 'tool.result').data.ok, true, tool);
    }
    assert.equal(processesIn(dirOf('noping')).length, 1);
    await eventually(() => processesIn(dirOf('noping')).length === 0, { timeoutMs: 8000, intervalMs: 250 });
    assert.equal(processesIn(dirOf('pinged')).length, 1, 'a server answering pings stays up');
    // the next call starts it again (once its short restart back-off, 0.2 s, has passed)
    await eventually(async () => {
      const again = await callTool(alice.key, 'noping', 'noping__ok', {});
      assert.equal(again.result.ok, true, JSON.stringify(again.result));
      return true;
    }, { timeoutMs: 8000, intervalMs: 300 });
  });
});

describe('servers that fail', () => {
  test('a server that crashes mid-call: the call fails with a clear error, the run completes, the next call restarts it', async () => {
    const c = await callTool(alice.key, 'faulty', 'faulty__crash', {});
    assert.equal(c.seq.at(-1), 'run.completed', c.seq.join(','));
    assert.equal(c.result.ok, false);
    assert.match(await toolOutput(alice.key, c.sid), /MCP server faulty stopped: the server (process exited with status 3|closed its stdout)/);
    await eventually(async () => {
      const ok = await callTool(alice.key, 'faulty', 'faulty__ok', {});
      assert.equal(ok.result.ok, true, JSON.stringify(ok.result));
      return true;
    }, { timeoutMs: 8000, intervalMs: 300 });
  });

  test('a call that hangs ends at call_timeout_ms; the run completes', async () => {
    const t0 = Date.now();
    const c = await callTool(alice.key, 'faulty', 'faulty__hang', {});
    assert.equal(c.seq.at(-1), 'run.completed', c.seq.join(','));
    assert.equal(c.result.ok, false);
    assert.match(await toolOutput(alice.key, c.sid), /did not answer in time/);
    assert.ok(Date.now() - t0 < 6000);
  });

  test('output past the agent\'s cap is cut with a note', async () => {
    const c = await callTool(alice.key, 'faulty', 'faulty__huge', {});
    assert.equal(c.result.ok, true, JSON.stringify(c.result));
    const out = await toolOutput(alice.key, c.sid);
    assert.ok(out.length <= 2000, `${out.length} bytes`);
    assert.match(out, /\[output cut: \d+ of 200000 bytes\]$/);
  });

  test('protocol versions: a server answering 2025-03-26 is used, one answering 2024-11-05 is refused with the reason', async () => {
    const ok = await callTool(alice.key, 'versions', 'older__ok', {});
    assert.equal(ok.result.ok, true, JSON.stringify(ok.result));
    const old = await callTool(alice.key, 'versions', 'ancient__ok', {});
    assert.equal(old.result.ok, false);
    assert.equal(old.seq.at(-1), 'run.completed');
    assert.match(await toolOutput(alice.key, old.sid), /speaks protocol version 2024-11-05, which brigade does not/);
  });

  test('a command that does not exist, or exits at once: the call says so, the run completes', async () => {
    const m = await callTool(alice.key, 'broken', 'missing__x', {});
    assert.equal(m.seq.at(-1), 'run.completed', m.seq.join(','));
    assert.equal(m.result.ok, false);
    assert.match(await toolOutput(alice.key, m.sid), /MCP server missing is not available.*: could not start \/nonexistent\/mcp-server: no such file or directory/);
    const q = await callTool(alice.key, 'broken', 'quits__x', {});
    assert.equal(q.seq.at(-1), 'run.completed', q.seq.join(','));
    assert.equal(q.result.ok, false);
    assert.match(await toolOutput(alice.key, q.sid), /MCP server quits is not available.*(exited with status 2|closed its stdout)/);
  });

  test('a server that never answers initialize: the run goes on, its tool call says the server is unavailable', async () => {
    const c = await callTool(alice.key, 'silent', 'silent__ok', {});
    assert.equal(c.seq.at(-1), 'run.completed', c.seq.join(','));
    assert.equal(c.result.ok, false);
    assert.match(await toolOutput(alice.key, c.sid), /MCP server silent is not available.*it did not start within 1000 ms/);
  });
});

describe('shutdown', () => {
  test('brigade stops cleanly and no MCP server process outlives it', async () => {
    const running = () => processesIn(path.join(stack.dataDir, 'mcp'), { serverOnly: false });
    assert.ok(running().length >= 1, 'the filesystem servers should be running (their args name their dirs)');
    const info = await stack.brigade.stop();
    assert.equal(info.code, 0, stack.brigade.output().slice(-2000));
    assert.doesNotMatch(stack.brigade.output(), /Sanitizer/);
    await eventually(() => running().length === 0, { timeoutMs: 5000 });
  });
});
