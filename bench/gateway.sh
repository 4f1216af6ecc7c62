#!/usr/bin/env bash
# gateway.sh — measure what brigade's gateway path adds to a chat completion,
# against the mock model directly, against nginx as a reference proxy and
# against the Portkey OSS gateway, all in one run on loopback (the machine is
# shared and noisy: compare the ratios within a run, not absolute numbers
# across runs).
#
#   bench/gateway.sh                 build (release) if needed and run it all
#   BENCH_SECONDS=5 bench/gateway.sh shorter runs
#
# Targets (each gets the same request body, bench/wrk/chat.lua):
#   direct   wrk -> brigade mock-llm
#   nginx    wrk -> nginx proxy_pass (keep-alive upstream) -> mock-llm
#   brigade  wrk -> brigade serve (key auth, usage recorded) -> mock-llm
#   portkey  wrk -> Portkey OSS gateway (@portkey-ai/gateway, bench/portkey/,
#            provider openai, x-portkey-custom-host the mock) -> mock-llm;
#            one Node process (single-threaded: compare it as one worker),
#            listening on 127.0.0.1 only (bench/portkey/loopback.cjs)
# All the proxies forward to the same mock-llm.
# Each target runs at concurrency 1 and 64 (non-streaming), then at 64 with
# "stream": true. For every run: p50/p99 latency, requests/s, and the CPU
# microseconds per request of the proxy process (utime+stime from
# /proc/PID/stat over the run / requests; Portkey's node process, all its
# threads) and of the mock; at the end, the proxies' VmRSS / VmHWM.
#
# Environment:
#   BENCH_SECONDS      seconds per measured run (default 10)
#   BENCH_WARMUP       seconds of warm-up per target (default 2)
#   BENCH_ROUNDS       repeat the whole interleaved sequence N times and report
#                      the median of each figure over the rounds (default 1)
#   BENCH_TARGETS      subset of "direct nginx brigade portkey" (default all
#                      four); portkey is left out, with a message, when
#                      BENCH_PORTKEY=0 or bench/portkey/node_modules is missing
#   BENCH_PORTKEY      0 skips the portkey target (default 1; it needs node and
#                      bench/portkey/node_modules: scripts/deps.sh --bench)
#   BENCH_STREAM_CASE  0 skips the streaming runs (default 1)
#   BENCH_WRK_THREADS  wrk threads for the c=64 runs (default 2; c=1 uses 1)
#   BENCH_WORKERS      brigade's loop threads, nginx's workers and the mock's
#                      threads (default 2; 1 is issue 17's one-core comparison);
#                      Portkey is always one process
#   BENCH_MAX_LOAD     wait (at most 2 min) while the 1-min load is above it (default 3)
#   BRIGADE            brigade binary (default: build/ release in build-bench/)
#   MOCK_BIN           binary providing `mock-llm` (default: $BRIGADE)
#   BENCH_SYSCALLS     1 also counts the proxy's system calls and context switches
#                      per request with `perf stat` (needs perf; adds a little
#                      overhead, so keep it off for the headline numbers)
#   BENCH_KEEP         1 keeps the temp dir (configs, logs, data) for inspection
#   BENCH_TRACE_SAMPLE brigade's observability.traces.sample_ratio (default: the
#                      configuration's default, 1 = every request traced)
#
# Raw results go to bench/results/gateway-<timestamp>/ (git-ignored).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
cmdline=$(bench_cmdline bench/gateway.sh 'BENCH_|BRIGADE$|MOCK_BIN$')

secs=${BENCH_SECONDS:-10}
warm=${BENCH_WARMUP:-2}
rounds=${BENCH_ROUNDS:-1}
syscalls=${BENCH_SYSCALLS:-0}
targets=${BENCH_TARGETS:-direct nginx brigade portkey}
use_portkey=${BENCH_PORTKEY:-1}
stream_case=${BENCH_STREAM_CASE:-1}
wrk_threads=${BENCH_WRK_THREADS:-2}
workers=${BENCH_WORKERS:-2}
max_load=${BENCH_MAX_LOAD:-3}
lua="$root/bench/wrk/chat.lua"

