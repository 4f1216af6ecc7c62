// cluster.mjs — a second brigade instance beside a test's stack (same
// PostgreSQL database on BRIGADE_E2E_STORE=postgres, same Redis, same mock
// provider), as a deployment of several instances runs them; and reading
// GET /v1/runs/{id}/events from any instance.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { sseReader } from './agents.mjs';
import { Child, freePort, makeConfig, storeYamlOf, tempDir } from './harness.mjs';

/** Start an instance sharing stack's store: a data directory of its own
 *  with copies of the first one's key files (every instance needs the same
 *  ones; its own instance.id is made) — or `dataDir`, one the caller
 *  prepared (a copy of the first one's, for SQLite). Returns {child, base,
 *  dataDir, configPath, start() (again, after child.stop()), stop()}. */
export async function startInstance(stack, { extraYaml = '', upstreamTimeoutMs = 10000, name = 'second', dataDir = null } = {}) {
  if (!dataDir) {
    dataDir = tempDir('brigade-inst-');
    fs.chmodSync(dataDir, 0o700);
    for (const f of ['secret', 'vault.key', 'audit_ed25519.key']) {
      const from = path.join(stack.dataDir, f);
      if (fs.existsSync(from)) fs.copyFileSync(from, path.join(dataDir, f));
    }
  }
  const port = await freePort();
  const mockPort = Number(new URL(stack.mockUrl).port);
  const configPath = path.join(dataDir, 'brigade.yaml');
  fs.writeFileSync(configPath, makeConfig({ port, dataDir, mockPort, upstreamTimeoutMs, extraYaml,
    storeYaml: storeYamlOf(stack.dataDir) }));
  const inst = { dataDir, configPath };
  inst.start = async () => {
    inst.child = new Child(`brigade serve (${name})`, ['serve', '--config', configPath], {
      env: { BRIGADE_ADMIN_TOKEN: stack.adminToken },
    });
    const m = await inst.child.waitFor(/listening on (http:\/\/[^\s]+)/);
    inst.base = m[1].replace(/\/$/, '');
  };
  inst.stop = async () => {
    if (inst.child) await inst.child.stop();
    inst.child = null;
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  await inst.start();
  return inst;
}

/** GET base/v1/runs/{id}/events as it comes: {response, events, done,
 *  next(name), destroy()}; done resolves at the stream's end with
 *  {status, events, text}. Bounded by timeoutMs. */
export function openEvents(base, runId, key, { lastEventId, timeoutMs = 60_000 } = {}) {
  const u = new URL(base);
  const headers = { authorization: `Bearer ${key}` };
  if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId);
  const events = [];
  let text = '', status = 0, ended = false;
  const sse = sseReader();
  const waiters = [];
  const wake = () => { for (const w of [...waiters]) w(); };
  let resolveDone, rejectDone;
  const done = new Promise((a, b) => { resolveDone = a; rejectDone = b; });
  done.catch(() => {});
  const req = http.request({ host: u.hostname, port: u.port, method: 'GET', path: `/v1/runs/${runId}/events`,
    headers, agent: false }, (res) => {
    status = res.statusCode;
    res.setEncoding('utf8');
    res.on('data', (d) => {
      text += d;
      for (const e of sse.feed(d)) events.push({ ...e, at: Date.now() });
      wake();
    });
    const finish = () => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      events.push(...sse.rest());
      resolveDone({ status, events, text });
      wake();
    };
    res.on('end', finish);
    res.on('close', finish);
  });
  const timer = setTimeout(() => {
    req.destroy();
    if (!ended) { ended = true; rejectDone(new Error(`no end of ${base}'s events within ${timeoutMs} ms: ${text.slice(-300)}`)); wake(); }
  }, timeoutMs);
  req.on('error', (e) => { clearTimeout(timer); if (!ended) { ended = true; rejectDone(e); wake(); } });
  req.end();
  return {
    events,
    done,
    get text() { return text; },
    next(name, ms = 20_000) {
      return new Promise((resolve, reject) => {
        let t;
        const check = () => {
          const ev = events.find((e) => e.event === name);
          if (ev) { cleanup(); resolve(ev); return; }
          if (ended) { cleanup(); reject(new Error(`events ended without ${name}: ${text.slice(0, 400)}`)); }
        };
        const cleanup = () => { clearTimeout(t); const i = waiters.indexOf(check); if (i >= 0) waiters.splice(i, 1); };
        t = setTimeout(() => { cleanup(); reject(new Error(`no ${name} within ${ms} ms: ${text.slice(0, 400)}`)); }, ms);
        waiters.push(check);
        check();
      });
    },
    destroy() { req.destroy(); },
  };
}
