# shellcheck shell=bash
# lib.sh — what the benchmark scripts share (sourced by gateway.sh,
# runs.sh, chaos.sh, governance.sh and runs_cost.sh): the command line for the report,
# waiting for a quiet machine and for a server's "listening" line, CPU
# ticks of our processes, stopping them, and the exit trap that stops them
# and keeps their logs.
#
# The caller sets: tmp (temp dir), out (results dir), pids (array of our
# children), keep_files (names in $tmp copied to $out), stop_wait_s.

# Wait (at most 2 minutes) while the 1-minute load is above $1; then set
# load_start for the report.
bench_wait_quiet() {
  local max_load=$1 l
  for _ in $(seq 24); do
    l=$(awk '{print $1}' /proc/loadavg)
    awk -v l="$l" -v m="$max_load" 'BEGIN { exit !(l > m) }' || break
    echo "load average $l > $max_load: waiting 5 s for the machine to calm down ..."
    sleep 5
  done
  load_start=$(cut -d' ' -f1-3 /proc/loadavg)
}

# TERM, then KILL after ${stop_wait_s:-5} s; only our own children.
bench_stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq $((${stop_wait_s:-5} * 10))); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

bench_cleanup() {
  local rc=$?
  set +e
  for pid in "${pids[@]+"${pids[@]}"}"; do bench_stop_pid "$pid"; done
  wait 2>/dev/null
  for f in "${keep_files[@]+"${keep_files[@]}"}"; do
    [[ -f "$tmp/$f" ]] && cp "$tmp/$f" "$out/" 2>/dev/null
  done
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
  exit $rc
}

# The command as given, for the report: the caller's settings (variables
# whose names match the ERE $2), then the script. Keys and payloads
# (BENCH_KEY, BENCH_STREAM) are left out.
bench_cmdline() {   # bench_cmdline SCRIPT VARS_ERE
  local v out=""
  for v in $(compgen -e | grep -E "^($2)" | grep -vE '^BENCH_(KEY|STREAM)$' || true); do
    out+="$v=$(printf "%q" "${!v}") "
  done
  printf '%s%s' "$out" "$1"
}

# Wait (SECONDS, default 10, at most) until FILE has a line matching REGEX
# and print the match; fail with the file's content if PID exits first.
# The caller defines die().
bench_wait_line() {   # bench_wait_line FILE REGEX PID WHAT [SECONDS]
  local file=$1 re=$2 pid=$3 what=$4 secs=${5:-10}
  for _ in $(seq $((secs * 20))); do
    if grep -Eq "$re" "$file" 2>/dev/null; then grep -Eo "$re" "$file" | head -1; return 0; fi
    kill -0 "$pid" 2>/dev/null || { cat "$file" >&2; die "$what exited before listening"; }
    sleep 0.05
  done
  cat "$file" >&2
  die "$what did not start within $secs s"
}

# Sum of utime+stime (clock ticks) over the given pids, threads included.
bench_cpu_ticks() {
  local sum=0 pid rest
  for pid in "$@"; do
    [[ -r /proc/$pid/stat ]] || continue
    rest=$(sed 's/.*) //' "/proc/$pid/stat")   # comm may hold spaces
    # After "comm) ": state ppid pgrp ... utime is the 12th, stime the 13th.
    sum=$((sum + $(awk '{print $12 + $13}' <<<"$rest")))
  done
  echo "$sum"
}

# The models and agents of the agent-run benchmarks (runs.sh, runs_cost.sh),
# as YAML lines: `hold` on the provider named slow, `plain` and `clocked`
# (a clock tool call, then an answer) on the one named fast.
bench_runs_agents_yaml() {
  cat <<'Y'
models:
  - {name: slow-model, provider: slow}
  - {name: fast-model, provider: fast}
agents:
  - {name: hold, model: slow-model, tools: [], max_wall_ms: 600000}
  - {name: plain, model: fast-model, tools: []}
  - {name: clocked, model: fast-model, tools: [clock]}
Y
}
