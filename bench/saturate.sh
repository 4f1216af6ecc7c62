#!/bin/bash
# saturate.sh — brigade alone under sustained full load, for the writer and
# the tracer: a mock-llm (2 threads), brigade (2 loops, every request traced),
# a user key, then `wrk -t2 -c64` for SECONDS_ARG seconds on loopback. Every
# 5 s it prints the usage rows committed and queued, the rows and spans
# dropped (/metrics), the writer's and the tracer's CPU ticks and the data
# dir's size; then wrk's BENCH line. PERF=1 also runs `perf trace -s` on the
# writer from the 20th second for 10 s (written to <tmp>/w.trace).
# PROFILE=tracer (or writer) instead samples that thread with `perf record -g`
# from the 4th second for 8 s (SECONDS >= 15) and prints its top symbols
# (<tmp>/perf.data). BIN= picks the binary.
# Usage: bench/saturate.sh [SECONDS]   (default 30). Leaves its temp dir.
set -e
SECS=${1:-30}
cd "$(dirname "$0")/.."
T=$(mktemp -d /tmp/brigade-saturate.XXXX); mkdir -m 700 $T/data
build-bench/brigade mock-llm --listen 127.0.0.1:0 --threads 2 > $T/mock.log 2>&1 & MP=$!
sleep 0.5; MU=$(grep -o 'http://127[^ ]*' $T/mock.log | head -1)
cat > $T/b.yaml <<EOY
server: {listen: "127.0.0.1:0", data_dir: "$T/data", threads: 2}
providers: [{name: m, kind: openai, base_url: "$MU/v1", max_connections: 128}]
models: [{name: bench-model, provider: m, upstream_model: bench-model, input_usd_per_mtok: 1, output_usd_per_mtok: 2}]
EOY
ADM=bench-0123456789abcdef0123456789abcdef
BRIGADE_ADMIN_TOKEN=$ADM BRIGADE_LOG=warn LD_LIBRARY_PATH=${LDP:-} ${BIN:-build-bench/brigade} serve --config $T/b.yaml --data-dir $T/data > $T/b.log 2>&1 & BP=$!
sleep 1; URL=$(grep -o 'http://127[^ ]*' $T/b.log | head -1)
jf() { sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" | head -1; }
AK=$(curl -s -X POST "$URL/v1/tenants" -H "authorization: Bearer $ADM" -d '{"name":"bench"}' | jf admin_key)
UID_=$(curl -s -X POST "$URL/v1/users" -H "authorization: Bearer $AK" -d '{"external_id":"u1"}' | jf id)
KEY=$(curl -s -X POST "$URL/v1/users/$UID_/keys" -H "authorization: Bearer $AK" -d '{}' | jf key)
tid() { for t in /proc/$BP/task/*; do [ "$(cat $t/comm)" = "$1" ] && basename $t; done; true; }
W=$(tid writer); TR=$(tid tracer)
BENCH_KEY=$KEY wrk -s bench/wrk/chat.lua -t2 -c64 -d${SECS}s $URL > $T/wrk.out 2>&1 & WP=$!
if [ -n "$PERF" ]; then sleep 20; perf trace -s -t $W -o $T/w.trace -- sleep 10 >/dev/null 2>&1; fi
if [ -n "$PROFILE" ]; then PT=$(tid "$PROFILE"); (sleep 4; perf record -g -t "$PT" -o $T/perf.data -- sleep 8 >/dev/null 2>&1) & fi
for i in $(seq 1 $(( SECS / 5 ))); do sleep 5; echo "t=$((i*5)) $(curl -s $URL/metrics -H "authorization: Bearer $ADM" | grep -E '^brigade_store_usage_queued|^brigade_store_usage_rows_total|^brigade_trace_spans_dropped_total|^brigade_store_usage_dropped' | tr '\n' ' ') writer_ticks=$(awk '{print $14+$15}' /proc/$BP/task/$W/stat) tracer_ticks=$(awk '{print $14+$15}' /proc/$BP/task/$TR/stat) db=$(du -sm $T/data | cut -f1)MB"; done
wait $WP; grep BENCH $T/wrk.out | cut -c1-200
kill $BP $MP; wait 2>/dev/null
if [ -n "$PROFILE" ]; then
  perf report -i $T/perf.data --no-children --percent-limit 1.5 --stdio 2>/dev/null | grep -E '^ +[0-9]'
fi
echo $T
