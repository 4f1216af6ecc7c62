// api.js — the console's only way to the server. It signs in by sending the
// credential once (Authorization header) to /ui/api/session, which answers
// with an HttpOnly cookie the page cannot read and a CSRF token it keeps in
// memory (never in localStorage or the page). Every /v1 call then sends the
// cookie (by the browser) and the token (by this file) together.

let csrf = null;
let csrfHeader = 'x-brigade-csrf';

export class ApiError extends Error {
  constructor(status, body) {
    const e = body && body.error ? body.error : null;
    super(e && e.message ? e.message : `HTTP ${status}`);
    this.status = status;
    this.code = e ? e.code : null;
  }
}

async function readError(res) {
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  return new ApiError(res.status, body);
}

function remember(session) {
  csrf = session.csrf_token;
  csrfHeader = session.csrf_header || csrfHeader;
  // the page keeps who is signed in, never how
  const { csrf_token: _t, ...who } = session;
  return who;
}

export async function signIn(credential) {
  const res = await fetch('/ui/api/session', {
    method: 'POST', credentials: 'same-origin',
    headers: { authorization: 'Bearer ' + credential.trim() },
  });
  if (!res.ok) throw await readError(res);
  return remember(await res.json());
}

// A reloaded page: the cookie may still name a session.
export async function resume() {
  const res = await fetch('/ui/api/session', { credentials: 'same-origin' });
  if (!res.ok) return null;
  return remember(await res.json());
}

export async function signOut() {
  await fetch('/ui/api/session', { method: 'DELETE', credentials: 'same-origin', headers: { [csrfHeader]: csrf || '' } });
  csrf = null;
}

function headers(extra) {
  const h = { [csrfHeader]: csrf || '', ...extra };
  return h;
}

// JSON API call; the answer's traceparent header is kept on the result.
export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: headers(body ? { 'content-type': 'application/json' } : {}) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  if (!res.ok) throw await readError(res);
  if (res.status === 204) return null;
  const type = res.headers.get('content-type') || '';
  return type.includes('json') ? res.json() : res.text();
}

export async function apiText(path) {
  const res = await fetch(path, { credentials: 'same-origin', headers: headers({}) });
  if (!res.ok) throw await readError(res);
  return res.text();
}

// POST that answers text/event-stream: onEvent(name, data) per event.
// Returns the traceparent of the request (the run's trace).
export async function stream(path, body, onEvent, signal) {
  const res = await fetch(path, {
    method: 'POST', credentials: 'same-origin', signal,
    headers: headers({ 'content-type': 'application/json', accept: 'text/event-stream' }),
    body: JSON.stringify(body),
  });
  if (!res.ok) throw await readError(res);
  const traceparent = res.headers.get('traceparent');
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let name = 'message', data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data += line.slice(5).trim();
      }
      if (!data) continue;
      let parsed = null;
      try { parsed = JSON.parse(data); } catch { continue; }
      onEvent(name, parsed);
    }
  }
  return traceparent;
}

export function traceIdOf(traceparent) {
  const m = /^00-([0-9a-f]{32})-/.exec(traceparent || '');
  return m ? m[1] : null;
}
