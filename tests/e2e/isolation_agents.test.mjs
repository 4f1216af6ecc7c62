// isolation_agents.test.mjs — users' sessions, runs and memory do not leak
// into each other, under concurrency: 220 users in 4 tenants, all at once,
// each stores a distinct secret through the agent's memory tool and through
// PUT /v1/memory, then searches a word every user's entries share, through
// GET /v1/memory?q= and through the tool; EVERY response is checked for any
// secret that is not the caller's. Then: deleting a user erases their
// sessions and memory, and nothing of anyone else.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';

import { useStack } from './lib/harness.mjs';
import { newSession, pool, postMessage, toolMarker } from './lib/agents.mjs';

const N_TENANTS = 4;
const USERS_PER_TENANT = 55;   // 220 users
const COMMON = 'zebra';
const SECRET_RE = /SECRET[0-9a-f]{16}/g;

const users = [];   // {tenant, key, userId, secrets: Set}
const stack = useStack({
  extraYaml: 'agents:\n  - {name: keeper, model: local-model, tools: [memory]}\n',
}, async (s) => {
  const tenants = [];
  for (let t = 0; t < N_TENANTS; t++) tenants.push(await s.makeTenant());
  const slots = [];
  for (const tenant of tenants) for (let i = 0; i < USERS_PER_TENANT; i++) slots.push(tenant);
  const made = await pool(slots, 16, async (tenant) => {
    const { user, key } = await s.makeUserWithKey(tenant.admin_key);
    return { tenant, key, userId: user.id, secrets: new Set() };
  });
  users.push(...made);
});

const secret = () => `SECRET${randomBytes(8).toString('hex')}`;

/** Every secret in `text` must be one of `mine`; the others are leaks. */
function leaksIn(text, mine) {
  return (String(text).match(SECRET_RE) || []).filter((s) => !mine.has(s));
}

describe('no leaks between users under concurrency', () => {
  test(`${N_TENANTS * USERS_PER_TENANT} users at once: memory tool and /v1/memory see only their own secrets`, { timeout: 45_000 }, async () => {
    assert.equal(users.length, N_TENANTS * USERS_PER_TENANT);
    const leaks = [];
    const failures = [];
    let checked = 0;
    const check = (u, what, r) => {
      checked++;
      const bad = leaksIn(r.text, u.secrets);
      if (bad.length) leaks.push(`${u.userId} ${what}: ${bad.join(',')}`);
    };
    const expect = (u, what, r, status = 200) => {
      check(u, what, r);
      if (r.status !== status) failures.push(`${u.userId} ${what}: ${r.status} ${r.text.slice(0, 200)}`);
      return r.status === status;
    };
    for (const u of users) {
      u.toolSecret = secret();
      u.apiSecret = secret();
      u.secrets.add(u.toolSecret).add(u.apiSecret);
    }

    await Promise.all(users.map(async (u) => {
      const sr = await stack.api(u.key, 'POST', '/v1/sessions', { agent: 'keeper' });
      if (!expect(u, 'create session', sr, 201)) return;
      u.sessionId = sr.body.id;
      // 1. through the tool
      const save = await postMessage(stack, u.key, u.sessionId,
        `Remember. ${toolMarker('memory', { action: 'save', key: 'tool-note', value: `${COMMON} ${u.toolSecret}` })}`);
      if (!expect(u, 'save run', save)) return;
      if (save.body.run.status !== 'completed') failures.push(`${u.userId} save run ${save.body.run.status}`);
      u.runId = save.body.run.id;
      // 2. through the API
      const put = await stack.api(u.key, 'PUT', '/v1/memory/api-note', { value: `${COMMON} ${u.apiSecret}` });
      if (!expect(u, 'PUT memory', put)) return;
      // 3. search through the API
      const q = await stack.api(u.key, 'GET', `/v1/memory?q=${COMMON}&limit=100`);
      if (expect(u, 'GET /v1/memory?q=', q)) {
        const got = q.body.data.map((m) => m.key).sort();
        if (JSON.stringify(got) !== JSON.stringify(['api-note', 'tool-note'])) failures.push(`${u.userId} search found ${JSON.stringify(got)}`);
      }
      // 4. search through the tool
      const s2 = await postMessage(stack, u.key, u.sessionId,
        `Look it up. ${toolMarker('memory', { action: 'search', query: COMMON })}`);
      if (expect(u, 'search run', s2)) {
        const c = s2.body.message?.content || '';
        if (!c.includes(u.toolSecret) || !c.includes(u.apiSecret)) failures.push(`${u.userId} tool search missed own secrets: ${c.slice(0, 200)}`);
      }
      // 5. everything else the user can read
      expect(u, 'GET /v1/memory', await stack.api(u.key, 'GET', '/v1/memory?limit=100'));
      expect(u, 'GET tool-note', await stack.api(u.key, 'GET', '/v1/memory/tool-note'));
      expect(u, 'transcript', await stack.api(u.key, 'GET', `/v1/sessions/${u.sessionId}/messages`));
      expect(u, 'sessions', await stack.api(u.key, 'GET', '/v1/sessions?limit=100'));
      expect(u, 'run', await stack.api(u.key, 'GET', `/v1/runs/${u.runId}`));
    }));

    // Then every user reaches for a neighbour's session and run (another
    // tenant's for the last of each tenant): not found, and nothing leaks.
    await Promise.all(users.map(async (u, i) => {
      const v = users[(i + 1) % users.length];
      if (!v.sessionId) return;
      for (const [what, path] of [
        ['neighbour session', `/v1/sessions/${v.sessionId}`],
        ['neighbour transcript', `/v1/sessions/${v.sessionId}/messages`],
        ['neighbour run', `/v1/runs/${v.runId}`],
      ]) {
        expect(u, what, await stack.api(u.key, 'GET', path), 404);
      }
      expect(u, 'post to neighbour session', await postMessage(stack, u.key, v.sessionId, 'hi'), 404);
    }));

    assert.deepEqual(leaks, [], `${leaks.length} leaks`);
    assert.deepEqual(failures.slice(0, 20), [], `${failures.length} failures`);
    assert.ok(checked >= users.length * 13, `only ${checked} responses checked`);
  });
});

