// idle_cpu.test.mjs — a server with nothing to do uses no CPU, after every
// kind of traffic that leaves state behind in its loops: streamed and
// non-streamed chat completions, a streamed agent run with a tool call,
// a run's events read again. A loop left polling without sleeping (as once
// after any SSE stream, when the stream's end took its corked bytes along
// and the "something is corked" idle handle kept running) shows here as
// whole seconds of CPU while no request is in flight.
//
// The figure is brigade's own CPU time (utime + stime of /proc/PID/stat),
// which other processes on a loaded machine do not add to; background work
// that is meant to run (timers of a few Hz: usage flush, trace export,
// reapers) stays far below the bound.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';

import { useStack } from './lib/harness.mjs';
import { newSession, openStream, toolMarker } from './lib/agents.mjs';

let alice;
const stack = useStack(async () => ({
  extraYaml: [
    'agents:',
    '  - {name: helper, model: local-model, tools: [clock], max_steps: 4}',
  ].join('\n'),
}), async (s) => {
  const tenant = await s.makeTenant();
  alice = await s.makeUserWithKey(tenant.admin_key);
});

/** CPU seconds the process has used (user + system). */
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // the fields after the command name, which is in parentheses and may hold spaces
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticksPerSecond = 100;   // USER_HZ on Linux
  return (Number(f[11]) + Number(f[12])) / ticksPerSecond;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('an idle server', () => {
  test('uses (almost) no CPU after streams, runs and event reads have ended', async () => {
    const client = stack.openaiClient(alice.key);
    await client.chat.completions.create({ model: 'local-model', messages: [{ role: 'user', content: 'hi' }] });
    const stream = await client.chat.completions.create({
      model: 'local-model', stream: true, messages: [{ role: 'user', content: 'stream [[tokens:20]]' }],
    });
    for await (const chunk of stream) void chunk;
    for (let i = 0; i < 3; i++) {
      const s = await newSession(stack, alice.key, 'helper');
      const st = openStream(stack, alice.key, s.id, `Time? ${toolMarker('clock', {})}`);
      const run = await st.next('run.completed', 20_000);
      await st.done;
      const ev = await fetch(`${stack.brigadeUrl}/v1/runs/${run.data.run_id}/events`, {
        headers: { authorization: `Bearer ${alice.key}` },
      });
      await ev.text();
    }
    await sleep(500);   // what the last requests left to do (a flush, a span export) is done
    const pid = stack.brigade.pid;
    const before = cpuSeconds(pid);
    await sleep(2000);
    const used = cpuSeconds(pid) - before;
    // a loop spinning uses ~2 s here (one per loop thread, minus scheduling);
    // an idle one a few hundredths at most, sanitizers included
    assert.ok(used < 0.3, `brigade used ${used.toFixed(2)} s of CPU in 2 s with nothing to do`);
  });
});