die() { echo "gateway.sh: $*" >&2; exit 1; }
has() { [[ " $targets " == *" $1 "* ]]; }

[[ "$secs" =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a positive integer"
[[ "$warm" =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be an integer"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || die "BENCH_WORKERS must be a positive integer"
[[ "$use_portkey" =~ ^[01]$ ]] || die "BENCH_PORTKEY must be 0 or 1"
for t in $targets; do
  case $t in direct|nginx|brigade|portkey) ;; *) die "unknown target '$t' in BENCH_TARGETS" ;; esac
done

# Portkey is measured where it runs: without it, the other targets still are.
portkey_dir="$root/bench/portkey"
portkey_js="$portkey_dir/node_modules/@portkey-ai/gateway/build/start-server.js"
portkey_skip=""
if has portkey; then
  if [[ "$use_portkey" == 0 ]]; then
    portkey_skip="BENCH_PORTKEY=0"
  elif [[ ! -f "$portkey_js" ]]; then
    portkey_skip="bench/portkey/node_modules is missing (scripts/deps.sh --bench installs it)"
  elif ! command -v node >/dev/null 2>&1; then
    portkey_skip="no node on PATH (scripts/deps.sh --bench installs it)"
  fi
  if [[ -n "$portkey_skip" ]]; then
    echo "gateway.sh: skipping the portkey target: $portkey_skip" >&2
    targets=$(for t in $targets; do [[ "$t" == portkey ]] || printf '%s ' "$t"; done)
    targets=${targets% }
  fi
fi
[[ -n "${targets// }" ]] || die "no target left to measure (BENCH_TARGETS)"

# ---- tools ---------------------------------------------------------------
need=(wrk curl awk ss)
has nginx && need+=(nginx)
missing=()
for t in "${need[@]}"; do
  command -v "$t" >/dev/null 2>&1 || [[ -x /usr/sbin/$t ]] || missing+=("$t")
done
[[ "$syscalls" == 1 ]] && { command -v perf >/dev/null 2>&1 || missing+=(perf); }
((${#missing[@]} == 0)) || die "missing ${missing[*]}: run scripts/deps.sh --bench"
nginx_bin=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)

# ---- build ---------------------------------------------------------------
if [[ -z "${BRIGADE:-}" ]]; then
  BRIGADE="$root/build-bench/brigade"
  if [[ ! -d build-bench ]]; then
    meson setup build-bench --buildtype=release -Db_lto=true >/dev/null || die "meson setup failed"
  fi
  echo "building brigade (release) in build-bench/ ..."
  ninja -j2 -C build-bench brigade >/dev/null || die "build failed (ninja -C build-bench brigade)"
fi
MOCK_BIN=${MOCK_BIN:-$BRIGADE}
[[ -x "$MOCK_BIN" ]] || die "no mock-llm binary at $MOCK_BIN"
if has brigade; then [[ -x "$BRIGADE" ]] || die "no brigade binary at $BRIGADE"; fi

# ---- a quiet machine, temp dir, process bookkeeping, cleanup --------------
bench_wait_quiet "$max_load"
tmp=$(mktemp -d /tmp/brigade-bench.XXXXXX)
chmod 755 "$tmp"   # nginx workers may run as another user
stamp=$(date +%Y%m%dT%H%M%S)
out="$root/bench/results/gateway-$stamp"
mkdir -p "$out"
pids=()
keep_files=(mock.log brigade.log nginx-error.log nginx.conf brigade.yaml portkey.log)
stop_wait_s=5
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

free_port() {   # a loopback TCP port nobody listens on
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return 0; }
  done
  die "no free port found"
}


# "VmRSS VmHWM" in kB, summed over the given pids.
mem_kb() {
  local files=() p
  for p in "$@"; do files+=("/proc/$p/status"); done
  awk '/^VmRSS:/ {r += $2} /^VmHWM:/ {h += $2} END {print r + 0, h + 0}' "${files[@]}"
}
tck=$(getconf CLK_TCK)

# ---- mock-llm ------------------------------------------------------------
"$MOCK_BIN" mock-llm --listen 127.0.0.1:0 --threads "$workers" >"$tmp/mock.log" 2>&1 &
mock_pid=$!; pids+=("$mock_pid")
mock_url=$(bench_wait_line "$tmp/mock.log" 'http://127\.0\.0\.1:[0-9]+' "$mock_pid" mock-llm)
mock_port=${mock_url##*:}
echo "mock-llm   pid $mock_pid  $mock_url"

# ---- nginx ---------------------------------------------------------------
nginx_pids=()
if has nginx; then
  nginx_port=$(free_port)
  bench_nginx_conf "$tmp" "$nginx_port" "127.0.0.1:$mock_port" "$workers"
  "$nginx_bin" -p "$tmp/" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf" -g 'daemon off;' \
    >"$tmp/nginx.out" 2>&1 &
  nginx_master=$!; pids+=("$nginx_master")
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$nginx_port/healthz" && break
    kill -0 "$nginx_master" 2>/dev/null || { cat "$tmp/nginx.out" "$tmp/nginx-error.log" >&2; die "nginx exited"; }
    sleep 0.1
  done
  read -r -a nginx_workers <<<"$(cat /proc/"$nginx_master"/task/*/children 2>/dev/null)"
  nginx_pids=("$nginx_master" "${nginx_workers[@]}")
  echo "nginx      pid $nginx_master (workers ${nginx_workers[*]})  http://127.0.0.1:$nginx_port"
fi

# ---- brigade -------------------------------------------------------------
if has brigade; then
  admin_token="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  mkdir -p -m 700 "$tmp/data"
  trace_yaml=""
  if [[ -n "${BENCH_TRACE_SAMPLE:-}" ]]; then
    trace_yaml="observability: {traces: {sample_ratio: $BENCH_TRACE_SAMPLE}}"
  fi
  cat >"$tmp/brigade.yaml" <<EOF
# generated by bench/gateway.sh
server: {listen: "127.0.0.1:0", data_dir: "$tmp/data", threads: $workers}
providers: [{name: m, kind: openai, base_url: "http://127.0.0.1:$mock_port/v1", max_connections: 128}]
models: [{name: bench-model, provider: m, upstream_model: bench-model, input_usd_per_mtok: 1, output_usd_per_mtok: 2}]
$trace_yaml
EOF
  BRIGADE_ADMIN_TOKEN=$admin_token BRIGADE_LOG=${BRIGADE_LOG:-warn} \
    "$BRIGADE" serve --config "$tmp/brigade.yaml" --data-dir "$tmp/data" >"$tmp/brigade.log" 2>&1 &
  brigade_pid=$!; pids+=("$brigade_pid")
  brigade_url=$(bench_wait_line "$tmp/brigade.log" 'http://127\.0\.0\.1:[0-9]+' "$brigade_pid" "brigade serve")
  echo "brigade    pid $brigade_pid  $brigade_url"

  # A tenant, a user and the user's key, over the HTTP API.
  json_field() { sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" | head -1; }
  post() {   # post URL TOKEN BODY -> response body; fails on non-2xx
    local r code
    r=$(curl -s -w '\n%{http_code}' -X POST "$1" -H "authorization: Bearer $2" \
          -H 'content-type: application/json' -d "$3")
    code=${r##*$'\n'}
    [[ "$code" == 2* ]] || die "POST $1 -> HTTP $code: ${r%$'\n'*}"
    echo "${r%$'\n'*}"
  }
  admin_key=$(post "$brigade_url/v1/tenants" "$admin_token" '{"name":"bench"}' | json_field admin_key)
  [[ -n "$admin_key" ]] || die "no admin_key from POST /v1/tenants"
  user_id=$(post "$brigade_url/v1/users" "$admin_key" '{"external_id":"u1"}' | json_field id)
  [[ -n "$user_id" ]] || die "no id from POST /v1/users"
  user_key=$(post "$brigade_url/v1/users/$user_id/keys" "$admin_key" '{}' | json_field key)
  [[ "$user_key" == bk_usr_* ]] || die "no bk_usr_ key from POST /v1/users/$user_id/keys"
fi
export BENCH_KEY=${user_key:-bench}

# ---- portkey -------------------------------------------------------------
# The OpenAI provider with the mock as custom host (127.0.0.1 is one of
# Portkey's default trusted custom hosts); both are request headers, sent by
# chat.lua from BENCH_HEADERS. Its start-server.js binds every interface;
# loopback.cjs, preloaded, makes it listen on 127.0.0.1 only.
portkey_headers=""
if has portkey; then
  portkey_port=$(free_port)
  NODE_ENV=production node --require "$portkey_dir/loopback.cjs" "$portkey_js" \
    --port="$portkey_port" --headless >"$tmp/portkey.log" 2>&1 &
  portkey_pid=$!; pids+=("$portkey_pid")
  bench_wait_line "$tmp/portkey.log" 'Ready for connections' "$portkey_pid" "portkey" 30 >/dev/null
  portkey_listen=$(ss -Htln "sport = :$portkey_port" | awk '{print $4}')
  [[ "$portkey_listen" == "127.0.0.1:$portkey_port" ]] ||
    die "portkey listens on '${portkey_listen//$'\n'/ }', not on 127.0.0.1:$portkey_port only"
  portkey_headers=$'x-portkey-provider: openai\nx-portkey-custom-host: '"http://127.0.0.1:$mock_port/v1"
  portkey_version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
    "$portkey_dir/node_modules/@portkey-ai/gateway/package.json" | head -1)
  echo "portkey    pid $portkey_pid  http://127.0.0.1:$portkey_port  (@portkey-ai/gateway $portkey_version, node $(node --version))"
fi

url_of() {
  case $1 in
    direct) echo "$mock_url" ;;
    nginx) echo "http://127.0.0.1:$nginx_port" ;;
    brigade) echo "$brigade_url" ;;
    portkey) echo "http://127.0.0.1:$portkey_port" ;;
  esac
}
headers_of() {   # extra request headers of a target, one "name: value" a line
  case $1 in
    portkey) echo "$portkey_headers" ;;
    *) echo "" ;;
  esac
}
proxy_pids_of() {
  case $1 in
    nginx) echo "${nginx_pids[*]}" ;;
    brigade) echo "$brigade_pid" ;;
    portkey) echo "$portkey_pid" ;;
    *) echo "" ;;
  esac
}

