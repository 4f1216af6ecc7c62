// mcp_http_server.mjs — a small MCP server over streamable HTTP on loopback,
// for the transport's tests: it records every request (method, headers,
// body), answers initialize with a new Mcp-Session-Id, tools/list, and
// tools/call of
//   "echo"   → a JSON answer,
//   "stream" → an SSE answer: a progress notification, then the result;
//   "cut"    → an SSE answer that ends after a priming event (id, retry:
//              300) without the result; the result comes on the GET that
//              resumes with Last-Event-ID;
// a notification gets 202. `forget()` drops every session, so the next
// request with an old id gets 404 (the client must initialize again).
// A GET stream (messages the server sends on its own) is 405, unless
// started with {push: true}: then a session's GET without Last-Event-ID
// gets `notifications/tools/list_changed` (id p1, retry: 200) and is
// closed; the GET that resumes from p1 gets another (id p2) and stays open.

import http from 'node:http';
import { randomUUID } from 'node:crypto';

export async function startMcpHttpServer({ push = false } = {}) {
  const requests = [];
  const held = new Set();
  const sessions = new Set();
  const cut = new Map();   // event id → the call waiting for its answer
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const rec = { method: req.method, headers: req.headers, body: body ? JSON.parse(body) : null, at: Date.now() };
      requests.push(rec);
      const sid = req.headers['mcp-session-id'];
      if (req.method === 'DELETE') {
        sessions.delete(sid);
        res.writeHead(200).end();
        return;
      }
      if (req.method === 'GET') {
        const m = cut.get(req.headers['last-event-id']);
        if (!m && push && sid && sessions.has(sid)) {
          const changed = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          if (!req.headers['last-event-id']) {
            res.end(`id: p1\nretry: 200\ndata: ${changed}\n\n`);
          } else {
            res.write(`id: p2\ndata: ${changed}\n\n`);
            held.add(res);
            res.on('close', () => held.delete(res));
          }
          return;
        }
        if (!m) { res.writeHead(405).end(); return; }
        cut.delete(req.headers['last-event-id']);
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(`id: c2\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: `resumed ${m.params.arguments.text}` }] } })}\n\n`);
        return;
      }
      if (req.method !== 'POST') { res.writeHead(405).end(); return; }
      const m = rec.body;
      if (m.method === 'initialize') {
        const id = randomUUID();
        sessions.add(id);
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': id });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'mini', version: '1' } } }));
        return;
      }
      if (!sid || !sessions.has(sid)) { res.writeHead(404).end('no such session'); return; }
      if (m.id === undefined) { res.writeHead(202).end(); return; }
      if (m.method === 'tools/list') {
        const tool = (name) => ({ name, inputSchema: { type: 'object', properties: { text: { type: 'string' } } } });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { tools: [tool('echo'), tool('stream'), tool('cut')] } }));
        return;
      }
      if (m.method === 'tools/call' && m.params.name === 'cut') {
        const id = `c1-${m.id}-${Date.now()}`;
        cut.set(id, m);
        rec.cutAt = Date.now();
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(`id: ${id}\nretry: 300\ndata: \n\n`);
        return;
      }
      if (m.method === 'tools/call' && m.params.name === 'stream') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const token = m.params._meta?.progressToken;
        res.write(`id: 1\nevent: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: 1, total: 2 } })}\n\n`);
        setTimeout(() => {
          res.write(`id: 2\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: `streamed ${m.params.arguments.text}` }] } })}\n\n`);
          res.end();
        }, 100);
        return;
      }
      if (m.method === 'tools/call') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: `echo ${m.params.arguments.text} (${sid})` }] } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'method not found' } }));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}/mcp`,
    requests,
    forget: () => sessions.clear(),
    close: () => new Promise((r) => { for (const h of held) h.end(); server.closeAllConnections?.(); server.close(r); }),
  };
}