describe('deleting a user', () => {
  test('erases their sessions, runs and memory; the key stops working; others are untouched', async () => {
    const tenant = await stack.makeTenant();
    const extId = stack.unique('doomed');
    const a = await stack.makeUserWithKey(tenant.admin_key, extId);
    const b = await stack.makeUserWithKey(tenant.admin_key);
    const seed = async (key, tag) => {
      const s = await newSession(stack, key, 'keeper');
      const r = await postMessage(stack, key, s.id, `Keep. ${toolMarker('memory', { action: 'save', key: 'note', value: `${tag} via tool` })}`);
      assert.equal(r.body.run.status, 'completed', r.text);
      assert.equal((await stack.api(key, 'PUT', '/v1/memory/api', { value: `${tag} via api` })).status, 200);
      return { session: s.id, run: r.body.run.id };
    };
    const sa = await seed(a.key, 'alpha');
    const sb = await seed(b.key, 'beta');
    const bBefore = {
      memory: (await stack.api(b.key, 'GET', '/v1/memory?limit=100')).body,
      transcript: (await stack.api(b.key, 'GET', `/v1/sessions/${sb.session}/messages`)).body,
    };

    const d = await stack.api(tenant.admin_key, 'DELETE', `/v1/users/${a.user.id}`);
    assert.equal(d.status, 200, d.text);
    assert.equal(d.body.deleted, true);

    assert.equal((await stack.api(a.key, 'GET', '/v1/memory/note')).status, 401, 'the deleted user\'s key is gone');
    assert.equal((await stack.api(a.key, 'GET', `/v1/sessions/${sa.session}`)).status, 401);
    assert.equal((await stack.api(tenant.admin_key, 'GET', `/v1/users/${a.user.id}`)).status, 404);
    assert.equal((await stack.api(tenant.admin_key, 'DELETE', `/v1/users/${a.user.id}`)).status, 404);
    const list = await stack.api(tenant.admin_key, 'GET', '/v1/users');
    assert.ok(!list.text.includes(a.user.id), 'the deleted user is not listed');

    // A new user with the same external id starts empty.
    const a2 = await stack.makeUserWithKey(tenant.admin_key, extId);
    assert.notEqual(a2.user.id, a.user.id);
    const mem = await stack.api(a2.key, 'GET', '/v1/memory?limit=100');
    assert.equal(mem.status, 200);
    assert.deepEqual(mem.body.data, [], `memory survived the deletion: ${mem.text}`);
    assert.equal((await stack.api(a2.key, 'GET', '/v1/memory/note')).status, 404);
    const sess = await stack.api(a2.key, 'GET', '/v1/sessions?limit=100');
    assert.deepEqual(sess.body.data, [], `sessions survived the deletion: ${sess.text}`);
    assert.equal((await stack.api(a2.key, 'GET', `/v1/sessions/${sa.session}`)).status, 404);
    assert.equal((await stack.api(a2.key, 'GET', `/v1/runs/${sa.run}`)).status, 404);
    const found = await stack.api(a2.key, 'GET', '/v1/memory?q=alpha');
    assert.deepEqual(found.body.data, []);

    // Nothing changed for the other user.
    assert.deepEqual((await stack.api(b.key, 'GET', '/v1/memory?limit=100')).body, bBefore.memory);
    assert.deepEqual((await stack.api(b.key, 'GET', `/v1/sessions/${sb.session}/messages`)).body, bBefore.transcript);
    assert.equal((await stack.api(b.key, 'GET', `/v1/runs/${sb.run}`)).body.status, 'completed');
    const more = await postMessage(stack, b.key, sb.session, 'still here [[tokens:2]]');
    assert.equal(more.body.run.status, 'completed', more.text);
  });
});
