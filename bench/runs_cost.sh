#!/usr/bin/env bash
# runs_cost.sh — what one agent run costs brigade, binary after binary in
# one session, in figures that move less with the load of a shared machine
# than runs/s (docs/benchmarks.md, "Agent run starts and steps"):
#
#   BRIGADES="/tmp/brigade-old build-bench/brigade" bench/runs_cost.sh instructions
#   BRIGADES="/tmp/brigade-old build-bench/brigade …" bench/runs_cost.sh commits
#   DATA_ROOT=/dev/shm BRIGADES="…" bench/runs_cost.sh commits   (no disk flush)
#   BRIGADES="/tmp/brigade-old build-bench/brigade" bench/runs_cost.sh steps
#
# Each binary serves the agents of runs.sh (lib.sh: hold, plain, clocked;
# in-process mock providers, 2 loop threads) with sessions made by
# bench/runs_load.mjs. Then:
#
#   instructions  under valgrind --tool=callgrind; after 45 warm-up runs of
#                 each step agent, three phases, each between a zeroing and
#                 a dump of the counters (and a second for the writer and
#                 the tracer to finish): N runs of `plain` one at a time, N
#                 of `clocked` one at a time, H runs of `hold` held together
#                 on a 300 ms mock. Prints every thread's instructions per
#                 run of each (two runs of one binary agree within ~3 %: how
#                 a run's writes are batched depends on timing).
#   commits       natively; per step agent, RUNS runs one at a time after
#                 20 warm-up runs, while `perf stat -e
#                 syscalls:sys_enter_fdatasync` counts the server's disk
#                 flushes. Prints fdatasync per run (warm-up included) and
#                 the p50 run time (from writing the request to reading
#                 run.completed).
#   steps         under callgrind, a step on a long conversation: the
#                 `looped` agent (8 clock calls, then an answer: 9 model
#                 calls a run) with its model on a `brigade mock-llm`
#                 process over HTTP (the mock's own parsing is not
#                 counted); 150 warm-up runs of `plain`, S sessions each
#                 given HISTORY runs, then the counters over one more run
#                 on each. Prints every thread's
#                 instructions per model call (the run's start and end
#                 spread over its 9 calls) and per run.
#
# Environment: BRIGADES (default build-bench/brigade), N (100), H (200),
# RUNS (300), S (4), HISTORY (10: ~200 messages a session), DATA_ROOT (/tmp),
# BENCH_KEEP (1 keeps the temp dir).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-}
n=${N:-100}
h=${H:-200}
runs=${RUNS:-300}
sessions=${S:-4}
history=${HISTORY:-10}
die() { echo "runs_cost.sh: $*" >&2; exit 1; }
[[ "$mode" == instructions || "$mode" == commits || "$mode" == steps ]] ||
  die "usage: runs_cost.sh instructions|commits|steps"
[[ "$n" =~ ^[1-9][0-9]*$ && "$h" =~ ^[1-9][0-9]*$ && "$runs" =~ ^[1-9][0-9]*$ &&
   "$sessions" =~ ^[1-9][0-9]*$ && "$history" =~ ^[0-9]+$ ]] ||
  die "N, H, RUNS and S must be positive integers, HISTORY a non-negative one"
tools=(node jq perf)
[[ "$mode" != commits ]] && tools=(node valgrind callgrind_control)
for t in "${tools[@]}"; do command -v "$t" >/dev/null || die "missing $t"; done
load="$root/bench/runs_load.mjs"
BRIGADES=${BRIGADES:-$root/build-bench/brigade}

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
tmp=$(mktemp -d "${DATA_ROOT:-/tmp}/brigade-runcost.XXXXXX")   # one dir a binary below it
out=$tmp
pids=()
keep_files=()
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

plain=(--agent plain --content "Hello.")
clocked=(--agent clocked --content "What time is it? [[tool:clock {}]]")
looped=(--agent looped --content "What time is it, 8 times? [[tool:clock {}]] [[tool_loop:8]]")

# Instructions per run of the runs COMMAND makes (callgrind's counters of
# $pid, zeroed before and dumped after), appended to row.
phase() {   # phase RUNS COMMAND...
  local count=$1 dump ir; shift
  callgrind_control -z "$pid" >/dev/null 2>&1
  "$@" >/dev/null
  sleep 1
  callgrind_control -d "$pid" >/dev/null 2>&1
  dump=$(ls -t "$d"/cg.out.* | head -1)
  ir=$(awk '/^summary:/ {print $2}' "$dump")
  [[ -n "$ir" ]] || die "no summary in $dump"
  row+=" | $((ir / count))"
}

# fdatasync per run and p50 of RUNS runs of one step agent, appended to row.
flushes() {   # flushes AGENT_ARGS...
  perf stat -e syscalls:sys_enter_fdatasync -p "$pid" -o "$d/perf.txt" -- \
    node "$load" steps --url "$url" --file "$d/s.json" --conc 1 --runs "$runs" --warmup 20 "$@" \
    --out "$d/steps.json" >/dev/null
  local f
  f=$(awk '/fdatasync/ {gsub(",", "", $1); print $1}' "$d/perf.txt")
  row+=" | $(awk -v f="$f" -v n=$((runs + 20)) 'BEGIN { printf "%.2f", f / n }') | $(jq .p50_ms "$d/steps.json")"
}

