// mcp_tenant.test.mjs — MCP servers per tenant (GET|POST /v1/mcp-servers,
// GET|PATCH|DELETE /v1/mcp-servers/{name}):
//   - a tenant admin adds an HTTP MCP server (a recording server on
//     loopback, lib/mcp_http_server.mjs), a tenant agent uses its tool as
//     NAME__TOOL, with the tenant's header; each change is audited;
//   - another tenant neither sees nor uses it (404, not listed, an agent
//     naming it is 400), and its own server of the same name is its own
//     (its own header, its own session);
//   - a user (not an admin) gets 403;
//   - {name, catalogue: true} enables a `tenants: enable` stdio server of the
//     operator's catalogue; DELETE disables it;
//   - a tenant can never say what runs a program or reaches private
//     networks (command, args, env, cwd, per_user, stdio,
//     allow_private_networks: 400 naming the key), nor auth (not yet);
//   - `approval` on the tenant's server: a call waits for a person (only the
//     one its `when` matches), and runs once approved;
//   - PATCH starts a fresh session with the new definition; DELETE takes the
//     tools away from the next run;
//   - hostile inputs: huge and bad names, bad URLs, file://, CR/LF in a
//     header, brigade's own headers, repeated JSON keys, the size and count
//     bounds;
//   - egress: a second brigade without `egress.allow_networks` refuses the
//     tenant's server on loopback (a clear tool error; nothing reaches it),
//     while this file's main brigade, whose operator lists 127.0.0.1/32,
//     reaches it.

import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { auditEntries, errorOf, eventually, startStack, useStack } from './lib/harness.mjs';
import { newSession, postMessage, streamMessage, toolMarker } from './lib/agents.mjs';
import { startMcpHttpServer } from './lib/mcp_http_server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const faulty = path.join(here, 'lib', 'mcp_faulty.mjs');

let mini;
after(async () => { if (mini) await mini.close(); });

let t1, t2, alice, bob, carol;
const stack = useStack(async () => {
  mini = await startMcpHttpServer();
  return {
    extraYaml: [
      // the tenants' servers are on loopback: the operator names that network
      'egress: {allow_networks: [127.0.0.1/32]}',
      'mcp_servers:',
      '  - name: gated',
      `    command: ${JSON.stringify(process.execPath)}`,
      `    args: [${JSON.stringify(faulty)}, normal, "{workdir}"]`,
      '    tenants: enable',
      '  - name: open',
      `    command: ${JSON.stringify(process.execPath)}`,
      `    args: [${JSON.stringify(faulty)}, normal, "{workdir}"]`,
    ].join('\n'),
  };
}, async (s) => {
  t1 = await s.makeTenant();
  t2 = await s.makeTenant();
  alice = await s.makeUserWithKey(t1.admin_key, s.unique('alice'));
  carol = await s.makeUserWithKey(t1.admin_key, s.unique('carol'));
  bob = await s.makeUserWithKey(t2.admin_key, s.unique('bob'));
});

const notes = (extra = {}) => ({
  name: 'notes', transport: 'http', url: mini.url, headers: { 'X-Tenant-Key': 'tenant-one' }, tools: ['echo'], ...extra,
});

async function callTool(key, agent, tool, args) {
  const s = await newSession(stack, key, agent);
  const res = await streamMessage(stack, key, s.id, `Go. ${toolMarker(tool, args)}`);
  const tr = res.events.find((e) => e.event === 'tool.result');
  return { res, seq: res.events.map((e) => e.event), result: tr ? tr.data : null, session: s };
}

