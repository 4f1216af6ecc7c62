// server.jsx — the server admin's pages: tenants, provider health, and the
// key metrics of the last hour, from the process (GET /v1/metrics/recent).
import { useState } from 'preact/hooks';
import { api, apiText } from './api.js';
import { useApi, Err, Table, Button, fmtTime, Chart } from './ui.jsx';

export function Tenants() {
  const list = useApi('/v1/tenants?limit=100');
  const [name, setName] = useState('');
  const [made, setMade] = useState(null);
  const [err, setErr] = useState(null);
  return (
    <div>
      <h2>Tenants</h2>
      <Err error={list.error || err} />
      <div class="row">
        <input placeholder="name" value={name} onInput={(e) => setName(e.target.value)} />
        <Button onClick={async () => { try { const t = await api('POST', '/v1/tenants', { name }); setMade(t.admin_key); setName(''); list.reload(); } catch (e) { setErr(e); } }}>Create tenant</Button>
      </div>
      {made && <p>Admin key (shown once): <span class="mono">{made}</span></p>}
      <Table testid="tenants" rows={list.data ? list.data.data : []} columns={[
        { key: 'id', label: 'id' }, { key: 'name', label: 'name' }, { key: 'default_tier', label: 'default tier' },
        { key: 'limits', label: 'limits' }, { key: 'created_at', label: 'created', render: (r) => fmtTime(r.created_at) }]} />
    </div>
  );
}

// Provider health from /readyz and the breaker, queue and upstream series
// of /metrics.
export function Health() {
  const ready = useApi('/readyz');
  const [metrics, setMetrics] = useState(null);
  const [err, setErr] = useState(null);
  const load = () => apiText('/metrics').then(setMetrics, setErr);
  if (metrics === null && !err) load();
  // histogram buckets are noise here: their _sum and _count stay
  const lines = (metrics || '').split('\n').filter((l) => l && !l.startsWith('#') && !l.includes('_bucket{') &&
    /(breaker|queue|upstream|deployment|provider)/.test(l));
  return (
    <div>
      <h2>Provider health</h2>
      <Err error={err} />
      {ready.data && <p data-testid="readyz" class={ready.data.status === 'ready' ? 'ok' : 'err'}>{`readiness: ${ready.data.status}`}</p>}
      {ready.error && <p class="err">{`readiness: ${ready.error.status} ${ready.error.message}`}</p>}
      {ready.data && ready.data.checks && (
        <Table testid="readyz-checks" rows={Object.entries(ready.data.checks).flatMap(([k, v]) => (
          v && typeof v === 'object'
            ? Object.entries(v).map(([name, state]) => ({ id: `${k}/${name}`, check: k, name, state: String(state) }))
            : [{ id: k, check: k, name: '', state: String(v) }]))}
          columns={[{ key: 'check', label: 'check' }, { key: 'name', label: 'provider / deployment (breaker)' }, { key: 'state', label: 'state' }]} />
      )}
      <h3>Series of /metrics</h3>
      <Table testid="health" rows={lines.map((l, i) => { const cut = l.lastIndexOf(' '); return { id: i, series: l.slice(0, cut), value: l.slice(cut + 1) }; })}
        columns={[{ key: 'series', label: 'series' }, { key: 'value', label: 'value', num: true }]} empty="no provider series yet" />
      <Button kind="ghost" onClick={load}>Refresh</Button>
    </div>
  );
}

export function Metrics() {
  const m = useApi('/v1/metrics/recent');
  const mins = m.data ? m.data.minutes : [];
  const x = mins.map((r) => r.start);
  return (
    <div>
      <h2>The last hour</h2>
      <Err error={m.error} />
      <div class="charts" data-testid="metrics">
        <Chart title="requests / min" x={x} series={[{ label: 'requests', values: mins.map((r) => r.requests) }, { label: '4xx', values: mins.map((r) => r.errors_4xx) }, { label: '5xx', values: mins.map((r) => r.errors_5xx) }]} />
        <Chart title="latency (ms)" x={x} series={[{ label: 'p50', values: mins.map((r) => r.p50_ms) }, { label: 'p99', values: mins.map((r) => r.p99_ms) }]} />
        <Chart title="tokens / min" x={x} series={[{ label: 'tokens', values: mins.map((r) => r.tokens) }]} />
        <Chart title="cost / min (USD)" x={x} series={[{ label: 'cost', values: mins.map((r) => r.cost_usd) }]} />
      </div>
      {m.data && <p class="muted" data-testid="metrics-total">{`requests in the last hour: ${mins.reduce((a, r) => a + r.requests, 0)}`}</p>}
      <Button kind="ghost" onClick={m.reload}>Refresh</Button>
    </div>
  );
}
