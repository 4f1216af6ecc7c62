// chaos_load.mjs — the load driver of bench/chaos.sh: chat completions
// through brigade at a fixed concurrency for a fixed time, half of them
// streamed, and the bookkeeping that checks brigade's resilience and
// charging against what the clients saw.
//
//   node bench/chaos_load.mjs URL KEY_NONSTREAM KEY_STREAM MODEL SECONDS CONCURRENCY
//
// Non-streamed requests use one user, streamed ones another, so each user's
// usage rows can be compared with exactly the responses that user got:
//   non-stream: every charged row must be a 200, with the tokens it reported;
//   stream:     every charged row must be a complete stream, or a stream cut
//               after some text reached the client (charged as delivered).
// Prints one JSON object on stdout.

const [url, keyN, keyS, model, secondsArg, concArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 10);
const concurrency = Number(concArg || 16);
if (!url || !keyN || !keyS || !model) {
  console.error('usage: chaos_load.mjs URL KEY_NONSTREAM KEY_STREAM MODEL SECONDS CONCURRENCY');
  process.exit(2);
}

const stats = {
  nonstream: { sent: 0, ok: 0, failed: 0, in: 0, out: 0, status: {} },
  stream: { sent: 0, ok: 0, failed: 0, partial: 0, in: 0, out: 0, status: {} },
  latencies: [],
};
let seq = 0;

async function one(stream) {
  const st = stream ? stats.stream : stats.nonstream;
  const n = ++seq;
  // A distinct prompt per request, so mock-llm's per-request fault table
  // never carries one request's faults over to another.
  const body = { model, stream, messages: [{ role: 'user', content: `chaos ${process.pid}-${n} [[tokens:6]]` }] };
  if (stream) body.stream_options = { include_usage: true };
  const t0 = performance.now();
  st.sent++;
  let status = 0;
  try {
    const r = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stream ? keyS : keyN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    status = r.status;
    const text = await r.text();
    if (!stream) {
      if (r.status === 200) {
        const j = JSON.parse(text);
        st.ok++;
        st.in += j.usage.prompt_tokens;
        st.out += j.usage.completion_tokens;
      } else {
        st.failed++;
      }
    } else if (r.status === 200) {
      let done = false;
      let error = false;
      let content = '';
      let usage = null;
      for (const ev of text.split('\n\n')) {
        if (!ev.startsWith('data: ')) continue;
        const d = ev.slice(6);
        if (d === '[DONE]') { done = true; continue; }
        const j = JSON.parse(d);
        if (j.error) { error = true; continue; }
        if (j.usage) usage = j.usage;
        content += j.choices?.[0]?.delta?.content || '';
      }
      if (done && !error && usage) {
        st.ok++;
        st.in += usage.prompt_tokens;
        st.out += usage.completion_tokens;
      } else {
        st.failed++;
        if (content.length) st.partial++;
        status = 'cut';
      }
    } else {
      st.failed++;
    }
  } catch (e) {
    st.failed++;
    status = 'error';
  }
  st.status[status] = (st.status[status] || 0) + 1;
  stats.latencies.push(performance.now() - t0);
}

const end = Date.now() + seconds * 1000;
async function worker(i) {
  let k = i;
  while (Date.now() < end) await one(k++ % 2 === 1);
}
await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));

stats.latencies.sort((a, b) => a - b);
const pct = (p) => stats.latencies[Math.min(stats.latencies.length - 1, Math.floor(p * stats.latencies.length))] || 0;
const out = {
  seconds, concurrency,
  requests: stats.latencies.length,
  p50_ms: Math.round(pct(0.5)), p99_ms: Math.round(pct(0.99)), max_ms: Math.round(stats.latencies.at(-1) || 0),
  nonstream: stats.nonstream, stream: stats.stream,
};
console.log(JSON.stringify(out));
