// protocol.test.mjs — HTTP/1.1 as clients really use it: keep-alive,
// pipelining, chunked request bodies, Connection: close, HTTP/1.0, request
// ids, 404 and 405, health and readiness.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { errorOf, useStack } from './lib/harness.mjs';
import { connect, exchange, requestText } from './lib/rawhttp.mjs';

let userKey;
const stack = useStack({}, async (s) => {
  const t = await s.makeTenant();
  ({ key: userKey } = await s.makeUserWithKey(t.admin_key));
});

describe('operations endpoints', () => {
  test('GET /healthz -> 200 {"status":"ok"} without credentials', async () => {
    const r = await stack.api(null, 'GET', '/healthz');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'ok' });
    assert.match(r.headers.get('content-type') || '', /application\/json/);
    assert.ok(r.headers.get('x-request-id'));
  });

  test('GET /readyz -> 200 when store and providers are reachable', async () => {
    const r = await stack.admin('GET', '/readyz');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.status, 'ready');
    assert.equal(r.body.checks.store, 'ok');
  });
});

describe('connection reuse', () => {
  test('keep-alive: several requests on one socket', async () => {
    const c = await connect(stack.port);
    for (let i = 0; i < 4; i++) {
      c.send(requestText('GET', '/healthz', { 'x-request-id': `ka-${i}` }));
      const r = await c.waitResponses(i + 1, 3000);
      assert.equal(r.responses.length, i + 1, `response ${i} missing (closed=${r.closed})`);
      assert.equal(r.responses[i].status, 200);
      assert.equal(r.responses[i].headers['x-request-id'], `ka-${i}`);
      assert.ok(!c.closed, 'server closed a keep-alive connection');
    }
    c.close();
  });

  test('keep-alive holds across an authenticated POST with a body', async () => {
    const c = await connect(stack.port);
    const body = JSON.stringify({ model: 'local-model', messages: [{ role: 'user', content: 'hi [[tokens:2]]' }] });
    const req = requestText('POST', '/v1/chat/completions', { authorization: `Bearer ${userKey}`, 'content-type': 'application/json' }, body);
    c.send(req);
    let r = await c.waitResponses(1, 5000);
    assert.equal(r.responses[0]?.status, 200, r.responses[0]?.text);
    c.send(req);
    r = await c.waitResponses(2, 5000);
    assert.equal(r.responses[1]?.status, 200);
    assert.equal(r.responses[1].json.usage.completion_tokens, 2);
    c.close();
  });

  test('pipelining: 3 requests written at once get 3 responses in order', async () => {
    const reqs = [
      requestText('GET', '/healthz', { 'x-request-id': 'pipe-1' }),
      requestText('GET', '/v1/models', { 'x-request-id': 'pipe-2', authorization: `Bearer ${userKey}` }),
      requestText('GET', '/nope-not-a-route', { 'x-request-id': 'pipe-3' }),
    ].join('');
    const r = await exchange(stack.port, reqs, { n: 3 });
    assert.equal(r.responses.length, 3, `got ${r.responses.length} responses`);
    assert.deepEqual(r.responses.map((x) => x.headers['x-request-id']), ['pipe-1', 'pipe-2', 'pipe-3']);
    assert.deepEqual(r.responses.map((x) => x.status), [200, 200, 404]);
    assert.equal(r.responses[1].json.object, 'list');
  });

  test('pipelined requests where the first is slow still answer in order', async () => {
    const body = (n) => JSON.stringify({ model: 'local-model', messages: [{ role: 'user', content: `p${n} [[latency:${n === 1 ? 400 : 0}]] [[tokens:${n}]]` }] });
    const h = { authorization: `Bearer ${userKey}`, 'content-type': 'application/json' };
    const reqs = [1, 2, 3].map((n) => requestText('POST', '/v1/chat/completions', { ...h, 'x-request-id': `slow-${n}` }, body(n))).join('');
    const r = await exchange(stack.port, reqs, { n: 3, timeoutMs: 8000 });
    assert.equal(r.responses.length, 3);
    assert.deepEqual(r.responses.map((x) => x.headers['x-request-id']), ['slow-1', 'slow-2', 'slow-3']);
    assert.deepEqual(r.responses.map((x) => x.json?.usage?.completion_tokens), [1, 2, 3]);
  });

  test('Connection: close -> server closes after the response', async () => {
    const c = await connect(stack.port);
    c.send(requestText('GET', '/healthz', { connection: 'close' }));
    const r = await c.waitClosed(3000);
    c.close();
    assert.ok(r.closed, 'connection left open');
    assert.equal(r.responses[0]?.status, 200);
  });

  test('HTTP/1.0 request is answered and the connection closed', async () => {
    const c = await connect(stack.port);
    c.send('GET /healthz HTTP/1.0\r\n\r\n');
    const r = await c.waitClosed(3000);
    c.close();
    assert.equal(r.responses[0]?.status, 200);
    assert.ok(r.closed);
  });
});