describe('a tenant admin adds an HTTP MCP server; the tenant\'s agents use it', () => {
  test('create, read, list; an agent calls NAME__TOOL with the tenant\'s header; audited', async () => {
    const adm = t1.admin_key;
    const c = await stack.api(adm, 'POST', '/v1/mcp-servers', notes());
    assert.equal(c.status, 201, c.text);
    assert.equal(c.body.object, 'mcp_server');
    assert.equal(c.body.source, 'tenant');
    assert.equal(c.body.transport, 'http');
    assert.equal(c.body.url, mini.url);
    assert.deepEqual(c.body.headers, ['X-Tenant-Key'], 'header names only');
    assert.ok(!c.text.includes('tenant-one'), 'a header value is never echoed');
    assert.deepEqual(c.body.tools, ['echo']);
    assert.equal(c.body.startup_timeout_ms, 10000, 'a tenant\'s default');

    const g = await stack.api(adm, 'GET', '/v1/mcp-servers/notes');
    assert.equal(g.status, 200, g.text);
    assert.equal(g.body.url, mini.url);

    const list = await stack.api(adm, 'GET', '/v1/mcp-servers');
    assert.equal(list.status, 200, list.text);
    const byName = Object.fromEntries(list.body.data.map((m) => [m.name, m]));
    assert.equal(byName.notes.source, 'tenant');
    assert.equal(byName.gated.source, 'catalogue');
    assert.equal(byName.gated.transport, 'stdio');
    assert.equal(byName.gated.tenants, 'enable');
    assert.equal(byName.gated.available, false);
    assert.equal(byName.open.available, true);
    assert.equal(byName.gated.url, undefined, 'the operator\'s server is not shown in detail');
    assert.ok(!list.text.includes(faulty), 'the operator\'s program is not shown to tenants');

    const a = await stack.api(adm, 'POST', '/v1/agents', { name: 'noter', model: 'local-model', tools: ['notes__*'], max_steps: 4 });
    assert.equal(a.status, 201, a.text);

    const before = mini.requests.length;
    const { result, seq } = await callTool(alice.key, 'noter', 'notes__echo', { text: 'hi' });
    assert.equal(seq.at(-1), 'run.completed', seq.join(','));
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.match(result.preview, /echo hi/);
    const mine = mini.requests.slice(before).filter((r) => r.method === 'POST');
    assert.ok(mine.length >= 3, 'initialize, tools/list, tools/call');
    for (const r of mine) {
      assert.equal(r.headers['x-tenant-key'], 'tenant-one');
      assert.ok(!JSON.stringify(r).includes(alice.key), 'the caller\'s key reached the server');
    }

    // the allow-list: `stream` is the server's, but not offered
    const s = await callTool(alice.key, 'noter', 'notes__stream', { text: 'x' });
    assert.equal(s.result.ok, false, JSON.stringify(s.result));
    assert.ok(!mini.requests.some((r) => r.body?.params?.name === 'stream'), 'a tool off the allow-list was called');

    const actions = (await auditEntries(stack, adm)).filter((e) => e.target === 'notes').map((e) => e.action);
    assert.deepEqual(actions, ['mcp_server.create']);
  });

  test('a user of the tenant (not its admin) gets 403', async () => {
    for (const [m, p, b] of [['GET', '/v1/mcp-servers'], ['POST', '/v1/mcp-servers', notes({ name: 'mine' })],
      ['GET', '/v1/mcp-servers/notes'], ['PATCH', '/v1/mcp-servers/notes', { tools: null }],
      ['DELETE', '/v1/mcp-servers/notes']]) {
      const r = await stack.api(alice.key, m, p, b);
      assert.equal(r.status, 403, `${m} ${p}: ${r.text}`);
    }
    assert.equal((await stack.api(t1.admin_key, 'GET', '/v1/mcp-servers/notes')).status, 200, 'still there');
  });
});

