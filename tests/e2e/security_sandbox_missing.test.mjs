// security_sandbox_missing.test.mjs — issue 13, item 4: where the machine
// cannot sandbox (here: bwrap made unavailable through `sandbox.bwrap`),
// brigade refuses to run a command tool, says why at start and in the
// call's result — unless the operator set `sandbox.allow_unsandboxed`, and
// then it warns at start and runs the tool without namespaces (limits,
// landlock and the declared environment still apply). The same holds for
// stdio MCP servers, which an operator may also run unsandboxed one by one
// (`sandbox: false` on the server).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { startStack } from './lib/harness.mjs';
import { newSession, openStream, toolMarker, transcript } from './lib/agents.mjs';

const CANARY = 'missing-canary-' + crypto.randomBytes(8).toString('hex');
const hostile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'mcp_hostile.mjs');
const mcpServer = (name, extra) =>
  `  - {name: ${name}, command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(hostile)}], env: {DECLARED: x}${extra}}`;

function yaml(allow) {
  return [
    `sandbox: {bwrap: /nonexistent/bwrap, allow_unsandboxed: ${allow}}`,
    'tools:',
    '  - name: sh',
    '    kind: command',
    '    argv: [/bin/sh, -c, "{script}"]',
    '    env: {PATH: /usr/bin:/bin}',
    '    parameters: {type: object, properties: {script: {type: string}}, required: [script]}',
    'agents:',
    '  - {name: boxed, model: local-model, tools: [sh]}',
    '  - {name: mcp, model: local-model, tools: [boxedmcp__procs, boxedmcp__environ, "openmcp__*"], max_steps: 4}',
    'mcp_servers:',
    mcpServer('boxedmcp', ''),
    mcpServer('openmcp', ', sandbox: false'),
  ].join('\n');
}

const stacks = {};
before(async () => {
  for (const allow of [false, true]) {
    const s = await startStack({ extraYaml: yaml(allow), env: { BRIGADE_SANDBOX_CANARY: CANARY } });
    const t = await s.makeTenant();
    s.user = await s.makeUserWithKey(t.admin_key);
    stacks[allow] = s;
  }
}, { timeout: 30_000 });
after(async () => {
  for (const s of Object.values(stacks)) {
    await s.stop();
    fs.rmSync(s.dataDir, { recursive: true, force: true });
  }
}, { timeout: 20_000 });

async function mcpCall(stack, tool, args) {
  const { key } = stack.user;
  const s = await newSession(stack, key, 'mcp');
  const res = await openStream(stack, key, s.id, `Go. ${toolMarker(tool, args)}`).done;
  const result = res.events.find((e) => e.event === 'tool.result')?.data;
  assert.ok(result, res.text.slice(0, 400));
  const t = await transcript(stack, key, s.id);
  return { ok: result.ok, content: t.filter((m) => m.role === 'tool').at(-1).content, last: res.events.at(-1) };
}

async function sh(stack, script) {
  const { key } = stack.user;
  const s = await newSession(stack, key, 'boxed');
  const res = await openStream(stack, key, s.id, `Go. ${toolMarker('sh', { script })}`).done;
  const result = res.events.find((e) => e.event === 'tool.result')?.data;
  assert.ok(result, res.text.slice(0, 400));
  const t = await transcript(stack, key, s.id);
  return { ok: result.ok, content: t.find((m) => m.role === 'tool').content, last: res.events.at(-1) };
}

describe('a machine that cannot sandbox', () => {
  test('refused by default: logged at start, and the call fails with the reason', async () => {
    const s = stacks[false];
    assert.match(s.brigade.stderr, /sandbox: bwrap unavailable/);
    assert.match(s.brigade.stderr, /tools: sh \(kind: command\) cannot run: .*allow_unsandboxed/);
    const r = await sh(s, 'echo ran > /tmp/should-not-exist-' + process.pid + '; echo RAN');
    assert.equal(r.ok, false);
    assert.doesNotMatch(r.content, /RAN/);
    assert.ok(!fs.existsSync('/tmp/should-not-exist-' + process.pid), 'the script ran');
    assert.match(r.content, /cannot run here: this machine cannot sandbox tool processes/);
    assert.equal(r.last.event, 'run.completed', 'the run goes on');
  });

  test('allow_unsandboxed: a warning at start, then it runs with only the declared environment', async () => {
    const s = stacks[true];
    assert.match(s.brigade.stderr, /WITHOUT namespaces \(sandbox.allow_unsandboxed\)/);
    const r = await sh(s, 'env; pwd');
    assert.equal(r.ok, true, r.content);
    assert.doesNotMatch(r.content, new RegExp(CANARY));
    // its private directory on the host is its working directory
    assert.match(r.content, new RegExp(`${s.dataDir}/sandbox/sh/`));
  });
});

describe('an MCP server on a machine that cannot sandbox', () => {
  test('refused by default: logged at start, the call fails with the reason; sandbox: false runs it, with a warning', async () => {
    const s = stacks[false];
    assert.match(s.brigade.stderr, /mcp boxedmcp cannot run: this machine cannot sandbox tool processes/);
    assert.match(s.brigade.stderr, /mcp openmcp: runs WITHOUT the sandbox \(sandbox: false\)/);
    const r = await mcpCall(s, 'boxedmcp__procs', {});
    assert.equal(r.ok, false);
    assert.match(r.content, /MCP server boxedmcp is not available.*cannot run here: this machine cannot sandbox/);
    assert.equal(r.last.event, 'run.completed', 'the run goes on');
    const open = await mcpCall(s, 'openmcp__procs', {});
    assert.equal(open.ok, true, open.content);
    assert.match(open.content, /^OK /);
  });

  test('allow_unsandboxed: it runs without namespaces, with only the declared environment', async () => {
    const s = stacks[true];
    const r = await mcpCall(s, 'boxedmcp__environ', {});
    assert.equal(r.ok, true, r.content);
    assert.doesNotMatch(r.content, new RegExp(CANARY));
    const env = JSON.parse(r.content.slice(3));
    assert.deepEqual(env.self.map((e) => e.split('=')[0]).sort(), ['DECLARED', 'PATH']);
  });
});
