// usage.test.mjs — usage reports: GET /v1/usage?format=csv parses as RFC
// 4180 and matches the JSON totals for every grouping; `brigade usage` on
// the command line (while the server runs) prints the same CSV bytes and
// the same JSON rows; bad parameters are refused clearly on both.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { errorOf, runBrigade, sleep, storeCliArgs, useStack } from './lib/harness.mjs';

const stack = useStack();
const w = {};

/** A small RFC 4180 parser: quoted fields, doubled quotes, CRLF records. */
function parseCsv(text) {
  const rows = [];
  let row = [], field = '', i = 0, quoted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (c === '"') { quoted = false; i++; continue; }
      field += c; i++; continue;
    }
    if (c === '"') { quoted = true; i++; continue; }
    if (c === ',') { row.push(field); field = ''; i++; continue; }
    if (c === '\r' && text[i + 1] === '\n') { row.push(field); rows.push(row); row = []; field = ''; i += 2; continue; }
    field += c; i++;
  }
  assert.equal(field, '', 'the last record ends with CRLF');
  return rows;
}

function csvObjects(text) {
  const [header, ...rows] = parseCsv(text);
  return rows.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])));
}

describe('usage reports', () => {
  test('setup: two users spend on two models', async () => {
    w.t = await stack.makeTenant();
    w.u1 = await stack.makeUserWithKey(w.t.admin_key);
    w.u2 = await stack.makeUserWithKey(w.t.admin_key);
    for (const [u, model, n] of [[w.u1, 'gpt-test', 3], [w.u1, 'local-model', 4], [w.u2, 'gpt-test', 5]]) {
      const c = stack.openaiClient(u.key);
      await c.chat.completions.create({ model, messages: [{ role: 'user', content: `hello [[tokens:${n}]]` }] });
    }
    await sleep(400);   // usage rows are committed within STORE_USAGE_FLUSH_MS
  });

  for (const g of ['day', 'model', 'user']) {
    test(`format=csv matches the JSON (group_by=${g})`, async () => {
      const j = await stack.api(w.t.admin_key, 'GET', `/v1/usage?group_by=${g}`);
      assert.equal(j.status, 200);
      const c = await stack.api(w.t.admin_key, 'GET', `/v1/usage?group_by=${g}&format=csv`);
      assert.equal(c.status, 200);
      assert.match(c.headers.get('content-type'), /^text\/csv/);
      const text = typeof c.body === 'string' ? c.body : c.text;
      assert.ok(text.startsWith('group,requests,input_tokens,output_tokens,cost_usd\r\n'));
      const rows = csvObjects(text);
      assert.equal(rows.length, j.body.data.length);
      let req = 0, cost = 0;
      for (let i = 0; i < rows.length; i++) {
        const a = rows[i], b = j.body.data[i];
        assert.equal(a.group, b.group);
        assert.equal(Number(a.requests), b.requests);
        assert.equal(Number(a.input_tokens), b.input_tokens);
        assert.equal(Number(a.output_tokens), b.output_tokens);
        assert.ok(Math.abs(Number(a.cost_usd) - b.cost_usd) < 1e-9);
        req += Number(a.requests);
        cost += Number(a.cost_usd);
      }
      assert.equal(req, 3);
      assert.ok(cost > 0);
      w[`csv_${g}`] = text;
      w[`json_${g}`] = j.body.data;
    });
  }

  test('a user gets its own CSV; bad parameters are 400', async () => {
    const c = await stack.api(w.u1.key, 'GET', '/v1/usage?format=csv&group_by=model');
    assert.equal(c.status, 200);
    const rows = csvObjects(c.text);
    assert.deepEqual(rows.map((r) => r.group).sort(), ['gpt-test', 'local-model']);
    for (const [q, param] of [['format=xml', 'format'], ['from=2026-02-30x', 'from'],
      ['from=2026-02-02&to=2026-02-01', 'to'], ['group_by=week', 'group_by']]) {
      const r = await stack.api(w.t.admin_key, 'GET', `/v1/usage?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(errorOf(r).param, param, q);
    }
  });

  test('brigade usage prints the same report while the server runs', async () => {
    const base = ['usage', '--data-dir', stack.dataDir, ...storeCliArgs(stack), '--tenant', w.t.id];
    for (const g of ['day', 'model', 'user']) {
      const csv = await runBrigade([...base, '--group-by', g, '--format', 'csv']);
      assert.equal(csv.code, 0, csv.stderr);
      assert.equal(csv.stdout, w[`csv_${g}`], `csv ${g}`);
      const json = await runBrigade([...base, '--group-by', g, '--format', 'json']);
      assert.equal(json.code, 0, json.stderr);
      assert.deepEqual(JSON.parse(json.stdout).data, w[`json_${g}`], `json ${g}`);
    }
    const table = await runBrigade([...base, '--group-by', 'model']);
    assert.equal(table.code, 0);
    assert.match(table.stdout, /GROUP\s+REQUESTS/);
    assert.match(table.stdout, /gpt-test\s+2\s/);
    assert.match(table.stdout, /TOTAL\s+3\s/);
    const one = await runBrigade([...base, '--user', w.u2.user.id, '--format', 'json']);
    assert.equal(JSON.parse(one.stdout).data.reduce((s, r) => s + r.requests, 0), 1);
    // every tenant: a tenant_id column
    const all = await runBrigade(['usage', '--data-dir', stack.dataDir, ...storeCliArgs(stack), '--format', 'csv', '--group-by', 'model']);
    assert.equal(all.code, 0);
    assert.ok(all.stdout.startsWith('tenant_id,group,'));
    assert.ok(all.stdout.includes(`${w.t.id},gpt-test,2,`));
  });

  test('brigade usage: --help and clear errors', async () => {
    const h = await runBrigade(['usage', '--help']);
    assert.equal(h.code, 0);
    for (const opt of ['--tenant', '--user', '--from', '--to', '--group-by', '--format', '--data-dir', '--config']) {
      assert.ok(h.stdout.includes(opt), opt);
    }
    const bad = [
      [['--group-by', 'week'], /--group-by must be day, model or user/],
      [['--format', 'xml'], /--format must be table, csv or json/],
      [['--from', 'soon'], /not a date/],
      [['--from', '2026-02-02', '--to', '2026-02-01'], /--to must be after --from/],
      [['--user', 'usr_x'], /--user needs --tenant/],
      [['--tenant'], /needs a value/],
      [['--frobnicate', 'x'], /unknown option/],
    ];
    for (const [args, re] of bad) {
      const r = await runBrigade(['usage', '--data-dir', stack.dataDir, ...args]);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, re, args.join(' '));
    }
    const nc = await runBrigade(['usage', '--data-dir', stack.dataDir, '--config', `${stack.dataDir}/nope.yaml`]);
    assert.equal(nc.code, 2);
    assert.match(nc.stderr, /nope\.yaml/);
    const nt = await runBrigade(['usage', '--data-dir', stack.dataDir, ...storeCliArgs(stack), '--tenant', 'ten_nope']);
    assert.equal(nt.code, 1);
    assert.match(nt.stderr, /no tenant ten_nope/);
    const nu = await runBrigade(['usage', '--data-dir', stack.dataDir, ...storeCliArgs(stack), '--tenant', w.t.id, '--user', 'usr_nope']);
    assert.equal(nu.code, 1);
    assert.match(nu.stderr, /no user usr_nope/);
  });
});
