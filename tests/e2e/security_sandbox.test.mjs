// security_sandbox.test.mjs — issue 13, items 4 and 5: tools of kind
// `command` run in the sandbox (docs/sandbox.md), and every escape tried
// from inside one, through a real agent run (the mock model's tool marker):
//   - the happy path: JSON arguments in on stdin, JSON out on stdout, and
//     the model sees it; the private directory persists for its user;
//   - another user's private directory (by /work and by its host path);
//   - /proc/1/environ and every /proc/*/environ: brigade's environment
//     (a canary secret, the admin token) never shows; the tool's own
//     environment is exactly what it declared;
//   - the data directory (brigade's database and keys): not there;
//   - a socket to the loopback mock when the network is not granted (and,
//     the control, connected when it is);
//   - fork bombs: bounded by the pids cgroup, ended by the timeout, brigade
//     stays healthy and the next call runs;
//   - writing outside the private directory, ptrace and mount (seccomp),
//     a new user namespace; a descriptor brigade inherited, a capability;
//   - a timeout; too much output; a tenant admin declaring a command tool.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { errorOf, noteSecret, useStack } from './lib/harness.mjs';
import { newSession, openStream, toolMarker, transcript } from './lib/agents.mjs';

const CANARY = 'sandbox-canary-' + crypto.randomBytes(12).toString('hex');
const GRANTED = 'granted-' + crypto.randomBytes(6).toString('hex');
noteSecret(CANARY);   // never in any log either

// a node program reading the arguments from stdin and answering in JSON
const ECHO_JS = "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const a=JSON.parse(s);" +
  "process.stdout.write(JSON.stringify({echo:a,cwd:process.cwd(),uid:process.getuid()}))})";
// connect to 127.0.0.1:{port}; prints CONNECTED or ERR <code>
const CONNECT_JS = "const n=require('net');const c=n.connect(+process.argv[1],'127.0.0.1');" +
  "c.on('connect',()=>{console.log('CONNECTED');c.destroy()});c.on('error',e=>console.log('ERR',e.code))";

let tenant;
let other;
const users = {};

const stack = useStack(() => ({
  extraYaml: [
    'tools:',
    '  - name: echo_json',
    '    kind: command',
    '    description: Echoes its arguments.',
    `    argv: [node, -e, "${ECHO_JS}"]`,
    '    env: {PATH: /usr/bin:/bin}',
    '    parameters: {type: object, properties: {msg: {type: string}}}',
    '  - name: sh',
    '    kind: command',
    '    argv: [/bin/sh, -c, "{script}"]',
    '    env: {PATH: /usr/bin:/bin, GRANTED: "${SANDBOX_GRANTED}"}',
    '    timeout_ms: 8000',
    '    limits: {processes: 24, cpu_seconds: 8}',
    '    parameters: {type: object, properties: {script: {type: string}}, required: [script]}',
    '  - name: connect',
    '    kind: command',
    `    argv: [node, -e, "${CONNECT_JS}", "{port}"]`,
    '    parameters: {type: object, properties: {port: {type: integer}}, required: [port]}',
    '  - name: connect_granted',
    '    kind: command',
    `    argv: [node, -e, "${CONNECT_JS}", "{port}"]`,
    '    network: true',
    '    parameters: {type: object, properties: {port: {type: integer}}, required: [port]}',
    '  - name: bomb',
    '    kind: command',
    '    argv: [/bin/sh, -c, "{script}"]',
    '    timeout_ms: 3000',
    '    limits: {processes: 16, cpu_seconds: 5}',
    '    parameters: {type: object, properties: {script: {type: string}}, required: [script]}',
    '  - name: slow',
    '    kind: command',
    '    argv: [/bin/sleep, "30"]',
    '    timeout_ms: 1000',
    '  - name: chatty',
    '    kind: command',
    '    argv: [/bin/sh, -c, "head -c 1000000 /dev/zero | tr \'\\\\0\' a"]',
    '    max_response_bytes: 1000',
    'agents:',
    '  - {name: boxed, model: local-model, tools: [echo_json, sh, connect, connect_granted, bomb, slow, chatty]}',
  ].join('\n'),
  env: { BRIGADE_SANDBOX_CANARY: CANARY, SANDBOX_GRANTED: GRANTED },
}), async (s) => {
  tenant = await s.makeTenant();
  other = await s.makeTenant();
  for (const [name, t] of [['alice', tenant], ['bob', tenant], ['carol', other]]) {
    const { user, key } = await s.makeUserWithKey(t.admin_key, `${name}-${s.unique('u')}`);
    users[name] = { id: user.id, key, tenant: t.id };
  }
});

