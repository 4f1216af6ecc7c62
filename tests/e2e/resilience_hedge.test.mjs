// resilience_hedge.test.mjs — what keeps a request with a healthy second
// deployment from failing (docs/resilience.md): hang detection from the
// first-byte deadline (per model and per deployment) rather than the whole
// call's deadline; retries that move to another provider do not spend the
// failing provider's retry budget; hedged attempts after a slow first byte
// (the winner charged once, the loser cancelled, counted in metrics); and
// upstream attempts per request that stay bounded.
//
// A scriptable provider (below) plays the sick deployment: by the upstream
// model name it hangs, answers after a delay, or fails with 500; it counts
// what reaches it and which connections were closed before it answered.
// The healthy deployment is mock-llm.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, test } from 'node:test';

import { eventually, freePort, sleep, useStack } from './lib/harness.mjs';

const sick = { port: 0, server: null, hits: {}, closedEarly: {}, open: new Set(), seen: new Set() };

async function startSick() {
  sick.port = await freePort();
  sick.server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      let j = {};
      try { j = JSON.parse(body); } catch { /* counted below */ }
      const model = String(j.model || '?');
      sick.hits[model] = (sick.hits[model] || 0) + 1;
      let answered = false;
      sick.open.add(res);
      res.on('close', () => {
        sick.open.delete(res);
        if (!answered) sick.closedEarly[model] = (sick.closedEarly[model] || 0) + 1;
      });
      const answer = () => {
        if (res.destroyed) return;
        answered = true;
        const created = Math.floor(Date.now() / 1000);
        if (j.stream) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          const chunk = (delta, finish = null) => ({ id: 'chatcmpl-sick', object: 'chat.completion.chunk', created, model,
            choices: [{ index: 0, delta, finish_reason: finish }] });
          res.write(`data: ${JSON.stringify(chunk({ role: 'assistant', content: 'slow answer' }))}\n\n`);
          res.write(`data: ${JSON.stringify(chunk({}, 'stop'))}\n\n`);
          res.write(`data: ${JSON.stringify({ id: 'chatcmpl-sick', object: 'chat.completion.chunk', created, model, choices: [],
            usage: { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 } })}\n\n`);
          res.end('data: [DONE]\n\n');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'chatcmpl-sick', object: 'chat.completion', created, model,
          choices: [{ index: 0, message: { role: 'assistant', content: 'slow answer' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 } }));
      };
      if (model.startsWith('cut')) {
        // The first request for a prompt streams some text and is cut; a
        // replay of it says something else.
        const prompt = JSON.stringify(j.messages);
        const first = !sick.seen.has(prompt);
        sick.seen.add(prompt);
        answered = true;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const chunk = (content) => `data: ${JSON.stringify({ id: 'chatcmpl-cut', object: 'chat.completion.chunk',
          created: 1, model, choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
        if (first) {
          res.write(chunk('first words'));
          setTimeout(() => res.destroy(), 50);
        } else {
          res.write(chunk('other words'));
          setTimeout(() => res.destroy(), 50);
        }
      } else if (model.startsWith('fail')) {
        answered = true;
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"sick provider","type":"server_error"}}');
      } else if (model.startsWith('slow')) {
        setTimeout(answer, 2500);
      } // hang*: never answers (until the client leaves)
    });
  });
  await new Promise((r) => sick.server.listen(sick.port, '127.0.0.1', r));
}
after(async () => {
  for (const res of sick.open) res.destroy();
  if (sick.server) await new Promise((r) => sick.server.close(r));
});

const rawYaml = (text) => ({ toString: () => text });
// Breakers stay out of the way: these tests provoke faults on purpose.
const calm = { breaker_failures: 0, breaker_error_rate: 0, retry_backoff_ms: 10, retry_backoff_max_ms: 20 };

let tenant;
const stack = useStack(async () => {
  await startSick();
  const sickProv = (name, extra = {}) => ({ name, kind: 'openai', base_url: `http://127.0.0.1:${sick.port}/v1`, api_key: 'k',
    timeout_ms: 10000, max_retries: 2, ...calm, ...extra });
  const healthy = (name, extra = {}) => ({ name, kind: 'openai', base_url: '{mock}/v1', api_key: 'k', timeout_ms: 10000,
    max_retries: 2, ...calm, ...extra });
  // weight 1000 to 1 with balance weighted: the first attempt goes to the sick one.
  const pair = (sickName, sickModel, healthyName, extra = '') =>
    rawYaml(`[{provider: ${sickName}, upstream_model: ${sickModel}, weight: 1000${extra}}, {provider: ${healthyName}, upstream_model: mock-ok, weight: 1}]`);
  return {
    extraProviders: [
      sickProv('sick-hang'), healthy('ok-hang'),
      sickProv('sick-dep'), healthy('ok-dep'),
      sickProv('sick-slow'), healthy('ok-slow'),
      sickProv('sick-slow-s'), healthy('ok-slow-s'),
      // no retry budget at all: only a retry that moves elsewhere may happen
      sickProv('sick-broke', { retry_budget_ratio: 0, retry_budget_min_per_s: 0 }), healthy('ok-broke'),
      healthy('ok-r1', { stream_idle_timeout_ms: 1000 }), healthy('ok-r2', { stream_idle_timeout_ms: 1000 }),
      sickProv('sick-cut'),
      healthy('ok-r3', { max_retries: 0 }), healthy('ok-r4', { max_retries: 0 }),
      sickProv('sick-a', { max_retries: 2 }), sickProv('sick-b', { max_retries: 2 }), sickProv('sick-c', { max_retries: 1 }),
    ],
    extraModels: [
      // the provider's first_byte_timeout_ms is 30 s (the default); the model's is 300 ms
      { name: 'fb-model', deployments: pair('sick-hang', 'hang-fb', 'ok-hang'), balance: 'weighted', first_byte_timeout_ms: 300,
        input_usd_per_mtok: 1, output_usd_per_mtok: 2 },
      // the deployment's own first-byte deadline
      { name: 'fb-dep', deployments: pair('sick-dep', 'hang-dep', 'ok-dep', ', first_byte_timeout_ms: 300'), balance: 'weighted',
        input_usd_per_mtok: 1, output_usd_per_mtok: 2 },
      { name: 'hedged', deployments: pair('sick-slow', 'slow-h', 'ok-slow'), balance: 'weighted', hedge_after_ms: 200,
        input_usd_per_mtok: 1, output_usd_per_mtok: 2 },
      { name: 'hedged-s', deployments: pair('sick-slow-s', 'slow-hs', 'ok-slow-s'), balance: 'weighted', hedge_after_ms: 200,
        input_usd_per_mtok: 1, output_usd_per_mtok: 2 },
      { name: 'unhedged', deployments: pair('sick-slow', 'slow-u', 'ok-slow'), balance: 'weighted',
        input_usd_per_mtok: 1, output_usd_per_mtok: 2 },
      { name: 'broke', deployments: pair('sick-broke', 'fail-broke', 'ok-broke'), balance: 'weighted',
        input_usd_per_mtok: 1, output_usd_per_mtok: 2 },
      { name: 'resumable', deployments: rawYaml('[{provider: ok-r1, upstream_model: mock-r}, {provider: ok-r2, upstream_model: mock-r}]'),
        stream_resume: true, input_usd_per_mtok: 1, output_usd_per_mtok: 2 },
      // no replay on the model itself (max_retries 0): the replay goes to the fallback
      { name: 'resume-fb', provider: 'ok-r4', upstream_model: 'mock-rf', stream_resume: true,
        input_usd_per_mtok: 1, output_usd_per_mtok: 2 },
      { name: 'resume-primary', provider: 'ok-r3', upstream_model: 'mock-rf', stream_resume: true,
        fallbacks: rawYaml('[resume-fb]'), input_usd_per_mtok: 1, output_usd_per_mtok: 2 },
      { name: 'diverging', provider: 'sick-cut', upstream_model: 'cut-d', stream_resume: true,
        input_usd_per_mtok: 1, output_usd_per_mtok: 2 },
      // everything fails: attempts are bounded by max_retries per model of the chain
      { name: 'doomed-fb', provider: 'sick-c', upstream_model: 'fail-c' },
      { name: 'doomed', deployments: rawYaml('[{provider: sick-a, upstream_model: fail-a}, {provider: sick-b, upstream_model: fail-b}]'),
        fallbacks: rawYaml('[doomed-fb]'), hedge_after_ms: 50 },
    ],
  };
}, async (s) => {
  tenant = await s.makeTenant();
});

