// security_sandbox_missing.test.mjs — issue 13, item 4: where the machine
// cannot sandbox (here: bwrap made unavailable through `sandbox.bwrap`),
// brigade refuses to run a command tool, says why at start and in the
// call's result — unless the operator set `sandbox.allow_unsandboxed`, and
// then it warns at start and runs the tool without namespaces (limits,
// landlock and the declared environment still apply).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { startStack } from './lib/harness.mjs';
import { newSession, openStream, toolMarker, transcript } from './lib/agents.mjs';

const CANARY = 'missing-canary-' + crypto.randomBytes(8).toString('hex');

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
