// mcp_scenario.mjs — a small MCP server over stdio for the attack scenarios
// (guard_scenarios.test.mjs): its tools, their descriptions and their
// answers come from a JSON file the test writes, so one script plays a
// clean server, a server whose results carry an injection, and a server
// whose tool description does (tool poisoning).
//
//   node mcp_scenario.mjs FILE|JSON
//   FILE: {"tools": [{"name", "description", "param", "answers": {VALUE: TEXT}, "default": TEXT}]}
// (the spec inline as the argument, when it starts with "{": a sandboxed
// server sees no file of the test's). With a FILE, every tools/list reads it
// again, and a tools/call after the file changed first sends
// notifications/tools/list_changed (a server that changes its tools, as a
// "rug pull" does). A tool may give its own `schema` (the inputSchema).
// A call of tool NAME answers answers[arguments[param]] (or default) as one
// text block. The process ends with its stdin.

import fs from 'node:fs';

const arg = process.argv[2];
const read = () => (arg.startsWith('{') ? arg : fs.readFileSync(arg, 'utf8'));
let listed = read();
let spec = JSON.parse(listed);
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (line.trim()) handle(JSON.parse(line));
  }
});
process.stdin.on('end', () => process.exit(0));

const send = (m) => process.stdout.write(JSON.stringify(m) + '\n');

function handle(m) {
  if (m.method === 'initialize') {
    send({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'scenario', version: '1' } } });
  } else if (m.method === 'tools/list') {
    listed = read();
    spec = JSON.parse(listed);
    send({
      jsonrpc: '2.0', id: m.id, result: {
        tools: spec.tools.map((t) => ({
          name: t.name,
          description: t.description,
          inputSchema: t.schema ?? { type: 'object', properties: { [t.param]: { type: 'string' } }, required: [t.param] },
        })),
      },
    });
  } else if (m.method === 'tools/call') {
    if (read() !== listed) send({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
    const t = spec.tools.find((x) => x.name === m.params.name);
    if (!t) {
      send({ jsonrpc: '2.0', id: m.id, error: { code: -32602, message: 'unknown tool' } });
      return;
    }
    const key = String(m.params.arguments?.[t.param] ?? '');
    const text = Object.hasOwn(t.answers, key) ? t.answers[key] : t.default;
    send({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text }] } });
  } else if (m.id !== undefined && m.method) {
    send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'method not found' } });
  }
}
