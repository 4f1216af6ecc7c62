#!/usr/bin/env bash
# instructions_gate.sh — the CI gate on the cost of a gateway request: the
# instructions callgrind counts per request (bench/instructions.sh: every
# thread, governance on, every request traced, usage recorded) against the
# figure committed in bench/instructions.baseline. It fails when a request
# costs more than 10% over that figure, and the same for a streamed request
# against bench/instructions_stream.baseline. Raising a figure is a reviewed
# change of that file, with the reason in its commit.
#
#   bench/instructions_gate.sh          build-bench/ (release), 300 requests
#
# Instruction counts do not move with the load of a shared machine the way
# timings do; what is left (how many rows share a group commit) moves them
# by about 1% (docs/benchmarks.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# One gate per kind of request: a plain chat completion, and a streamed one
# (16 chunks: the per-chunk path, where a cJSON tree per chunk once cost
# more than the whole plain request).
fail=0
gate() {   # gate NAME BASELINE-FILE [ENV=VALUE ...]
  local name=$1 baseline_file=$2 baseline limit out ir pct
  shift 2
  baseline=$(grep -Eo '^[0-9]+' "$baseline_file" | head -1)
  [[ -n "$baseline" ]] || { echo "gate: no figure in $baseline_file"; fail=1; return; }
  limit=$((baseline * 110 / 100))
  out=$(env "$@" BENCH_NGINX=0 BENCH_REQUESTS="${BENCH_REQUESTS:-300}" bench/instructions.sh) ||
    { echo "$out"; echo "gate ($name): the measurement failed"; fail=1; return; }
  echo "$out"
  ir=$(echo "$out" | awk -F'|' '/build-bench\/brigade/ {gsub(/ /, "", $4); print $4}' | tail -1)
  [[ "$ir" =~ ^[0-9]+$ ]] || { echo "gate ($name): no figure measured"; fail=1; return; }
  pct=$(( (ir * 100 + baseline / 2) / baseline ))
  if ((ir > limit)); then
    echo "gate ($name): FAIL: $ir instructions per request, ${pct}% of the committed $baseline (limit $limit, +10%)"
    fail=1
    return
  fi
  echo "gate ($name): ok: $ir instructions per request, ${pct}% of the committed $baseline (limit $limit)"
}
gate plain bench/instructions.baseline BENCH_STREAM=0
gate streamed bench/instructions_stream.baseline BENCH_STREAM=1
exit $fail
