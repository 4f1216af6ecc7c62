// user.jsx — a user's pages: chat over sessions (streamed, with tool calls,
// results and approvals as they happen), a run, its trace as a waterfall,
// memory, connections, and usage against the budget.
import { useEffect, useState } from 'preact/hooks';
import { api, stream, traceIdOf } from './api.js';
import { useApi, Err, Table, Button, fmtTime, fmtUsd, Chart } from './ui.jsx';
import { RunDecisions } from './guardrails.jsx';

function MessageView({ m }) {
  if (m.role === 'assistant' && m.tool_calls) {
    return (
      <div class="msg tool" data-testid="tool-call">
        {m.tool_calls.map((c) => <div key={c.id}>{`→ ${c.function.name}(${c.function.arguments})`}</div>)}
      </div>
    );
  }
  if (m.role === 'tool') return <div class="msg tool" data-testid="tool-result">{`← ${m.content ?? ''}`}</div>;
  return <div class={`msg ${m.role}`} data-testid={`msg-${m.role}`}>{m.content ?? ''}</div>;
}

function ApprovalCard({ a, onDone }) {
  const [err, setErr] = useState(null);
  const [done, setDone] = useState(null);
  const decide = async (decision) => {
    try {
      const r = await api('POST', `/v1/runs/${encodeURIComponent(a.run_id)}/approvals/${encodeURIComponent(a.id)}`, { decision });
      setDone(r.status);
      onDone && onDone();
    } catch (e) { setErr(e); }
  };
  return (
    <div class="msg approval" data-testid="approval">
      <div><b>Approval needed:</b> {a.tool} {a.arguments}</div>
      <div class="muted">{a.reason}</div>
      {done ? <div class="ok" data-testid="approval-status">{done}</div> : (
        <div class="row">
          <Button onClick={() => decide('approve')} data-testid="approve">Approve</Button>
          <Button kind="danger" onClick={() => decide('deny')} data-testid="deny">Deny</Button>
        </div>
      )}
      <Err error={err} />
    </div>
  );
}

function LiveEvent({ e }) {
  switch (e.name) {
    case 'tool.call': return <div class="msg tool" data-testid="live-tool-call">{`→ ${e.data.name}(${e.data.arguments})`}</div>;
    case 'tool.result': return <div class="msg tool" data-testid="live-tool-result">{`← ${e.data.ok ? '' : '(failed) '}${e.data.preview}`}</div>;
    case 'approval.required': return <ApprovalCard a={{ ...e.data, tool: e.data.tool }} />;
    case 'auth.required': return <div class="msg event">{`${e.data.tool} needs your ${e.data.provider} connection: see Connections`}</div>;
    case 'run.failed': return <div class="msg event err">{`run ${e.data.status}: ${e.data.error && e.data.error.message}`}</div>;
    case 'model.degraded': return <div class="msg event">{`budget nearly spent: now on ${e.data.to}`}</div>;
    default: return null;
  }
}

export function Chat({ sessionId }) {
  const sessions = useApi('/v1/sessions?limit=100');
  const agents = useApi('/v1/agents');
  const [agent, setAgent] = useState('');
  const [err, setErr] = useState(null);
  const create = async () => {
    try {
      const name = agent || (agents.data && agents.data.data[0] && agents.data.data[0].id);
      const s = await api('POST', '/v1/sessions', { agent: name });
      sessions.reload();
      location.hash = `#/chat/${s.id}`;
    } catch (e) { setErr(e); }
  };
  return (
    <div class="chat">
      <div class="card sessions">
        <div class="row">
          <select value={agent || (agents.data && agents.data.data[0] ? agents.data.data[0].id : '')} onChange={(e) => setAgent(e.target.value)} data-testid="agent">
            {(agents.data ? agents.data.data : []).map((a) => <option key={a.id} value={a.id}>{a.id}</option>)}
          </select>
          {/* Not before the agents are known: a click then asked for a
              session of no agent, and the server refused it. */}
          <Button onClick={create} disabled={!agents.data} data-testid="new-session">New session</Button>
        </div>
        <Err error={err || sessions.error || agents.error} />
        {(sessions.data ? sessions.data.data : []).map((s) => (
          <a key={s.id} href={`#/chat/${s.id}`} class={s.id === sessionId ? 'on' : ''}>
            <div class="mono">{s.id}</div>
            <div class="muted">{`${s.agent} · ${s.message_count} messages`}</div>
          </a>
        ))}
      </div>
      <div>{sessionId ? <Conversation key={sessionId} sessionId={sessionId} onRun={sessions.reload} /> : <p class="muted">Pick or start a session.</p>}</div>
    </div>
  );
}