describe('request bodies', () => {
  test('chunked request body is decoded', async () => {
    const body = JSON.stringify({ model: 'local-model', messages: [{ role: 'user', content: 'chunked [[tokens:4]]' }] });
    const parts = [body.slice(0, 10), body.slice(10, 11), body.slice(11, 40), body.slice(40)];
    let raw = requestText('POST', '/v1/chat/completions', {
      authorization: `Bearer ${userKey}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked',
    });
    for (const p of parts) raw += `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`;
    raw += '0\r\n\r\n';
    const r = await exchange(stack.port, raw);
    assert.equal(r.responses[0]?.status, 200, r.responses[0]?.text);
    assert.equal(r.responses[0].json.usage.completion_tokens, 4);
  });

  test('body arriving in small pieces over time is assembled', async () => {
    const body = JSON.stringify({ model: 'local-model', messages: [{ role: 'user', content: 'pieces [[tokens:3]]' }] });
    const c = await connect(stack.port);
    c.send(requestText('POST', '/v1/chat/completions', { authorization: `Bearer ${userKey}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }));
    for (let i = 0; i < body.length; i += 7) {
      c.send(body.slice(i, i + 7));
      await new Promise((res) => setTimeout(res, 5));
    }
    const r = await c.waitResponses(1, 5000);
    c.close();
    assert.equal(r.responses[0]?.status, 200, r.responses[0]?.text);
    assert.equal(r.responses[0].json.usage.completion_tokens, 3);
  });
});

describe('request ids', () => {
  test('every response carries an x-request-id; two requests get different ones', async () => {
    const a = await fetch(stack.brigadeUrl + '/healthz');
    const b = await fetch(stack.brigadeUrl + '/healthz');
    const ia = a.headers.get('x-request-id');
    const ib = b.headers.get('x-request-id');
    assert.ok(ia && ib);
    assert.notEqual(ia, ib);
  });

  test('a valid incoming x-request-id is echoed (also on errors)', async () => {
    const r1 = await fetch(stack.brigadeUrl + '/healthz', { headers: { 'x-request-id': 'req-abc-123' } });
    assert.equal(r1.headers.get('x-request-id'), 'req-abc-123');
    const r2 = await fetch(stack.brigadeUrl + '/v1/me', { headers: { 'x-request-id': 'req-err-456' } });
    assert.equal(r2.status, 401);
    assert.equal(r2.headers.get('x-request-id'), 'req-err-456');
  });

  test('an invalid incoming x-request-id is replaced, not echoed', async () => {
    const long = 'x'.repeat(1000);
    const r1 = await fetch(stack.brigadeUrl + '/healthz', { headers: { 'x-request-id': long } });
    const id1 = r1.headers.get('x-request-id');
    assert.ok(id1 && id1 !== long, 'a 1000-byte id must not be echoed');
    const r2 = await exchange(stack.port, requestText('GET', '/healthz', { 'x-request-id': 'a"b<script>' }));
    const id2 = r2.responses[0]?.headers['x-request-id'];
    assert.ok(id2 && id2 !== 'a"b<script>', `echoed unsafe id ${id2}`);
  });
});

describe('routing errors', () => {
  test('unknown route -> 404 not_found_error envelope', async () => {
    const r = await stack.api(userKey, 'GET', '/v1/no-such-thing');
    assert.equal(r.status, 404);
    const e = errorOf(r);
    assert.equal(e.type, 'not_found_error');
    assert.ok('param' in e && 'code' in e && 'message' in e, `envelope fields: ${JSON.stringify(e)}`);
  });

  test('unknown route outside /v1 -> 404', async () => {
    const r = await stack.api(null, 'GET', '/definitely/not/here');
    assert.equal(r.status, 404);
    assert.equal(errorOf(r).type, 'not_found_error');
  });

  test('wrong method -> 405 with Allow', async () => {
    for (const [method, path] of [['DELETE', '/healthz'], ['PUT', '/v1/chat/completions'], ['GET', '/v1/chat/completions']]) {
      const r = await stack.api(userKey, method, path);
      assert.equal(r.status, 405, `${method} ${path}: ${r.status}`);
      const allow = r.headers.get('allow');
      assert.ok(allow, `${method} ${path}: Allow header missing`);
      errorOf(r);
    }
  });

  test('path tricks do not reach other routes or crash', async () => {
    for (const p of ['/v1/users/..%2f..%2ftenants', '/v1/users/%00', '/v1/users/%ff%fe', '/v1/keys/' + 'k'.repeat(3000)]) {
      const r = await exchange(stack.port, requestText('GET', p, { authorization: `Bearer ${userKey}` }));
      const s = r.responses[0]?.status;
      assert.ok([400, 403, 404, 405].includes(s), `${p.slice(0, 40)} -> ${s}`);
    }
    assert.equal((await fetch(stack.brigadeUrl + '/healthz')).status, 200);
  });
});
