#!/usr/bin/env bash
# runs_instructions.sh — what one agent run costs brigade, in CPU
# instructions counted by callgrind (every thread: loops, thread pool, store
# writer, tracer), by kind of run: a figure that moves far less with the
# load of a shared machine than runs/s or µs per run (docs/benchmarks.md,
# "Agent run starts and steps").
#
#   BRIGADES="/tmp/brigade-old build-bench/brigade" bench/runs_instructions.sh
#
# For each binary: brigade serve under valgrind --tool=callgrind with the
# agents of bench/runs.sh (in-process mock providers, 2 loop threads),
# sessions made with bench/runs_load.mjs, 45 warm-up runs of each step
# agent; then three phases, each between a zeroing and a dump of the
# counters (and a second for the writer and the tracer to finish):
#   plain    N runs of `plain` (one model call), one at a time
#   clocked  N runs of `clocked` (a clock tool call, then an answer)
#   hold     H runs of `hold` held open together on a 300 ms mock
# and prints the instructions per run of each.
#
# Environment:
#   BRIGADES   binaries to compare (default build-bench/brigade)
#   N          runs per step phase (default 100)
#   H          held runs (default 200)
#   BENCH_KEEP 1 keeps the temp dirs (and the callgrind dumps in them)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${N:-100}
h=${H:-200}
die() { echo "runs_instructions.sh: $*" >&2; exit 1; }
[[ "$n" =~ ^[1-9][0-9]*$ && "$h" =~ ^[1-9][0-9]*$ ]] || die "N and H must be positive integers"
for t in valgrind callgrind_control node; do command -v $t >/dev/null || die "missing $t"; done
load="$root/bench/runs_load.mjs"
BRIGADES=${BRIGADES:-$root/build-bench/brigade}

pids=()
tmps=()
cleanup() {
  for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ "${BENCH_KEEP:-0}" == 1 ]] || for t in "${tmps[@]+"${tmps[@]}"}"; do rm -rf "$t"; done
}
trap cleanup EXIT

echo "| binary | plain | clocked | hold |"
echo "|---|---:|---:|---:|"
for bin in $BRIGADES; do
  [[ -x "$bin" ]] || die "no binary at $bin"
  tmp=$(mktemp -d /tmp/brigade-rinstr.XXXXXX); tmps+=("$tmp")
  mkdir -p -m 700 "$tmp/data"
  cat >"$tmp/brigade.yaml" <<Y
server: {listen: "127.0.0.1:0", data_dir: "$tmp/data", threads: 2, limits: {max_connections: 20000}}
providers:
  - {name: slow, kind: mock, latency_ms: 300, timeout_ms: 600000}
  - {name: fast, kind: mock, latency_ms: 0}
models:
  - {name: slow-model, provider: slow}
  - {name: fast-model, provider: fast}
agents:
  - {name: hold, model: slow-model, tools: [], max_wall_ms: 600000}
  - {name: plain, model: fast-model, tools: []}
  - {name: clocked, model: fast-model, tools: [clock]}
Y
  token="rinstr-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  BRIGADE_ADMIN_TOKEN=$token BRIGADE_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
    "$bin" serve --config "$tmp/brigade.yaml" --data-dir "$tmp/data" >"$tmp/brigade.log" 2>&1 &
  pid=$!; pids+=("$pid")
  url=""
  for _ in $(seq 600); do
    url=$(grep -Eo 'http://127\.0\.0\.1:[0-9]+' "$tmp/brigade.log" | head -1 || true)
    [[ -n "$url" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/brigade.log" >&2; die "brigade exited before listening"; }
    sleep 0.1
  done
  [[ -n "$url" ]] || die "brigade did not listen within 60 s"
  node "$load" setup --url "$url" --admin-token "$token" --users 10 --hold-agent hold --hold-sessions "$h" \
    --step-agents plain,clocked --step-sessions 64 --file "$tmp/s.json" --out "$tmp/setup.json" >/dev/null
  plain=(--agent plain --content "Hello.")
  clocked=(--agent clocked --content "What time is it? [[tool:clock {}]]")
  node "$load" steps --url "$url" --file "$tmp/s.json" --conc 1 --runs 40 --warmup 5 "${plain[@]}" --out "$tmp/w1.json" >/dev/null
  node "$load" steps --url "$url" --file "$tmp/s.json" --conc 1 --runs 40 --warmup 5 "${clocked[@]}" --out "$tmp/w2.json" >/dev/null
  sleep 1
  row="| $bin"
  phase() {   # phase RUNS COMMAND...: instructions per run of the command's runs
    local runs=$1; shift
    callgrind_control -z "$pid" >/dev/null 2>&1
    "$@" >/dev/null
    sleep 1
    callgrind_control -d "$pid" >/dev/null 2>&1
    local dump ir
    dump=$(ls -t "$tmp"/cg.out.* | head -1)
    ir=$(awk '/^summary:/ {print $2}' "$dump")
    [[ -n "$ir" ]] || die "no summary in $dump"
    row+=" | $((ir / runs))"
  }
  phase "$n" node "$load" steps --url "$url" --file "$tmp/s.json" --conc 1 --runs "$n" --warmup 0 "${plain[@]}" --out "$tmp/p.json"
  phase "$n" node "$load" steps --url "$url" --file "$tmp/s.json" --conc 1 --runs "$n" --warmup 0 "${clocked[@]}" --out "$tmp/c.json"
  phase "$h" node "$load" hold --url "$url" --file "$tmp/s.json" --agent hold --n "$h" --window 64 --pid "$pid" \
    --timeout-ms 120000 --content "Hello, please answer." --out "$tmp/h.json"
  echo "$row |"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
