#!/usr/bin/env bash
# cluster.sh — what several instances cost and give (docs/scale-out.md):
# gateway throughput and latency of one brigade on SQLite (governance in
# process), one on PostgreSQL + Redis, and two on the same PostgreSQL +
# Redis, all behind the same nginx, in one run on loopback (the machine is
# shared: compare the ratios within a run); then the admission round trip
# to Redis with 1,000 and with 100,000 users' counters in it.
#
#   bench/cluster.sh                   build (release) if needed and run it all
#   BENCH_SECONDS=5 bench/cluster.sh   shorter runs
#
# Targets (wrk -> nginx -> brigade serve -> brigade mock-llm; the same body,
# bench/wrk/chat.lua, and a user with a daily budget and an rpm limit, so
# every call is admitted by governance and recorded in the ledger):
#   sqlite1   one instance, SQLite store, governance in process
#   pg1       one instance, PostgreSQL store, governance in Redis
#   pg2       two instances (pg1's and another) on that PostgreSQL and
#             Redis, nginx least_conn over both
# Each at concurrency 1 and 64 (non-streaming), targets interleaved within
# each round. Then bench's redis_admit_bench (bench/redis_admit_bench.c)
# against a fresh redis-server, once with 1,000 users and once with
# 100,000: the round trip one at a time (p50/p99), and admissions/s with 64
# in flight.
#
# Environment:
#   BENCH_SECONDS      seconds per measured run (default 10)
#   BENCH_WARMUP       seconds of warm-up per target (default 2)
#   BENCH_ROUNDS       repeat the interleaved sequence (default 1; the median is reported)
#   BENCH_WORKERS      loop threads of each brigade instance and of the mock (default 2)
#   BENCH_ADMIT_CALLS  admissions measured per user count (default 20000)
#   BENCH_MAX_LOAD     wait (at most 2 min) while the 1-min load is above it (default 3)
#   BRIGADE            brigade binary (default: the release build in build-bench/)
#   BENCH_KEEP         1 keeps the temp dir
#
# Needs wrk, nginx, redis-server and PostgreSQL 15 (scripts/deps.sh --bench
# --cluster). Raw results go to bench/results/cluster-<timestamp>/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
cmdline=$(bench_cmdline bench/cluster.sh 'BENCH_|BRIGADE$')

secs=${BENCH_SECONDS:-10}
warm=${BENCH_WARMUP:-2}
rounds=${BENCH_ROUNDS:-1}
workers=${BENCH_WORKERS:-2}
admit_calls=${BENCH_ADMIT_CALLS:-20000}
max_load=${BENCH_MAX_LOAD:-3}
lua="$root/bench/wrk/chat.lua"
targets="sqlite1 pg1 pg2"

