// badinput.test.mjs — what the network may throw at brigade: malformed or
// invalid JSON, invalid UTF-8, oversized bodies and headers, slow clients,
// missing and wrongly typed fields, request-smuggling shapes. Each gets a
// clear error of the documented status and type, and the server keeps
// serving (the last test checks it is alive and well).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { errorOf, sleep, useStack } from './lib/harness.mjs';
import { connect, exchange, requestText } from './lib/rawhttp.mjs';

// Limits from the test config: max_body_bytes 65536, header_timeout_ms 2000.
const MAX_BODY = 65536;
const HEADER_TIMEOUT_MS = 2000;

let tenant;
let userKey;
const stack = useStack({}, async (s) => {
  tenant = await s.makeTenant();
  ({ key: userKey } = await s.makeUserWithKey(tenant.admin_key));
});

const chat = (body, headers = {}) => stack.api(userKey, 'POST', '/v1/chat/completions', body, headers);

function assertInvalid(r, param, what) {
  assert.equal(r.status, 400, `${what}: expected 400, got ${r.status}: ${r.text}`);
  const e = errorOf(r);
  assert.equal(e.type, 'invalid_request_error', what);
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0, 'error message is empty');
  if (param !== undefined) assert.equal(e.param, param, `${what}: param`);
  assert.ok(r.headers.get('x-request-id'), 'x-request-id on an error');
}

describe('bodies that are not valid JSON', () => {
  const cases = [
    ['truncated object', '{"model": "local-model", "messages": ['],
    ['trailing garbage', '{"model":"local-model","messages":[]} xyz'],
    ['single quotes', "{'model': 'local-model'}"],
    ['empty body', ''],
    ['a bare string', '"hello"'],
    ['deeply nested arrays', '['.repeat(5000) + ']'.repeat(5000)],
    ['NaN literal', '{"model":"local-model","temperature":NaN,"messages":[]}'],
  ];
  for (const [name, body] of cases) {
    test(`${name} -> 400 invalid_request_error`, async () => {
      assertInvalid(await chat(body), undefined, name);
    });
  }

  test('invalid UTF-8 inside a JSON string -> 400', async () => {
    const head = Buffer.from('{"model":"local-model","messages":[{"role":"user","content":"bad ');
    const tail = Buffer.from('"}]}');
    const body = Buffer.concat([head, Buffer.from([0xff, 0xfe, 0xc3, 0x28]), tail]);
    assertInvalid(await chat(body), undefined, 'invalid UTF-8');
  });

  test('overlong UTF-8 encoding of "/" -> 400', async () => {
    const body = Buffer.concat([
      Buffer.from('{"model":"local-model","messages":[{"role":"user","content":"x'),
      Buffer.from([0xc0, 0xaf]),
      Buffer.from('"}]}'),
    ]);
    assertInvalid(await chat(body), undefined, 'overlong UTF-8');
  });

  test('unpaired surrogate escape in JSON -> 400 or accepted, never a crash', async () => {
    const r = await chat('{"model":"local-model","messages":[{"role":"user","content":"\\ud800 x"}]}');
    assert.ok(r.status === 400 || r.status === 200, `status ${r.status}`);
  });
});