# ---- sanity: one request per target must answer 200 with a completion ----
body='{"model":"bench-model","messages":[{"role":"user","content":"hello [[tokens:16]]"}]}'
for t in $targets; do
  hdr=()
  while IFS= read -r h; do [[ -n "$h" ]] && hdr+=(-H "$h"); done <<<"$(headers_of "$t")"
  r=$(curl -s -w '\n%{http_code}' -X POST "$(url_of "$t")/v1/chat/completions" "${hdr[@]+"${hdr[@]}"}" \
        -H "authorization: Bearer $BENCH_KEY" -H 'content-type: application/json' -d "$body")
  code=${r##*$'\n'}
  [[ "$code" == 200 && "$r" == *'"choices"'* ]] || die "$t: sanity request -> HTTP $code: ${r%$'\n'*}"
done
# Portkey's streamed replies fail with some versions of its HTTP server
# (bench/portkey/package.json pins the one its own lock file has): check one.
if has portkey && [[ "$stream_case" == 1 ]]; then
  hdr=()
  while IFS= read -r h; do [[ -n "$h" ]] && hdr+=(-H "$h"); done <<<"$(headers_of portkey)"
  r=$(curl -s -w '\n%{http_code}' -X POST "$(url_of portkey)/v1/chat/completions" "${hdr[@]}" \
        -H "authorization: Bearer $BENCH_KEY" -H 'content-type: application/json' \
        -d '{"model":"bench-model","stream":true,"messages":[{"role":"user","content":"hello [[tokens:16]]"}]}')
  code=${r##*$'\n'}
  [[ "$code" == 200 && "$r" == *'data: [DONE]'* ]] || die "portkey: streamed sanity request -> HTTP $code: ${r%$'\n'*}"
fi

# ---- runs ----------------------------------------------------------------
tsv="$out/results.tsv"
printf 'round\ttarget\tconc\tstream\trequests\trps\tp50_us\tp99_us\tmax_us\terrors\tproxy_cpu_us_per_req\tmock_cpu_us_per_req\tproxy_syscalls_per_req\tproxy_ctxsw_per_req\n' >"$tsv"

wrk_run() {   # wrk_run TARGET CONC STREAM SECONDS [PERF-PIDS PERF-OUT] -> wrk's output
  local t=$1 c=$2 s=$3 d=$4 th=1 cmd
  ((c > 1)) && th=$wrk_threads
  ((th > c)) && th=$c
  cmd=(wrk -s "$lua" --latency -t"$th" -c"$c" -d"${d}s" --timeout 5s "$(url_of "$t")")
  if [[ -n "${5:-}" ]]; then
    cmd=(perf stat -x "," -e "raw_syscalls:sys_enter,context-switches" -p "$5" -o "$6" -- "${cmd[@]}")
  fi
  BENCH_STREAM=$s BENCH_HEADERS=$(headers_of "$t") timeout $((d + 30)) "${cmd[@]}"
}

run_case() {  # run_case ROUND TARGET CONC STREAM
  local r=$1 t=$2 c=$3 s=$4 name ppids p0 p1 m0 m1 line
  name="$t-c$c"; [[ $s == 1 ]] && name+=-stream
  name+="-r$r"
  read -r -a ppids <<<"$(proxy_pids_of "$t")"
  p0=$(bench_cpu_ticks "${ppids[@]+"${ppids[@]}"}"); m0=$(bench_cpu_ticks "$mock_pid")
  local perf_args=()
  if [[ "$syscalls" == 1 && ${#ppids[@]} -gt 0 ]]; then
    perf_args=("$(IFS=,; echo "${ppids[*]}")" "$out/perf-$name.txt")
  fi
  wrk_run "$t" "$c" "$s" "$secs" "${perf_args[@]+"${perf_args[@]}"}" >"$out/wrk-$name.txt" 2>&1 || true
  local sc="-" cs="-"
  if ((${#perf_args[@]})) && [[ -f "$out/perf-$name.txt" ]]; then
    sc=$(awk -F, '$3 == "raw_syscalls:sys_enter" {print $1}' "$out/perf-$name.txt")
    cs=$(awk -F, '$3 == "context-switches" {print $1}' "$out/perf-$name.txt")
  fi
  p1=$(bench_cpu_ticks "${ppids[@]+"${ppids[@]}"}"); m1=$(bench_cpu_ticks "$mock_pid")
  line=$(grep '^BENCH ' "$out/wrk-$name.txt" || true)
  if [[ -z "$line" ]]; then
    echo "  $name: wrk printed no result (see $out/wrk-$name.txt)" >&2
    printf '%s\t%s\t%s\t%s\t0\t0\t0\t0\t0\t-1\t-\t-\t-\t-\n' "$r" "$t" "$c" "$s" >>"$tsv"
    return
  fi
  awk -v r="$r" -v t="$t" -v c="$c" -v s="$s" -v p0="$p0" -v p1="$p1" -v m0="$m0" -v m1="$m1" \
      -v tck="$tck" -v proxy="${#ppids[@]}" -v line="$line" -v sc="${sc:--}" -v cs="${cs:--}" 'BEGIN {
    n = split(line, kv, " ")
    for (i = 2; i <= n; i++) { split(kv[i], a, "="); v[a[1]] = a[2] }
    err = v["errors_connect"] + v["errors_read"] + v["errors_write"] + v["errors_status"] + v["errors_timeout"]
    # what was answered: a refusal (503 while brigade sheds load) is fast
    # and cheap, and counted as throughput it would flatter the proxy that
    # refuses; req/s and the per-request figures are of answers only
    req = v["requests"] - v["errors_status"]
    if (req < 0) req = 0
    rps = v["duration_us"] > 0 ? req / (v["duration_us"] / 1e6) : 0
    pc = (proxy > 0 && req > 0) ? sprintf("%.1f", (p1 - p0) * 1e6 / tck / req) : "-"
    mc = req > 0 ? sprintf("%.1f", (m1 - m0) * 1e6 / tck / req) : "-"
    scr = (sc ~ /^[0-9]+$/ && req > 0) ? sprintf("%.1f", sc / req) : "-"
    csr = (cs ~ /^[0-9]+$/ && req > 0) ? sprintf("%.2f", cs / req) : "-"
    printf "%s\t%s\t%s\t%s\t%d\t%.0f\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", r, t, c, s, req, rps, v["p50_us"], v["p99_us"], v["max_us"], err, pc, mc, scr, csr
  }' >>"$tsv"
  tail -1 "$tsv" | awk -F'\t' '{printf "  %-20s %8s req/s  p50 %6s us  p99 %6s us  errors %s  proxy CPU %s us/req\n", "'"$name"'", $6, $7, $8, $10, $11}'
}

echo "warming up ($warm s per target) ..."
if ((warm > 0)); then
  for t in $targets; do wrk_run "$t" 64 0 "$warm" >"$out/warmup-$t.txt" 2>&1 || true; done
fi

echo "measuring ($secs s per run, $rounds round(s)) ..."
# Interleave the targets inside each concurrency, and repeat the whole
# sequence per round, so that drift in the machine's background load spreads
# over all targets alike.
for r in $(seq "$rounds"); do
  for c in 1 64; do
    for t in $targets; do run_case "$r" "$t" "$c" 0; done
  done
  if [[ "$stream_case" == 1 ]]; then
    for t in $targets; do run_case "$r" "$t" 64 1; done
  fi
done

# Memory of the proxies after all runs (VmHWM = peak over the process's life).
mem_nginx="- -"; mem_brigade="- -"; mem_portkey="- -"
has nginx && mem_nginx=$(mem_kb "${nginx_pids[@]}")
has brigade && mem_brigade=$(mem_kb "$brigade_pid")
has portkey && mem_portkey=$(mem_kb "$portkey_pid")
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# Usage recording was on: what brigade's ledger holds against what wrk saw
# completed (warm-up and the sanity request included). Requests still in
# flight when wrk stopped may be recorded too, so the ledger may hold a few
# more; far fewer would mean usage was dropped. Read once the writer's
# queue is empty (brigade_store_usage_queued): rows are batched
# (STORE_USAGE_FLUSH_MS), and after a saturated run the writer may still be
# seconds behind; how long it took to catch up is reported.
usage_line="not measured"
if has brigade; then
  drain_start=$(date +%s%N)
  for _ in $(seq 1 600); do
    queued=$(curl -s -H "authorization: Bearer $admin_token" "$brigade_url/metrics" |
             awk '/^brigade_store_usage_queued / {print $2}')
    [ "${queued:-1}" = 0 ] && break
    sleep 0.1
  done
  sleep 0.3   # the last batch's commit, after its rows left the queue
  drain_ms=$(( ($(date +%s%N) - drain_start) / 1000000 ))
  usage_json=$(curl -s -H "authorization: Bearer $user_key" "$brigade_url/v1/usage?group_by=model" || true)
  echo "$usage_json" >"$out/brigade-usage.json"
  recorded=$(grep -o '"requests" *: *[0-9]*' <<<"$usage_json" | awk -F: '{s += $2} END {print s + 0}')
  completed=$(cat "$out"/wrk-brigade-*.txt "$out"/warmup-brigade.txt 2>/dev/null |
               awk '/^BENCH / {for (i = 2; i <= NF; i++) if ($i ~ /^requests=/) {split($i, a, "="); s += a[2]}}
                    END {print s + 1}' || true)
  usage_line="brigade's usage ledger holds $recorded requests; wrk and the sanity check completed $completed (read ${drain_ms} ms after the last run, once the writer's queue was empty)"
fi

# ---- report --------------------------------------------------------------
# summarize [derived]: the median per (target, conc, stream) over the rounds,
# as table rows, or (with "derived") the ratios the aims are judged by.
summarize() {
  awk -F'\t' -v mode="${1:-table}" -v extra="$syscalls" -v rounds="$rounds" '
    function med(k, col,    n, i, j, x, a) {
      n = cnt[k]
      for (i = 1; i <= n; i++) {
        x = val[k, i, col]; if (x == "-") return "-"
        for (j = i - 1; j >= 1 && a[j] > x + 0; j--) a[j + 1] = a[j]
        a[j + 1] = x + 0
      }
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function ratio(a, b) { return (b > 0) ? sprintf("%.2f", a / b) : "n/a" }
    NR > 1 {
      k = $2 "-" $3 "-" $4
      if (!(k in cnt)) { order[++nk] = k; tg[k] = $2; cc[k] = $3; st[k] = $4 }
      n = ++cnt[k]
      for (c = 5; c <= NF; c++) val[k, n, c] = $c
      errs[k] += $10; seen[$2] = 1
    }
    END {
      for (i = 1; i <= nk; i++) {
        k = order[i]
        rps[k] = med(k, 6); p50[k] = med(k, 7); p99[k] = med(k, 8)
        pc = med(k, 11); mc = med(k, 12); pcpu[k] = (pc == "-") ? 0 : pc
        if (mode != "table") continue
        printf "| %s | %s | %s | %.0f | %.0f | %.0f | %d | %s | %s |", tg[k], cc[k], (st[k] == 1 ? "yes" : "no"),
          rps[k], p50[k], p99[k], errs[k], (pc == "-" ? "-" : sprintf("%.1f", pc)), (mc == "-" ? "-" : sprintf("%.1f", mc))
        if (extra == 1) {
          sc = med(k, 13); cs = med(k, 14)
          printf " %s | %s |", (sc == "-" ? "-" : sprintf("%.1f", sc)), (cs == "-" ? "-" : sprintf("%.2f", cs))
        }
        print ""
      }
      if (mode == "table") exit

      for (i = 1; i <= 3; i++) {
        p = (i == 1) ? "nginx" : (i == 2) ? "brigade" : "portkey"
        if (!seen[p] || !seen["direct"]) continue
        d = d sprintf("- %s added p50 at c=1: %d µs (added p99: %d µs); added p50 at c=64: %d µs\n", p,
          p50[p "-1-0"] - p50["direct-1-0"], p99[p "-1-0"] - p99["direct-1-0"], p50[p "-64-0"] - p50["direct-64-0"])
      }
      if (seen["brigade"] && seen["nginx"]) {
        d = d sprintf("- brigade req/s / nginx req/s: c=1 %s, c=64 %s", ratio(rps["brigade-1-0"], rps["nginx-1-0"]), ratio(rps["brigade-64-0"], rps["nginx-64-0"]))
        if (("brigade-64-1") in rps) d = d sprintf(", c=64 streaming %s", ratio(rps["brigade-64-1"], rps["nginx-64-1"]))
        d = d "\n"
      }
      if (seen["brigade"] && seen["portkey"]) {
        d = d sprintf("- brigade req/s / portkey req/s: c=1 %s, c=64 %s", ratio(rps["brigade-1-0"], rps["portkey-1-0"]), ratio(rps["brigade-64-0"], rps["portkey-64-0"]))
        if (("brigade-64-1") in rps) d = d sprintf(", c=64 streaming %s", ratio(rps["brigade-64-1"], rps["portkey-64-1"]))
        d = d "\n"
        d = d sprintf("- portkey proxy CPU µs/req / brigade proxy CPU µs/req: c=1 %s, c=64 %s", ratio(pcpu["portkey-1-0"], pcpu["brigade-1-0"]), ratio(pcpu["portkey-64-0"], pcpu["brigade-64-0"]))
        if (("brigade-64-1") in rps) d = d sprintf(", c=64 streaming %s", ratio(pcpu["portkey-64-1"], pcpu["brigade-64-1"]))
        d = d "\n"
      }
      if (seen["brigade"] && seen["direct"])
        d = d sprintf("- mock-llm max req/s / brigade max req/s (c=64, direct vs through brigade): %s\n", ratio(rps["direct-64-0"], rps["brigade-64-0"]))
      if (seen["nginx"] && seen["direct"])
        d = d sprintf("- nginx req/s / direct req/s (c=64): %s\n", ratio(rps["nginx-64-0"], rps["direct-64-0"]))
      if (d != "") printf "Derived%s:\n\n%s", (rounds > 1 ? " (from the medians)" : ""), d
    }' "$tsv"
}

report="$out/report.md"
{
  echo "## Gateway benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1);" \
       "load average at start $load_start, at end $load_end."
  echo "Command: \`$cmdline\` ($secs s per run, $rounds round(s), wrk threads: 1 at c=1, $wrk_threads at c=64)."
  echo "mock-llm, the proxy and wrk share the same $(nproc) cores."
  if has portkey; then
    echo "Portkey: @portkey-ai/gateway $portkey_version on node $(node --version), one process (single-threaded)," \
         "against brigade with $workers loop thread(s) and nginx with $workers worker(s)."
  elif [[ -n "$portkey_skip" ]]; then
    echo "Portkey: not measured ($portkey_skip)."
  fi
  if command -v git >/dev/null && git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
    echo "Source: commit $(git -C "$root" rev-parse --short HEAD)," \
         "$(git -C "$root" status --porcelain 2>/dev/null | wc -l) uncommitted path(s) in the work tree."
  fi
  echo
  if ((rounds > 1)); then
    echo "Each figure is the median over $rounds rounds (every round is in results.tsv)."
    echo
  fi
  if [[ "$syscalls" == 1 ]]; then
    echo "| target | conc | stream | req/s | p50 µs | p99 µs | errors | proxy CPU µs/req | mock CPU µs/req | proxy syscalls/req | proxy ctx switches/req |"
    echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  else
    echo "| target | conc | stream | req/s | p50 µs | p99 µs | errors | proxy CPU µs/req | mock CPU µs/req |"
    echo "|---|---:|---|---:|---:|---:|---:|---:|---:|"
  fi
  summarize
  echo
  echo "| proxy | VmRSS kB | VmHWM kB |"
  echo "|---|---:|---:|"
  has nginx && echo "| nginx (master + $workers worker(s), summed) | ${mem_nginx% *} | ${mem_nginx#* } |"
  has brigade && echo "| brigade | ${mem_brigade% *} | ${mem_brigade#* } |"
  has portkey && echo "| portkey (one node process) | ${mem_portkey% *} | ${mem_portkey#* } |"
  echo
  echo "Usage recording: $usage_line."
  echo
  summarize derived
} >"$report"

echo
cat "$report"
echo
echo "raw results: ${out#"$root"/}/"
