#!/bin/bash
# cpu_split.sh — where a saturated gateway request's CPU goes, by thread:
# brigade alone (2 loops, every request traced unless TRACES=0) behind
# `brigade mock-llm --threads 2`, `wrk -t2 -c64` for SECONDS_ARG seconds on
# loopback; over 8 s from the 3rd it reads each thread's user and system
# CPU ticks (/proc/PID/task/*/stat) and the bytes the process wrote to disk
# (write_bytes of /proc/PID/io), and prints one line:
#   LABEL rps=… cpu_us_per_req=… disk_bytes_per_req=…
# then each busy thread's user and system µs a request. Binaries A/B'd
# one after the other in one session compare; one line alone means little
# on a shared machine (docs/benchmarks.md, session 11).
#
#   bench/cpu_split.sh                         build-bench/brigade, 12 s
#   BIN=/tmp/old/brigade LABEL=old bench/cpu_split.sh
#   TRACES=0 bench/cpu_split.sh                traces.sample_ratio 0
#   PERF="-g -F 1500" bench/cpu_split.sh       perf record the 8 s (<tmp>/perf.data)
#   STAT="syscalls:sys_enter_futex,context-switches" bench/cpu_split.sh
#                                              perf stat --per-thread instead (<tmp>/stat.txt)
#
# Leaves its temp dir (printed last) with the logs, the data dir and any
# perf output. Needs wrk (scripts/deps.sh --bench), curl, and perf for
# PERF/STAT.
set -e
SECS=${1:-12}
[ "$SECS" -ge 12 ] || { echo "cpu_split.sh: at least 12 seconds (3 to settle, 8 measured)" >&2; exit 2; }
cd "$(dirname "$0")/.."
BIN=${BIN:-build-bench/brigade}
[ -x "$BIN" ] || { echo "cpu_split.sh: no $BIN (build it: meson setup build-bench --buildtype=release -Db_lto=true -Dtests=false && ninja -C build-bench)" >&2; exit 2; }
T=$(mktemp -d /tmp/brigade-cpu-split.XXXX); mkdir -m 700 "$T/data"
"$BIN" mock-llm --listen 127.0.0.1:0 --threads 2 > "$T/mock.log" 2>&1 & MP=$!
trap 'kill $MP ${BP:-} 2>/dev/null || true' EXIT
sleep 0.5; MU=$(grep -o 'http://127[^ ]*' "$T/mock.log" | head -1)
TRACE_YAML=""
[ -n "${TRACES:-}" ] && TRACE_YAML="observability: {traces: {sample_ratio: $TRACES}}"
cat > "$T/b.yaml" <<EOY
server: {listen: "127.0.0.1:0", data_dir: "$T/data", threads: 2}
providers: [{name: m, kind: openai, base_url: "$MU/v1", max_connections: 128}]
models: [{name: bench-model, provider: m, upstream_model: bench-model, input_usd_per_mtok: 1, output_usd_per_mtok: 2}]
$TRACE_YAML
EOY
ADM=bench-0123456789abcdef0123456789abcdef
BRIGADE_ADMIN_TOKEN=$ADM BRIGADE_LOG=warn "$BIN" serve --config "$T/b.yaml" --data-dir "$T/data" > "$T/b.log" 2>&1 & BP=$!
sleep 1; URL=$(grep -o 'http://127[^ ]*' "$T/b.log" | head -1)
jf() { sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" | head -1; }
AK=$(curl -s -X POST "$URL/v1/tenants" -H "authorization: Bearer $ADM" -d '{"name":"bench"}' | jf admin_key)
USER_ID=$(curl -s -X POST "$URL/v1/users" -H "authorization: Bearer $AK" -d '{"external_id":"u1"}' | jf id)
KEY=$(curl -s -X POST "$URL/v1/users/$USER_ID/keys" -H "authorization: Bearer $AK" -d '{}' | jf key)
[ -n "$KEY" ] || { echo "cpu_split.sh: could not make a user key (see $T/b.log)" >&2; exit 1; }
BENCH_KEY=$KEY wrk -s bench/wrk/chat.lua -t2 -c64 -d"${SECS}s" "$URL" > "$T/wrk.out" 2>&1 & WP=$!
ticks() { for t in /proc/$BP/task/*; do echo "$(cat "$t/comm") $(awk '{print $14, $15}' "$t/stat")"; done; }
sleep 3
ticks > "$T/ticks0"; cat "/proc/$BP/io" > "$T/io0"
if [ -n "${STAT:-}" ]; then
  perf stat --per-thread -x, -e "$STAT" -p "$BP" -o "$T/stat.txt" -- sleep 8
elif [ -n "${PERF:-}" ]; then
  # shellcheck disable=SC2086  # PERF is a list of perf record options
  perf record $PERF -p "$BP" -o "$T/perf.data" -- sleep 8 >/dev/null 2>&1
else
  sleep 8
fi
ticks > "$T/ticks1"; cat "/proc/$BP/io" > "$T/io1"
wait $WP
RPS=$(awk '/^Requests\/sec/ {print $2}' "$T/wrk.out")
[ -n "$RPS" ] || { echo "cpu_split.sh: wrk gave no rate (see $T/wrk.out)" >&2; exit 1; }
HZ=$(getconf CLK_TCK)
WB=$(( $(awk '/^write_bytes/ {print $2}' "$T/io1") - $(awk '/^write_bytes/ {print $2}' "$T/io0") ))
# Threads of one name (loop-0, loop-1) summed by their name's first part.
paste "$T/ticks0" "$T/ticks1" | awk -v rps="$RPS" -v hz="$HZ" -v wb="$WB" -v label="${LABEL:-brigade}" '
  { split($1, n, "-"); u[n[1]] += $5 - $2; s[n[1]] += $6 - $3; tot += $5 - $2 + $6 - $3 }
  END {
    req = rps * 8; us = 1e6 / hz / req
    printf "%s rps=%.0f cpu_us_per_req=%.2f disk_bytes_per_req=%.0f\n", label, rps, tot * us, wb / req
    for (k in u) if (u[k] + s[k] > 0) printf "  %-8s user %6.2f  system %6.2f  µs/req\n", k, u[k] * us, s[k] * us
  }'
echo "$T"
