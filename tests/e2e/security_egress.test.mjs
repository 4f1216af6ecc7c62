// security_egress.test.mjs — SSRF: a request made for an agent cannot
// reach the machine's own or private networks (docs/egress.md).
//
// A canary server on loopback answers every request with a secret and
// records what arrived. Tools point at it in every form a URL can name
// loopback in — localhost, 127.1, 2130706433, 0x7f000001, [::1],
// [::ffff:127.0.0.1], 0.0.0.0, a *.localhost name and this machine's own
// host name (resolved through /etc/hosts) — and none has the operator's
// allow_private_networks: each call must end as a tool error naming the
// address class, with nothing arriving at the canary. A redirector on
// loopback (reached by tools the operator allowed) bounces to the metadata
// address 169.254.169.254, to file:// and to gopher://: each hop is
// checked again. A tenant admin cannot grant allow_private_networks, and
// a tenant's own tool is refused too. The vault's discovery of an OAuth
// provider on loopback is refused as well. Each refusal is an `egress` span in
// the run's trace and an `egress.refuse` audit entry naming the tool and
// the class. The operator's allowance works, and goes direct even with a
// proxy in brigade's environment.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dns from 'node:dns/promises';
import http from 'node:http';
import os from 'node:os';
import { describe, test } from 'node:test';

import { newSession, postMessage, startToolServer, toolMarker, transcript } from './lib/agents.mjs';
import { auditEntries, errorOf, eventually, freePort, useStack } from './lib/harness.mjs';

const CANARY = `canary-${randomBytes(6).toString('hex')}`;
let canary;        // the loopback server nothing should reach
let proxy;         // an http_proxy from the environment, which egress must ignore
let redirector;    // answers /to-X with a redirect
let hostName = null;   // this machine's name, if it resolves to loopback

/** A server on 127.0.0.1 whose /to-NAME answers 302 to targets[NAME]. */
async function startRedirector(targets) {
  const port = await freePort();
  const requests = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url);
    const name = req.url.replace(/^\/to-/, '').replace(/\?.*$/, '');
    const location = targets[name];
    if (!location) { res.writeHead(404); res.end('no'); return; }
    res.writeHead(302, { location, 'content-type': 'text/plain' });
    res.end('moved');
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    port, url: `http://127.0.0.1:${port}`, requests,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  };
}

// Each loopback form, as a tool without the operator's allowance, and the
// class the refusal must name.
const FORMS = [
  ['localhost', 'localhost', 'loopback'],
  ['short', '127.1', 'loopback'],
  ['decimal', '2130706433', 'loopback'],
  ['hex', '0x7f000001', 'loopback'],
  ['v6', '[::1]', 'loopback'],
  ['mapped', '[::ffff:127.0.0.1]', 'loopback'],
  ['zero', '0.0.0.0', 'unspecified'],
  ['sublocal', 'egress-test.localhost', 'loopback'],
];

const stack = useStack(async () => {
  canary = await startToolServer(() => ({ secret: CANARY }));
  proxy = await startToolServer(() => ({ proxied: true }));
  const p = canary.port;
  redirector = await startRedirector({
    metadata: 'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
    file: 'file:///etc/passwd',
    gopher: `gopher://127.0.0.1:${p}/_GET%20/gopher-hop%20HTTP/1.0%0D%0A%0D%0A`,
    mapped: `http://[::ffff:127.0.0.1]:${p}/mapped-hop`,
    canary: `http://127.0.0.1:${p}/allowed-hop`,
  });
  // A name that resolves to loopback through the system resolver (not
  // libcurl's own handling of "localhost"): this machine's host name, on
  // machines whose /etc/hosts maps it to 127.0.x.x.
  try {
    const a = await dns.lookup(os.hostname(), { family: 4 });
    if (/^127\./.test(a.address) && /^[a-z0-9.-]+$/i.test(os.hostname())) hostName = os.hostname();
  } catch { /* not resolvable: that case is skipped */ }
  const forms = [...FORMS];
  if (hostName) forms.push(['hostname', hostName, 'loopback']);
  const tool = (name, url, extra = '') => `  - {name: ${name}, url: "${url}", method: GET${extra}}`;
  return {
    extraYaml: [
      // an OAuth provider whose issuer is on loopback, without the
      // operator's allowance: its discovery must be refused
      'credential_providers:',
      `  - {name: inside, kind: oauth2, issuer: "http://127.0.0.1:${p}", client_id: brigade-test}`,
      'tools:',
      ...forms.map(([name, host]) => tool(`lo-${name}`, `http://${host}:${p}/form-${name}`)),
      // the redirector is on loopback: the operator allows these tools
      // private networks, so the first hop is allowed and the check of the
      // next hop is what is tested
      tool('hop-metadata', `${redirector.url}/to-metadata`, ', allow_private_networks: true, max_redirects: 3'),
      tool('hop-metadata-nofollow', `${redirector.url}/to-metadata`, ', allow_private_networks: true'),
      tool('hop-file', `${redirector.url}/to-file`, ', allow_private_networks: true, max_redirects: 3'),
      tool('hop-gopher', `${redirector.url}/to-gopher`, ', allow_private_networks: true, max_redirects: 3'),
      tool('hop-allowed', `${redirector.url}/to-canary`, ', allow_private_networks: true, max_redirects: 2'),
      tool('operator-ok', `http://127.0.0.1:${p}/operator`, ', allow_private_networks: true'),
      tool('operator-by-name', `http://localhost:${p}/by-name`, ', allow_private_networks: true'),
      'agents:',
      `  - {name: fetcher, model: local-model, tools: [${forms.map(([n]) => `lo-${n}`).join(', ')}, hop-metadata, hop-metadata-nofollow, hop-file, hop-gopher, hop-allowed, operator-ok, operator-by-name], max_tool_calls: 64}`,
    ].join('\n'),
    // A proxy in brigade's environment: egress must not use it (the check
    // would see the proxy's address, not the destination's). 127.0.0.1 is
    // exempt so that the model calls to the mock are direct.
    env: { http_proxy: proxy.url, HTTP_PROXY: proxy.url, https_proxy: proxy.url, no_proxy: '127.0.0.1', NO_PROXY: '127.0.0.1' },
  };
}, async (s) => {
  s.tenant = await s.makeTenant();
  s.user = await s.makeUserWithKey(s.tenant.admin_key);
  s.session = await newSession(s, s.user.key, 'fetcher');
});

