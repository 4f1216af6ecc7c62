// agents.mjs — helpers for the agent, session, run and memory tests:
// sessions and messages, the run event stream (Server-Sent Events) read as a
// list or one event at a time, a tiny HTTP tool server on loopback, and a
// hard restart of the brigade under test on the same data dir.
//
// Nothing here talks to anything but 127.0.0.1.

import http from 'node:http';

import { Child, freePort } from './harness.mjs';

/** The mock model's tool marker: [[tool:NAME {json}]]. */
export function toolMarker(name, args) {
  return `[[tool:${name} ${JSON.stringify(args)}]]`;
}

/** A new session of `agent` for the user with `key` (201 expected). */
export async function newSession(stack, key, agent, metadata) {
  const body = metadata === undefined ? { agent } : { agent, metadata };
  return stack.must(await stack.api(key, 'POST', '/v1/sessions', body), 201, `POST /v1/sessions (${agent})`);
}

/** POST a message without streaming: the parsed response {status, body, text}. */
export function postMessage(stack, key, sessionId, content, extra = {}) {
  return stack.api(key, 'POST', `/v1/sessions/${sessionId}/messages`, { content, ...extra });
}

/** The whole transcript (the list's data). */
export async function transcript(stack, key, sessionId) {
  const r = await stack.api(key, 'GET', `/v1/sessions/${sessionId}/messages`);
  if (r.status !== 200) throw new Error(`GET transcript: ${r.status} ${r.text.slice(0, 300)}`);
  return r.body.data;
}

/** Parse an SSE text into [{event, data (JSON or raw text)}]; comments skipped. */
/** An SSE stream read as it arrives: feed(chunk) returns the events its
 *  complete blocks hold; rest() the events of what is left at the end. */
export function sseReader() {
  let buffered = '';
  return {
    feed(chunk) {
      buffered += chunk;
      const out = [];
      let k;
      while ((k = buffered.search(/\r?\n\r?\n/)) >= 0) {
        const m = buffered.slice(k).match(/^\r?\n\r?\n/);
        out.push(...parseSse(buffered.slice(0, k) + '\n\n'));
        buffered = buffered.slice(k + m[0].length);
      }
      return out;
    },
    rest() {
      const out = buffered.trim() ? parseSse(buffered) : [];
      buffered = '';
      return out;
    },
  };
}

export function parseSse(text) {
  const out = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    if (!block.trim()) continue;
    let event = 'message';
    let id;
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? '' : line.slice(i + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'id') id = value;
      else if (field === 'data') data.push(value);
    }
    if (!data.length) continue;
    const raw = data.join('\n');
    let parsed = raw;
    try { parsed = JSON.parse(raw); } catch { /* left as text */ }
    out.push(id === undefined ? { event, data: parsed } : { event, id, data: parsed });
  }
  return out;
}

/**
 * A streamed message, read event by event over node's http client (so the
 * test can act between events, or go away mid-stream).
 *   const s = openStream(stack, key, sid, content, extra)
 *   await s.response          → {status, headers}
 *   await s.next('run.started') → the first event of that name (or throws at end)
 *   await s.done              → {status, headers, events, text}
 *   s.destroy()               → close the connection
 */
