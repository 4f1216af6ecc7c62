#!/usr/bin/env bash
# instructions.sh — what one gateway request costs brigade, in CPU
# instructions counted by callgrind: a figure that does not move with the
# load of a shared machine, so two commits can be compared on a busy VM
# where req/s and µs/req swing by ±30 % (docs/benchmarks.md).
#
#   bench/instructions.sh                       the build in build-bench/
#   BRIGADES="old/brigade build-bench/brigade" bench/instructions.sh
#
# For each binary: brigade mock-llm (native) as the upstream, brigade serve
# (one loop) under valgrind --tool=callgrind, a tenant, a user and a key
# made over the API, WARMUP requests, the counters zeroed, then N
# sequential non-streaming chat completions on one keep-alive connection,
# a second for the usage writer and the tracer to flush, and the counters
# dumped. The figure is every thread's instructions (loop, store writer,
# tracer: all the work a request causes) divided by N.
#
# Then, in the same run, the reference: nginx proxy_pass to the same kind of
# mock (one process, `master_process off`, the keep-alive upstream and
# unbuffered proxying of bench/gateway.sh) under callgrind, the same warm-up
# and N requests; the last line gives brigade / nginx. nginx does less
# (no auth, limits, usage, traces): the ratio is the price of all that.
#
# Environment:
#   BRIGADES         binaries to compare (default build-bench/brigade, built
#                    as a release build if missing)
#   BENCH_REQUESTS   N (default 500)
#   BENCH_WARMUP     warm-up requests (default 100)
#   BENCH_KEEP       1 keeps the temp dirs
#   BENCH_TRACES     off: traces.sample_ratio 0 (no span kept), to price tracing
#   BENCH_STREAM     1: the requests ask for a streamed (SSE) answer of 16 chunks
#   BENCH_NGINX      0 skips the nginx reference (default: measured when
#                    nginx is installed; scripts/deps.sh --bench installs it)
#   BENCH_THREADS    1: callgrind --separate-threads=yes, and a line per thread
#                    (loop, store writer, tracer) on stderr after the table
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
n=${BENCH_REQUESTS:-500}
warm=${BENCH_WARMUP:-100}
die() { echo "instructions.sh: $*" >&2; exit 1; }
[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "BENCH_REQUESTS must be a positive integer"
[[ "$warm" =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be an integer"
for t in valgrind callgrind_control node curl; do command -v $t >/dev/null || die "missing $t"; done

if [[ -z "${BRIGADES:-}" ]]; then
  # Release with link-time optimisation, as the committed figures were
  # measured (an older build-bench/ is switched over, not set up again).
  if [[ -f build-bench/build.ninja ]]; then
    meson configure build-bench -Db_lto=true >/dev/null
  else
    meson setup build-bench --buildtype=release -Db_lto=true -Dtests=false >/dev/null
  fi
  ninja -C build-bench brigade >/dev/null || die "build failed"
  BRIGADES=build-bench/brigade
fi

pids=()
tmps=()
cleanup() {
  for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ "${BENCH_KEEP:-0}" == 1 ]] || for t in "${tmps[@]+"${tmps[@]}"}"; do rm -rf "$t"; done
}
trap cleanup EXIT

wait_url() {   # wait_url LOGFILE PID SECONDS
  for _ in $(seq $(($3 * 10))); do
    grep -Eo 'http://127\.0\.0\.1:[0-9]+' "$1" 2>/dev/null | head -1 | grep . && return 0
    kill -0 "$2" 2>/dev/null || { cat "$1" >&2; die "a server exited before listening"; }
    sleep 0.1
  done
  die "no listening line in $1 after $3 s"
}

# N sequential requests on one keep-alive connection (node's fetch).
requests() {   # requests URL KEY COUNT
  node -e '
    const [url, key, n, stream] = process.argv.slice(1);
    const body = JSON.stringify({ model: "bench-model", max_tokens: 16, ...(stream === "1" ? { stream: true } : {}),
      messages: [{ role: "user", content: "hello there, how are you today?" }] });
    (async () => {
      for (let i = 0; i < +n; i++) {
        const r = await fetch(url + "/v1/chat/completions", { method: "POST", body,
          headers: { authorization: "Bearer " + key, "content-type": "application/json" } });
        const t = await r.text();
        if (r.status !== 200) { console.error(r.status, t); process.exit(1); }
      }
    })();' "$1" "$2" "$3" "${BENCH_STREAM:-0}"
}

field() { sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" | head -1; }

echo "| binary | commit | instructions per request (all threads) |"
echo "|---|---|---:|"
for bin in $BRIGADES; do
  [[ -x "$bin" ]] || die "no binary at $bin"
  tmp=$(mktemp -d /tmp/brigade-instr.XXXXXX); tmps+=("$tmp")
  mkdir -p -m 700 "$tmp/data"
  "$bin" mock-llm --listen 127.0.0.1:0 --threads 1 >"$tmp/mock.log" 2>&1 &
  mock_pid=$!; pids+=("$mock_pid")
  mock_url=$(wait_url "$tmp/mock.log" "$mock_pid" 10)
  cat >"$tmp/brigade.yaml" <<EOF
server: {listen: "127.0.0.1:0", data_dir: "$tmp/data", threads: 1}
providers: [{name: m, kind: openai, base_url: "$mock_url/v1", max_connections: 16}]
models: [{name: bench-model, provider: m, upstream_model: bench-model, input_usd_per_mtok: 1, output_usd_per_mtok: 2}]
EOF
  [[ "${BENCH_TRACES:-on}" == off ]] && echo "observability: {traces: {sample_ratio: 0}}" >>"$tmp/brigade.yaml"
  cg_threads=no
  [[ "${BENCH_THREADS:-0}" == 1 ]] && cg_threads=yes
  token="instr-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  BRIGADE_ADMIN_TOKEN=$token BRIGADE_LOG=warn valgrind --tool=callgrind --separate-threads=$cg_threads \
    --callgrind-out-file="$tmp/callgrind.out" "$bin" serve --config "$tmp/brigade.yaml" \
    --data-dir "$tmp/data" >"$tmp/brigade.log" 2>&1 &
  pid=$!; pids+=("$pid")
  url=$(wait_url "$tmp/brigade.log" "$pid" 60)
  admin_key=$(curl -s "$url/v1/tenants" -H "authorization: Bearer $token" -d '{"name":"instr"}' | field admin_key)
  [[ -n "$admin_key" ]] || die "no tenant"
  user_id=$(curl -s "$url/v1/users" -H "authorization: Bearer $admin_key" -d '{"external_id":"u"}' | field id)
  key=$(curl -s "$url/v1/users/$user_id/keys" -H "authorization: Bearer $admin_key" -d '{}' | field key)
  [[ "$key" == bk_usr_* ]] || die "no user key"
  ((warm)) && requests "$url" "$key" "$warm"
  sleep 1
  callgrind_control -z "$pid" >/dev/null 2>&1
  requests "$url" "$key" "$n"
  sleep 1   # usage rows and spans are written within 200 ms
  callgrind_control -d "$pid" >/dev/null 2>&1
  ir=0
  per_thread=""
  for dump in "$tmp"/callgrind.out.*; do
    t=$(awk '/^summary:/ {print $2}' "$dump")
    [[ -n "$t" ]] || continue
    ir=$((ir + t))
    per_thread+="$(basename "$dump"): $((t / n)) per request"$'\n'
    [[ "$cg_threads" == yes ]] || break
  done
  ((ir > 0)) || die "no summary in $tmp"
  commit=$(git -C "$(dirname "$(readlink -f "$bin")")" rev-parse --short HEAD 2>/dev/null || echo "?")
  printf '| %s | %s | %d |\n' "$bin" "$commit" $((ir / n))
  if [[ "$cg_threads" == yes ]]; then printf '%s' "$per_thread" | sed "s|^|  $bin |" >&2; fi
  kill "$pid" "$mock_pid" 2>/dev/null || true
  wait "$pid" "$mock_pid" 2>/dev/null || true
  last_ir=$((ir / n))
done

# ---- the reference: nginx proxy_pass, counted the same way ----------------
nginx_bin=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
want_nginx=${BENCH_NGINX:-auto}
if [[ "$want_nginx" == auto ]]; then [[ -x "$nginx_bin" ]] && want_nginx=1 || want_nginx=0; fi
if [[ "$want_nginx" == 1 ]]; then
  [[ -x "$nginx_bin" ]] || die "BENCH_NGINX=1 but no nginx: run scripts/deps.sh --bench"
  bin=${BRIGADES##* }   # its mock-llm
  tmp=$(mktemp -d /tmp/brigade-instr.XXXXXX); tmps+=("$tmp")
  chmod 755 "$tmp"
  "$bin" mock-llm --listen 127.0.0.1:0 --threads 1 >"$tmp/mock.log" 2>&1 &
  mock_pid=$!; pids+=("$mock_pid")
  mock_url=$(wait_url "$tmp/mock.log" "$mock_pid" 10)
  port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  bench_nginx_conf "$tmp" "$port" "${mock_url#http://}" 1 $'master_process off;\ndaemon off;\n'
  valgrind --tool=callgrind --callgrind-out-file="$tmp/callgrind.out" \
    "$nginx_bin" -p "$tmp/" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf" >"$tmp/nginx.log" 2>&1 &
  pid=$!; pids+=("$pid")
  for _ in $(seq 300); do
    curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/nginx.log" "$tmp/nginx-error.log" >&2; die "nginx exited"; }
    sleep 0.1
  done
  ((warm)) && requests "http://127.0.0.1:$port" none "$warm"
  sleep 1
  callgrind_control -z "$pid" >/dev/null 2>&1
  requests "http://127.0.0.1:$port" none "$n"
  sleep 1
  callgrind_control -d "$pid" >/dev/null 2>&1
  ir=0
  for dump in "$tmp"/callgrind.out.*; do
    t=$(awk '/^summary:/ {print $2}' "$dump")
    [[ -n "$t" ]] && ir=$((ir + t))
  done
  ((ir > 0)) || die "no summary for nginx in $tmp"
  version=$("$nginx_bin" -v 2>&1 | sed 's|.*nginx/||')
  printf '| nginx proxy_pass (reference) | %s | %d |\n' "$version" $((ir / n))
  awk -v b="$last_ir" -v x=$((ir / n)) 'BEGIN { printf "\n%s / nginx: %.2fx the instructions per request\n", "'"${BRIGADES##* }"'", b / x }'
  kill "$pid" "$mock_pid" 2>/dev/null || true
  wait "$pid" "$mock_pid" 2>/dev/null || true
fi
