// tenant_tools.test.mjs — tools and agents per tenant: a tenant admin
// creates, reads, changes and deletes the tenant's own HTTP tools and
// agents (GET|POST /v1/tools, GET|PATCH|DELETE /v1/tools/{name}, the same
// for /v1/agents), enables and disables entries of the server's catalogue
// (`tenants: enable` in the config), and the tenant's users run its agents,
// which call its tools. `effects` is in every listing. A PATCH or DELETE
// while a run uses the tool or agent leaves that run intact (the run took
// its own snapshot at its start; the ASan build checks the memory).

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { auditEntries, errorOf, useStack } from './lib/harness.mjs';
import { newSession, postMessage, restartBrigade, startToolServer, ToolReply, toolMarker } from './lib/agents.mjs';

let toolServer;
after(() => (toolServer ? toolServer.close() : undefined));

let tenant;
let userKey;
let userId;
const stack = useStack(async () => {
  toolServer = await startToolServer((req) => {
    if (req.url.startsWith('/slow')) return new ToolReply(200, { late: true, url: req.url }, 1500);
    return { got: req.url, body: req.body };
  });
  return {
    limits: { max_body_bytes: 262144 },
    extraYaml: [
      // The tenants' own tools call the test server on loopback: the
      // operator names that network for every agent request (docs/egress.md).
      'egress: {allow_networks: [127.0.0.1/32]}',
      'tools:',
      `  - {name: cat-open, url: "${toolServer.url}/cat-open", effects: read, allow_private_networks: true}`,
      `  - {name: cat-gated, url: "${toolServer.url}/cat-gated", tenants: enable, allow_private_networks: true}`,
      'agents:',
      '  - {name: assistant, model: local-model, tools: [memory, clock, cat-open, cat-gated]}',
      '  - {name: gated-agent, model: local-model, tools: [clock], tenants: enable}',
    ].join('\n'),
  };
}, async (s) => {
  tenant = await s.makeTenant();
  const u = await s.makeUserWithKey(tenant.admin_key);
  userKey = u.key;
  userId = u.user.id;
});

const weatherTool = (url, extra = {}) => ({
  name: 'weather',
  description: 'The weather in a city.',
  url: `${url}/weather/{city}`,
  method: 'GET',
  effects: 'read',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  ...extra,
});

describe('a tenant admin manages the tenant\'s own tools', () => {
  test('create, read, list, change and delete a tool (and each change is audited)', async () => {
    const adm = tenant.admin_key;
    const c = await stack.api(adm, 'POST', '/v1/tools', weatherTool(toolServer.url, { name: 'crud-tool' }));
    assert.equal(c.status, 201, c.text);
    assert.equal(c.body.name, 'crud-tool');
    assert.equal(c.body.source, 'tenant');
    assert.equal(c.body.effects, 'read');
    assert.equal(c.body.method, 'GET');

    const g = await stack.api(adm, 'GET', '/v1/tools/crud-tool');
    assert.equal(g.status, 200, g.text);
    assert.equal(g.body.url, `${toolServer.url}/weather/{city}`);

    const list = await stack.api(adm, 'GET', '/v1/tools');
    assert.equal(list.status, 200, list.text);
    const byName = Object.fromEntries(list.body.data.map((t) => [t.name, t]));
    assert.equal(byName['crud-tool'].source, 'tenant');
    assert.equal(byName['cat-open'].source, 'catalogue');
    assert.equal(byName['cat-open'].available, true);
    assert.equal(byName['cat-open'].effects, 'read');
    assert.equal(byName['cat-gated'].available, false, 'tenants: enable needs the admin to enable it');
    assert.equal(byName['cat-gated'].effects, 'external', 'an HTTP tool is external unless it says otherwise');
    assert.equal(byName['cat-open'].url, undefined, "the operator's endpoint is not shown to tenants");

    const p = await stack.api(adm, 'PATCH', '/v1/tools/crud-tool', { description: 'Changed.', effects: 'external' });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.body.description, 'Changed.');
    assert.equal(p.body.effects, 'external');
    assert.equal(p.body.method, 'GET', 'fields not in the PATCH stay');

    const d = await stack.api(adm, 'DELETE', '/v1/tools/crud-tool');
    assert.equal(d.status, 204, d.text);
    const gone = await stack.api(adm, 'GET', '/v1/tools/crud-tool');
    assert.equal(gone.status, 404, gone.text);

    const actions = (await auditEntries(stack, adm)).filter((e) => e.target === 'crud-tool').map((e) => e.action);
    assert.deepEqual(actions.sort(), ['tool.create', 'tool.delete', 'tool.update']);
  });

  test('a name the catalogue has is refused (409) with the way to enable it', async () => {
    const r = await stack.api(tenant.admin_key, 'POST', '/v1/tools', weatherTool(toolServer.url, { name: 'cat-open' }));
    assert.equal(r.status, 409, r.text);
    assert.match(errorOf(r).message, /catalogue/);
  });
});