die() { echo "cluster.sh: $*" >&2; exit 1; }
[[ "$secs" =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a positive integer"
[[ "$warm" =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be an integer"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || die "BENCH_WORKERS must be a positive integer"
[[ "$admit_calls" =~ ^[1-9][0-9]*$ ]] && ((admit_calls <= 1000000)) || die "BENCH_ADMIT_CALLS must be 1 to 1000000"

missing=()
for t in wrk curl awk ss nginx redis-server; do
  command -v "$t" >/dev/null 2>&1 || [[ -x /usr/sbin/$t ]] || missing+=("$t")
done
((${#missing[@]} == 0)) || die "missing ${missing[*]}: run scripts/deps.sh --bench --cluster"
nginx_bin=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)

# ---- build ---------------------------------------------------------------
admit_bin="$root/build-bench/tests/unit/govern/redis_admit_bench"
if [[ -z "${BRIGADE:-}" ]]; then
  BRIGADE="$root/build-bench/brigade"
  [[ -d build-bench ]] || meson setup build-bench --buildtype=release -Db_lto=true >/dev/null || die "meson setup failed"
  echo "building brigade and redis_admit_bench (release) in build-bench/ ..."
  ninja -j2 -C build-bench brigade tests/unit/govern/redis_admit_bench >/dev/null || die "build failed"
else
  admit_bin="$(dirname "$BRIGADE")/tests/unit/govern/redis_admit_bench"
fi
[[ -x "$BRIGADE" ]] || die "no brigade binary at $BRIGADE"
[[ -x "$admit_bin" ]] || die "no redis_admit_bench at $admit_bin (ninja -C $(dirname "$BRIGADE") tests/unit/govern/redis_admit_bench)"

# ---- temp dir, processes, cleanup ------------------------------------------
bench_wait_quiet "$max_load"
tmp=$(mktemp -d /tmp/brigade-cluster-bench.XXXXXX)
chmod 755 "$tmp"   # PostgreSQL and nginx workers may run as other users
stamp=$(date +%Y%m%dT%H%M%S)
out="$root/bench/results/cluster-$stamp"
mkdir -p "$out"
pids=()
keep_files=(mock.log sqlite1.log pg1.log pg2.log nginx.conf nginx-error.log redis.log)
stop_wait_s=5
pg_started=0
cluster_cleanup() {   # our processes first (brigade holds PostgreSQL connections), then PostgreSQL
  local rc=$?
  set +e
  [[ -f "$tmp/nginx.pid" ]] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null
  for pid in "${pids[@]+"${pids[@]}"}"; do bench_stop_pid "$pid"; done
  ((pg_started)) && scripts/pg-test.sh stop "$tmp/pg" >/dev/null 2>&1
  (exit $rc)
  bench_cleanup
}
trap cluster_cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return 0; }
  done
  die "no free port found"
}
tck=$(getconf CLK_TCK)

started_port=""
start_redis() {   # start_redis NAME: its port in started_port, its pid appended to pids
  local dir=$tmp/$1
  started_port=$(free_port)
  mkdir -p "$dir"
  redis-server --port "$started_port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
    >"$tmp/$1.log" 2>&1 &
  pids+=($!)
  bench_wait_line "$tmp/$1.log" 'Ready to accept connections' "${pids[-1]}" redis-server >/dev/null
}

# ---- the mock, PostgreSQL, Redis -------------------------------------------
"$BRIGADE" mock-llm --listen 127.0.0.1:0 --threads "$workers" >"$tmp/mock.log" 2>&1 &
mock_pid=$!; pids+=("$mock_pid")
mock_url=$(bench_wait_line "$tmp/mock.log" 'http://127\.0\.0\.1:[0-9]+' "$mock_pid" mock-llm)
mock_port=${mock_url##*:}
db_url=$(scripts/pg-test.sh start "$tmp/pg") || die "PostgreSQL did not start"
pg_started=1
start_redis redis
redis_port=$started_port
echo "mock-llm $mock_url, PostgreSQL $db_url, Redis 127.0.0.1:$redis_port"

# ---- the instances ---------------------------------------------------------
admin_token="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
declare -A port_of pid_of
instance() {   # instance NAME STORE(sqlite|pg)
  local name=$1 kind=$2 p
  p=$(free_port)
  mkdir -p -m 700 "$tmp/$name"
  {
    echo "server: {listen: \"127.0.0.1:$p\", data_dir: \"$tmp/$name\", threads: $workers}"
    echo "providers: [{name: m, kind: openai, base_url: \"http://127.0.0.1:$mock_port/v1\", max_connections: 128}]"
    echo "models: [{name: bench-model, provider: m, upstream_model: bench-model, input_usd_per_mtok: 1, output_usd_per_mtok: 2}]"
    if [[ $kind == pg ]]; then
      echo "store: {kind: postgres, url: \"$db_url\", pool_size: 8}"
      echo "governance: {backend: redis, redis: {url: \"redis://127.0.0.1:$redis_port/0\", instances: 2}}"
    fi
  } >"$tmp/$name.yaml"
  BRIGADE_ADMIN_TOKEN=$admin_token BRIGADE_LOG=${BRIGADE_LOG:-warn} \
    "$BRIGADE" serve --config "$tmp/$name.yaml" >"$tmp/$name.log" 2>&1 &
  pids+=($!); pid_of[$name]=$!
  port_of[$name]=$p
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$p/healthz" >/dev/null 2>&1 && return 0
    kill -0 "${pid_of[$name]}" 2>/dev/null || { cat "$tmp/$name.log" >&2; die "$name exited"; }
    sleep 0.1
  done
  die "$name did not answer within 30 s"
}
instance sqlite1 sqlite
instance pg1 pg
# the second instance needs the first one's key files
mkdir -p -m 700 "$tmp/pg2"
for f in secret vault.key audit_ed25519.key; do
  [[ -f "$tmp/pg1/$f" ]] && install -m 600 "$tmp/pg1/$f" "$tmp/pg2/$f"
done
instance pg2 pg

# ---- nginx: one server per target ------------------------------------------
declare -A lb_port
for t in $targets; do lb_port[$t]=$(free_port); done
mkdir -p "$tmp/nginx-tmp"
{
  echo "worker_processes $workers; pid $tmp/nginx.pid; error_log $tmp/nginx-error.log warn; daemon on;"
  echo "events { worker_connections 4096; }"
  echo "http { access_log off; client_body_temp_path $tmp/nginx-tmp; proxy_temp_path $tmp/nginx-tmp;"
  echo "  keepalive_requests 1000000;"
  echo "  upstream sqlite1 { server 127.0.0.1:${port_of[sqlite1]}; keepalive 64; }"
  echo "  upstream pg1 { server 127.0.0.1:${port_of[pg1]}; keepalive 64; }"
  echo "  upstream pg2 { least_conn; server 127.0.0.1:${port_of[pg1]}; server 127.0.0.1:${port_of[pg2]}; keepalive 64; }"
  for t in $targets; do
    echo "  server { listen 127.0.0.1:${lb_port[$t]}; location / { proxy_pass http://$t;"
    echo "    proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off; } }"
  done
  echo "}"
} >"$tmp/nginx.conf"
"$nginx_bin" -c "$tmp/nginx.conf" -p "$tmp" 2>"$tmp/nginx-start.log" || { cat "$tmp/nginx-start.log" >&2; die "nginx did not start"; }
for _ in $(seq 100); do curl -sf "http://127.0.0.1:${lb_port[pg2]}/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

# ---- a tenant, a user with limits, its key: one on SQLite, one on PostgreSQL -
json_field() { sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" | head -1; }
call() {   # call METHOD URL TOKEN BODY -> body; fails on non-2xx
  local r code
  r=$(curl -s -w '\n%{http_code}' -X "$1" "$2" -H "authorization: Bearer $3" \
        -H 'content-type: application/json' -d "$4")
  code=${r##*$'\n'}
  [[ "$code" == 2* ]] || die "$1 $2 -> HTTP $code: ${r%$'\n'*}"
  echo "${r%$'\n'*}"
}
declare -A key_of
make_user() {   # make_user INSTANCE -> the user's key
  local u=http://127.0.0.1:${port_of[$1]} adm uid
  adm=$(call POST "$u/v1/tenants" "$admin_token" '{"name":"bench"}' | json_field admin_key)
  uid=$(call POST "$u/v1/users" "$adm" '{"external_id":"u1"}' | json_field id)
  call PATCH "$u/v1/users/$uid" "$adm" \
    '{"limits":{"daily_budget_usd":1000000,"rpm":1000000000}}' >/dev/null
  call POST "$u/v1/users/$uid/keys" "$adm" '{}' | json_field key
}
key_of[sqlite1]=$(make_user sqlite1)
key_of[pg1]=$(make_user pg1)
key_of[pg2]=${key_of[pg1]}
body='{"model":"bench-model","messages":[{"role":"user","content":"hello [[tokens:16]]"}]}'
for t in $targets; do   # every target answers, and through pg2 both instances do
  for _ in 1 2 3 4; do
    r=$(call POST "http://127.0.0.1:${lb_port[$t]}/v1/chat/completions" "${key_of[$t]}" "$body")
    [[ "$r" == *'"choices"'* ]] || die "$t: no completion: $r"
  done
done

# ---- the runs --------------------------------------------------------------
tsv="$out/results.tsv"
printf 'round\ttarget\tconc\trequests\trps\tp50_us\tp99_us\tmax_us\terrors\tbrigade_cpu_us_per_req\n' >"$tsv"
pids_of() { case $1 in sqlite1) echo "${pid_of[sqlite1]}" ;; pg1) echo "${pid_of[pg1]}" ;; pg2) echo "${pid_of[pg1]} ${pid_of[pg2]}" ;; esac; }
wrk_run() {   # wrk_run TARGET CONC SECONDS
  local th=2
  (($2 == 1)) && th=1
  BENCH_KEY=${key_of[$1]} timeout $(($3 + 30)) \
    wrk -s "$lua" --latency -t"$th" -c"$2" -d"${3}s" --timeout 5s "http://127.0.0.1:${lb_port[$1]}"
}
run_case() {   # run_case ROUND TARGET CONC
  local r=$1 t=$2 c=$3 name="$2-c$3-r$1" p0 p1 line
  # shellcheck disable=SC2046
  p0=$(bench_cpu_ticks $(pids_of "$t"))
  wrk_run "$t" "$c" "$secs" >"$out/wrk-$name.txt" 2>&1 || true
  # shellcheck disable=SC2046
  p1=$(bench_cpu_ticks $(pids_of "$t"))
  line=$(grep '^BENCH ' "$out/wrk-$name.txt" || true)
  [[ -n "$line" ]] || { echo "  $name: wrk printed no result" >&2; return; }
  awk -v r="$r" -v t="$t" -v c="$c" -v p0="$p0" -v p1="$p1" -v tck="$tck" -v line="$line" 'BEGIN {
    n = split(line, kv, " ")
    for (i = 2; i <= n; i++) { split(kv[i], a, "="); v[a[1]] = a[2] }
    err = v["errors_connect"] + v["errors_read"] + v["errors_write"] + v["errors_status"] + v["errors_timeout"]
    req = v["requests"]
    cpu = (req > 0) ? (p1 - p0) * 1e6 / tck / req : 0
    printf "%s\t%s\t%s\t%d\t%.0f\t%d\t%d\t%d\t%d\t%.1f\n", r, t, c, req, v["rps"], v["p50_us"], v["p99_us"], v["max_us"], err, cpu
  }' >>"$tsv"
  tail -1 "$tsv" | awk -F'\t' -v n="$name" '{printf "  %-16s %7s req/s  p50 %6s us  p99 %6s us  errors %s  brigade CPU %s us/req\n", n, $5, $6, $7, $9, $10}'
}
echo "warming up ($warm s per target) ..."
if ((warm > 0)); then for t in $targets; do wrk_run "$t" 64 "$warm" >"$out/warmup-$t.txt" 2>&1 || true; done; fi
echo "measuring ($secs s per run, $rounds round(s)) ..."
for r in $(seq "$rounds"); do
  for c in 1 64; do
    for t in $targets; do run_case "$r" "$t" "$c"; done
  done
done
# how pg2's calls were spread over its two instances
served() {   # served PORT -> chat completions answered 200 by that instance
  curl -s "http://127.0.0.1:$1/metrics" -H "authorization: Bearer $admin_token" |
    awk '/^brigade_http_server_requests_total/ && /chat\/completions/ && / 200|"200"/ {s += $NF} END {print s + 0}'
}
pg2_calls=$(awk -F'\t' 'NR > 1 && $2 == "pg2" {s += $4} END {print s + 0}' "$tsv")
spread="the second instance answered $(served "${port_of[pg2]}") chat completions (it serves only pg2, whose measured runs completed $pg2_calls, warm-up and checks not counted)"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the admission round trip with 1,000 and 100,000 users -------------------
echo "admission round trip (redis_admit_bench) ..."
start_redis redis-admit
admit_port=$started_port
admit_lines=()
for n in 1000 100000; do
  redis-cli -p "$admit_port" FLUSHALL >/dev/null 2>&1 || true
  line=$(timeout 600 "$admit_bin" --port "$admit_port" --users "$n" --calls "$admit_calls" --conc 64 2>>"$out/admit.log" |
         grep '^ADMIT ') || die "redis_admit_bench failed (see $out/admit.log)"
  echo "  $line"
  admit_lines+=("$line")
done

# ---- report ----------------------------------------------------------------
report="$out/report.md"
{
  echo "## Several instances — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1);" \
       "load average at start $load_start, at end $load_end."
  echo "Command: \`$cmdline\` ($secs s per run, $rounds round(s)); wrk, nginx, the mock, PostgreSQL," \
       "Redis and every brigade share the same $(nproc) cores."
  git -C "$root" rev-parse --git-dir >/dev/null 2>&1 &&
    echo "Source: commit $(git -C "$root" rev-parse --short HEAD)."
  echo
  echo "| target | conc | req/s | p50 µs | p99 µs | errors | brigade CPU µs/req |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  awk -F'\t' 'NR > 1 {
      k = $2 "-" $3
      if (!(k in n)) order[++nk] = k
      n[k]++; rps[k, n[k]] = $5; p50[k, n[k]] = $6; p99[k, n[k]] = $7; cpu[k, n[k]] = $10; err[k] += $9; tg[k] = $2; cc[k] = $3
    }
    function med(a, k,    i, j, x, m, s) {
      m = n[k]
      for (i = 1; i <= m; i++) { x = a[k, i] + 0; for (j = i - 1; j >= 1 && s[j] > x; j--) s[j + 1] = s[j]; s[j + 1] = x }
      return (m % 2) ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2
    }
    END {
      for (i = 1; i <= nk; i++) { k = order[i]; R[k] = med(rps, k)
        printf "| %s | %s | %.0f | %.0f | %.0f | %d | %.1f |\n", tg[k], cc[k], R[k], med(p50, k), med(p99, k), err[k], med(cpu, k) }
      print ""
      printf "Ratios: pg1 / sqlite1 req/s at c=64 %.2f, at c=1 %.2f; pg2 / pg1 at c=64 %.2f.\n",
        R["pg1-64"] / R["sqlite1-64"], R["pg1-1"] / R["sqlite1-1"], R["pg2-64"] / R["pg1-64"]
    }' "$tsv"
  echo
  echo "Spread: $spread."
  echo
  echo "Admission round trip to Redis (one EVALSHA of the admission script, user + tenant level, budget and rpm), $admit_calls admissions of random users:"
  echo
  echo "| users with counters in Redis | p50 µs (one at a time) | p99 µs | admissions/s (64 in flight) | Redis keys | Redis memory |"
  echo "|---:|---:|---:|---:|---:|---:|"
  for l in "${admit_lines[@]}"; do
    awk -v line="$l" 'BEGIN { n = split(line, kv, " "); for (i = 2; i <= n; i++) { split(kv[i], a, "="); v[a[1]] = a[2] }
      printf "| %d | %d | %d | %d | %d | %.1f MB |\n", v["users"], v["p50_us"], v["p99_us"], v["admits_per_s"], v["redis_keys"], v["redis_bytes"] / 1048576 }'
  done
} >"$report"
echo
cat "$report"
echo
echo "raw results: ${out#"$root"/}/"
