// memory.test.mjs — a user's long-term memory end to end: /v1/memory
// (PUT, GET, search with ?q=, DELETE, key encoding, validation) and the
// agent's built-in memory tool, which must see the very same store — what
// one writes the other reads — and only its own user's entries.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { errorOf, useStack } from './lib/harness.mjs';
import { newSession, postMessage, toolMarker } from './lib/agents.mjs';

let tenant;
let userKey;
let otherKey;
const stack = useStack({
  extraYaml: 'agents:\n  - {name: keeper, model: local-model, tools: [memory]}\n',
}, async (s) => {
  tenant = await s.makeTenant();
  ({ key: userKey } = await s.makeUserWithKey(tenant.admin_key));
  ({ key: otherKey } = await s.makeUserWithKey(tenant.admin_key));
});

const enc = encodeURIComponent;

/** One run of the keeper agent whose model calls the memory tool with
 *  `args`; returns the tool's output (the tool message in the transcript)
 *  and the tool.result ok flag as the run saw it. */
async function memoryTool(key, args) {
  const s = await newSession(stack, key, 'keeper');
  const r = await postMessage(stack, key, s.id, `Use memory. ${toolMarker('memory', args)}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.run.status, 'completed', r.text);
  assert.equal(r.body.run.tool_calls, 1);
  const t = await stack.api(key, 'GET', `/v1/sessions/${s.id}/messages`);
  const tool = t.body.data.find((m) => m.role === 'tool');
  assert.ok(tool, `no tool message in ${t.text}`);
  let out = tool.content;
  try { out = JSON.parse(tool.content); } catch { /* text */ }
  return { out, text: tool.content, answer: r.body.message.content };
}

describe('the /v1/memory API', () => {
  test('PUT then GET a record; PUT again replaces it', async () => {
    const p = await stack.api(userKey, 'PUT', '/v1/memory/favourite-food', { value: 'grilled sardines' });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.body.object, 'memory');
    assert.equal(p.body.key, 'favourite-food');
    assert.equal(p.body.value, 'grilled sardines');
    assert.equal(typeof p.body.updated_at, 'number');
    const g = await stack.api(userKey, 'GET', '/v1/memory/favourite-food');
    assert.equal(g.status, 200, g.text);
    assert.deepEqual({ ...g.body, updated_at: 0 }, { ...p.body, updated_at: 0 });
    const p2 = await stack.api(userKey, 'PUT', '/v1/memory/favourite-food', { value: 'pastel de nata' });
    assert.equal(p2.status, 200);
    assert.equal((await stack.api(userKey, 'GET', '/v1/memory/favourite-food')).body.value, 'pastel de nata');
  });

  test('GET /v1/memory?q= finds by words in value and key, only the caller\'s', async () => {
    await stack.api(userKey, 'PUT', '/v1/memory/pet', { value: 'a cat called Marmalade' });
    await stack.api(userKey, 'PUT', '/v1/memory/car', { value: 'a blue bicycle, no car' });
    await stack.api(otherKey, 'PUT', '/v1/memory/pet', { value: 'a dog called Marmalade too' });
    const r = await stack.api(userKey, 'GET', `/v1/memory?q=${enc('marmalade')}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.object, 'list');
    assert.deepEqual(r.body.data.map((m) => [m.key, m.value]), [['pet', 'a cat called Marmalade']]);
    const byKey = await stack.api(userKey, 'GET', '/v1/memory?q=car');
    assert.ok(byKey.body.data.some((m) => m.key === 'car'), byKey.text);
    const none = await stack.api(userKey, 'GET', '/v1/memory?q=zeppelin');
    assert.equal(none.status, 200);
    assert.deepEqual(none.body.data, []);
    // FTS syntax in the query is just words, not an error.
    const odd = await stack.api(userKey, 'GET', `/v1/memory?q=${enc('cat" OR user_id:* NEAR(')}`);
    assert.equal(odd.status, 200, odd.text);
    assert.ok(odd.body.data.every((m) => !/dog/.test(m.value)), odd.text);
    // No query: the caller's entries, newest first.
    const all = await stack.api(userKey, 'GET', '/v1/memory?limit=100');
    assert.equal(all.status, 200);
    assert.ok(all.body.data.length >= 2);
    assert.ok(all.body.data.every((m) => !/dog/.test(m.value)), 'another user\'s entry listed');
  });

  test('DELETE removes a record; then GET and DELETE are 404', async () => {
    await stack.api(userKey, 'PUT', '/v1/memory/temp', { value: 'short-lived' });
    const d = await stack.api(userKey, 'DELETE', '/v1/memory/temp');
    assert.equal(d.status, 200, d.text);
    assert.equal(d.body.deleted, true);
    assert.equal(d.body.key, 'temp');
    const g = await stack.api(userKey, 'GET', '/v1/memory/temp');
    assert.equal(g.status, 404, g.text);
    assert.equal(errorOf(g).type, 'not_found_error');
    assert.equal((await stack.api(userKey, 'DELETE', '/v1/memory/temp')).status, 404);
    const s = await stack.api(userKey, 'GET', '/v1/memory?q=short');
    assert.deepEqual(s.body.data, [], 'a deleted record is not found by search either');
  });

  test('keys are percent-decoded path segments: spaces, slashes, UTF-8', async () => {
    for (const key of ['two words', 'a/b', 'café ☕', '100%']) {
      const p = await stack.api(userKey, 'PUT', `/v1/memory/${enc(key)}`, { value: `v of ${key}` });
      assert.equal(p.status, 200, `${key}: ${p.text}`);
      assert.equal(p.body.key, key);
      const g = await stack.api(userKey, 'GET', `/v1/memory/${enc(key)}`);
      assert.equal(g.status, 200, `${key}: ${g.text}`);
      assert.equal(g.body.value, `v of ${key}`);
    }
  });

  test('bad input: missing, empty or non-string value; bad key; bad limit → 400', async () => {
    for (const [path, body, param] of [
      ['/v1/memory/k', {}, 'value'],
      ['/v1/memory/k', { value: '' }, 'value'],
      ['/v1/memory/k', { value: 5 }, 'value'],
      ['/v1/memory/k', { value: 'x', extra: 1 }, 'extra'],
      ['/v1/memory/%zz', { value: 'x' }, 'key'],
      ['/v1/memory/%01', { value: 'x' }, 'key'],
      [`/v1/memory/${'k'.repeat(300)}`, { value: 'x' }, 'key'],
    ]) {
      const r = await stack.api(userKey, 'PUT', path, body);
      assert.equal(r.status, 400, `${path.slice(0, 40)} ${JSON.stringify(body)} → ${r.status} ${r.text}`);
      assert.equal(errorOf(r).param, param, r.text);
    }
    assert.equal((await stack.api(userKey, 'GET', '/v1/memory?limit=0')).status, 400);
    assert.equal((await stack.api(userKey, 'GET', '/v1/memory/k')).status, 404, 'nothing was stored');
  });

  test('memory is per user: another user\'s key is not found; admins may not use it', async () => {
    await stack.api(userKey, 'PUT', '/v1/memory/private', { value: 'only mine' });
    for (const [m, body] of [['GET'], ['DELETE'], ['PUT', { value: 'overwrite' }]]) {
      const r = await stack.api(otherKey, m, '/v1/memory/private', body);
      if (m === 'PUT') {
        // PUT creates the other user's own record: it must not touch ours.
        assert.equal(r.status, 200, r.text);
      } else {
        assert.equal(r.status, 404, `${m} as another user: ${r.text}`);
      }
    }
    assert.equal((await stack.api(userKey, 'GET', '/v1/memory/private')).body.value, 'only mine');
    assert.equal((await stack.api(otherKey, 'GET', '/v1/memory/private')).body.value, 'overwrite');
    const a = await stack.api(tenant.admin_key, 'GET', '/v1/memory/private');
    assert.equal(a.status, 403, a.text);
    assert.equal((await stack.api(null, 'GET', '/v1/memory/private')).status, 401);
  });
});