describe('fields missing or of the wrong type', () => {
  test('missing messages -> 400 param messages', async () => {
    assertInvalid(await chat({ model: 'local-model' }), 'messages', 'missing messages');
  });
  test('missing model -> 400 param model', async () => {
    assertInvalid(await chat({ messages: [{ role: 'user', content: 'hi' }] }), 'model', 'missing model');
  });
  test('messages as a string -> 400 param messages', async () => {
    assertInvalid(await chat({ model: 'local-model', messages: 'hi' }), 'messages', 'messages string');
  });
  test('model as a number -> 400 param model', async () => {
    assertInvalid(await chat({ model: 5, messages: [{ role: 'user', content: 'hi' }] }), 'model', 'model number');
  });
  test('stream as a string -> 400 param stream', async () => {
    assertInvalid(await chat({ model: 'local-model', stream: 'yes', messages: [{ role: 'user', content: 'hi' }] }), 'stream', 'stream string');
  });
  test('max_tokens negative -> 400 param max_tokens', async () => {
    assertInvalid(await chat({ model: 'local-model', max_tokens: -1, messages: [{ role: 'user', content: 'hi' }] }), 'max_tokens', 'negative max_tokens');
  });
  test('a message without a role -> 400', async () => {
    const r = await chat({ model: 'local-model', messages: [{ content: 'hi' }] });
    assertInvalid(r, undefined, 'message without role');
    assert.match(String(errorOf(r).param), /messages/);
  });
  test('a JSON array as the body -> 400', async () => {
    assertInvalid(await chat([1, 2, 3]), undefined, 'array body');
  });

  test('admin body: missing external_id -> 400 param external_id', async () => {
    const r = await stack.api(tenant.admin_key, 'POST', '/v1/users', { display_name: 'x' });
    assertInvalid(r, 'external_id', 'missing external_id');
  });
  test('admin body: unknown field -> 400 naming it', async () => {
    const r = await stack.api(tenant.admin_key, 'POST', '/v1/users', { external_id: stack.unique('u'), colour: 'red' });
    assertInvalid(r, undefined, 'unknown field');
    const e = errorOf(r);
    assert.ok(e.param === 'colour' || /colour/.test(e.message), `error should name "colour": ${JSON.stringify(e)}`);
  });
  test('admin body: wrong type -> 400 param', async () => {
    const u = await stack.makeUser(tenant.admin_key);
    assertInvalid(await stack.api(tenant.admin_key, 'PATCH', `/v1/users/${u.id}`, { disabled: 'yes' }), 'disabled', 'disabled string');
    assertInvalid(await stack.api(tenant.admin_key, 'POST', '/v1/users', { external_id: 42 }), 'external_id', 'external_id number');
  });
  test('admin body: external_id empty or huge -> 400', async () => {
    assertInvalid(await stack.api(tenant.admin_key, 'POST', '/v1/users', { external_id: '' }), 'external_id', 'empty external_id');
    assertInvalid(await stack.api(tenant.admin_key, 'POST', '/v1/users', { external_id: 'x'.repeat(5000) }), 'external_id', 'huge external_id');
  });
});