if [[ "$mode" == instructions ]]; then
  echo "| binary | plain | clocked | hold |"
  echo "|---|---:|---:|---:|"
elif [[ "$mode" == steps ]]; then
  echo "| binary | instructions per model call, $history earlier runs | per run |"
  echo "|---|---:|---:|"
else
  echo "| binary | plain fdatasync/run | plain p50 ms | clocked fdatasync/run | clocked p50 ms |"
  echo "|---|---:|---:|---:|---:|"
fi
k=0
for bin in $BRIGADES; do
  [[ -x "$bin" ]] || die "no binary at $bin"
  k=$((k + 1))
  d=$tmp/$k
  mkdir -p -m 700 "$d/data"
  fast="{name: fast, kind: mock, latency_ms: 0}"
  if [[ "$mode" == steps ]]; then   # the model in a process of its own
    "$bin" mock-llm --listen 127.0.0.1:0 --threads 1 >"$d/mock.log" 2>&1 &
    mock_pid=$!; pids+=("$mock_pid")
    mock_url=$(bench_wait_line "$d/mock.log" 'http://127\.0\.0\.1:[0-9]+' "$mock_pid" mock-llm)
    fast="{name: fast, kind: openai, base_url: \"$mock_url/v1\", api_key: k, max_connections: 16}"
  fi
  cat >"$d/brigade.yaml" <<Y
server: {listen: "127.0.0.1:0", data_dir: "$d/data", threads: 2, limits: {max_connections: 20000}}
providers:
  - {name: slow, kind: mock, latency_ms: 300, timeout_ms: 600000}
  - $fast
$(bench_runs_agents_yaml)
Y
  token="runcost-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  wrap=()
  [[ "$mode" != commits ]] && wrap=(valgrind --tool=callgrind --callgrind-out-file="$d/cg.out")
  BRIGADE_ADMIN_TOKEN=$token BRIGADE_LOG=warn "${wrap[@]}" "$bin" serve --config "$d/brigade.yaml" \
    --data-dir "$d/data" >"$d/brigade.log" 2>&1 &
  pid=$!; pids+=("$pid")
  url=$(bench_wait_line "$d/brigade.log" 'http://127\.0\.0\.1:[0-9]+' "$pid" brigade 60)
  row="| $bin"
  if [[ "$mode" == steps ]]; then
    node "$load" setup --url "$url" --admin-token "$token" --users 1 --hold-agent hold --hold-sessions 1 \
      --step-agents looped,plain --step-sessions "$sessions" --file "$d/s.json" --out "$d/setup.json" >/dev/null
    # warm-up on sessions of their own: each of the 32 pool threads has its
    # own store reader, whose first jobs load the schema and prepare their
    # statements (~0.5 M instructions that a short phase would count)
    node "$load" steps --url "$url" --file "$d/s.json" --conc 1 --runs 150 --warmup 0 "${plain[@]}" \
      --out "$d/warm.json" >/dev/null
    # one at a time, the sessions in turn: each gets HISTORY runs
    ((history == 0)) || node "$load" steps --url "$url" --file "$d/s.json" --conc 1 --runs $((sessions * history)) \
      --warmup 0 "${looped[@]}" --out "$d/grow.json" >/dev/null
    sleep 1
    phase "$sessions" node "$load" steps --url "$url" --file "$d/s.json" --conc 1 --runs "$sessions" --warmup 0 \
      "${looped[@]}" --out "$d/l.json"
    per_run=${row##* }
    row="| $bin | $((per_run / 9)) | $per_run"
    echo "$row |"
    bench_stop_pid "$pid"
    bench_stop_pid "$mock_pid"
    continue
  fi
  node "$load" setup --url "$url" --admin-token "$token" --users 10 --hold-agent hold --hold-sessions "$h" \
    --step-agents plain,clocked --step-sessions 64 --file "$d/s.json" --out "$d/setup.json" >/dev/null
  if [[ "$mode" == instructions ]]; then
    for agent in plain clocked; do
      declare -n args=$agent
      node "$load" steps --url "$url" --file "$d/s.json" --conc 1 --runs 40 --warmup 5 "${args[@]}" \
        --out "$d/warm.json" >/dev/null
    done
    sleep 1
    phase "$n" node "$load" steps --url "$url" --file "$d/s.json" --conc 1 --runs "$n" --warmup 0 "${plain[@]}" --out "$d/p.json"
    phase "$n" node "$load" steps --url "$url" --file "$d/s.json" --conc 1 --runs "$n" --warmup 0 "${clocked[@]}" --out "$d/c.json"
    phase "$h" node "$load" hold --url "$url" --file "$d/s.json" --agent hold --n "$h" --window 64 --pid "$pid" \
      --timeout-ms 120000 --content "Hello, please answer." --out "$d/h.json"
  else
    sleep 1
    flushes "${plain[@]}"
    flushes "${clocked[@]}"
  fi
  echo "$row |"
  bench_stop_pid "$pid"
done
