// redis.mjs — a redis-server (the Debian package's) for the shared
// governance tests: started by the test on a free loopback port in its own
// temp dir, with no persistence, so a restart is a Redis that lost its data.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

import { Child, freePort, tempDir } from './harness.mjs';

/** Start (or restart on the same port) a redis-server into holder:
 *  {port, url, dir, child}. */
export async function startRedis(holder = {}) {
  // No redis-server is a failure with its cause, never a skip: CI installs
  // it (scripts/deps.sh).
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('redis-server is not installed: scripts/deps.sh installs it (Debian package redis-server)');
  }
  if (!holder.port) holder.port = await freePort();
  if (!holder.dir) holder.dir = tempDir('brigade-redis-');
  holder.url = `redis://127.0.0.1:${holder.port}/0`;
  holder.child = new Child('redis-server', [
    '--port', String(holder.port), '--bind', '127.0.0.1', '--dir', holder.dir,
    '--save', '', '--appendonly', 'no', '--protected-mode', 'yes',
  ], { bin: 'redis-server' });
  await holder.child.waitFor(/Ready to accept connections/);
  return holder;
}

/** Stop it at once (SIGKILL: a crash; its data is gone). */
export async function killRedis(holder) {
  if (!holder.child) return;
  holder.child.proc.kill('SIGKILL');
  await holder.child.exited;
  holder.child = null;
}

export async function stopRedis(holder) {
  await killRedis(holder);
  if (holder.dir) fs.rmSync(holder.dir, { recursive: true, force: true });
}
