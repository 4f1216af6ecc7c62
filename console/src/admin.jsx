// admin.jsx — a tenant admin's pages: users, their keys and tiers, usage
// charts with CSV download, the audit log and its verification, pending
// approvals, live runs with cancel, tools and agents, MCP servers.
import { useEffect, useState } from 'preact/hooks';
import { api, apiText } from './api.js';
import { useApi, Err, Table, Button, fmtTime, fmtUsd, Chart, Bars } from './ui.jsx';

function UserKeys({ userId }) {
  const keys = useApi(`/v1/users/${encodeURIComponent(userId)}/keys`);
  const [made, setMade] = useState(null);
  const [err, setErr] = useState(null);
  return (
    <div class="card">
      <h3>{`Keys of ${userId}`}</h3>
      <Err error={keys.error || err} />
      <Button onClick={async () => { try { const k = await api('POST', `/v1/users/${encodeURIComponent(userId)}/keys`, {}); setMade(k.key); keys.reload(); } catch (e) { setErr(e); } }}>New key</Button>
      {made && <p>New key (shown once): <span class="mono" data-testid="new-key">{made}</span></p>}
      <Table rows={keys.data ? keys.data.data : []} columns={[
        { key: 'id', label: 'id' }, { key: 'prefix', label: 'prefix' },
        { key: 'created_at', label: 'created', render: (r) => fmtTime(r.created_at) },
        { key: 'revoked_at', label: 'revoked', render: (r) => fmtTime(r.revoked_at) },
        { key: 'x', label: '', render: (r) => !r.revoked_at && <Button kind="danger" onClick={async () => { try { await api('DELETE', `/v1/keys/${encodeURIComponent(r.id)}`); keys.reload(); } catch (e) { setErr(e); } }}>Revoke</Button> },
      ]} />
    </div>
  );
}

export function Users() {
  const users = useApi('/v1/users?limit=100');
  const [ext, setExt] = useState('');
  const [tier, setTier] = useState('');
  const [open, setOpen] = useState(null);
  const [err, setErr] = useState(null);
  const create = async () => {
    try { const body = { external_id: ext }; if (tier) body.tier = tier; await api('POST', '/v1/users', body); setExt(''); users.reload(); } catch (e) { setErr(e); }
  };
  const patch = async (u, body) => { try { await api('PATCH', `/v1/users/${encodeURIComponent(u.id)}`, body); users.reload(); } catch (e) { setErr(e); } };
  return (
    <div>
      <h2>Users, keys and tiers</h2>
      <Err error={users.error || err} />
      <div class="row">
        <input placeholder="external id" value={ext} onInput={(e) => setExt(e.target.value)} />
        <input placeholder="tier (optional)" value={tier} onInput={(e) => setTier(e.target.value)} />
        <Button onClick={create}>Create user</Button>
      </div>
      <Table testid="users" rows={users.data ? users.data.data : []} columns={[
        { key: 'id', label: 'id' }, { key: 'external_id', label: 'external id' }, { key: 'tier', label: 'tier' },
        { key: 'disabled', label: 'disabled' },
        { key: 'limits', label: 'limits' },
        { key: 'x', label: '', render: (u) => (
          <span class="row">
            <Button kind="ghost" onClick={() => setOpen(u.id)}>Keys</Button>
            <Button kind="ghost" onClick={() => patch(u, { disabled: !u.disabled })}>{u.disabled ? 'Enable' : 'Disable'}</Button>
          </span>) },
      ]} />
      {open && <UserKeys key={open} userId={open} />}
    </div>
  );
}

