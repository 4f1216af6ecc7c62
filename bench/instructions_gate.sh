#!/usr/bin/env bash
# instructions_gate.sh — the CI gate on the cost of a gateway request: the
# instructions callgrind counts per request (bench/instructions.sh: every
# thread, governance on, every request traced, usage recorded) against the
# figure committed in bench/instructions.baseline. It fails when a request
# costs more than 10% over that figure. Raising the figure is a reviewed
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
baseline_file=bench/instructions.baseline
baseline=$(grep -Eo '^[0-9]+' "$baseline_file" | head -1)
[[ -n "$baseline" ]] || { echo "gate: no figure in $baseline_file"; exit 1; }
limit=$((baseline * 110 / 100))
out=$(BENCH_REQUESTS=${BENCH_REQUESTS:-300} bench/instructions.sh) || { echo "$out"; echo "gate: the measurement failed"; exit 1; }
echo "$out"
ir=$(echo "$out" | awk -F'|' '/build-bench\/brigade/ {gsub(/ /, "", $4); print $4}' | tail -1)
[[ "$ir" =~ ^[0-9]+$ ]] || { echo "gate: no figure measured"; exit 1; }
pct=$(( (ir * 100 + baseline / 2) / baseline ))
if ((ir > limit)); then
  echo "gate: FAIL: $ir instructions per request, ${pct}% of the committed $baseline (limit $limit, +10%)"
  exit 1
fi
echo "gate: ok: $ir instructions per request, ${pct}% of the committed $baseline (limit $limit)"