describe('a tenant admin manages the tenant\'s own agents', () => {
  test('an agent using the tenant\'s own tool: create, list, run, change, delete', async () => {
    const adm = tenant.admin_key;
    assert.equal((await stack.api(adm, 'POST', '/v1/tools', weatherTool(toolServer.url))).status, 201);
    const c = await stack.api(adm, 'POST', '/v1/agents', {
      name: 'forecaster', description: 'Knows the weather.', model: 'local-model',
      system_prompt: 'You know the weather.', tools: ['weather', 'memory'], max_steps: 4,
    });
    assert.equal(c.status, 201, c.text);
    assert.equal(c.body.source, 'tenant');
    assert.deepEqual(c.body.tools, ['weather', 'memory']);

    // the user sees it among the agents it may use, and runs it
    const mine = await stack.api(userKey, 'GET', '/v1/agents');
    assert.equal(mine.status, 200, mine.text);
    assert.ok(mine.body.data.some((a) => a.id === 'forecaster'), mine.text);
    assert.ok(mine.body.data.some((a) => a.id === 'assistant'));
    assert.ok(!mine.body.data.some((a) => a.id === 'gated-agent'), 'not enabled for the tenant');

    const sess = await newSession(stack, userKey, 'forecaster');
    const before = toolServer.requests.length;
    const r = await postMessage(stack, userKey, sess.id, `weather? ${toolMarker('weather', { city: 'Oslo' })}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.run.status, 'completed', r.text);
    const hit = toolServer.requests.slice(before).find((q) => q.url.startsWith('/weather/'));
    assert.ok(hit, 'the tenant\'s tool was called');
    assert.equal(hit.url, '/weather/Oslo');

    const p = await stack.api(adm, 'PATCH', '/v1/agents/forecaster', { max_steps: 2, description: null });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.body.limits.max_steps, 2);
    assert.equal(p.body.description, null);

    const d = await stack.api(adm, 'DELETE', '/v1/agents/forecaster');
    assert.equal(d.status, 204, d.text);
    const again = await postMessage(stack, userKey, sess.id, 'still there?');
    assert.notEqual(again.status, 200, 'a deleted agent no longer runs');
    assert.match(JSON.stringify(again.body), /agent/);
    const actions = (await auditEntries(stack, adm)).filter((e) => e.target === 'forecaster').map((e) => e.action);
    assert.deepEqual(actions.sort(), ['agent.create', 'agent.delete', 'agent.update']);
  });

  test('an agent\'s model must be a configured model, its tools ones the tenant has', async () => {
    const adm = tenant.admin_key;
    const m = await stack.api(adm, 'POST', '/v1/agents', { name: 'bad-model', model: 'no-such-model' });
    assert.equal(m.status, 400, m.text);
    assert.equal(errorOf(m).param, 'model');
    const t = await stack.api(adm, 'POST', '/v1/agents', { name: 'bad-tool', model: 'local-model', tools: ['cat-gated'] });
    assert.equal(t.status, 400, t.text);
    assert.match(errorOf(t).message, /cat-gated/);
  });
});

describe('the catalogue: tenants: all and tenants: enable', () => {
  test('enable and disable a catalogue tool and agent; a run sees the change', async () => {
    const adm = tenant.admin_key;
    // not enabled: the catalogue agent's gated tool is refused to the model
    const sess = await newSession(stack, userKey, 'assistant');
    let r = await postMessage(stack, userKey, sess.id, `go ${toolMarker('cat-gated', {})}`);
    assert.equal(r.status, 200, r.text);
    const before = toolServer.requests.length;
    assert.equal(toolServer.requests.slice(before).filter((q) => q.url === '/cat-gated').length, 0);

    const en = await stack.api(adm, 'POST', '/v1/tools', { name: 'cat-gated', catalogue: true });
    assert.equal(en.status, 201, en.text);
    assert.equal(en.body.available, true);
    r = await postMessage(stack, userKey, sess.id, `go ${toolMarker('cat-gated', {})}`);
    assert.equal(r.status, 200, r.text);
    assert.ok(toolServer.requests.slice(before).some((q) => q.url === '/cat-gated'), 'enabled: called');

    const dis = await stack.api(adm, 'DELETE', '/v1/tools/cat-gated');
    assert.equal(dis.status, 204, dis.text);
    const list = await stack.api(adm, 'GET', '/v1/tools');
    assert.equal(list.body.data.find((t) => t.name === 'cat-gated').available, false);

    // a catalogue agent with tenants: enable
    let s = await stack.api(userKey, 'POST', '/v1/sessions', { agent: 'gated-agent' });
    assert.equal(s.status, 400, s.text);
    assert.equal((await stack.api(adm, 'POST', '/v1/agents', { name: 'gated-agent', catalogue: true })).status, 201);
    s = await stack.api(userKey, 'POST', '/v1/sessions', { agent: 'gated-agent' });
    assert.equal(s.status, 201, s.text);
    assert.equal((await stack.api(adm, 'DELETE', '/v1/agents/gated-agent')).status, 204);
    r = await postMessage(stack, userKey, s.body.id, 'hello');
    assert.notEqual(r.status, 200, 'disabled: the session\'s agent no longer runs');

    // an entry every tenant has cannot be disabled by one tenant
    const all = await stack.api(adm, 'DELETE', '/v1/tools/cat-open');
    assert.equal(all.status, 400, all.text);
    const actions = (await auditEntries(stack, adm)).map((e) => e.action);
    for (const a of ['tool.enable', 'tool.disable', 'agent.enable', 'agent.disable']) assert.ok(actions.includes(a), a);
  });
});

describe('a change during a run', () => {
  test('PATCH and DELETE of the tool and the agent while a run calls the tool: the run completes', async () => {
    const adm = tenant.admin_key;
    const slow = {
      name: 'slowpoke', url: `${toolServer.url}/slow/{n}`, method: 'GET', effects: 'read',
      parameters: { type: 'object', properties: { n: { type: 'string' } }, required: ['n'] },
    };
    assert.equal((await stack.api(adm, 'POST', '/v1/tools', slow)).status, 201);
    assert.equal((await stack.api(adm, 'POST', '/v1/agents', {
      name: 'waiter', model: 'local-model', tools: ['slowpoke'], system_prompt: 'x'.repeat(2000),
    })).status, 201);
    const sess = await newSession(stack, userKey, 'waiter');
    const run = postMessage(stack, userKey, sess.id, `wait ${toolMarker('slowpoke', { n: '1' })}`);
    // while the tool call is in flight: change everything, then delete it
    await new Promise((res) => setTimeout(res, 400));
    assert.equal((await stack.api(adm, 'PATCH', '/v1/tools/slowpoke', { description: 'changed', url: `${toolServer.url}/other/{n}` })).status, 200);
    assert.equal((await stack.api(adm, 'PATCH', '/v1/agents/waiter', { system_prompt: 'short', max_steps: 1 })).status, 200);
    assert.equal((await stack.api(adm, 'DELETE', '/v1/agents/waiter')).status, 204);
    assert.equal((await stack.api(adm, 'DELETE', '/v1/tools/slowpoke')).status, 204);
    const r = await run;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.run.status, 'completed', r.text);
    assert.match(JSON.stringify(r.body), /late/, 'the tool result reached the run');
    assert.equal(r.body.run.steps, 2, 'the run kept its own max_steps and prompt');
    // the user id went nowhere it was not declared
    assert.ok(!JSON.stringify(toolServer.requests).includes(userId));
  });
});

describe('a restart', () => {
  test('the tenant\'s tools, agents and enabled catalogue entries outlive a kill -9', async () => {
    const adm = tenant.admin_key;
    assert.equal((await stack.api(adm, 'POST', '/v1/tools', weatherTool(toolServer.url, { name: 'durable' }))).status, 201);
    assert.equal((await stack.api(adm, 'POST', '/v1/agents', { name: 'keeper', model: 'local-model', tools: ['durable', 'cat-gated'] })).status, 400,
      'cat-gated is not enabled yet');
    assert.equal((await stack.api(adm, 'POST', '/v1/tools', { name: 'cat-gated', catalogue: true })).status, 201);
    assert.equal((await stack.api(adm, 'POST', '/v1/agents', { name: 'keeper', model: 'local-model', tools: ['durable', 'cat-gated'] })).status, 201);
    await restartBrigade(stack);
    const list = await stack.api(adm, 'GET', '/v1/tools');
    assert.equal(list.status, 200, list.text);
    assert.ok(list.body.data.some((t) => t.name === 'durable' && t.source === 'tenant'));
    assert.equal(list.body.data.find((t) => t.name === 'cat-gated').available, true);
    const sess = await newSession(stack, userKey, 'keeper');
    const before = toolServer.requests.length;
    const r = await postMessage(stack, userKey, sess.id, toolMarker('durable', { city: 'Rome' }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.run.status, 'completed', r.text);
    assert.ok(toolServer.requests.slice(before).some((q) => q.url === '/weather/Rome'));
  });
});