/** Call one tool through a run; its result {ok, content}. */
async function callTool(name, args = {}, headers = {}) {
  const r = await stack.api(stack.user.key, 'POST', `/v1/sessions/${stack.session.id}/messages`,
    { content: `go ${toolMarker(name, args)}` }, headers);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.run.status, 'completed', r.text);
  const msgs = await transcript(stack, stack.user.key, stack.session.id);
  const result = msgs.filter((m) => m.role === 'tool').at(-1);
  assert.ok(result, `no tool result for ${name}`);
  return result.content;
}

const canaryPaths = () => canary.requests.map((q) => q.url);

describe('egress refuses every loopback form', () => {
  for (const [name, host, cls] of FORMS) {
    test(`${host} is refused as ${cls}`, async () => {
      const before = canary.requests.length;
      const content = await callTool(`lo-${name}`);
      assert.match(content, /egress refused/, `${host}: ${content}`);
      assert.match(content, new RegExp(`class ${cls}`), content);
      assert.ok(!content.includes(CANARY), 'the canary answered');
      assert.equal(canary.requests.length, before, `${host} reached the canary: ${canaryPaths()}`);
    });
  }

  test('a DNS name the system resolver maps to loopback is refused', async (t) => {
    if (!hostName) {
      t.skip(`${os.hostname()} does not resolve to loopback here`);
      return;
    }
    const content = await callTool('lo-hostname');
    assert.match(content, /egress refused: 127\.[0-9.]+ is .*class loopback/, content);
    assert.ok(!canaryPaths().includes('/form-hostname'));
  });
});

describe('redirects', () => {
  test('a redirect to 169.254.169.254 is refused at that hop, even for a tool allowed private networks', async () => {
    const hops = redirector.requests.length;
    const content = await callTool('hop-metadata');
    assert.equal(redirector.requests.length, hops + 1, 'the first hop was made');
    assert.match(content, /egress refused: 169\.254\.169\.254 is .*class link-local/, content);
  });

  test('without max_redirects the redirect is not followed: the 302 is the answer', async () => {
    const content = await callTool('hop-metadata-nofollow');
    assert.match(content, /^HTTP 302/, content);
  });

  test('file:// and gopher:// in a redirect are refused, and nothing reaches the canary', async () => {
    const before = canary.requests.length;
    for (const name of ['hop-file', 'hop-gopher']) {
      const content = await callTool(name);
      assert.match(content, /request failed/, `${name}: ${content}`);
      assert.doesNotMatch(content, /root:|canary-/, content);
    }
    assert.equal(canary.requests.length, before, `the gopher hop reached the canary: ${canaryPaths()}`);
  });

  test('an allowed hop is followed (the operator allowed this tool private networks)', async () => {
    const content = await callTool('hop-allowed');
    assert.ok(content.includes(CANARY), content);
    assert.ok(canaryPaths().includes('/allowed-hop'));
  });
});

