# lib.sh — what the benchmark scripts share (sourced by gateway.sh and
# runs.sh): waiting for a quiet machine, stopping our own processes, and the
# exit trap that stops them and keeps their logs.
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
