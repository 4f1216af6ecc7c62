// main.jsx — the console's shell: sign-in, the navigation each role gets,
// and hash routes (#/chat/ID, #/trace/ID, …). A page outside the caller's
// role is not rendered at all — and the API would refuse its data anyway.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { signIn, signOut, resume } from './api.js';
import { Err } from './ui.jsx';
import { Chat, Approvals, Run, Trace, Memory, Connections, MyUsage } from './user.jsx';
import { Users, TenantUsage, Audit, ToolsAgents, McpServers, LiveRuns } from './admin.jsx';
import { Tenants, Health, Metrics } from './server.jsx';
import { Guardrails } from './guardrails.jsx';

const PAGES = {
  user: [
    ['chat', 'Chat'], ['approvals', 'Approvals'], ['memory', 'Memory'],
    ['connections', 'Connections'], ['usage', 'Usage'],
  ],
  tenant_admin: [
    ['users', 'Users & keys'], ['tenant-usage', 'Usage'], ['live-runs', 'Live runs'], ['audit', 'Audit'],
    ['approvals', 'Approvals'], ['tools', 'Tools & agents'], ['mcp-servers', 'MCP servers'], ['guardrails', 'Guardrails'],
  ],
  server_admin: [['tenants', 'Tenants'], ['health', 'Provider health'], ['metrics', 'Last hour'], ['audit', 'Audit']],
};
// routes reachable by id, besides the navigation
const EXTRA = { user: ['run', 'trace'], tenant_admin: ['trace'], server_admin: [] };

function useHash() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function Login({ onIn }) {
  const [cred, setCred] = useState('');
  const [err, setErr] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    try {
      const who = await signIn(cred);
      setCred('');
      onIn(who);
    } catch (x) { setErr(x); }
  };
  return (
    <form class="card login" onSubmit={submit} autocomplete="off">
      <h2>brigade console</h2>
      <p class="muted">Sign in with a user key, a tenant admin key, a user token (JWT) or the server admin token.
        It is sent once and kept by the server; this page keeps only an HttpOnly session cookie.</p>
      <input type="password" placeholder="key or token" value={cred} onInput={(e) => setCred(e.target.value)} data-testid="credential" autocomplete="off" />
      <button type="submit" data-testid="sign-in">Sign in</button>
      <Err error={err} />
    </form>
  );
}

function Page({ who, route, arg }) {
  const allowed = PAGES[who.role].map((p) => p[0]).concat(EXTRA[who.role]);
  if (!allowed.includes(route)) {
    return <div class="card" data-testid="forbidden"><h2>Not available</h2><p>{`This page is not for a ${who.role.replace('_', ' ')}.`}</p></div>;
  }
  switch (route) {
    case 'chat': return <Chat sessionId={arg} />;
    case 'approvals': return <Approvals />;
    case 'run': return <Run runId={arg} />;
    case 'trace': return <Trace traceId={arg} />;
    case 'memory': return <Memory />;
    case 'connections': return <Connections />;
    case 'usage': return <MyUsage />;
    case 'users': return <Users />;
    case 'tenant-usage': return <TenantUsage />;
    case 'audit': return <Audit />;
    case 'tools': return <ToolsAgents />;
    case 'mcp-servers': return <McpServers />;
    case 'live-runs': return <LiveRuns />;
    case 'guardrails': return <Guardrails key={arg || ''} runId={arg} />;
    case 'tenants': return <Tenants />;
    case 'health': return <Health />;
    case 'metrics': return <Metrics />;
    default: return null;
  }
}

function App() {
  const [who, setWho] = useState(undefined);   // undefined = checking the cookie
  const hash = useHash();
  useEffect(() => { resume().then((w) => setWho(w), () => setWho(null)); }, []);
  if (who === undefined) return <p class="muted">…</p>;
  if (!who) return <Login onIn={setWho} />;
  const parts = hash.replace(/^#\/?/, '').split('/');
  const route = parts[0] || PAGES[who.role][0][0];
  const arg = parts[1] ? decodeURIComponent(parts[1]) : null;
  return (
    <div>
      <header>
        <b>brigade</b>
        <span class="who" data-testid="who">{`${who.role.replace('_', ' ')}${who.user_id ? ' ' + who.user_id : ''}${who.tenant_id ? ' · ' + who.tenant_id : ''}`}</span>
        <button class="ghost" onClick={async () => { await signOut(); setWho(null); location.hash = ''; }} data-testid="sign-out">Sign out</button>
      </header>
      <nav>{PAGES[who.role].map(([id, label]) => <a key={id} href={`#/${id}`} class={id === route ? 'on' : ''} data-testid={`nav-${id}`}>{label}</a>)}</nav>
      <main><Page who={who} route={route} arg={arg} /></main>
    </div>
  );
}

render(<App />, document.getElementById('app'));
