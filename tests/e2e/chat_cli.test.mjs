// chat_cli.test.mjs — `brigade chat`, the terminal client, driven through
// its stdin as a script would: a streamed answer, a tool call and its
// result, an approval asked and given at the prompt (and one denied), the
// /commands, a hostile tool result shown without its escape sequences, and
// the refusals of a bad key and a missing one. It is a plain API client: a
// second user's session is not reachable through it.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, test } from 'node:test';

import { BRIGADE_BIN, runBrigade, useStack } from './lib/harness.mjs';
import { startToolServer, toolMarker } from './lib/agents.mjs';

let toolServer;
after(() => (toolServer ? toolServer.close() : undefined));

let tenant, alice, bob;
const stack = useStack(async () => {
  // the tool's answer carries an ANSI escape: a terminal must not obey it
  // (a raw text answer: the escape characters themselves, not JSON escapes)
  toolServer = await startToolServer(() => 'paid \u001b[2J\u001b]0;pwned\u0007done');
  return {
    extraYaml: [
      'tools:',
      '  - name: pay',
      `    url: "${toolServer.url}/pay"`,
      '    allow_private_networks: true',
      '    parameters: {type: object, properties: {amount: {type: number}}, required: [amount]}',
      '    approval: always',
      'agents:',
      '  - {name: payer, model: local-model, tools: [pay, memory]}',
    ].join('\n'),
  };
}, async (s) => {
  tenant = await s.makeTenant();
  alice = await s.makeUserWithKey(tenant.admin_key);
  bob = await s.makeUserWithKey(tenant.admin_key);
});

/** Run `brigade chat` with these stdin lines; resolves {code, stdout, stderr}. */
function chat(args, lines, env = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(BRIGADE_BIN, ['chat', '--url', stack.brigadeUrl, ...args], {
      env: { ...process.env, NO_COLOR: '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`brigade chat hung:\n${stdout}\n${stderr}`)); }, 30_000);
    p.on('exit', (code) => { clearTimeout(timer); setImmediate(() => resolve({ code, stdout, stderr })); });
    p.stdin.end(lines.map((l) => l + '\n').join(''));
  });
}

describe('brigade chat', () => {
  test('a streamed answer, /usage, /sessions, /history', async () => {
    const r = await chat(['--key', alice.key, '--agent', 'payer'],
      ['Hello there [[tokens:5]]', '/usage', '/sessions', '/history', '/quit']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /session ses_\w+ with payer/);
    assert.match(r.stdout, /\[done: \$[0-9.]+\]/, 'the run completed');
    assert.match(r.stdout, /^day +spent \$[0-9.]+ \(no budget\)$/m);
    assert.match(r.stdout, /^\* ses_\w+ payer/m, 'the current session is marked');
    assert.match(r.stdout, /^user +Hello there/m);
    assert.match(r.stdout, /^assistant /m);
  });

  test('a tool call waits for approval: approved at the prompt, the call runs; denied, it does not', async () => {
    const before = toolServer.requests.length;
    const r = await chat(['--key', alice.key, '--agent', 'payer'], [
      `Pay 5. ${toolMarker('pay', { amount: 5 })}`, 'y',
      `Pay 6. ${toolMarker('pay', { amount: 6 })}`, 'n',
      '/quit',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /approval needed: pay \{"amount":5\}/);
    assert.match(r.stdout, /\[approved\]/);
    assert.match(r.stdout, /\[tool\] pay \{"amount":5\}/);
    assert.match(r.stdout, /\[denied\]/);
    assert.equal(toolServer.requests.length - before, 1, 'only the approved call reached the tool');
    assert.equal(toolServer.requests.at(-1).body.amount, 5);
    // the tool's escape sequences were not written to the terminal
    assert.ok(!r.stdout.includes('\u001b'), 'no escape character reaches the terminal');
    assert.match(r.stdout, /\?\[2J/, 'shown as text instead');
  });

  test('another user\'s session is not there; a bad or missing key is refused clearly', async () => {
    const mine = await chat(['--key', alice.key, '--agent', 'payer'], ['/quit']);
    const sid = mine.stdout.match(/session (ses_\w+)/)[1];
    const other = await chat(['--key', bob.key, '--session', sid], ['/history', '/quit']);
    assert.notEqual(other.code, 0);
    assert.match(other.stdout, /error 404/);
    const bad = await chat(['--key', 'bk_usr_nope'], ['/quit']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stdout, /error 401/);
    const none = await runBrigade(['chat', '--url', stack.brigadeUrl], { env: { BRIGADE_KEY: '' } });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no key/);
    const help = await runBrigade(['chat', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /\/approve/);
    const unknown = await chat(['--key', alice.key, '--agent', 'payer'], ['/frobnicate', '/quit']);
    assert.match(unknown.stdout, /unknown command/);
  });
});
