#!/usr/bin/env bash
# threads.sh — where brigade's CPU per gateway request goes, thread by
# thread, against nginx's in the same session: the figure behind
# gateway.sh's "CPU per request" ratio, split so a change can be aimed.
#
#   bench/threads.sh
#   BRIGADES="/tmp/brigade-old build-bench/brigade" ROUNDS=3 bench/threads.sh
#
# For each round, for each binary and then nginx: a fresh `brigade
# mock-llm --threads 1` as the upstream, the proxy (brigade: one loop
# thread, a tenant, a user and a key over the API, every request traced and
# its usage recorded, as in gateway.sh; nginx: one worker, lib.sh's
# reference configuration), a 2 s warm-up, then `wrk -s bench/wrk/chat.lua
# -tT -cC -dS`. The CPU is utime and stime of every thread
# (/proc/PID/task/TID/stat) read before and after, grouped by thread name
# (loop-0, writer, tracer, the rest as "other"; nginx's master and worker
# as "nginx") and divided by the requests
# wrk made; also each thread's minor page faults per request, and wrk's
# p50 and p99 on the line of all threads. Binaries and
# nginx alternate within a round, so a change in the machine's load
# touches both sides.
#
# Environment:
#   BRIGADES      binaries (default build-bench/brigade)
#   ROUNDS        rounds (default 2)
#   SECONDS_RUN   seconds per measured run (default 5)
#   CONC          wrk connections (default 64; 1 uses one wrk thread)
#   BENCH_NGINX   0 skips nginx
#   SYSCALLS      1: also system calls per request by thread (perf stat
#                 --per-thread -e raw_syscalls:sys_enter over the measured run;
#                 needs perf)
#   BENCH_MAX_LOAD  wait (at most 2 min) while the 1-min load is above it (default 3)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
die() { echo "threads.sh: $*" >&2; exit 1; }
rounds=${ROUNDS:-2}
secs=${SECONDS_RUN:-5}
conc=${CONC:-64}
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ "$secs" =~ ^[1-9][0-9]*$ ]] || die "SECONDS_RUN must be a positive integer"
[[ "$conc" =~ ^[1-9][0-9]*$ ]] || die "CONC must be a positive integer"
wrk_threads=$((conc < 2 ? 1 : 2))
for t in wrk curl; do command -v $t >/dev/null || die "missing $t: run scripts/deps.sh --bench"; done
syscalls=${SYSCALLS:-0}
[[ "$syscalls" == 0 ]] || command -v perf >/dev/null || die "SYSCALLS=1 needs perf"
nginx_bin=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
use_nginx=${BENCH_NGINX:-1}
[[ "$use_nginx" == 0 || -x "$nginx_bin" ]] || die "nginx missing (scripts/deps.sh --bench, or BENCH_NGINX=0)"
if [[ -z "${BRIGADES:-}" ]]; then
  [[ -f build-bench/build.ninja ]] || meson setup build-bench --buildtype=release -Db_lto=true -Dtests=false >/dev/null
  ninja -C build-bench brigade >/dev/null || die "build failed"
  BRIGADES=build-bench/brigade
fi
for b in $BRIGADES; do [[ -x "$b" ]] || die "no binary at $b"; done
mock_bin=${BRIGADES%% *}

bench_wait_quiet "${BENCH_MAX_LOAD:-3}"
tmp=$(mktemp -d /tmp/brigade-threads.XXXXXX)
chmod 755 "$tmp"   # nginx workers may run as another user
# shellcheck disable=SC2034  # read by lib.sh's bench_cleanup
out=$tmp keep_files=() stop_wait_s=5
pids=()
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# "name user_ticks sys_ticks minflt" per thread name, summed, of the pids given
snap() {
  local pid t rest
  for pid in "$@"; do
    for t in /proc/"$pid"/task/*; do
      rest=$(sed 's/.*) //' "$t/stat" 2>/dev/null) || continue
      echo "$(cat "$t/comm" 2>/dev/null || echo gone) $rest"
    done
  done | awk '{ n = $1; if (n != "loop-0" && n != "writer" && n != "tracer" && n != "nginx") n = "other";
                u[n] += $13; s[n] += $14; f[n] += $9 }
              END { for (k in u) print k, u[k], s[k], f[k] }' | sort
}

# "name syscalls" per thread name, summed, from perf stat --per-thread -x,
# (a thread shows as COMM-TID); names grouped as snap groups them
syscalls_by_name() {
  awk -F, '$4 ~ /raw_syscalls/ { n = $1; sub(/-[0-9]+$/, "", n)
             if (n != "loop-0" && n != "writer" && n != "tracer" && n != "nginx") n = "other"
             c[n] += ($2 ~ /^[0-9]+$/) ? $2 : 0 }
           END { for (k in c) print k, c[k] }' "$1" | sort
}

# measure LABEL URL KEY PID...: warm up, then one wrk run between two snapshots
measure() {
  local label=$1 url=$2 key=$3 line n perf_pid=""
  shift 3
  BENCH_KEY=$key wrk -s bench/wrk/chat.lua -t"$wrk_threads" -c"$conc" -d2s "$url" >/dev/null
  if [[ "$syscalls" != 0 ]]; then
    perf stat -x, --per-thread -e raw_syscalls:sys_enter -p "$(IFS=,; echo "$*")" -o "$tmp/perf" &
    perf_pid=$!
    sleep 0.2   # perf attaches
  fi
  snap "$@" >"$tmp/a"
  line=$(BENCH_KEY=$key wrk -s bench/wrk/chat.lua -t"$wrk_threads" -c"$conc" -d"${secs}s" "$url" | grep '^BENCH')
  snap "$@" >"$tmp/b"
  if [[ -n "$perf_pid" ]]; then
    kill -INT "$perf_pid"; wait "$perf_pid" || true
    syscalls_by_name "$tmp/perf" >"$tmp/sc"
  else
    : >"$tmp/sc"
  fi
  n=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$line")
  ((n > 0)) || die "$label: no requests"
  join "$tmp/a" "$tmp/b" | join -a1 - "$tmp/sc" | awk -v lab="$label" -v n="$n" -v t="$(getconf CLK_TCK)" \
    -v rps="$(sed 's/.*rps=\([0-9.]*\).*/\1/' <<<"$line")" \
    -v p50="$(sed 's/.*p50_us=\([0-9]*\).*/\1/' <<<"$line")" -v p99="$(sed 's/.*p99_us=\([0-9]*\).*/\1/' <<<"$line")" '
    { du = ($5 - $2) / t * 1e6 / n; ds = ($6 - $3) / t * 1e6 / n; df = ($7 - $4) / n
      tu += du; ts += ds
      sc = (NF >= 8) ? sprintf(" %.2f |", $8 / n) : ""; tsc += (NF >= 8) ? $8 / n : 0
      row[NR] = sprintf("| %s | %s | %.1f | %.1f | %.1f | %.3f |%s", lab, $1, du, ds, du + ds, df, sc) }
    END { for (i = 1; i <= NR; i++) print row[i]
          printf "| %s | **all** (%.0f req/s, p50 %s µs, p99 %s µs) | %.1f | %.1f | **%.1f** | |%s\n", lab, rps, p50, p99, tu, ts, tu + ts, (tsc > 0 ? sprintf(" %.2f |", tsc) : "") }'
}