describe('another tenant', () => {
  test('cannot see or use tenant one\'s server; its own of the same name is its own', async () => {
    const adm = t2.admin_key;
    const g = await stack.api(adm, 'GET', '/v1/mcp-servers/notes');
    assert.equal(g.status, 404, g.text);
    const list = await stack.api(adm, 'GET', '/v1/mcp-servers');
    assert.ok(!list.body.data.some((m) => m.name === 'notes'), list.text);
    assert.equal((await stack.api(adm, 'PATCH', '/v1/mcp-servers/notes', { tools: null })).status, 404);
    assert.equal((await stack.api(adm, 'DELETE', '/v1/mcp-servers/notes')).status, 404);
    const a = await stack.api(adm, 'POST', '/v1/agents', { name: 'thief', model: 'local-model', tools: ['notes__echo'] });
    assert.equal(a.status, 400, a.text);
    assert.equal(errorOf(a).param, 'tools[0]');
    assert.match(errorOf(a).message, /notes__echo/);

    // its own "notes": another header, another session; tenant one's untouched
    const c = await stack.api(adm, 'POST', '/v1/mcp-servers', notes({ headers: { 'X-Tenant-Key': 'tenant-two' } }));
    assert.equal(c.status, 201, c.text);
    assert.equal((await stack.api(adm, 'POST', '/v1/agents', { name: 'noter', model: 'local-model', tools: ['notes__echo'] })).status, 201);
    const before = mini.requests.length;
    const b = await callTool(bob.key, 'noter', 'notes__echo', { text: 'b' });
    assert.equal(b.result.ok, true, JSON.stringify(b.result));
    const theirs = mini.requests.slice(before).filter((r) => r.method === 'POST');
    assert.ok(theirs.length > 0 && theirs.every((r) => r.headers['x-tenant-key'] === 'tenant-two'), 'tenant two\'s header');
    const a1 = await callTool(alice.key, 'noter', 'notes__echo', { text: 'a' });
    assert.equal(a1.result.ok, true, JSON.stringify(a1.result));
    const sid = (r) => r.result.preview.match(/\(([^)]+)\)/)[1];
    assert.notEqual(sid(a1), sid(b), 'one session per tenant and user');
    const last = mini.requests.findLast((r) => r.body?.method === 'tools/call');
    assert.equal(last.headers['x-tenant-key'], 'tenant-one', 'tenant one still reaches its own definition');
  });
});

describe('the operator\'s catalogue', () => {
  test('{name, catalogue: true} enables a `tenants: enable` stdio server; DELETE disables it', async () => {
    const adm = t1.admin_key;
    const early = await stack.api(adm, 'POST', '/v1/agents', { name: 'gated-user', model: 'local-model', tools: ['gated__ok'] });
    assert.equal(early.status, 400, 'not enabled: an agent may not name it');

    const en = await stack.api(adm, 'POST', '/v1/mcp-servers', { name: 'gated', catalogue: true });
    assert.equal(en.status, 201, en.text);
    assert.equal(en.body.source, 'catalogue');
    assert.equal(en.body.available, true);
    assert.equal((await stack.api(adm, 'POST', '/v1/mcp-servers', { name: 'gated', catalogue: true })).status, 409);
    const a = await stack.api(adm, 'POST', '/v1/agents', { name: 'gated-user', model: 'local-model', tools: ['gated__ok'], max_steps: 4 });
    assert.equal(a.status, 201, a.text);
    const r = await callTool(carol.key, 'gated-user', 'gated__ok', {});
    assert.equal(r.result.ok, true, JSON.stringify(r.result));
    assert.match(r.result.preview, /fine/);

    // the other tenant has not enabled it
    const other = await stack.api(t2.admin_key, 'POST', '/v1/agents', { name: 'gated-user', model: 'local-model', tools: ['gated__ok'] });
    assert.equal(other.status, 400, other.text);

    // a tenant's own server may not take a catalogue name
    const taken = await stack.api(adm, 'POST', '/v1/mcp-servers', notes({ name: 'open' }));
    assert.equal(taken.status, 409, taken.text);
    assert.equal(errorOf(taken).code, 'name_taken');
    // nor may a catalogue entry be changed, or one every tenant has be disabled
    assert.equal((await stack.api(adm, 'PATCH', '/v1/mcp-servers/gated', { tools: ['ok'] })).status, 400);
    assert.equal((await stack.api(adm, 'DELETE', '/v1/mcp-servers/open')).status, 400);
    assert.equal((await stack.api(adm, 'POST', '/v1/mcp-servers', { name: 'nope', catalogue: true })).status, 404);

    const dis = await stack.api(adm, 'DELETE', '/v1/mcp-servers/gated');
    assert.equal(dis.status, 204, dis.text);
    const s = await newSession(stack, carol.key, 'gated-user').catch((e) => e);
    const next = s.id ? await postMessage(stack, carol.key, s.id, 'again') : null;
    assert.ok(!s.id || next.status !== 200, 'disabled: the agent that names it no longer runs');
    const actions = (await auditEntries(stack, adm)).filter((e) => e.target === 'gated').map((e) => e.action);
    assert.deepEqual(actions, ['mcp_server.enable', 'mcp_server.disable']);
  });
});

