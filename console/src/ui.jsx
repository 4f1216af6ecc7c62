// ui.jsx — small shared pieces: loading data, tables, errors, charts.
// Everything is rendered by preact as text nodes: no data ever reaches
// innerHTML, so a stored "<script>" shows as those characters.
import { useEffect, useRef, useState, useCallback } from 'preact/hooks';
import uPlot from 'uplot';
import { api } from './api.js';

export function useApi(path, deps = []) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const load = useCallback(() => {
    if (!path) return;
    setState((s) => ({ ...s, loading: true }));
    api('GET', path).then(
      (data) => setState({ data, error: null, loading: false }),
      (error) => setState({ data: null, error, loading: false }));
  }, [path, ...deps]);
  useEffect(load, [load]);
  return { ...state, reload: load };
}

export function Err({ error }) {
  if (!error) return null;
  return <div class="err" role="alert">{error.status ? `${error.status}: ` : ''}{String(error.message || error)}</div>;
}

export function fmtTime(unix) {
  if (unix === null || unix === undefined) return '';
  return new Date(unix * 1000).toISOString().replace('T', ' ').slice(0, 19);
}

export function fmtUsd(x) {
  if (x === null || x === undefined) return '—';
  return '$' + Number(x).toFixed(x < 0.01 ? 6 : 4);
}

function cell(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// columns: [{key, label, render?(row), num?}]
export function Table({ rows, columns, empty = 'nothing yet', testid }) {
  if (!rows || rows.length === 0) return <p class="muted">{empty}</p>;
  return (
    <table data-testid={testid}>
      <thead><tr>{columns.map((c) => <th key={c.key}>{c.label}</th>)}</tr></thead>
      <tbody>
        {rows.map((r, i) => (
          <tr key={r.id || i}>
            {columns.map((c) => <td key={c.key} class={c.num ? 'num' : ''}>{c.render ? c.render(r) : cell(r[c.key])}</td>)}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

// A uPlot chart: x = unix seconds (or indexes), series = [{label, values}].
export function Chart({ title, x, series, height = 200, bars = false }) {
  const el = useRef(null);
  useEffect(() => {
    if (!el.current || !x || x.length === 0) return undefined;
    const colours = ['#1d3557', '#e76f51', '#2a9d8f', '#e9c46a', '#8e44ad', '#b3261e'];
    const opts = {
      title, width: Math.max(320, el.current.clientWidth || 480), height,
      series: [{}, ...series.map((s, i) => ({
        label: s.label, stroke: colours[i % colours.length],
        fill: bars ? colours[i % colours.length] + '55' : undefined,
        paths: bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined,
      }))],
      // small money values must not all read "0"
      axes: [{}, { size: 70, values: (u, vals) => vals.map((v) => (v === 0 ? '0' : Number(v.toPrecision(3)).toString())) }],
      // bars are days: a day of room on each side, so one day is not the whole axis
      scales: { x: bars ? { time: true, range: (u, min, max) => [min - 86400, max + 86400] } : { time: true } },
    };
    const plot = new uPlot(opts, [x, ...series.map((s) => s.values)], el.current);
    return () => plot.destroy();
  }, [title, JSON.stringify(x), JSON.stringify(series)]);
  if (!x || x.length === 0) return <div class="card"><b>{title}</b><p class="muted">no data</p></div>;
  return <div class="card" ref={el} />;
}

// Horizontal bars for named groups (users, models): plain elements, so a
// name is text and never markup.
export function Bars({ title, rows, value, format = (v) => String(v), testid }) {
  if (!rows || rows.length === 0) return <div class="card"><b>{title}</b><p class="muted">no data</p></div>;
  const max = Math.max(...rows.map(value), 0) || 1;
  return (
    <div class="card" data-testid={testid}>
      <b>{title}</b>
      <div class="hbars">
        {rows.map((r) => [
          <div key={r.group + 'l'} class="hlabel mono">{r.group}</div>,
          <div key={r.group + 'b'} class="hbar"><div style={{ width: `${(value(r) / max) * 100}%` }} /></div>,
          <div key={r.group + 'v'} class="num">{format(value(r))}</div>,
        ])}
      </div>
    </div>
  );
}

export function Button({ onClick, children, kind = '', disabled = false, ...rest }) {
  const [busy, setBusy] = useState(false);
  return (
    <button class={kind} disabled={busy || disabled} {...rest}
      onClick={async (e) => { setBusy(true); try { await onClick(e); } finally { setBusy(false); } }}>
      {children}
    </button>
  );
}