start_mock() {
  "$mock_bin" mock-llm --listen 127.0.0.1:0 --threads 1 >"$tmp/mock.log" 2>&1 &
  mock_pid=$!; pids+=("$mock_pid")
  mock_url=$(bench_wait_line "$tmp/mock.log" 'http://127\.0\.0\.1:[0-9]+' "$mock_pid" mock-llm)
}

one_brigade() {   # one_brigade BINARY
  local b=$1 d admin url ak uid key r
  start_mock
  d=$(mktemp -d "$tmp/b.XXXX")
  mkdir -m 700 "$d/data"
  cat >"$d/brigade.yaml" <<EOF
server: {listen: "127.0.0.1:0", data_dir: "$d/data", threads: 1}
providers: [{name: m, kind: openai, base_url: "$mock_url/v1", max_connections: 128}]
models: [{name: bench-model, provider: m, upstream_model: bench-model, input_usd_per_mtok: 1, output_usd_per_mtok: 2}]
EOF
  admin="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  BRIGADE_ADMIN_TOKEN=$admin BRIGADE_LOG=warn "$b" serve --config "$d/brigade.yaml" --data-dir "$d/data" \
    >"$d/brigade.log" 2>&1 &
  local bpid=$!; pids+=("$bpid")
  url=$(bench_wait_line "$d/brigade.log" 'http://127\.0\.0\.1:[0-9]+' "$bpid" "brigade serve")
  jf() { sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" | head -1; }
  ak=$(curl -s -X POST "$url/v1/tenants" -H "authorization: Bearer $admin" -d '{"name":"bench"}' | jf admin_key)
  uid=$(curl -s -X POST "$url/v1/users" -H "authorization: Bearer $ak" -d '{"external_id":"u1"}' | jf id)
  key=$(curl -s -X POST "$url/v1/users/$uid/keys" -H "authorization: Bearer $ak" -d '{}' | jf key)
  [[ "$key" == bk_usr_* ]] || die "no user key from $b"
  measure "$(basename "$b")" "$url" "$key" "$bpid"
  bench_stop_pid "$bpid"
  bench_stop_pid "$mock_pid"
}

one_nginx() {
  local port np wk
  start_mock
  # a random port may be taken: another one, a few times
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    bench_nginx_conf "$tmp" "$port" "127.0.0.1:${mock_url##*:}" 1
    "$nginx_bin" -p "$tmp/" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf" -g 'daemon off;' >"$tmp/nginx.out" 2>&1 &
    np=$!; pids+=("$np")
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; kill -0 "$np" 2>/dev/null || break; sleep 0.1; done
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    bench_stop_pid "$np"
  done
  read -r -a wk <<<"$(cat /proc/"$np"/task/*/children 2>/dev/null)"
  measure nginx "http://127.0.0.1:$port" bench "$np" "${wk[@]}"
  bench_stop_pid "$np"
  bench_stop_pid "$mock_pid"
}

echo "## CPU per request by thread, c=$conc, ${secs} s a run, $rounds round(s) — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "Command: \`$(bench_cmdline bench/threads.sh 'BRIGADES$|ROUNDS$|SECONDS_RUN$|CONC$|BENCH_')\`; load average at start $load_start."
echo
if [[ "$syscalls" != 0 ]]; then
  echo "| proxy | thread | user µs/req | sys µs/req | CPU µs/req | minor faults/req | system calls/req |"
  echo "|---|---|---:|---:|---:|---:|---:|"
else
  echo "| proxy | thread | user µs/req | sys µs/req | CPU µs/req | minor faults/req |"
  echo "|---|---|---:|---:|---:|---:|"
fi
for _ in $(seq "$rounds"); do
  for b in $BRIGADES; do one_brigade "$b"; done
  [[ "$use_nginx" == 0 ]] || one_nginx
done