/** One tool call through an agent run: {ok, content (what the model got), last}. */
async function callTool(who, tool, args, { timeoutMs = 30_000 } = {}) {
  const { key } = users[who];
  const s = await newSession(stack, key, 'boxed');
  let timer;
  const res = await Promise.race([
    openStream(stack, key, s.id, `Go. ${toolMarker(tool, args)}`).done,
    new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`${tool}: no answer in ${timeoutMs} ms`)), timeoutMs); }),
  ]).finally(() => clearTimeout(timer));
  const result = res.events.find((e) => e.event === 'tool.result')?.data;
  assert.ok(result, `no tool.result: ${res.text.slice(0, 600)}`);
  const t = await transcript(stack, key, s.id);
  const content = t.find((m) => m.role === 'tool')?.content ?? '';
  return { ok: result.ok, content, last: res.events.at(-1) };
}

const sh = (who, script, opts) => callTool(who, 'sh', { script }, opts);

function sandboxUsable() {
  return /"sandbox: bwrap ok, seccomp ok/.test(stack.brigade.stderr);
}

describe('command tools: the happy path', () => {
  test('the sandbox was probed at start and its layers logged', async () => {
    assert.match(stack.brigade.stderr, /sandbox: bwrap (ok|unavailable), seccomp (ok|unavailable), landlock/);
    // and in /readyz, for the server admin only
    const r = await stack.admin('GET', '/readyz');
    const sb = r.body.checks.sandbox;
    assert.equal(sb.namespaces, sandboxUsable() ? 'ok' : 'unavailable', JSON.stringify(sb));
    assert.equal(typeof sb.landlock_abi, 'number');
    assert.equal(sb.unsandboxed_allowed, false);
    const anon = await fetch(stack.brigadeUrl + '/readyz').then((x) => x.json());
    assert.equal(anon.checks, undefined);
  });

  test('where the machine cannot sandbox, a call is refused with the reason (not run unsandboxed)', async (t) => {
    if (sandboxUsable()) return t.skip('this machine sandboxes; the escape tests below run');
    const r = await callTool('alice', 'echo_json', { msg: 'x' });
    assert.equal(r.ok, false);
    assert.match(r.content, /cannot run here: .*allow_unsandboxed/);
  });

  test('JSON in on stdin, JSON out on stdout, and the model sees it', async (t) => {
    if (!sandboxUsable()) return t.skip('this machine cannot sandbox (see the start-up log)');
    const r = await callTool('alice', 'echo_json', { msg: 'hello sandbox' });
    assert.equal(r.ok, true, r.content);
    const out = JSON.parse(r.content);
    assert.deepEqual(out.echo, { msg: 'hello sandbox' });
    assert.equal(out.cwd, '/work');
    assert.equal(r.last.event, 'run.completed', JSON.stringify(r.last));
  });

  test('the environment is exactly what the tool declared: no canary, no admin token', async (t) => {
    if (!sandboxUsable()) return t.skip('this machine cannot sandbox (see the start-up log)');
    const r = await sh('alice', 'env');
    assert.equal(r.ok, true, r.content);
    assert.match(r.content, new RegExp(`GRANTED=${GRANTED}`));
    assert.doesNotMatch(r.content, new RegExp(CANARY));
    assert.doesNotMatch(r.content, /BRIGADE_ADMIN_TOKEN|BRIGADE_SANDBOX_CANARY|SANDBOX_GRANTED/);
    const names = r.content.trim().split('\n').map((l) => l.split('=')[0]).sort();
    // PWD is the shell's own
    assert.deepEqual(names.filter((n) => n !== 'PWD'), ['GRANTED', 'PATH']);
  });

  test('the private directory persists between calls of the same user', async (t) => {
    if (!sandboxUsable()) return t.skip('this machine cannot sandbox (see the start-up log)');
    const w = await sh('alice', 'echo alice-note > /work/note.txt && echo written');
    assert.equal(w.ok, true, w.content);
    const r = await sh('alice', 'cat /work/note.txt');
    assert.equal(r.ok, true, r.content);
    assert.equal(r.content.trim(), 'alice-note');
  });
});

