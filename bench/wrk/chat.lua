-- chat.lua — wrk request script for the gateway benchmark (bench/gateway.sh).
--
-- Sends POST /v1/chat/completions with a fixed JSON body, the same to every
-- target (the mock directly, nginx, brigade, Portkey), so the only difference
-- between runs is the proxy in the path. Settings come from the environment
-- because wrk passes no arguments to a script loaded with -s unless after "--":
--   BENCH_KEY     bearer token (brigade needs a user key; the mock and nginx
--                 ignore / forward it), default "bench"
--   BENCH_STREAM  "1" asks for a streamed (SSE) reply
--   BENCH_TOKENS  completion tokens the mock should produce, default 16
--   BENCH_PATH    request path, default /v1/chat/completions
--   BENCH_HEADERS extra request headers, one "name: value" per line (newline-
--                 separated), e.g. Portkey's x-portkey-provider and
--                 x-portkey-custom-host; default none. The body stays the same.
--
-- done() prints one machine-readable line that gateway.sh parses:
--   BENCH requests=N duration_us=N rps=X p50_us=N p99_us=N max_us=N
--         errors_connect=N errors_read=N errors_write=N errors_status=N errors_timeout=N
-- wrk's own --latency table is still printed above it for people.

local key    = os.getenv("BENCH_KEY") or "bench"
local stream = os.getenv("BENCH_STREAM") == "1"
local tokens = tonumber(os.getenv("BENCH_TOKENS") or "16") or 16
local path   = os.getenv("BENCH_PATH") or "/v1/chat/completions"
local extra  = os.getenv("BENCH_HEADERS") or ""

local body = string.format(
  '{"model":"bench-model",%s"messages":[{"role":"user","content":"hello [[tokens:%d]]"}]}',
  stream and '"stream":true,' or '', tokens)

wrk.method = "POST"
wrk.path = path
wrk.body = body
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. key
for line in extra:gmatch("[^\r\n]+") do
  local name, value = line:match("^%s*([^:%s]+)%s*:%s*(.-)%s*$")
  if not name then error("BENCH_HEADERS: not a \"name: value\" line: " .. line) end
  wrk.headers[name] = value
end

-- Build the request once per wrk thread, in init(): wrk adds the Host header
-- only after the script has loaded (nginx rejects HTTP/1.1 without Host), and
-- a prebuilt string keeps the per-request cost of the script near zero.
local prebuilt
init = function(args) prebuilt = wrk.format(nil, path) end
request = function() return prebuilt end

done = function(summary, latency, requests)
  local dur = summary.duration           -- microseconds
  local rps = 0
  if dur > 0 then rps = summary.requests / (dur / 1e6) end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d max_us=%d " ..
    "errors_connect=%d errors_read=%d errors_write=%d errors_status=%d errors_timeout=%d\n",
    summary.requests, dur, rps,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
