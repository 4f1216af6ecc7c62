// embeddings.test.mjs — POST /v1/embeddings: embedding models from the
// config (`kind: embedding`, priced per million input tokens) served by an
// OpenAI-compatible provider (mock-llm's /v1/embeddings) and by the
// in-process mock, driven by the official openai SDK (which asks for
// base64 by default), the `ai` SDK's openai.embedding() and LangChain's
// OpenAIEmbeddings with only the base URL and key changed. The vectors are
// the mock's deterministic unit vectors; the call is charged on its input.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createOpenAI } from '@ai-sdk/openai';
import { OpenAIEmbeddings } from '@langchain/openai';
import { embed, embedMany } from 'ai';

import { eventually, useStack } from './lib/harness.mjs';

const PRICE = { 'embed-test': 0.02, 'local-embed': 0.1 };
let tenant;
let userKey;
const stack = useStack({
  extraModels: [
    { name: 'embed-test', provider: 'upstream-mock', upstream_model: 'mock-embed', kind: 'embedding', input_usd_per_mtok: PRICE['embed-test'] },
    { name: 'local-embed', provider: 'local', kind: 'embedding', input_usd_per_mtok: PRICE['local-embed'], dimensions: 1024 },
  ],
}, async (s) => {
  tenant = await s.makeTenant();
  ({ key: userKey } = await s.makeUserWithKey(tenant.admin_key));
});

const norm = (v) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
const close = (a, b, eps = 1e-5) => Math.abs(a - b) <= eps;

for (const model of ['embed-test', 'local-embed']) {
  describe(`embeddings via ${model}`, () => {
    test('openai SDK (base64 by default): unit vectors, deterministic, one per input', async () => {
      const client = stack.openaiClient(userKey);
      const r = await client.embeddings.create({ model, input: ['alpha', 'beta', 'alpha'] });
      assert.equal(r.object, 'list');
      assert.equal(r.model, model);
      assert.equal(r.data.length, 3);
      for (const [i, d] of r.data.entries()) {
        assert.equal(d.index, i);
        assert.equal(d.embedding.length, 1536);
        assert.ok(close(norm(d.embedding), 1), `norm ${norm(d.embedding)}`);
      }
      assert.deepEqual(r.data[0].embedding, r.data[2].embedding);
      assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding);
      assert.equal(r.usage.prompt_tokens, 2 + 1 + 2);
    });

    test('encoding_format float and dimensions', async () => {
      const r = await stack.api(userKey, 'POST', '/v1/embeddings', { model, input: 'alpha', encoding_format: 'float', dimensions: 64 });
      assert.equal(r.status, 200, r.text);
      const v = r.body.data[0].embedding;
      assert.equal(v.length, 64);
      assert.ok(close(norm(v), 1));
      const b = await stack.openaiClient(userKey).embeddings.create({ model, input: 'alpha', dimensions: 64 });
      assert.ok(v.every((x, i) => close(x, b.data[0].embedding[i], 1e-6)), 'base64 and float agree');
    });

    test('the ai SDK: embed and embedMany with openai.embedding()', async () => {
      const openai = createOpenAI({ apiKey: userKey, baseURL: stack.brigadeUrl + '/v1' });
      const one = await embed({ model: openai.embedding(model), value: 'sunny day', maxRetries: 0 });
      assert.equal(one.embedding.length, 1536);
      assert.ok(close(norm(one.embedding), 1));
      assert.equal(one.usage.tokens, 3);
      const many = await embedMany({ model: openai.embedding(model), values: ['a', 'b', 'sunny day'], maxRetries: 0 });
      assert.equal(many.embeddings.length, 3);
      assert.ok(many.embeddings[2].every((x, i) => close(x, one.embedding[i], 1e-6)));
    });

    test('LangChain OpenAIEmbeddings: embedQuery and embedDocuments', async () => {
      const emb = new OpenAIEmbeddings({ model, apiKey: userKey, configuration: { baseURL: stack.brigadeUrl + '/v1' }, maxRetries: 0 });
      const q = await emb.embedQuery('what is the weather');
      assert.equal(q.length, 1536);
      const docs = await emb.embedDocuments(['what is the weather', 'another text']);
      assert.equal(docs.length, 2);
      assert.ok(docs[0].every((x, i) => close(x, q[i], 1e-6)));
    });
  });
}

describe('embeddings: governance and errors', () => {
  test('the call is charged on its input tokens at the model\'s price', async () => {
    const { key } = await stack.makeUserWithKey(tenant.admin_key);
    const r = await stack.openaiClient(key).embeddings.create({ model: 'local-embed', input: ['x'.repeat(400), 'y'.repeat(40)] });
    assert.equal(r.usage.prompt_tokens, 110);
    await eventually(async () => {
      const u = await stack.api(key, 'GET', '/v1/usage?group_by=model');
      const row = u.body.data.find((x) => x.group === 'local-embed');
      assert.ok(row, JSON.stringify(u.body));
      assert.equal(row.input_tokens, 110);
      assert.equal(row.output_tokens, 0);
      assert.ok(close(row.cost_usd, 110 * PRICE['local-embed'] / 1e6, 1e-12), `cost ${row.cost_usd}`);
      return true;
    });
  });

  test('bad requests are 400s naming the field', async () => {
    const post = (body) => stack.api(userKey, 'POST', '/v1/embeddings', { model: 'embed-test', ...body });
    for (const [body, param] of [
      [{}, 'input'],
      [{ input: '' }, 'input'],
      [{ input: [] }, 'input'],
      [{ input: [1, 2, 3] }, 'input'],
      [{ input: ['ok', 7] }, 'input[1]'],
      [{ input: 'x', encoding_format: 'int8' }, 'encoding_format'],
      [{ input: 'x', dimensions: 0 }, 'dimensions'],
      [{ input: 'x', dimensions: 1.5 }, 'dimensions'],
      [{ input: 'x', model: 'gpt-test' }, 'model'],
      [{ input: 'x', stream: true }, 'stream'],
      [{ input: Array(2049).fill('a') }, 'input'],
      [{ input: 'x'.repeat(40000) }, 'input'],
    ]) {
      const r = await post(body);
      assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${r.text.slice(0, 200)}`);
      assert.equal(r.body.error.param, param, JSON.stringify(r.body));
    }
    const r = await stack.api(userKey, 'POST', '/v1/embeddings', { model: 'local-embed', input: 'x', dimensions: 1025 });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /1 to 1024/);
  });

  test('an embedding model is not a chat model', async () => {
    const r = await stack.api(userKey, 'POST', '/v1/chat/completions', { model: 'embed-test', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'wrong_model_kind');
  });
});