describe('sandbox escapes tried from inside a tool', () => {
  test("another user's private directory: not at /work, not by its host path, not by searching", async (t) => {
    if (!sandboxUsable()) return t.skip('this machine cannot sandbox (see the start-up log)');
    const secret = 'alice-private-' + crypto.randomBytes(6).toString('hex');
    assert.equal((await sh('alice', `echo ${secret} > /work/secret.txt && echo ok`)).ok, true);
    const hostDir = path.join(stack.dataDir, 'sandbox', 'sh', users.alice.tenant, users.alice.id);
    assert.ok(fs.readFileSync(path.join(hostDir, 'secret.txt'), 'utf8').includes(secret),
      'the file should be in alice\'s private directory on the host');
    for (const who of ['bob', 'carol']) {
      const r = await sh(who, `cat /work/secret.txt; cat ${hostDir}/secret.txt; ls -la ${hostDir}; ` +
        // every place outside /usr a file could be (the rest is read-only system files)
        `grep -rs ${secret} /work /tmp /etc /.brigade /home /root /var /srv /opt 2>/dev/null | head -3; ` +
        'find / -path /proc -prune -o -path /sys -prune -o -path /usr -prune -o -name secret.txt -print 2>/dev/null; echo end');
      assert.doesNotMatch(r.content, new RegExp(secret), `${who} read alice's file: ${r.content}`);
      assert.match(r.content, /end/);
    }
  });

  test("/proc/1/environ and every process's environment: brigade's never shows", async (t) => {
    if (!sandboxUsable()) return t.skip('this machine cannot sandbox (see the start-up log)');
    const r = await sh('alice', 'for f in /proc/1/environ /proc/[0-9]*/environ; do tr "\\0" "\\n" < $f; done 2>&1; ' +
      'set -- /proc/[0-9]*; echo "pids=$#"; cat /proc/1/cmdline | tr "\\0" " "; echo');
    assert.doesNotMatch(r.content, new RegExp(CANARY), r.content);
    assert.doesNotMatch(r.content, new RegExp(stack.adminToken));
    assert.doesNotMatch(r.content, /BRIGADE_/);
    // its own pid namespace: a handful of processes, none of brigade's
    const pids = Number(r.content.match(/pids=(\d+)/)[1]);
    assert.ok(pids < 10, `sees ${pids} processes: ${r.content}`);
    assert.doesNotMatch(r.content, /brigade serve|mock-llm/);
  });

  test('no descriptor of brigade\'s and no capability reach the tool', async (t) => {
    if (!sandboxUsable()) return t.skip('this machine cannot sandbox (see the start-up log)');
    // the shell's own descriptors, listed by another process
    const r = await sh('alice', 'ls -l /proc/$$/fd/; grep -E "^Cap(Eff|Prm):" /proc/$$/status');
    const fds = [...r.content.matchAll(/ (\d+) -> /g)].map((m) => Number(m[1])).sort((a, b) => a - b);
    assert.deepEqual(fds, [0, 1, 2], r.content);
    assert.match(r.content, /CapEff:\s+0000000000000000/, r.content);
  });

  test('the tool is no one on the host: never root outside its namespace', async (t) => {
    if (!sandboxUsable()) return t.skip('this machine cannot sandbox (see the start-up log)');
    // what it creates is owned, on the host, by the user it really is
    const r = await sh('alice', 'rm -f /work/owned; echo x > /work/owned && echo made');
    assert.match(r.content, /made/, r.content);
    const hostFile = path.join(stack.dataDir, 'sandbox', 'sh', users.alice.tenant, users.alice.id, 'owned');
    const { uid } = fs.statSync(hostFile);
    if (process.getuid() === 0) assert.equal(uid, 65534, 'brigade is root: tools run as nobody');
    else assert.equal(uid, process.getuid());
    assert.notEqual(uid, 0);
  });

  test("the data directory (brigade's database and keys) is not there", async (t) => {
    if (!sandboxUsable()) return t.skip('this machine cannot sandbox (see the start-up log)');
    const d = stack.dataDir;
    const r = await sh('alice', `ls -la ${d} 2>&1; cat ${d}/secret 2>&1; ls ${d}/*.db* 2>&1; ` +
      `find / -xdev \\( -name 'brigade.db*' -o -name serve.lock \\) 2>/dev/null; echo end`);
    assert.match(r.content, /No such file or directory/);
    assert.doesNotMatch(r.content, /serve\.lock|brigade\.db|brigade\.yaml/, r.content);
    const files = fs.readdirSync(d);
    assert.ok(files.length > 1, `the data directory on the host has files: ${files}`);
  });

  test('a socket to the loopback mock fails when the network is not granted (and connects when it is)', async (t) => {
    if (!sandboxUsable()) return t.skip('this machine cannot sandbox (see the start-up log)');
    const port = Number(new URL(stack.mockUrl).port);
    const denied = await callTool('alice', 'connect', { port });
    assert.doesNotMatch(denied.content, /CONNECTED/, denied.content);
    assert.match(denied.content, /ERR (ECONNREFUSED|ENETUNREACH|EACCES|EPERM)/, denied.content);
    const granted = await callTool('alice', 'connect_granted', { port });
    assert.match(granted.content, /CONNECTED/, granted.content);
  });

  test('a fork bomb in the background is bounded by the pids limit', async (t) => {
    if (!sandboxUsable()) return t.skip('this machine cannot sandbox (see the start-up log)');
    if (!/pids cgroup \//.test(stack.brigade.stderr)) return t.skip('no pids cgroup on this machine');
    // the bomb runs while the shell counts processes with a builtin glob (no fork)
    const r = await callTool('alice', 'bomb', { script:
      'b() { b | b & }; (b) 2>/dev/null & sleep 1; set -- /proc/[0-9]*; echo "procs=$#"; exit 0' });
    const m = r.content.match(/procs=(\d+)/);
    assert.ok(m, r.content);
    assert.ok(Number(m[1]) <= 16 + 2, `the bomb reached ${m[1]} processes`);
  });

  test('a fork bomb in the foreground: the call ends with an error, brigade stays healthy', async (t) => {
    if (!sandboxUsable()) return t.skip('this machine cannot sandbox (see the start-up log)');
    if (!/pids cgroup \//.test(stack.brigade.stderr)) return t.skip('no pids cgroup on this machine');
    const t0 = Date.now();
    // it keeps bombing until the timeout stops it
    const r = await callTool('alice', 'bomb', { script: 'b() { b | b & }; b; while :; do b; sleep 0.2; done' });
    assert.equal(r.ok, false, r.content);
    assert.match(r.content, /in time|exited|killed/);
    assert.ok(Date.now() - t0 < 15_000, 'bounded by the timeout');
    assert.equal(r.last.event, 'run.completed', 'a tool failing ends the call, not the run');
    const h = await fetch(stack.brigadeUrl + '/healthz');
    assert.equal(h.status, 200);
    const next = await sh('alice', 'echo after-the-bomb');
    assert.equal(next.content.trim(), 'after-the-bomb');
  });

  test('writing outside the private directory fails; /work and /tmp are writable', async (t) => {
    if (!sandboxUsable()) return t.skip('this machine cannot sandbox (see the start-up log)');
    const r = await sh('alice', 'for f in /usr/x /etc/x /x /bin/x /proc/x /.brigade/x; do ' +
      'if echo x > $f 2>/dev/null; then echo "WROTE $f"; fi; done; ' +
      'echo x > /work/w && echo work-ok; echo x > /tmp/t && echo tmp-ok');
    assert.doesNotMatch(r.content, /WROTE/, r.content);
    assert.match(r.content, /work-ok/);
    assert.match(r.content, /tmp-ok/);
  });

  test('ptrace, mount and a new user namespace are refused (seccomp)', async (t) => {
    if (!sandboxUsable()) return t.skip('this machine cannot sandbox (see the start-up log)');
    if (process.arch !== 'x64') return t.skip('syscall numbers below are x86-64');
    // ptrace(PTRACE_ATTACH=16, pid 1), mount("none", "/tmp", "tmpfs"), unshare(CLONE_NEWUSER)
    const r = await sh('alice',
      "perl -e '$!=0; $r=syscall(101,16,1,0,0); print \"ptrace=$r $!\\n\"; " +
      "my ($s,$d,$t)=(\"none\",\"/tmp\",\"tmpfs\"); " +
      "$!=0; $r=syscall(165,$s,$d,$t,0,0); print \"mount=$r $!\\n\"; " +
      "$!=0; $r=syscall(272,0x10000000); print \"unshare=$r $!\\n\"'");
    assert.match(r.content, /ptrace=-1 Operation not permitted/, r.content);
    assert.match(r.content, /mount=-1 Operation not permitted/, r.content);
    assert.match(r.content, /unshare=-1 Operation not permitted/, r.content);
  });
});

describe('command tools: failures the model is told about', () => {
  test('a timeout stops the tool and says so', async (t) => {
    if (!sandboxUsable()) return t.skip('this machine cannot sandbox (see the start-up log)');
    const t0 = Date.now();
    const r = await callTool('alice', 'slow', {});
    assert.equal(r.ok, false);
    assert.match(r.content, /did not finish in time/);
    assert.ok(Date.now() - t0 < 10_000);
  });

  test('output past max_response_bytes: stopped and cut', async (t) => {
    if (!sandboxUsable()) return t.skip('this machine cannot sandbox (see the start-up log)');
    const r = await callTool('alice', 'chatty', {});
    assert.equal(r.ok, false);
    assert.match(r.content, /output passed 1000 bytes/);
  });

  test('a non-zero exit is an error with the tool\'s stderr', async (t) => {
    if (!sandboxUsable()) return t.skip('this machine cannot sandbox (see the start-up log)');
    const r = await sh('alice', 'echo broken-thing >&2; exit 4');
    assert.equal(r.ok, false);
    assert.match(r.content, /status 4: broken-thing/);
  });

  test('a tenant admin cannot declare a command tool (400)', async () => {
    const r = await stack.api(tenant.admin_key, 'POST', '/v1/tools', {
      name: 'mine', kind: 'command', argv: ['/bin/sh', '-c', 'id'],
    });
    assert.equal(r.status, 400, r.text);
    assert.match(errorOf(r).message, /only the server's configuration may declare them/);
  });
});