async function chat(key, model, content, { stream = false } = {}) {
  const t0 = Date.now();
  const body = { model, stream, messages: [{ role: 'user', content }] };
  if (stream) body.stream_options = { include_usage: true };
  const r = await fetch(stack.brigadeUrl + '/v1/chat/completions', {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, ms: Date.now() - t0 };
}

const userKey = async () => (await stack.makeUserWithKey(tenant.admin_key)).key;

async function metric(re) {
  const t = (await stack.admin('GET', '/metrics')).text;
  const m = t.split('\n').find((l) => re.test(l));
  return m ? Number(m.split(' ').at(-1)) : 0;
}

async function usageRow(key, model) {
  return eventually(async () => {
    const u = stack.must(await stack.api(key, 'GET', '/v1/usage?group_by=model'), 200, 'usage');
    return u.data.find((r) => r.group === model) || false;
  });
}

describe('hang detection from the first-byte deadline', () => {
  for (const [model, where] of [['fb-model', 'the model'], ['fb-dep', 'the deployment']]) {
    test(`a stream that sends nothing is given up after ${where}'s first_byte_timeout_ms and served elsewhere`, { timeout: 20_000 }, async () => {
      const key = await userKey();
      const r = await chat(key, model, `hang ${Date.now()} [[tokens:3]]`, { stream: true });
      assert.equal(r.status, 200, r.text.slice(0, 300));
      assert.match(r.text, /data: \[DONE\]/);
      assert.equal(r.headers.get('x-brigade-deployment'), `ok-${model === 'fb-model' ? 'hang' : 'dep'}/mock-ok`);
      // 300 ms of waiting, not the provider's 30 s nor the call's deadline
      assert.ok(r.ms < 3000, `took ${r.ms} ms`);
    });
  }
});

describe('retries that move to another provider', () => {
  test('do not need the failing provider\'s retry budget (it has none)', { timeout: 20_000 }, async () => {
    const key = await userKey();
    for (let i = 0; i < 3; i++) {
      const before = sick.hits['fail-broke'] || 0;
      const r = await chat(key, 'broke', `broke ${i} ${Date.now()}`);
      assert.equal(r.status, 200, r.text.slice(0, 300));
      assert.equal(r.headers.get('x-brigade-deployment'), 'ok-broke/mock-ok');
      assert.equal((sick.hits['fail-broke'] || 0) - before, 1, 'one attempt on the failing provider, no retry of it');
    }
  });
});

describe('hedging after a slow first byte', () => {
  for (const stream of [false, true]) {
    const model = stream ? 'hedged-s' : 'hedged';
    const slowModel = stream ? 'slow-hs' : 'slow-h';
    test(`${stream ? 'streamed' : 'non-streamed'}: the hedge wins, is charged once; the slow attempt is cancelled`, { timeout: 20_000 }, async () => {
      const key = await userKey();
      const winsBefore = await metric(new RegExp(`^brigade_upstream_hedges_total\\{model="${model}",winner="hedge"\\}`));
      const closedBefore = sick.closedEarly[slowModel] || 0;
      const hitsBefore = sick.hits[slowModel] || 0;
      const r = await chat(key, model, `hedge ${Date.now()} [[tokens:4]]`, { stream });
      assert.equal(r.status, 200, r.text.slice(0, 300));
      assert.ok(r.ms < 2000, `took ${r.ms} ms: the slow attempt (2.5 s) was not waited for`);
      assert.equal(r.headers.get('x-brigade-deployment'), `ok-slow${stream ? '-s' : ''}/mock-ok`);
      assert.doesNotMatch(r.text, /slow answer/, 'nothing of the loser reached the client');
      assert.equal((sick.hits[slowModel] || 0) - hitsBefore, 1, 'the slow deployment got the first attempt');
      await eventually(() => (sick.closedEarly[slowModel] || 0) === closedBefore + 1, { timeoutMs: 3000 });
      // charged once: the winner's usage (mock-llm: 4 output tokens), one row
      const row = await usageRow(key, model);
      assert.equal(row.requests, 1);
      assert.equal(row.output_tokens, 4, JSON.stringify(row));
      assert.equal(await metric(new RegExp(`^brigade_upstream_hedges_total\\{model="${model}",winner="hedge"\\}`)), winsBefore + 1);
    });
  }

  test('off by default: a model without hedge_after_ms waits for the slow deployment', { timeout: 20_000 }, async () => {
    const key = await userKey();
    const r = await chat(key, 'unhedged', `nohedge ${Date.now()}`);
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.equal(r.headers.get('x-brigade-deployment'), 'sick-slow/slow-u');
    assert.ok(r.ms >= 2000, `took ${r.ms} ms`);
  });
});

describe('no retry storm', () => {
  test('when everything fails, attempts per request stay within max_retries per model and one hedge each', { timeout: 30_000 }, async () => {
    const key = await userKey();
    const n = 10;
    const hits = () => (sick.hits['fail-a'] || 0) + (sick.hits['fail-b'] || 0) + (sick.hits['fail-c'] || 0);
    const before = hits();
    const rs = await Promise.all(Array.from({ length: n }, (_, i) => chat(key, 'doomed', `doomed ${i} ${Date.now()}`)));
    for (const r of rs) assert.equal(r.status, 502, r.text.slice(0, 300));
    await sleep(100);
    const attempts = hits() - before;
    // doomed: 1 + max_retries (2) = 3 attempts, each with at most one hedge
    // beside it (hedge_after_ms 50; the failures are quick, so usually none);
    // then doomed-fb: 1 + 1 = 2 (one deployment: nowhere to hedge to).
    assert.ok(attempts <= n * (3 * 2 + 2), `${attempts} upstream attempts for ${n} requests`);
    assert.ok(attempts >= n * 2, `${attempts} upstream attempts for ${n} requests`);
  });
});

describe('stream_resume: a stream cut after text, resumed by replay', () => {
  test('the replay repeats the delivered text: the client gets the whole answer once, charged once', { timeout: 20_000 }, async () => {
    const key = await userKey();
    const before = await metric(/^brigade_upstream_stream_resumes_total\{model="resumable",outcome="resumed"\}/);
    const r = await chat(key, 'resumable', `resume ${Date.now()} [[tokens:8]] [[fault:truncate:1]]`, { stream: true });
    assert.equal(r.status, 200);
    assert.match(r.text, /data: \[DONE\]/);
    assert.doesNotMatch(r.text, /"error"/);
    const events = r.text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)));
    const text = events.map((e) => e.choices?.[0]?.delta?.content || '').join('');
    // mock-llm's 8 words, each once, in order
    assert.equal(text, 'alpha bravo charlie delta echo foxtrot golf hotel');
    assert.equal(events.filter((e) => e.choices?.[0]?.finish_reason === 'stop').length, 1);
    const row = await usageRow(key, 'resumable');
    assert.equal(row.requests, 1);
    assert.equal(row.output_tokens, 8, JSON.stringify(row));
    assert.equal(await metric(/^brigade_upstream_stream_resumes_total\{model="resumable",outcome="resumed"\}/), before + 1);
  });

  test('with no replay left on the model, the replay goes to a fallback that resumes too', { timeout: 20_000 }, async () => {
    const key = await userKey();
    const r = await chat(key, 'resume-primary', `resumefb ${Date.now()} [[tokens:6]] [[fault:truncate:1]]`, { stream: true });
    assert.equal(r.status, 200);
    assert.match(r.text, /data: \[DONE\]/);
    const events = r.text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)));
    assert.ok(!events.some((e) => e.error), r.text);
    assert.equal(events.map((e) => e.choices?.[0]?.delta?.content || '').join(''), 'alpha bravo charlie delta echo foxtrot');
    // charged once, for the model that finished it
    const row = await usageRow(key, 'resume-fb');
    assert.equal(row.requests, 1);
    assert.equal(row.output_tokens, 6, JSON.stringify(row));
  });

  test('a replay that says something else ends the stream with the error; nothing contradictory reaches the client', { timeout: 20_000 }, async () => {
    const key = await userKey();
    const r = await chat(key, 'diverging', `diverge ${Date.now()}`, { stream: true });
    assert.equal(r.status, 200);
    assert.match(r.text, /first words/);
    assert.doesNotMatch(r.text, /other words/);
    assert.match(r.text, /"error"/);
    assert.doesNotMatch(r.text, /\[DONE\]/);
    assert.ok(await metric(/^brigade_upstream_stream_resumes_total\{model="diverging",outcome="diverged"\}/) >= 1);
  });
});