export function openStream(stack, key, sessionId, content, extra = {}) {
  const body = JSON.stringify({ content, stream: true, ...extra });
  const events = [];
  let text = '';
  const sse = sseReader();
  let ended = false;
  const waiters = [];
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  let resolveResponse, rejectResponse, resolveDone, rejectDone;
  const response = new Promise((a, b) => { resolveResponse = a; rejectResponse = b; });
  const done = new Promise((a, b) => { resolveDone = a; rejectDone = b; });
  response.catch(() => {});
  done.catch(() => {});
  const u = new URL(stack.brigadeUrl);
  const req = http.request({
    host: u.hostname, port: u.port, method: 'POST', path: `/v1/sessions/${sessionId}/messages`,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    agent: false,
  }, (res) => {
    const head = { status: res.statusCode, headers: res.headers };
    resolveResponse(head);
    res.setEncoding('utf8');
    res.on('data', (d) => {
      text += d;
      events.push(...sse.feed(d));
      wake();
    });
    const finish = () => {
      if (ended) return;
      ended = true;
      events.push(...sse.rest());
      resolveDone({ ...head, events, text });
      wake();
    };
    res.on('end', finish);
    res.on('close', finish);
    res.on('error', finish);
  });
  req.on('error', (e) => {
    rejectResponse(e);
    if (!ended) { ended = true; rejectDone(e); wake(); }
  });
  req.end(body);
  return {
    response,
    done,
    events,
    get text() { return text; },
    /** The first event named `name` (already seen or still to come). */
    next(name, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        let timer;
        const check = () => {
          const ev = events.find((e) => e.event === name);
          if (ev) { cleanup(); resolve(ev); return; }
          if (ended) { cleanup(); reject(new Error(`stream ended without ${name}; got ${events.map((e) => e.event).join(', ')}: ${text.slice(0, 500)}`)); }
        };
        const cleanup = () => {
          clearTimeout(timer);
          const i = waiters.indexOf(check);
          if (i >= 0) waiters.splice(i, 1);
        };
        timer = setTimeout(() => { cleanup(); reject(new Error(`no ${name} event within ${timeoutMs} ms; got ${events.map((e) => e.event).join(', ')}`)); }, timeoutMs);
        waiters.push(check);
        check();
      });
    },
    destroy() { req.destroy(); },
  };
}

/** A streamed message read to its end: {status, headers, events, text}. */
export function streamMessage(stack, key, sessionId, content, extra = {}) {
  return openStream(stack, key, sessionId, content, extra).done;
}

/** What a tool server's `respond` may return instead of a plain JSON body:
 *  another status, a string body, an answer delayed by delayMs. */
export class ToolReply {
  constructor(status, body, delayMs = 0) {
    this.status = status;
    this.body = body;
    this.delayMs = delayMs;
  }
}

/**
 * A tiny HTTP tool server on 127.0.0.1: answers every request with
 * `respond(rec)` (rec = {method, url, headers, body}; default: echo) — a
 * JSON value or a ToolReply — and records what arrived.
 * Returns {port, url, requests, close()}.
 */
export async function startToolServer(respond) {
  const requests = [];
  const port = await freePort();
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      let json = null;
      try { json = body ? JSON.parse(body) : null; } catch { /* kept as text */ }
      const rec = { method: req.method, url: req.url, headers: req.headers, body: json ?? body };
      requests.push(rec);
      const out = respond ? respond(rec) : { echo: rec.body };
      // A ToolReply sets the status and a delay; anything else is the JSON body.
      const reply = out instanceof ToolReply ? out : new ToolReply(200, out);
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(reply.status, { 'content-type': 'application/json' });
        res.end(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs); else send();
    });
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  };
}

/**
 * Kill the stack's brigade with `signal` (default SIGKILL: no chance to
 * tidy up) and start a new one on the same config and data dir; the stack's
 * brigade, children and URL are updated. Returns the old exit info.
 */
export async function restartBrigade(stack, signal = 'SIGKILL') {
  const old = stack.brigade;
  old.proc.kill(signal);
  const info = await old.exited;
  const fresh = new Child('brigade serve (restarted)', ['serve', '--config', stack.configPath], {
    env: { BRIGADE_ADMIN_TOKEN: stack.adminToken },
  });
  stack.children.push(fresh);
  stack.brigade = fresh;
  const m = await fresh.waitFor(/listening on (http:\/\/[^\s]+)/);
  stack.brigadeUrl = m[1].replace(/\/$/, '');
  return info;
}

/** Every assistant message with tool_calls is followed by a tool result for
 *  each of its calls, and every tool message answers such a call: no half
 *  turn in the transcript. Returns a list of problems (empty = fine). */
export function halfTurns(messages) {
  const problems = [];
  const answered = new Set(messages.filter((m) => m.role === 'tool').map((m) => m.tool_call_id));
  const asked = new Set();
  for (const m of messages) {
    for (const tc of m.tool_calls || []) {
      asked.add(tc.id);
      if (!answered.has(tc.id)) problems.push(`call ${tc.id} (seq ${m.seq}) has no tool result`);
    }
  }
  for (const m of messages) {
    if (m.role === 'tool' && !asked.has(m.tool_call_id)) problems.push(`tool result seq ${m.seq} answers no call`);
  }
  return problems;
}

/** Run `fn` over `items` with at most `limit` in flight; results in order. */
export async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