describe('the operator decides, not a tenant admin', () => {
  test('the operator\'s allow_private_networks lets a tool reach loopback', async () => {
    const content = await callTool('operator-ok');
    assert.ok(content.includes(CANARY), content);
  });

  test('a proxy from the environment is not used: the request goes to the address that was checked', async () => {
    const content = await callTool('operator-by-name');
    assert.ok(content.includes(CANARY), content);
    assert.ok(canaryPaths().includes('/by-name'));
    assert.equal(proxy.requests.length, 0, `the proxy was used: ${proxy.requests.map((q) => q.url)}`);
  });

  test('a tenant admin cannot set allow_private_networks (400, named)', async () => {
    const adm = stack.tenant.admin_key;
    const body = { name: 'sneaky', url: `http://127.0.0.1:${canary.port}/sneaky`, method: 'GET', allow_private_networks: true };
    const r = await stack.api(adm, 'POST', '/v1/tools', body);
    assert.equal(r.status, 400, r.text);
    assert.match(errorOf(r).message, /allow_private_networks/);
    assert.match(errorOf(r).message, /only the server's configuration/);
    // the same through PATCH of a tool the tenant does own
    const own = { name: 'own-tool', url: `http://127.0.0.1:${canary.port}/own`, method: 'GET' };
    assert.equal((await stack.api(adm, 'POST', '/v1/tools', own)).status, 201);
    const p = await stack.api(adm, 'PATCH', '/v1/tools/own-tool', { allow_private_networks: true });
    assert.equal(p.status, 400, p.text);
    assert.match(errorOf(p).message, /allow_private_networks/);
    // a URL of another scheme is refused as it is defined
    for (const url of ['file:///etc/passwd', `gopher://127.0.0.1:${canary.port}/_x`]) {
      const f = await stack.api(adm, 'POST', '/v1/tools', { name: 'scheme-tool', url, method: 'GET' });
      assert.equal(f.status, 400, f.text);
      assert.match(errorOf(f).message, /http:\/\/ or https:\/\//);
    }
  });

  test('a tenant\'s own tool pointing at loopback is refused when called', async () => {
    const adm = stack.tenant.admin_key;
    const agent = { name: 'own-agent', model: 'local-model', tools: ['own-tool'] };
    const a = await stack.api(adm, 'POST', '/v1/agents', agent);
    assert.equal(a.status, 201, a.text);
    const s = await newSession(stack, stack.user.key, 'own-agent');
    const before = canary.requests.length;
    const r = await postMessage(stack, stack.user.key, s.id, `go ${toolMarker('own-tool', {})}`);
    assert.equal(r.status, 200, r.text);
    const result = (await transcript(stack, stack.user.key, s.id)).filter((m) => m.role === 'tool').at(-1);
    assert.match(result.content, /egress refused: 127\.0\.0\.1 is .*class loopback/, result.content);
    assert.equal(canary.requests.length, before);
  });
});

describe('the vault\'s calls to a credential provider pass egress', () => {
  test('a provider whose issuer is on loopback is refused at discovery, audited by the system', async () => {
    const before = canary.requests.length;
    const c = await stack.api(stack.user.key, 'POST', '/v1/connections', { provider: 'inside' });
    assert.equal(c.status, 200, c.text);
    const start = await fetch(c.body.connect_url, { redirect: 'manual' });
    const page = await start.text();
    assert.notEqual(start.status, 302, 'no redirect to a provider that could not be resolved');
    assert.ok(!page.includes(CANARY));
    assert.equal(canary.requests.length, before, `discovery reached the canary: ${canaryPaths()}`);
    let entry;
    await eventually(async () => {
      const entries = await auditEntries(stack, stack.adminToken);
      entry = entries.find((x) => x.action === 'egress.refuse' && x.target === 'inside');
      return Boolean(entry);
    }, { timeoutMs: 4000 });
    assert.equal(entry.actor, 'system');
    assert.equal(entry.details.provider, 'inside');
    assert.equal(entry.details.class, 'loopback');
  });
});

describe('a refusal is a span and an audit entry', () => {
  test('the trace has an egress span; the audit names the tool and the class, not the URL', async () => {
    const traceId = randomBytes(16).toString('hex');
    const content = await callTool('lo-mapped', {}, { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` });
    assert.match(content, /egress refused/);
    let spans = [];
    await eventually(async () => {
      const r = await stack.api(stack.user.key, 'GET', `/v1/traces/${traceId}`);
      if (r.status !== 200) return false;
      spans = r.body.spans;
      return spans.some((x) => x.name === 'egress');
    }, { timeoutMs: 4000 });
    const eg = spans.find((x) => x.name === 'egress');
    const tool = spans.find((x) => x.span_id === eg.parent_span_id);
    assert.equal(tool.name, 'tool lo-mapped');
    assert.equal(eg.attributes['brigade.egress.decision'], 'refused');
    assert.equal(eg.attributes['brigade.egress.class'], 'loopback');
    assert.equal(eg.attributes['brigade.egress.tool'], 'lo-mapped');

    let entry;
    await eventually(async () => {
      const entries = await auditEntries(stack, stack.tenant.admin_key);
      entry = entries.find((x) => x.action === 'egress.refuse' && x.target === 'lo-mapped');
      return Boolean(entry);
    }, { timeoutMs: 4000 });
    assert.equal(entry.details.class, 'loopback');
    assert.equal(entry.details.tool, 'lo-mapped');
    assert.equal(entry.details.form, 'IPv4-mapped IPv6');
    assert.ok(!JSON.stringify(entry).includes('/form-mapped'), 'the URL is not in the audit entry');
    const metadata = (await auditEntries(stack, stack.tenant.admin_key))
      .find((x) => x.action === 'egress.refuse' && x.target === 'hop-metadata');
    assert.ok(metadata, 'the refused redirect hop is audited');
    assert.equal(metadata.details.class, 'link-local');
  });
});

test('the servers stop', async () => {
  await canary.close();
  await redirector.close();
  await proxy.close();
});
