// guardrails.jsx — the guard's decisions: a tenant admin's Guardrails page
// (counts by detector, action and day; the list, filtered by action or by
// one run, paged) and the decisions of one run under a user's run view.
// The rows hold no flagged text; tool names and labels are shown as text
// (preact text nodes), whatever a model made them.
import { useState } from 'preact/hooks';
import { useApi, Err, Table, Button, fmtTime, Chart, Bars } from './ui.jsx';

const ACTIONS = ['flag', 'spotlight', 'drop', 'block', 'refuse', 'approval', 'withhold'];

// {key: count} → Bars rows, largest first
const barRows = (counts) => Object.entries(counts || {})
  .map(([group, n]) => ({ group, n })).sort((a, b) => b.n - a.n);

const COLUMNS = (runLink) => [
  { key: 'created_at', label: 'time', render: (r) => fmtTime(r.created_at) },
  { key: 'user_id', label: 'user' },
  { key: 'run_id', label: 'run', render: (r) => (r.run_id ? <a class="mono" href={runLink(r.run_id)} data-testid={`guard-run-${r.run_id}`}>{r.run_id}</a> : '') },
  { key: 'channel', label: 'channel' },
  { key: 'tool', label: 'tool', render: (r) => <span class="mono">{r.tool || ''}</span> },
  { key: 'detector', label: 'detector' },
  { key: 'score', label: 'score', num: true, render: (r) => (r.score === null ? '' : r.score.toFixed(3)) },
  { key: 'action', label: 'action' },
  { key: 'labels', label: 'labels', render: (r) => (r.labels || []).join(', ') },
];

function Summary() {
  const s = useApi('/v1/guard/summary');
  const d = s.data;
  const days = d ? Object.keys(d.by_day).sort() : [];
  return (
    <div>
      <Err error={s.error} />
      {d && <p data-testid="guard-total">{`${d.total} decisions${d.truncated ? ' (counts cut short)' : ''}`}</p>}
      <div class="charts">
        <Bars title="by detector" rows={d ? barRows(d.by_detector) : []} value={(r) => r.n} testid="guard-by-detector" />
        <Bars title="by action" rows={d ? barRows(d.by_action) : []} value={(r) => r.n} testid="guard-by-action" />
        <Bars title="by channel" rows={d ? barRows(d.by_channel) : []} value={(r) => r.n} testid="guard-by-channel" />
        <Chart title="decisions by day" bars x={days.map((k) => Date.parse(k + 'T00:00:00Z') / 1000)}
          series={[{ label: 'decisions', values: days.map((k) => d.by_day[k]) }]} />
      </div>
    </div>
  );
}

// A tenant admin's page; `runId` (#/guardrails/RUN) narrows the list to one run.
export function Guardrails({ runId }) {
  const [action, setAction] = useState('');
  const [cursor, setCursor] = useState(null);
  const q = new URLSearchParams({ limit: '50' });
  if (action) q.set('action', action);
  if (runId) q.set('run', runId);
  if (cursor) q.set('cursor', cursor);
  const list = useApi(`/v1/guard/decisions?${q}`);
  const rows = list.data ? list.data.data : [];
  return (
    <div>
      <h2>Guardrails</h2>
      <p class="muted">Every decision of the guard that was not “allow”: flagged, spotlighted or dropped tool
        output, flagged or blocked messages, calls refused in a tainted run, withheld answers. The text that was
        flagged is never kept.</p>
      <Summary />
      <h3>{runId ? `Decisions of run ${runId}` : 'Decisions'}</h3>
      <div class="row">
        <label>{'action '}
          <select value={action} data-testid="guard-action"
            onChange={(e) => { setAction(e.target.value); setCursor(null); }}>
            <option value="">any</option>
            {ACTIONS.map((a) => <option key={a} value={a}>{a}</option>)}
          </select>
        </label>
        {runId && <a href="#/guardrails" data-testid="guard-all-runs">all runs</a>}
        {cursor && <Button kind="ghost" onClick={() => setCursor(null)}>Newest</Button>}
        {list.data && list.data.has_more &&
          <Button kind="ghost" data-testid="guard-older" onClick={() => setCursor(list.data.next_cursor)}>Older</Button>}
      </div>
      <Err error={list.error} />
      <Table testid="guard-decisions" rows={rows} empty="no decisions" columns={COLUMNS((id) => `#/guardrails/${encodeURIComponent(id)}`)} />
    </div>
  );
}

// Under a user's run view: the guard's decisions about that run.
export function RunDecisions({ runId }) {
  const list = useApi(`/v1/guard/decisions?run=${encodeURIComponent(runId)}&limit=100`);
  return (
    <div>
      <h3>Guard decisions</h3>
      <Err error={list.error} />
      <Table testid="run-guard-decisions" rows={list.data ? list.data.data : []} empty="none"
        columns={COLUMNS((id) => `#/run/${encodeURIComponent(id)}`).filter((c) => c.key !== 'user_id' && c.key !== 'run_id')} />
    </div>
  );
}
