#!/usr/bin/env bash
# runs_commits.sh — commits (fdatasync calls) per agent run and the c=1
# run time, for `plain` (one model call) and `clocked` (a tool step, then
# an answer), binary after binary in one session: the figures of
# docs/benchmarks.md ("Agent run starts and steps") that need no callgrind.
#
#   BRIGADES="/tmp/brigade-old build-bench/brigade /tmp/brigade-old build-bench/brigade" bench/runs_commits.sh
#   DATA_ROOT=/dev/shm bench/runs_commits.sh     the data dir on tmpfs: a commit costs no disk flush
#
# For each binary: brigade serve (native) with the agents of bench/runs.sh,
# 64 sessions per step agent; per agent, RUNS runs one at a time (after 20
# warm-up runs) while `perf stat -e syscalls:sys_enter_fdatasync` counts
# the server's flushes. Prints fdatasync per run (warm-up included) and
# the p50 run time (bench/runs_load.mjs steps: from writing the request to
# reading run.completed).
#
# Environment: BRIGADES (default build-bench/brigade), RUNS (default 300),
# DATA_ROOT (default /tmp).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-300}
die() { echo "runs_commits.sh: $*" >&2; exit 1; }
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"
for t in perf node jq; do command -v $t >/dev/null || die "missing $t"; done
load="$root/bench/runs_load.mjs"
BRIGADES=${BRIGADES:-$root/build-bench/brigade}

pids=()
tmps=()
cleanup() {
  for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for t in "${tmps[@]+"${tmps[@]}"}"; do rm -rf "$t"; done
}
trap cleanup EXIT

echo "| binary | plain fdatasync/run | plain p50 ms | clocked fdatasync/run | clocked p50 ms |"
echo "|---|---:|---:|---:|---:|"
for bin in $BRIGADES; do
  [[ -x "$bin" ]] || die "no binary at $bin"
  tmp=$(mktemp -d "${DATA_ROOT:-/tmp}/brigade-commits.XXXXXX"); tmps+=("$tmp")
  mkdir -p -m 700 "$tmp/data"
  cat >"$tmp/brigade.yaml" <<Y
server: {listen: "127.0.0.1:0", data_dir: "$tmp/data", threads: 2}
providers: [{name: fast, kind: mock, latency_ms: 0}]
models: [{name: fast-model, provider: fast}]
agents:
  - {name: hold, model: fast-model, tools: []}
  - {name: plain, model: fast-model, tools: []}
  - {name: clocked, model: fast-model, tools: [clock]}
Y
  token="commits-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  BRIGADE_ADMIN_TOKEN=$token BRIGADE_LOG=warn "$bin" serve --config "$tmp/brigade.yaml" --data-dir "$tmp/data" \
    >"$tmp/brigade.log" 2>&1 &
  pid=$!; pids+=("$pid")
  url=""
  for _ in $(seq 200); do
    url=$(grep -Eo 'http://127\.0\.0\.1:[0-9]+' "$tmp/brigade.log" | head -1 || true)
    [[ -n "$url" ]] && break
    sleep 0.05
  done
  [[ -n "$url" ]] || die "brigade did not listen within 10 s"
  node "$load" setup --url "$url" --admin-token "$token" --users 4 --hold-agent hold --hold-sessions 4 \
    --step-agents plain,clocked --step-sessions 64 --file "$tmp/s.json" --out "$tmp/setup.json" >/dev/null
  sleep 1
  row="| $bin"
  for agent in plain clocked; do
    content="Hello."
    [[ $agent == clocked ]] && content="What time is it? [[tool:clock {}]]"
    perf stat -e syscalls:sys_enter_fdatasync -p "$pid" -o "$tmp/perf.txt" -- \
      node "$load" steps --url "$url" --file "$tmp/s.json" --agent "$agent" --conc 1 --runs "$runs" \
      --warmup 20 --content "$content" --out "$tmp/steps.json" >/dev/null
    flushes=$(awk '/fdatasync/ {gsub(",", "", $1); print $1}' "$tmp/perf.txt")
    row+=" | $(awk -v f="$flushes" -v n=$((runs + 20)) 'BEGIN { printf "%.2f", f / n }') | $(jq .p50_ms "$tmp/steps.json")"
  done
  echo "$row |"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
