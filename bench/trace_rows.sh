#!/usr/bin/env bash
# trace_rows.sh — instructions SQLite spends per stored trace, by layout:
# bench/trace_rows.c under callgrind, one mode after another (what each mode
# writes is in that file's header). The figure includes the program's own
# per-trace work (an id formatted, ten binds: a few hundred instructions),
# the same in every mode.
#
#   bench/trace_rows.sh            20 000 traces per mode
#   ROWS=100000 bench/trace_rows.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${ROWS:-20000}
[[ "$rows" =~ ^[1-9][0-9]*$ ]] || { echo "trace_rows.sh: ROWS must be a positive integer" >&2; exit 2; }
for t in cc valgrind; do command -v $t >/dev/null || { echo "trace_rows.sh: missing $t" >&2; exit 1; }; done
bin=$(mktemp /tmp/brigade-trace-rows-bin.XXXXXX)
trap 'rm -f "$bin"' EXIT
cc -O2 -Wall -Wextra -Werror -std=c17 -D_GNU_SOURCE bench/trace_rows.c -o "$bin" -lsqlite3
echo "| rows written as (bench/trace_rows.c mode) | instructions per trace ($rows traces, 64 a commit) |"
echo "|---|---:|"
for mode in indexed random noindex multi16 pack64 pack256; do
  ir=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$mode" "$rows" 2>&1 |
       sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
  echo "| $mode | $((ir / rows)) |"
done