describe('size limits', () => {
  test('body over max_body_bytes (Content-Length) -> 413 request_too_large', async () => {
    const body = JSON.stringify({ model: 'local-model', messages: [{ role: 'user', content: 'x'.repeat(MAX_BODY + 1000) }] });
    const c = await connect(stack.port);
    c.send(requestText('POST', '/v1/chat/completions', {
      authorization: `Bearer ${userKey}`, 'content-type': 'application/json',
    }, body));
    const r = await c.waitResponses(1, 5000);
    c.close();
    assert.equal(r.responses.length, 1, `no response (closed=${r.closed}, error=${r.error})`);
    const res = r.responses[0];
    assert.equal(res.status, 413, res.text);
    assert.equal(res.json?.error?.type, 'request_too_large');
  });

  test('declared Content-Length over the limit is refused before the body is sent', async () => {
    const c = await connect(stack.port);
    c.send(requestText('POST', '/v1/chat/completions', {
      authorization: `Bearer ${userKey}`, 'content-type': 'application/json', 'content-length': String(50 * 1024 * 1024),
    }));
    const r = await c.waitResponses(1, 3000);
    c.close();
    assert.equal(r.responses[0]?.status, 413, `got ${r.responses[0]?.status} (timedOut=${r.timedOut})`);
  });

  test('chunked body over the limit -> 413', async () => {
    const c = await connect(stack.port);
    c.send(requestText('POST', '/v1/chat/completions', {
      authorization: `Bearer ${userKey}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked',
    }));
    const chunk = 'x'.repeat(16384);
    for (let i = 0; i < 6 && !c.closed; i++) c.send(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    c.send('0\r\n\r\n');
    const r = await c.waitResponses(1, 5000);
    c.close();
    assert.equal(r.responses[0]?.status, 413, `got ${r.responses[0]?.status} (closed=${r.closed})`);
  });

  test('too many headers -> 431', async () => {
    const h = {};
    for (let i = 0; i < 200; i++) h[`x-filler-${i}`] = 'v';
    const r = await exchange(stack.port, requestText('GET', '/healthz', h));
    assert.equal(r.responses[0]?.status, 431, `got ${r.responses[0]?.status}`);
  });

  test('headers over 16 KiB -> 431', async () => {
    const r = await exchange(stack.port, requestText('GET', '/healthz', { 'x-big': 'a'.repeat(20000) }));
    assert.equal(r.responses[0]?.status, 431, `got ${r.responses[0]?.status}`);
  });

  test('URL over 8 KiB -> 414', async () => {
    const r = await exchange(stack.port, requestText('GET', '/healthz?' + 'q'.repeat(9000)));
    assert.equal(r.responses[0]?.status, 414, `got ${r.responses[0]?.status}`);
  });
});

describe('malformed HTTP', () => {
  const cases = [
    ['garbage request line', 'HELLO THERE\r\n\r\n'],
    ['bad Content-Length', 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'],
    ['two different Content-Lengths', 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
    ['Content-Length and Transfer-Encoding together', 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['bad chunk size', 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
    ['header without colon', 'GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n'],
    ['NUL in header value', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n'],
    ['HTTP/2 preface on the HTTP/1 port', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', [400, 505]],
    ['unsupported HTTP version', 'GET /healthz HTTP/3.7\r\nHost: x\r\n\r\n', [400, 505]],
  ];
  for (const [name, raw, statuses = [400]] of cases) {
    test(`${name} -> ${statuses.join(' or ')} and the connection closes`, async () => {
      const c = await connect(stack.port);
      c.send(raw);
      const r = await c.waitClosed(4000);
      c.close();
      assert.ok(r.closed, 'the server should close the connection');
      assert.ok(r.responses.length >= 1, 'expected an error response before the close');
      assert.ok(statuses.includes(r.responses[0].status), `got ${r.responses[0].status}`);
    });
  }
});

describe('slow clients', () => {
  test('half a request: answered 408 or closed after header_timeout_ms; others are served meanwhile', { timeout: 15_000 }, async () => {
    const slow = await connect(stack.port);
    const t0 = Date.now();
    slow.send('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    // While it dawdles, a normal request is served promptly.
    await sleep(200);
    const t1 = Date.now();
    const ok = await fetch(stack.brigadeUrl + '/healthz');
    assert.equal(ok.status, 200);
    assert.ok(Date.now() - t1 < 1000, 'a concurrent request must not wait for the slow one');
    const r = await slow.waitClosed(HEADER_TIMEOUT_MS + 4000);
    const took = Date.now() - t0;
    slow.close();
    assert.ok(r.closed, `the slow connection was still open after ${took} ms`);
    assert.ok(took >= HEADER_TIMEOUT_MS - 300, `closed after only ${took} ms`);
    if (r.responses.length) assert.equal(r.responses[0].status, 408);
  });

  test('a slowloris trickling header bytes is cut off at header_timeout_ms total', { timeout: 15_000 }, async () => {
    const c = await connect(stack.port);
    const t0 = Date.now();
    c.send('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    let i = 0;
    while (!c.closed && Date.now() - t0 < HEADER_TIMEOUT_MS + 4000) {
      c.send(`X-Drip-${i++}: a\r\n`);
      await sleep(300);
    }
    const took = Date.now() - t0;
    c.close();
    assert.ok(took < HEADER_TIMEOUT_MS + 3000, `trickling connection kept open for ${took} ms`);
  });

  test('idle connection without any bytes does not block the server', { timeout: 10_000 }, async () => {
    const idle = [];
    for (let i = 0; i < 20; i++) idle.push(await connect(stack.port));
    const ok = await fetch(stack.brigadeUrl + '/healthz');
    assert.equal(ok.status, 200);
    for (const c of idle) c.close();
  });
});

describe('after all of that', () => {
  test('the server still serves: /healthz, a chat completion, and the process is alive', async () => {
    const h = await fetch(stack.brigadeUrl + '/healthz');
    assert.equal(h.status, 200);
    assert.deepEqual(await h.json(), { status: 'ok' });
    const c = await stack.openaiClient(userKey).chat.completions.create({ model: 'local-model', messages: [{ role: 'user', content: 'still there? [[tokens:2]]' }] });
    assert.equal(c.usage.completion_tokens, 2);
    assert.equal(stack.brigade.exitInfo, null, `brigade exited: ${stack.brigade.output()}`);
  });
});
