// mcp_faulty.mjs — a small MCP server over stdio that misbehaves on purpose,
// for the tests of what brigade does when a server crashes or hangs:
//   node mcp_faulty.mjs          answers initialize and tools/list; then
//     tools/call "crash"  → the process exits (status 3) without answering
//     tools/call "hang"   → never answers
//     tools/call "ok"     → {"content":[{"type":"text","text":"fine"}]}
//     tools/call "huge"   → a text result of 200000 bytes
//     tools/call "grow"   → adds the tool "extra", sends
//                           notifications/tools/list_changed, answers "grown"
//   node mcp_faulty.mjs silent   never answers anything (a hung start)
//   node mcp_faulty.mjs noping   as normal, but never answers brigade's ping
//   node mcp_faulty.mjs v:VERSION  as normal, answering initialize with VERSION
// With a directory as the next argument it records there what the client
// did: "cancelled-ID" for each notifications/cancelled (the request's id and
// reason inside), "pong" once brigade answered the ping this server sends
// after initialize.
// Every test using it stops by itself: the process ends with its stdin.

import fs from 'node:fs';
import path from 'node:path';

const mode = process.argv[2] || 'normal';
const record = process.argv[3];
const note = (name, text) => { if (record) fs.writeFileSync(path.join(record, name), text); };
const tools = ['crash', 'hang', 'ok', 'huge', 'grow'];
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
const tool = (name) => ({ name, description: `the ${name} tool`, inputSchema: { type: 'object', properties: {} } });

function handle(m) {
  if (mode === 'silent') return;
  if (m.method === 'initialize') {
    const version = mode.startsWith('v:') ? mode.slice(2) : '2025-06-18';
    send({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: version, capabilities: { tools: { listChanged: true } }, serverInfo: { name: 'faulty', version: '1' } } });
  } else if (m.method === 'notifications/initialized') {
    send({ jsonrpc: '2.0', id: 'srv-ping', method: 'ping' });
  } else if (m.id === 'srv-ping' && m.result) {
    note('pong', JSON.stringify(m));
  } else if (m.method === 'notifications/cancelled') {
    note(`cancelled-${m.params.requestId}`, JSON.stringify(m.params));
  } else if (m.method === 'ping' && mode === 'noping') {
    // a server that hangs between calls
  } else if (m.method === 'tools/list') {
    send({ jsonrpc: '2.0', id: m.id, result: { tools: tools.map(tool) } });
  } else if (m.method === 'tools/call') {
    const n = m.params.name;
    if (n === 'crash') process.exit(3);
    if (n === 'grow') {
      if (!tools.includes('extra')) tools.push('extra');
      send({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
      send({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: 'grown' }] } });
      return;
    }
    if (n === 'hang') return;
    if (n === 'huge') send({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: 'h'.repeat(200000) }] } });
    else send({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: 'fine' }] } });
  } else if (m.id !== undefined) {
    send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'method not found' } });
  }
}