describe('the memory tool and the API share one store', () => {
  test('saved by the tool, read by the API', async () => {
    const { out } = await memoryTool(userKey, { action: 'save', key: 'tool-saved', value: 'from the agent' });
    assert.deepEqual(out, { saved: 'tool-saved' });
    const g = await stack.api(userKey, 'GET', '/v1/memory/tool-saved');
    assert.equal(g.status, 200, g.text);
    assert.equal(g.body.value, 'from the agent');
  });

  test('put by the API, recalled and found by the tool', async () => {
    await stack.api(userKey, 'PUT', '/v1/memory/api-saved', { value: 'written over http quokka' });
    const rec = await memoryTool(userKey, { action: 'recall', key: 'api-saved' });
    assert.deepEqual(rec.out, { key: 'api-saved', value: 'written over http quokka' });
    assert.match(rec.answer, /written over http quokka/);
    const s = await memoryTool(userKey, { action: 'search', query: 'quokka' });
    assert.deepEqual(s.out.results, [{ key: 'api-saved', value: 'written over http quokka' }]);
  });

  test('deleted by the tool, gone for the API; a missing key is an error for the model', async () => {
    await stack.api(userKey, 'PUT', '/v1/memory/doomed', { value: 'soon gone' });
    const d = await memoryTool(userKey, { action: 'delete', key: 'doomed' });
    assert.deepEqual(d.out, { deleted: 'doomed' });
    assert.equal((await stack.api(userKey, 'GET', '/v1/memory/doomed')).status, 404);
    const miss = await memoryTool(userKey, { action: 'recall', key: 'doomed' });
    assert.ok(miss.out.error, `recall of a missing key should be an error: ${miss.text}`);
  });

  test('the tool sees only its own user\'s memory', async () => {
    await stack.api(otherKey, 'PUT', '/v1/memory/other-secret', { value: 'wombat-otheruser' });
    const rec = await memoryTool(userKey, { action: 'recall', key: 'other-secret' });
    assert.ok(rec.out.error, rec.text);
    assert.doesNotMatch(rec.text, /wombat-otheruser/);
    const s = await memoryTool(userKey, { action: 'search', query: 'wombat otheruser' });
    assert.deepEqual(s.out.results, [], s.text);
    // And the other user's tool does find it.
    const mine = await memoryTool(otherKey, { action: 'search', query: 'wombat' });
    assert.deepEqual(mine.out.results.map((m) => m.key), ['other-secret']);
  });

  test('bad tool arguments are the model\'s error, not the run\'s', async () => {
    for (const args of [{ action: 'save', key: 'k' }, { action: 'explode' }, { action: 'recall' }]) {
      const s = await newSession(stack, userKey, 'keeper');
      const r = await postMessage(stack, userKey, s.id, `x ${toolMarker('memory', args)}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.run.status, 'completed', `${JSON.stringify(args)}: ${r.text}`);
      assert.match(r.body.message.content, /error|invalid/i, `${JSON.stringify(args)}: ${r.body.message.content}`);
    }
  });
});
