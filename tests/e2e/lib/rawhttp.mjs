// rawhttp.mjs — HTTP/1.1 over a raw net socket, for the tests that must send
// what fetch will not (malformed, pipelined, slow or oversized requests) and
// see exactly what the server answers and whether it closes the connection.

import net from 'node:net';

/**
 * Parse as many complete HTTP/1.x responses as `buf` holds.
 * Returns {responses, rest} where each response is
 * {status, reason, headers (lower-case names; arrays joined with ", "),
 *  rawHeaders, body (Buffer), text, json}. `closed` says the peer closed, so a
 * response without a length runs to the end of the data.
 */
export function parseResponses(buf, closed = false) {
  const responses = [];
  let off = 0;
  for (;;) {
    const headEnd = buf.indexOf('\r\n\r\n', off);
    if (headEnd < 0) break;
    const head = buf.subarray(off, headEnd).toString('latin1');
    const lines = head.split('\r\n');
    const m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(lines[0]);
    if (!m) throw new Error(`bad status line: ${JSON.stringify(lines[0])}`);
    const headers = {};
    const rawHeaders = [];
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      if (i <= 0) throw new Error(`bad header line: ${JSON.stringify(line)}`);
      const name = line.slice(0, i).trim().toLowerCase();
      const value = line.slice(i + 1).trim();
      rawHeaders.push([name, value]);
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    const status = Number(m[2]);
    let p = headEnd + 4;
    let body;
    const noBody = (status >= 100 && status < 200) || status === 204 || status === 304;
    if (noBody) {
      body = Buffer.alloc(0);
    } else if (/chunked/i.test(headers['transfer-encoding'] || '')) {
      const parts = [];
      let complete = false;
      for (;;) {
        const le = buf.indexOf('\r\n', p);
        if (le < 0) break;
        const size = parseInt(buf.subarray(p, le).toString('latin1').split(';')[0], 16);
        if (Number.isNaN(size)) throw new Error('bad chunk size');
        if (size === 0) {
          // Skip trailers up to the blank line.
          const te = buf.indexOf('\r\n\r\n', le);
          if (te < 0) break;
          p = te + 4;
          complete = true;
          break;
        }
        if (buf.length < le + 2 + size + 2) break;
        parts.push(buf.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
      }
      if (!complete) break;
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (buf.length < p + n) break;
      body = buf.subarray(p, p + n);
      p += n;
    } else {
      if (!closed) break;
      body = buf.subarray(p);
      p = buf.length;
    }
    const text = body.toString('utf8');
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    responses.push({ version: m[1], status, reason: m[3] || '', headers, rawHeaders, body, text, json });
    off = p;
  }
  return { responses, rest: buf.subarray(off) };
}

/**
 * Open a connection to host:port. Returns a small client:
 *   send(data)             write a string or Buffer (errors are remembered, not thrown)
 *   waitResponses(n, ms)   resolve once n complete responses arrived (or the peer
 *                          closed, or ms passed): {responses, closed, timedOut, error}
 *   waitClosed(ms)         resolve {closed, responses} when the peer closes or ms passes
 *   close()
 */
export function connect(port, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host });
    sock.setNoDelay(true);
    const st = { data: Buffer.alloc(0), closed: false, error: null, waiters: [] };
    const notify = () => { for (const w of [...st.waiters]) w(); };
    sock.on('data', (d) => { st.data = Buffer.concat([st.data, d]); notify(); });
    sock.on('end', () => { st.closed = true; notify(); });
    sock.on('close', () => { st.closed = true; notify(); });
    sock.on('error', (e) => { st.error = e; st.closed = true; notify(); });
    sock.once('connect', () => {
      const parsed = () => parseResponses(st.data, st.closed).responses;
      const wait = (done, ms) => new Promise((res) => {
        let timer;
        const check = () => {
          const r = done();
          if (r) { finish(r); return true; }
          return false;
        };
        const finish = (r) => {
          clearTimeout(timer);
          st.waiters = st.waiters.filter((w) => w !== check);
          res(r);
        };
        timer = setTimeout(() => finish({ responses: parsed(), closed: st.closed, timedOut: true, error: st.error }), ms);
        st.waiters.push(check);
        check();
      });
      resolve({
        socket: sock,
        get closed() { return st.closed; },
        get raw() { return st.data; },
        send(data) {
          if (st.closed) return false;
          try { sock.write(data); } catch (e) { st.error = e; return false; }
          return true;
        },
        waitResponses(n = 1, ms = 5000) {
          return wait(() => {
            const rs = parsed();
            if (rs.length >= n || st.closed) return { responses: rs, closed: st.closed, timedOut: false, error: st.error };
            return null;
          }, ms);
        },
        waitClosed(ms = 5000) {
          return wait(() => (st.closed ? { responses: parsed(), closed: true, timedOut: false, error: st.error } : null), ms);
        },
        close() { sock.destroy(); },
      });
    });
    sock.once('error', reject); // no effect once connected
  });
}

/** One-shot: connect, send, wait for n responses (or close), close. */
export async function exchange(port, data, { n = 1, timeoutMs = 5000, host = '127.0.0.1' } = {}) {
  const c = await connect(port, host);
  c.send(data);
  const r = await c.waitResponses(n, timeoutMs);
  c.close();
  return r;
}

/** A request as text: method, path, headers object, body string. */
export function requestText(method, path, headers = {}, body = null) {
  const h = { host: '127.0.0.1', ...headers };
  if (body !== null && h['content-length'] === undefined && h['transfer-encoding'] === undefined) {
    h['content-length'] = Buffer.byteLength(body);
  }
  let s = `${method} ${path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(h)) s += `${k}: ${v}\r\n`;
  s += '\r\n';
  return body === null ? s : s + body;
}