function Conversation({ sessionId, onRun }) {
  const msgs = useApi(`/v1/sessions/${encodeURIComponent(sessionId)}/messages?limit=500`);
  const [text, setText] = useState('');
  const [live, setLive] = useState([]);
  const [delta, setDelta] = useState('');
  const [busy, setBusy] = useState(false);
  const [lastRun, setLastRun] = useState(null);
  const [chunks, setChunks] = useState(0);
  const [err, setErr] = useState(null);
  const send = async () => {
    if (!text.trim()) return;
    setErr(null); setLive([]); setDelta(''); setBusy(true); setChunks(0);
    const content = text;
    setText('');
    let runId = null;
    try {
      const tp = await stream(`/v1/sessions/${encodeURIComponent(sessionId)}/messages`, { content, stream: true }, (name, data) => {
        if (data.run_id) runId = data.run_id;
        if (name === 'message.delta') { setDelta((d) => d + data.text); setChunks((n) => n + 1); }
        else if (name === 'run.completed') setDelta('');
        else if (name === 'tool.call') { setDelta(''); setLive((l) => [...l, { name, data }]); }
        else setLive((l) => [...l, { name, data }]);
      });
      setLastRun({ id: runId, trace: traceIdOf(tp) });
    } catch (e) { setErr(e); }
    setBusy(false);
    setDelta('');
    msgs.reload();
    if (onRun) onRun();
  };
  return (
    <div class="card">
      <h2 class="mono">{sessionId}</h2>
      <Err error={msgs.error || err} />
      <div class="msgs" data-testid="messages">
        {(msgs.data ? msgs.data.data : []).map((m) => <MessageView key={m.seq} m={m} />)}
        {busy && live.map((e, i) => <LiveEvent key={i} e={e} />)}
        {delta && <div class="msg assistant" data-testid="streaming">{delta}</div>}
        {!busy && live.filter((e) => e.name === 'run.failed').map((e, i) => <LiveEvent key={i} e={e} />)}
      </div>
      <div class="row">
        <textarea value={text} onInput={(e) => setText(e.target.value)} placeholder="Message" data-testid="compose"
          onKeyDown={(e) => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); send(); } }} />
        <Button onClick={send} disabled={busy} data-testid="send">{busy ? 'Running…' : 'Send'}</Button>
      </div>
      {lastRun && lastRun.id && (
        <div class="row muted" data-testid="last-run">
          <span>{`last run ${lastRun.id}`}</span>
          <span data-testid="chunks">{`streamed in ${chunks} chunks`}</span>
          <a href={`#/run/${lastRun.id}`}>run</a>
          {lastRun.trace && <a href={`#/trace/${lastRun.trace}`} data-testid="trace-link">trace</a>}
        </div>
      )}
    </div>
  );
}

export function Approvals() {
  const list = useApi('/v1/approvals');
  return (
    <div>
      <h2>Pending approvals</h2>
      <Err error={list.error} />
      {list.data && list.data.data.length === 0 && <p class="muted">none pending</p>}
      {(list.data ? list.data.data : []).map((a) => <ApprovalCard key={a.id} a={a} onDone={() => setTimeout(list.reload, 300)} />)}
      <Button kind="ghost" onClick={list.reload}>Refresh</Button>
    </div>
  );
}