describe('what a tenant may not say', () => {
  const cases = [
    [{ transport: 'stdio', command: '/bin/sh' }, 'command', /never makes brigade run a program/],
    [{ command: '/bin/sh' }, 'command', /never makes brigade run a program/],
    [{ args: ['-c', 'id'] }, 'args', /program/],
    [{ env: { A: 'b' } }, 'env', /program/],
    [{ cwd: '/' }, 'cwd', /program/],
    [{ transport: 'stdio' }, 'transport', /transport: http/],
    [{ transport: 'carrier-pigeon' }, 'transport', /unknown transport/],
    [{ allow_private_networks: true }, 'allow_private_networks', /private networks/],
    [{ per_user: false }, 'per_user', /per user/],
    [{ max_instances: 4096 }, 'max_instances', /operator/],
    [{ tenants: 'all' }, 'tenants', /configuration/],
    [{ auth: { kind: 'oauth', client_id: 'c', client_secret_env: 'HOME' } }, 'auth.client_id', /pre-registered client/],
    [{ auth: { kind: 'oauth', client_secret_env: 'HOME' } }, 'auth.client_secret_env', /pre-registered client/],
    [{ approval: 'sometimes' }, 'approval', /expected never, always or \{when/],
    [{ colour: 'blue' }, 'colour', /unknown key/],
  ];
  for (const [extra, param, why] of cases) {
    test(`${JSON.stringify(extra)}: 400 naming "${param}"`, async () => {
      const r = await stack.api(t1.admin_key, 'POST', '/v1/mcp-servers', notes({ name: 'bad', ...extra }));
      assert.equal(r.status, 400, r.text);
      assert.equal(errorOf(r).param, param, r.text);
      assert.match(errorOf(r).message, why);
    });
  }
  test('PATCH may not add them either, nor rename', async () => {
    const adm = t1.admin_key;
    for (const [body, param] of [[{ command: '/bin/sh' }, 'command'], [{ allow_private_networks: true }, 'allow_private_networks'],
      [{ transport: 'stdio' }, 'transport'], [{ name: 'other' }, 'name']]) {
      const r = await stack.api(adm, 'PATCH', '/v1/mcp-servers/notes', body);
      assert.equal(r.status, 400, r.text);
      assert.equal(errorOf(r).param, param, r.text);
    }
  });
});

describe('hostile inputs', () => {
  const bad = [
    ['a huge name', { name: 'n'.repeat(5000) }, 'name'],
    ['a name over 32', { name: 'n'.repeat(40) }, 'name'],
    ['an underscore (NAME__TOOL splits once)', { name: 'a_b' }, 'name'],
    ['a slash', { name: 'a/b' }, 'name'],
    ['file://', { url: 'file:///etc/passwd' }, 'url'],
    ['no host', { url: 'http:///x' }, 'url'],
    ['gopher', { url: 'gopher://127.0.0.1/' }, 'url'],
    ['a CR/LF in the url', { url: 'http://127.0.0.1/\r\nX-Evil: 1' }, 'url'],
    ['a CR/LF in a header', { headers: { 'X-A': 'v\r\nX-Evil: 1' } }, 'headers.X-A'],
    ['a bad header name', { headers: { 'X A': 'v' } }, 'headers'],
    ['brigade\'s session header', { headers: { 'Mcp-Session-Id': 'stolen' } }, 'headers.Mcp-Session-Id'],
    ['Host', { headers: { host: 'elsewhere' } }, 'headers.host'],
    ['tools not a list', { tools: 'echo' }, 'tools'],
    ['a timeout out of range', { call_timeout_ms: 1e12 }, 'call_timeout_ms'],
    ['a start that would hold a shared thread long', { startup_timeout_ms: 60000 }, 'startup_timeout_ms'],
  ];
  for (const [what, extra, param] of bad) {
    test(`${what}: 400 naming ${param}`, async () => {
      const r = await stack.api(t1.admin_key, 'POST', '/v1/mcp-servers', notes({ name: 'hostile', ...extra }));
      assert.equal(r.status, 400, r.text);
      assert.equal(errorOf(r).param, param, r.text);
    });
  }

  test('repeated JSON keys, not an object, too large: 400; nothing stored', async () => {
    const adm = t1.admin_key;
    const twice = `{"name":"dup","transport":"http","url":"${mini.url}","url":"http://169.254.169.254/"}`;
    let r = await stack.api(adm, 'POST', '/v1/mcp-servers', twice);
    assert.equal(r.status, 400, r.text);
    assert.match(errorOf(r).message, /url/);
    r = await stack.api(adm, 'POST', '/v1/mcp-servers', '[1,2]');
    assert.equal(r.status, 400, r.text);
    r = await stack.api(adm, 'POST', '/v1/mcp-servers', notes({ name: 'big', headers: { 'X-Big': 'x'.repeat(40000) } }));
    assert.equal(r.status, 400, r.text);
    assert.equal(errorOf(r).code, 'too_large');
    const list = await stack.api(adm, 'GET', '/v1/mcp-servers');
    for (const n of ['dup', 'big', 'bad', 'hostile']) assert.ok(!list.body.data.some((m) => m.name === n), n);
  });

  test('at most 32 servers per tenant (its own and the catalogue ones it enabled)', async () => {
    const t = await stack.makeTenant();
    for (let i = 0; i < 32; i++) {
      const r = await stack.api(t.admin_key, 'POST', '/v1/mcp-servers', notes({ name: `s${i}` }));
      assert.equal(r.status, 201, r.text);
    }
    const r = await stack.api(t.admin_key, 'POST', '/v1/mcp-servers', notes({ name: 's32' }));
    assert.equal(r.status, 400, r.text);
    assert.equal(errorOf(r).code, 'limit_reached');
    assert.equal((await stack.api(t.admin_key, 'POST', '/v1/mcp-servers', { name: 'gated', catalogue: true })).status, 400);
  });
});

describe('approval on a tenant\'s server', () => {
  test('a call its `when` matches waits for a person and runs once approved; the others run at once', async () => {
    const adm = t1.admin_key;
    const c = await stack.api(adm, 'POST', '/v1/mcp-servers', notes({
      name: 'guarded', approval: { when: { pointer: '/text', matches: 'delete*' } }, approval_timeout_s: 600,
    }));
    assert.equal(c.status, 201, c.text);
    assert.equal(c.body.approval, 'when');
    assert.equal((await stack.api(adm, 'POST', '/v1/agents', { name: 'guarded', model: 'local-model', tools: ['guarded__echo'], max_steps: 4 })).status, 201);

    const free = await callTool(alice.key, 'guarded', 'guarded__echo', { text: 'read me' });
    assert.equal(free.result.ok, true, JSON.stringify(free.result));

    const calls = () => mini.requests.filter((r) => r.body?.method === 'tools/call' && r.body.params.arguments.text === 'delete all').length;
    const s = await newSession(stack, alice.key, 'guarded');
    const posted = await postMessage(stack, alice.key, s.id, `Go. ${toolMarker('guarded__echo', { text: 'delete all' })}`);
    assert.equal(posted.status, 200, posted.text);
    assert.equal(posted.body.run.status, 'waiting_approval', posted.text);
    assert.equal(calls(), 0, 'nothing reached the server before the decision');
    const pending = await stack.api(alice.key, 'GET', '/v1/approvals');
    const ap = pending.body.data.find((a) => a.run_id === posted.body.run.id);
    assert.ok(ap, pending.text);
    assert.equal(ap.tool, 'guarded__echo');
    assert.ok(ap.deadline - ap.created_at <= 601 && ap.deadline - ap.created_at >= 599, JSON.stringify(ap));
    const d = await stack.api(alice.key, 'POST', `/v1/runs/${posted.body.run.id}/approvals/${ap.id}`, { decision: 'approve' });
    assert.equal(d.status, 200, d.text);
    await eventually(async () => {
      const g = await stack.api(alice.key, 'GET', `/v1/runs/${posted.body.run.id}`);
      return g.body.status === 'completed' || null;
    }, { timeoutMs: 8000 });
    assert.equal(calls(), 1, 'approved: called once');
  });
});

describe('PATCH and DELETE', () => {
  test('PATCH: the next run uses the new definition (a new session with the new header)', async () => {
    const adm = t1.admin_key;
    const p = await stack.api(adm, 'PATCH', '/v1/mcp-servers/notes', { headers: { 'X-Tenant-Key': 'tenant-one-v2' }, tools: null });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.body.tools, null, 'null: back to every tool');
    const before = mini.requests.length;
    const r = await callTool(alice.key, 'noter', 'notes__stream', { text: 'now allowed' });
    assert.equal(r.result.ok, true, JSON.stringify(r.result));
    const mine = mini.requests.slice(before).filter((q) => q.method === 'POST');
    assert.ok(mine.some((q) => q.body?.method === 'initialize'), 'a fresh session');
    assert.ok(mine.every((q) => q.headers['x-tenant-key'] === 'tenant-one-v2'));
    const actions = (await auditEntries(stack, adm)).filter((e) => e.target === 'notes').map((e) => e.action);
    assert.deepEqual(actions, ['mcp_server.create', 'mcp_server.update']);
  });

  test('DELETE: its tools are gone from the next run; audited', async () => {
    const adm = t1.admin_key;
    const s = await newSession(stack, alice.key, 'noter');
    const d = await stack.api(adm, 'DELETE', '/v1/mcp-servers/notes');
    assert.equal(d.status, 204, d.text);
    assert.equal((await stack.api(adm, 'GET', '/v1/mcp-servers/notes')).status, 404);
    const before = mini.requests.length;
    const r = await postMessage(stack, alice.key, s.id, `Go. ${toolMarker('notes__echo', { text: 'gone' })}`);
    assert.notEqual(r.status, 200, 'the agent names a server the tenant no longer has');
    assert.match(JSON.stringify(r.body), /notes__/);
    assert.equal(mini.requests.slice(before).filter((q) => q.body?.method === 'tools/call').length, 0);
    // tenant two's own "notes" is untouched
    const b = await callTool(bob.key, 'noter', 'notes__echo', { text: 'still' });
    assert.equal(b.result.ok, true, JSON.stringify(b.result));
    const actions = (await auditEntries(stack, adm)).filter((e) => e.target === 'notes').map((e) => e.action);
    assert.deepEqual(actions, ['mcp_server.create', 'mcp_server.update', 'mcp_server.delete']);
  });
});