async function downloadCsv(groupBy) {
  const text = await apiText(`/v1/usage?group_by=${groupBy}&format=csv`);
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = `brigade-usage-by-${groupBy}.csv`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function UsageBy({ groupBy }) {
  const u = useApi(`/v1/usage?group_by=${groupBy}`);
  const rows = u.data ? u.data.data : [];
  const [err, setErr] = useState(null);
  const isDay = groupBy === 'day';
  return (
    <div class="card">
      <h3>{`By ${groupBy}`}</h3>
      <Err error={u.error || err} />
      {isDay
        ? <Chart title="cost by day (USD)" bars x={rows.map((r) => Date.parse(r.group + 'T00:00:00Z') / 1000)}
            series={[{ label: 'cost', values: rows.map((r) => r.cost_usd) }]} />
        : <Bars title={`cost by ${groupBy} (USD)`} rows={rows} value={(r) => r.cost_usd} format={fmtUsd} testid={`bars-${groupBy}`} />}
      <Button kind="ghost" onClick={() => downloadCsv(groupBy).catch(setErr)} data-testid={`csv-${groupBy}`}>Download CSV</Button>
      <Table testid={`usage-${groupBy}`} rows={rows} columns={[
        { key: 'group', label: groupBy }, { key: 'requests', label: 'requests', num: true },
        { key: 'input_tokens', label: 'input', num: true }, { key: 'output_tokens', label: 'output', num: true },
        { key: 'cost_usd', label: 'cost', num: true, render: (r) => fmtUsd(r.cost_usd) }]} />
    </div>
  );
}

export function TenantUsage() {
  const u = useApi('/v1/usage?group_by=day');
  const b = u.data && u.data.budget;
  return (
    <div>
      <h2>Usage</h2>
      {b && <p>{`tenant budget today: spent ${fmtUsd(b.day && b.day.spent_usd)}, remaining ${fmtUsd(b.day && b.day.remaining_usd)}`}</p>}
      <div class="charts">
        <UsageBy groupBy="user" />
        <UsageBy groupBy="model" />
        <UsageBy groupBy="day" />
      </div>
    </div>
  );
}

export function Audit() {
  const log = useApi('/v1/audit?limit=200');
  const verify = useApi('/v1/audit/verify');
  const v = verify.data;
  return (
    <div>
      <h2>Audit log</h2>
      <Err error={log.error || verify.error} />
      {v && <p data-testid="audit-verify" class={v.intact ? 'ok' : 'err'}>{v.intact ? `chain intact (${v.scan} scan from ${v.from_seq})` : `chain broken at entry ${v.first_bad_seq}`}</p>}
      <Table testid="audit" rows={log.data ? log.data.data : []} columns={[
        { key: 'seq', label: 'seq', num: true }, { key: 'ts', label: 'time', render: (r) => fmtTime(r.ts) },
        { key: 'actor', label: 'actor' }, { key: 'action', label: 'action' }, { key: 'target', label: 'target' },
        { key: 'details', label: 'details' }]} />
    </div>
  );
}

export function ToolsAgents() {
  const tools = useApi('/v1/tools');
  const agents = useApi('/v1/agents');
  return (
    <div>
      <h2>Tools and agents</h2>
      <Err error={tools.error || agents.error} />
      <h3>Tools</h3>
      <Table rows={tools.data ? tools.data.data : []} columns={[
        { key: 'name', label: 'name' }, { key: 'description', label: 'description' }, { key: 'effects', label: 'effects' }]} />
      <h3>Agents</h3>
      <Table rows={agents.data ? agents.data.data : []} columns={[
        { key: 'id', label: 'name' }, { key: 'model', label: 'model' }, { key: 'tools', label: 'tools' },
        { key: 'description', label: 'description' }]} />
    </div>
  );
}

// The tenant's MCP servers: the catalogue's (enable/disable those with
// `tenants: enable`) and its own HTTP servers (add, delete). Their tools
// appear to agents as NAME__TOOL. The operator's URL is never shown.
export function McpServers() {
  const servers = useApi('/v1/mcp-servers');
  const [err, setErr] = useState(null);
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [allow, setAllow] = useState('');
  const act = async (method, path, body) => {
    try { setErr(null); await api(method, path, body); servers.reload(); } catch (e) { setErr(e); }
  };
  const add = async (e) => {
    e.preventDefault();
    const tools = allow.split(',').map((t) => t.trim()).filter(Boolean);
    await act('POST', '/v1/mcp-servers', { name, transport: 'http', url, ...(tools.length ? { tools } : {}) });
    setName(''); setUrl(''); setAllow('');
  };
  const path = (r) => `/v1/mcp-servers/${encodeURIComponent(r.name)}`;
  return (
    <div>
      <h2>MCP servers</h2>
      <p class="muted">Tools of these servers appear to the tenant&apos;s agents as <span class="mono">NAME__TOOL</span>.
        The tenant&apos;s own servers speak HTTP and reach public addresses only (or the networks the operator allows).</p>
      <Err error={servers.error || err} />
      <Table testid="mcp-servers" rows={servers.data ? servers.data.data : []} empty="no MCP server" columns={[
        { key: 'name', label: 'name' },
        { key: 'source', label: 'source', render: (r) => (r.source === 'catalogue' ? `catalogue (${r.tenants})` : 'tenant') },
        { key: 'transport', label: 'transport' },
        { key: 'url', label: 'url', render: (r) => (r.source === 'tenant' ? <span class="mono">{r.url || r.error}</span> : '') },
        { key: 'tools', label: 'tools allowed', render: (r) => (r.tools ? r.tools.join(', ') : 'all') },
        { key: 'available', label: 'enabled', render: (r) => (r.available ? 'yes' : 'no') },
        { key: 'x', label: '', render: (r) => {
          if (r.source === 'tenant') return <Button kind="danger" data-testid={`mcp-delete-${r.name}`} onClick={() => act('DELETE', path(r))}>Delete</Button>;
          if (r.tenants !== 'enable') return '';
          return r.available
            ? <Button data-testid={`mcp-disable-${r.name}`} onClick={() => act('DELETE', path(r))}>Disable</Button>
            : <Button data-testid={`mcp-enable-${r.name}`} onClick={() => act('POST', '/v1/mcp-servers', { name: r.name, catalogue: true })}>Enable</Button>;
        } },
      ]} />
      <form class="card" onSubmit={add} data-testid="mcp-add">
        <h3>Add an HTTP server</h3>
        <div class="row">
          <input placeholder="name (a-z, 0-9, -)" value={name} onInput={(e) => setName(e.target.value)} data-testid="mcp-name" />
          <input placeholder="https://…/mcp" size="36" value={url} onInput={(e) => setUrl(e.target.value)} data-testid="mcp-url" />
          <input placeholder="allowed tools, comma-separated (empty: all)" size="36" value={allow} onInput={(e) => setAllow(e.target.value)} data-testid="mcp-tools" />
          <button type="submit" data-testid="mcp-submit">Add</button>
        </div>
      </form>
    </div>
  );
}

// The tenant's active runs, live (polled every 2 s), each with Cancel.
export function LiveRuns() {
  const [tick, setTick] = useState(0);
  const runs = useApi('/v1/runs', [tick]);
  const [err, setErr] = useState(null);
  useEffect(() => {
    const t = setInterval(() => setTick((n) => n + 1), 2000);
    return () => clearInterval(t);
  }, []);
  return (
    <div>
      <h2>Live runs</h2>
      <Err error={runs.error || err} />
      <Table testid="live-runs" rows={runs.data ? runs.data.data : []} empty="no run is active" columns={[
        { key: 'id', label: 'run' }, { key: 'user_id', label: 'user' }, { key: 'session_id', label: 'session' },
        { key: 'status', label: 'status' },
        { key: 'x', label: '', render: (r) => <Button kind="danger" data-testid={`cancel-${r.id}`} onClick={async () => { try { await api('POST', `/v1/runs/${encodeURIComponent(r.id)}/cancel`); setTick((n) => n + 1); } catch (e) { setErr(e); } }}>Cancel</Button> },
      ]} />
    </div>
  );
}