export function Run({ runId }) {
  const run = useApi(`/v1/runs/${encodeURIComponent(runId)}`);
  const [err, setErr] = useState(null);
  const r = run.data;
  return (
    <div class="card">
      <h2 class="mono">{runId}</h2>
      <Err error={run.error || err} />
      {r && (
        <div>
          <p>{`status: ${r.status}`}{r.error ? ` · ${r.error.message || r.error.code}` : ''}</p>
          <Table rows={r.approvals} columns={[{ key: 'tool', label: 'tool' }, { key: 'status', label: 'status' }, { key: 'decided_by', label: 'decided by' }]} empty="no approvals" />
          <RunDecisions runId={runId} />
          {['running', 'queued', 'waiting_approval', 'waiting_auth'].includes(r.status) &&
            <Button kind="danger" onClick={async () => { try { await api('POST', `/v1/runs/${encodeURIComponent(runId)}/cancel`); run.reload(); } catch (e) { setErr(e); } }}>Cancel run</Button>}
          <h3>Raw</h3>
          <pre class="mono">{JSON.stringify(r, null, 2)}</pre>
        </div>
      )}
    </div>
  );
}

// The trace as a waterfall: one bar per span, placed by its start and end.
export function Trace({ traceId }) {
  const [tick, setTick] = useState(0);
  const trace = useApi(`/v1/traces/${encodeURIComponent(traceId)}`, [tick]);
  useEffect(() => {  // spans reach the store within 500 ms of their end
    const t = setTimeout(() => setTick((n) => n + 1), 1200);
    return () => clearTimeout(t);
  }, []);
  const t = trace.data;
  let rows = [];
  if (t && t.spans && t.spans.length) {
    const depth = {};
    const byId = Object.fromEntries(t.spans.map((s) => [s.span_id, s]));
    const depthOf = (s) => {
      if (depth[s.span_id] !== undefined) return depth[s.span_id];
      const p = s.parent_span_id && byId[s.parent_span_id];
      return (depth[s.span_id] = p ? depthOf(p) + 1 : 0);
    };
    const start = t.spans.reduce((m, s) => (BigInt(s.start_unix_nano) < m ? BigInt(s.start_unix_nano) : m), BigInt(t.spans[0].start_unix_nano));
    const end = t.spans.reduce((m, s) => (BigInt(s.end_unix_nano) > m ? BigInt(s.end_unix_nano) : m), BigInt(t.spans[0].end_unix_nano));
    const total = Number(end - start) || 1;
    rows = t.spans.map((s) => ({
      s, depth: depthOf(s),
      left: (Number(BigInt(s.start_unix_nano) - start) / total) * 100,
      width: (Number(BigInt(s.end_unix_nano) - BigInt(s.start_unix_nano)) / total) * 100,
    }));
  }
  return (
    <div class="card">
      <h2>Trace <span class="mono">{traceId}</span></h2>
      <Err error={trace.error} />
      {t && <p class="muted">{`${t.span_count} spans · ${Number(t.duration_ms).toFixed(3)} ms`}</p>}
      <div class="wfgrid" data-testid="waterfall">
        {rows.map(({ s, depth, left, width }) => [
          <div key={s.span_id + 'n'} style={{ paddingLeft: `${depth * 12}px` }} title={JSON.stringify(s.attributes)}>{s.name}</div>,
          <div key={s.span_id + 'b'} class="wf"><div class={`bar ${s.status && s.status.code === 'error' ? 'error' : ''}`} style={{ left: `${left}%`, width: `${Math.max(width, 0.3)}%` }} /></div>,
          <div key={s.span_id + 'd'} class="num">{`${Number(s.duration_ms).toFixed(3)} ms`}</div>,
        ])}
      </div>
      <Button kind="ghost" onClick={() => setTick((n) => n + 1)}>Reload</Button>
    </div>
  );
}