describe('egress: a tenant\'s server on loopback without the operator\'s allow_networks', () => {
  const fenced = {};
  before(async () => {
    await startStack({}, fenced);
  }, { timeout: 30_000 });
  after(async () => { if (fenced.stop) await fenced.stop(); }, { timeout: 20_000 });

  test('the call fails with the address class; nothing reaches the server; a tenant cannot lift it', async () => {
    const t = await fenced.makeTenant();
    const u = await fenced.makeUserWithKey(t.admin_key);
    const c = await fenced.api(t.admin_key, 'POST', '/v1/mcp-servers', notes({ name: 'local' }));
    assert.equal(c.status, 201, c.text);
    assert.equal((await fenced.api(t.admin_key, 'POST', '/v1/agents', { name: 'loc', model: 'local-model', tools: ['local__echo'], max_steps: 4 })).status, 201);
    const before = mini.requests.length;
    const s = await newSession(fenced, u.key, 'loc');
    const res = await streamMessage(fenced, u.key, s.id, `Go. ${toolMarker('local__echo', { text: 'hi' })}`);
    const tr = res.events.find((e) => e.event === 'tool.result');
    assert.ok(tr && tr.data.ok === false, JSON.stringify(res.events).slice(0, 600));
    assert.match(tr.data.preview, /may not be reached: egress refused: 127\.0\.0\.1/);
    assert.equal(res.events.at(-1).event, 'run.completed', 'the run goes on');
    assert.equal(mini.requests.length, before, 'nothing reached the server');
    await eventually(async () => /may not be reached[^\n]*loopback/.test(fenced.brigade.output()) || null, { timeoutMs: 5000 });
  });
});