export function Memory() {
  const list = useApi('/v1/memory?limit=100');
  const [key, setKey] = useState('');
  const [value, setValue] = useState('');
  const [err, setErr] = useState(null);
  const save = async () => {
    try { await api('PUT', `/v1/memory/${encodeURIComponent(key)}`, { value }); setKey(''); setValue(''); list.reload(); } catch (e) { setErr(e); }
  };
  return (
    <div>
      <h2>Memory</h2>
      <Err error={list.error || err} />
      <div class="row">
        <input placeholder="key" value={key} onInput={(e) => setKey(e.target.value)} data-testid="mem-key" />
        <input placeholder="value" value={value} onInput={(e) => setValue(e.target.value)} data-testid="mem-value" />
        <Button onClick={save} data-testid="mem-save">Save</Button>
      </div>
      <Table testid="memory" rows={list.data ? list.data.data : []} columns={[
        { key: 'key', label: 'key' }, { key: 'value', label: 'value' },
        { key: 'updated_at', label: 'updated', render: (r) => fmtTime(r.updated_at) },
        { key: 'x', label: '', render: (r) => <Button kind="ghost" onClick={async () => { try { await api('DELETE', `/v1/memory/${encodeURIComponent(r.key)}`); list.reload(); } catch (e) { setErr(e); } }}>Delete</Button> },
      ]} />
    </div>
  );
}

export function Connections() {
  const list = useApi('/v1/connections');
  const [provider, setProvider] = useState('');
  const [link, setLink] = useState(null);
  const [err, setErr] = useState(null);
  const connect = async () => {
    try { const r = await api('POST', '/v1/connections', { provider }); setLink(r.connect_url || null); list.reload(); } catch (e) { setErr(e); }
  };
  return (
    <div>
      <h2>Connections</h2>
      <Err error={list.error || err} />
      <div class="row">
        <input placeholder="provider" value={provider} onInput={(e) => setProvider(e.target.value)} />
        <Button onClick={connect}>Connect</Button>
        {link && <a href={link} target="_blank" rel="noopener noreferrer">Open the provider's sign-in</a>}
      </div>
      <Table rows={list.data ? list.data.data : []} columns={[
        { key: 'id', label: 'id' }, { key: 'provider', label: 'provider' }, { key: 'status', label: 'status' },
        { key: 'created_at', label: 'created', render: (r) => fmtTime(r.created_at) },
        { key: 'x', label: '', render: (r) => <Button kind="danger" onClick={async () => { try { await api('DELETE', `/v1/connections/${encodeURIComponent(r.id)}`); list.reload(); } catch (e) { setErr(e); } }}>Revoke</Button> },
      ]} />
    </div>
  );
}

function Budget({ b }) {
  if (!b) return null;
  const row = (name, p) => p && (
    <tr key={name}><td>{name}</td><td class="num">{fmtUsd(p.spent_usd)}</td><td class="num">{fmtUsd(p.reserved_usd)}</td>
      <td class="num">{fmtUsd(p.budget_usd)}</td><td class="num" data-testid={`remaining-${name}`}>{fmtUsd(p.remaining_usd)}</td><td>{p.resets_at}</td></tr>);
  return (
    <table data-testid="budget">
      <thead><tr><th>period</th><th>spent</th><th>reserved</th><th>budget</th><th>remaining</th><th>resets</th></tr></thead>
      <tbody>{row('day', b.day)}{row('month', b.month)}</tbody>
    </table>
  );
}

export function MyUsage() {
  const me = useApi('/v1/me');
  const byDay = useApi('/v1/usage?group_by=day');
  const byModel = useApi('/v1/usage?group_by=model');
  const days = byDay.data ? byDay.data.data : [];
  return (
    <div>
      <h2>Usage and budget</h2>
      <Err error={me.error || byDay.error} />
      {me.data && <p>{`${me.data.user.external_id} · tier ${me.data.user.tier} · ${me.data.usage.active_runs} active runs`}</p>}
      {me.data && <Budget b={me.data.usage} />}
      <div class="charts">
        <Chart title="cost by day (USD)" bars x={days.map((r) => Date.parse(r.group + 'T00:00:00Z') / 1000)} series={[{ label: 'cost', values: days.map((r) => r.cost_usd) }]} />
      </div>
      <h3>By model</h3>
      <Table rows={byModel.data ? byModel.data.data : []} columns={[
        { key: 'group', label: 'model' }, { key: 'requests', label: 'requests', num: true },
        { key: 'input_tokens', label: 'input', num: true }, { key: 'output_tokens', label: 'output', num: true },
        { key: 'cost_usd', label: 'cost', num: true, render: (r) => fmtUsd(r.cost_usd) }]} />
    </div>
  );
}
