#!/usr/bin/env bash
# runs.sh — how many streaming agent runs brigade holds at once, what each
# costs in memory, and how much time the harness adds per agent step; all on
# loopback, in one bounded run (the machine is shared: read the figures with
# the load average in mind).
#
#   bench/runs.sh                 build (release) if needed, 10 000 runs
#   RUNS=2000 bench/runs.sh       fewer concurrent runs
#
# Phases (load generator: bench/runs_load.mjs, node):
#   1. setup   a tenant, USERS users with a key each, RUNS sessions of agent
#              `hold` (spread over the users), STEP_SESSIONS sessions each of
#              agents `plain` and `clocked`; then brigade's idle VmRSS.
#   2. hold    RUNS streaming runs of `hold` (model on a mock provider with
#              latency_ms HOLD_LATENCY_MS, 2000) opened as fast as brigade
#              takes them (at most WINDOW connected but not yet started);
#              brigade's VmRSS sampled every 50 ms; every run must end with
#              run.completed. If ramp-up took longer than the latency (so the
#              runs were never all open at once), it is repeated in the same
#              process with a longer latency ([[latency:MS]] in the message,
#              which the mock honours), and that repeat gives the memory figure.
#   3. steps   with a mock provider answering after FAST_LATENCY_MS (0):
#              STEP_RUNS runs of `plain` (1 model call), of `clocked`
#              (a clock tool call, then an answer: 2 model calls) and of
#              `looped` (LOOP_STEPS clock calls one after another, then an
#              answer: LOOP_STEPS + 1 model calls), one at a time, then at
#              concurrency 64; run time minus model latency. A run's time
#              is a fixed part (the start, the durable end) and a part per
#              step: (looped − plain) / LOOP_STEPS is the time one more step
#              adds, averaged over many steps instead of read off one
#              difference of two noisy medians.
#   4. history one step's time as brigade's own traces show it (first model
#              call → last, over the steps between), on fresh sessions of
#              `looped` with HISTORIES earlier runs (0, 3, 10: ~18 messages
#              each), HISTORY_SESSIONS (20) each, one run at a time: what
#              the conversation's length adds to a step.
#
# Environment:
#   RUNS               concurrent runs to hold (default 10000)
#   USERS              users the sessions are spread over (default 100)
#   HOLD_LATENCY_MS    mock latency of the held runs' model (default 2000)
#   WINDOW             runs connected but not yet started, at most (default 512;
#                      brigade's listen backlog is 1024)
#   FAST_LATENCY_MS    mock latency of the step measurement's model (default 0)
#   STEP_RUNS          timed runs per case (default 1000)
#   STEP_SESSIONS      sessions per step agent (default 256)
#   LOOP_STEPS         tool steps of a `looped` run (default 8; 1–98)
#   HISTORIES          earlier runs before the timed one, phase 4 (default 0,3,10)
#   HISTORY_SESSIONS   sessions per history length, phase 4 (default 20)
#   HOLD_PROVIDER      the held runs' model provider: mock (default: in-process,
#                      no HTTP) or http (a `brigade mock-llm` process on
#                      loopback, a provider of kind openai: each run then holds
#                      a libcurl transfer and an upstream connection, as with a
#                      real provider)
#   FAST_PROVIDER      the step agents' model provider (phases 3 and 4): mock
#                      (default: in-process; its parsing and rendering of every
#                      request then counts in brigade's CPU) or http (another
#                      `brigade mock-llm` process, a provider of kind openai:
#                      brigade's CPU is then brigade's own, HTTP client included)
#   TRACING            on (default: every request and run traced) or off
#   BENCH_MAX_LOAD     wait (at most 2 min) while the 1-min load is above it (default 3)
#   BRIGADE            brigade binary (default: release build in build-bench/)
#   BENCH_KEEP         1 keeps the temp dir (config, logs, data)
#
# Raw results go to bench/results/runs-<timestamp>/ (git-ignored).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

cmdline=""
for v in $(compgen -e | grep -E '^(RUNS|USERS|HOLD_LATENCY_MS|HOLD_PROVIDER|TRACING|WINDOW|FAST_LATENCY_MS|STEP_RUNS|STEP_SESSIONS|LOOP_STEPS|HISTORIES|HISTORY_SESSIONS|FAST_PROVIDER|BENCH_MAX_LOAD|BRIGADE)$' || true); do
  cmdline+="$v=$(printf "%q" "${!v}") "
done
cmdline+="bench/runs.sh"

runs=${RUNS:-10000}
users=${USERS:-100}
hold_ms=${HOLD_LATENCY_MS:-2000}
window=${WINDOW:-512}
fast_ms=${FAST_LATENCY_MS:-0}
step_runs=${STEP_RUNS:-1000}
step_sessions=${STEP_SESSIONS:-256}
loop_steps=${LOOP_STEPS:-8}
histories=${HISTORIES:-0,3,10}
history_sessions=${HISTORY_SESSIONS:-20}
max_load=${BENCH_MAX_LOAD:-3}
hold_provider=${HOLD_PROVIDER:-mock}
fast_provider_kind=${FAST_PROVIDER:-mock}
tracing=${TRACING:-on}

die() { echo "runs.sh: $*" >&2; exit 1; }
for v in runs users hold_ms window fast_ms step_runs step_sessions loop_steps history_sessions; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
((runs >= 1 && users >= 1 && window >= 1 && step_runs >= 1)) || die "RUNS, USERS, WINDOW, STEP_RUNS must be >= 1"
((step_sessions >= 64)) || die "STEP_SESSIONS must be >= 64 (the c=64 case)"
((loop_steps >= 1 && loop_steps <= 98)) || die "LOOP_STEPS must be 1 to 98 (the looped agent's max_steps is 100)"
[[ "$histories" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "HISTORIES must be comma-separated integers (got '$histories')"
((history_sessions >= 1)) || die "HISTORY_SESSIONS must be >= 1"
[[ "$hold_provider" == mock || "$hold_provider" == http ]] || die "HOLD_PROVIDER must be mock or http (got '$hold_provider')"
[[ "$fast_provider_kind" == mock || "$fast_provider_kind" == http ]] || die "FAST_PROVIDER must be mock or http (got '$fast_provider_kind')"
[[ "$tracing" == on || "$tracing" == off ]] || die "TRACING must be on or off (got '$tracing')"
for t in node curl jq awk; do command -v "$t" >/dev/null 2>&1 || die "missing $t"; done
load_js="$root/bench/runs_load.mjs"

# ---- file descriptors: one or two per run in brigade, one per run in the generator
want_fds=65536
hard=$(ulimit -Hn)
fd_note="ulimit -n $want_fds"
if [[ "$hard" != unlimited ]] && ((hard < want_fds)); then
  ulimit -n "$hard"
  fd_note="ulimit -n $hard (the hard limit; $want_fds was asked for)"
else
  ulimit -n "$want_fds"
fi
nofile=$(ulimit -n)
# A held run is one client connection; with an HTTP provider, one upstream
# connection too (the mock's side is in its own process).
per_run=1
[[ "$hold_provider" == http ]] && per_run=2
((nofile > per_run * runs + 256)) ||
  die "ulimit -n is $nofile: too low for RUNS=$runs ($per_run descriptors per run, and 256 more; raise the hard limit or lower RUNS)"

# ---- build -----------------------------------------------------------------
build_note="release build in build-bench/"
if [[ -z "${BRIGADE:-}" ]]; then
  BRIGADE="$root/build-bench/brigade"
  [[ -d build-bench ]] || meson setup build-bench --buildtype=release -Db_lto=true >/dev/null || die "meson setup failed"
  echo "building brigade (release) in build-bench/ ..."
  ninja -j2 -C build-bench brigade >/dev/null || die "build failed (ninja -C build-bench brigade)"
else
  build_note="BRIGADE=$BRIGADE"
fi
[[ -x "$BRIGADE" ]] || die "no brigade binary at $BRIGADE"
# The source as built (taken now: the tree may change while the benchmark runs).
src_note=""
if command -v git >/dev/null && git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
  src_note="Source (at build time): commit $(git -C "$root" rev-parse --short HEAD), $(git -C "$root" status --porcelain 2>/dev/null | wc -l) uncommitted path(s) in the work tree."
fi

# ---- a quiet machine, temp dir, processes, cleanup -------------------------
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
bench_wait_quiet "$max_load"
tmp=$(mktemp -d /tmp/brigade-runs.XXXXXX)
stamp=$(date +%Y%m%dT%H%M%S)
out="$root/bench/results/runs-$stamp"
mkdir -p "$out"
pids=()
keep_files=(brigade.log brigade.yaml)
stop_wait_s=15     # brigade drains for shutdown_grace_ms
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# ---- the model providers -----------------------------------------------------
# mock_llm NAME LATENCY_MS: a `brigade mock-llm` process on loopback (its
# log $tmp/mock-NAME.log, stopped at exit); sets mock_url.
mock_llm() {
  local pid
  "$BRIGADE" mock-llm --listen 127.0.0.1:0 --threads 1 --latency-ms "$2" >"$tmp/mock-$1.log" 2>&1 &
  pid=$!; pids+=("$pid")
  mock_url=$(bench_wait_line "$tmp/mock-$1.log" 'http://127\.0\.0\.1:[0-9]+' "$pid" "mock-llm ($1)")
  echo "mock-llm ($1) pid $pid  $mock_url"
}
http_provider() {   # http_provider NAME URL MAX_CONNECTIONS [EXTRA]: a provider of kind openai
  echo "{name: $1, kind: openai, base_url: \"$2/v1\", api_key: k, max_connections: $3, breaker_failures: 0, breaker_error_rate: 0${4:-}}"
}
slow_provider="{name: slow, kind: mock, latency_ms: $hold_ms, timeout_ms: 600000}"
if [[ "$hold_provider" == http ]]; then
  mock_llm slow "$hold_ms"
  slow_provider=$(http_provider slow "$mock_url" 20000 ", timeout_ms: 600000")
fi
fast_provider="{name: fast, kind: mock, latency_ms: $fast_ms}"
if [[ "$fast_provider_kind" == http ]]; then
  mock_llm fast "$fast_ms"
  fast_provider=$(http_provider fast "$mock_url" 256)
fi
tracing_yaml=""
[[ "$tracing" == off ]] && tracing_yaml="observability: {traces: {enabled: false}}"

# ---- brigade ---------------------------------------------------------------
admin_token="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
mkdir -p -m 700 "$tmp/data"
cat >"$tmp/brigade.yaml" <<EOF
# generated by bench/runs.sh
server:
  listen: "127.0.0.1:0"
  data_dir: "$tmp/data"
  threads: 2
  limits: {max_connections: 20000}
$tracing_yaml
providers:
  - $slow_provider
  - $fast_provider
$(bench_runs_agents_yaml)
EOF
BRIGADE_ADMIN_TOKEN=$admin_token BRIGADE_LOG=${BRIGADE_LOG:-warn} \
  "$BRIGADE" serve --config "$tmp/brigade.yaml" --data-dir "$tmp/data" >"$tmp/brigade.log" 2>&1 &
bpid=$!; pids+=("$bpid")
url=""
for _ in $(seq 200); do
  url=$(grep -Eo 'http://127\.0\.0\.1:[0-9]+' "$tmp/brigade.log" | head -1 || true)
  [[ -n "$url" ]] && break
  kill -0 "$bpid" 2>/dev/null || { cat "$tmp/brigade.log" >&2; die "brigade exited before listening"; }
  sleep 0.05
done
[[ -n "$url" ]] || die "brigade did not start within 10 s"
echo "brigade pid $bpid  $url  ($fd_note)"

mem() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$bpid/status"; }
ticks() { sed 's/.*) //' "/proc/$bpid/stat" | awk '{print $12 + $13}'; }
tck=$(getconf CLK_TCK)
alive() { kill -0 "$bpid" 2>/dev/null || { tail -20 "$tmp/brigade.log" >&2; die "brigade died ($1)"; }; }

# ---- 1. setup and baseline -------------------------------------------------
echo "setup: $users users, $runs + 2×$step_sessions sessions ..."
node "$load_js" setup --url "$url" --admin-token "$admin_token" --users "$users" \
  --hold-agent hold --hold-sessions "$runs" --step-agents plain,clocked,looped \
  --step-sessions "$step_sessions" --file "$tmp/sessions.json" --out "$out/setup.json" >/dev/null
alive setup
sleep 3   # let the store writer flush and the loops go idle
base_rss=$(mem VmRSS); base_hwm=$(mem VmHWM)
cp "/proc/$bpid/smaps_rollup" "$out/smaps_rollup-idle.txt" 2>/dev/null || true
echo "idle after setup: VmRSS $base_rss kB, VmHWM $base_hwm kB"

# ---- 2. hold RUNS concurrent streaming runs --------------------------------
hold() {   # hold NAME LATENCY_MS CONTENT
  local name=$1 lat=$2 content=$3
  echo "hold ($name): $runs streaming runs, model latency $lat ms ..."
  node "$load_js" hold --url "$url" --file "$tmp/sessions.json" --agent hold --n "$runs" \
    --window "$window" --pid "$bpid" --timeout-ms $((lat + 120000)) --content "$content" \
    --out "$out/hold-$name.json" >/dev/null
  alive "hold $name"
  jq -r '"  completed \(.counts.completed)/\(.n), errors \(.counts.failed + .counts.http + .counts.conn + .counts.timeout), max in flight \(.max_in_flight), all started at \(.t_all_started_s) s, peak VmRSS \(.mem_peak_kb.rss) kB"' "$out/hold-$name.json"
}
hold a "$hold_ms" "Hello, please answer."
held=a
long_ms=""
# All RUNS must be open together for a while (at least half the latency)
# for the memory figure to be the memory of RUNS held runs. If ramp-up took
# longer, the first runs ended before or soon after the last started: repeat
# in the same process with a latency of twice the ramp-up time plus 2 s (at
# least 10 s).
open_ms=$(jq -r '.all_open_s * 1000 | floor' "$out/hold-a.json")
if [[ $(jq -r .all_in_flight_at_once "$out/hold-a.json") != true ]] || ((open_ms < hold_ms / 2)); then
  ramp=$(jq -r '(.t_all_started_s // .wall_s) - (.t_first_started_s // 0)' "$out/hold-a.json")
  long_ms=$(awk -v r="$ramp" 'BEGIN { m = int((2 * r + 2) + 0.999) * 1000; if (m < 10000) m = 10000; print m }')
  echo "  all $runs open together for only $open_ms ms: repeating with a $long_ms ms latency"
  sleep 3
  pre_b_rss=$(mem VmRSS)
  hold b "$long_ms" "Hello, please answer. [[latency:$long_ms]]"
  held=b
fi
sleep 2
after_rss=$(mem VmRSS); after_hwm=$(mem VmHWM)
cp "/proc/$bpid/smaps_rollup" "$out/smaps_rollup-after-hold.txt" 2>/dev/null || true

# ---- 3. added latency per agent step ---------------------------------------
steps() {   # steps AGENT CONC CONTENT
  node "$load_js" steps --url "$url" --file "$tmp/sessions.json" --agent "$1" --conc "$2" \
    --runs "$step_runs" --warmup 20 --pid "$bpid" --content "$3" --out "$out/steps-$1-c$2.json" >/dev/null
  alive "steps $1 c=$2"
  jq -r '"  \(.agent) c=\(.conc): p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, \(.runs_per_s) runs/s, errors \(.counts.failed + .counts.http + .counts.conn + .counts.timeout)"' "$out/steps-$1-c$2.json"
}
echo "steps: $step_runs runs per case, model latency $fast_ms ms ..."
for c in 1 64; do
  steps plain "$c" "Hello."
  steps clocked "$c" "What time is it? [[tool:clock {}]]"
  steps looped "$c" "What time is it, $loop_steps times? [[tool:clock {}]] [[tool_loop:$loop_steps]]"
done
# ---- 4. a step's time by the length of the conversation --------------------
echo "history: $history_sessions sessions per history length ($histories earlier runs) ..."
node "$load_js" history --url "$url" --file "$tmp/sessions.json" --agent looped \
  --content "What time is it, $loop_steps times? [[tool:clock {}]] [[tool_loop:$loop_steps]]" \
  --histories "$histories" --sessions "$history_sessions" --out "$out/history.json" >/dev/null
alive history
jq -r '.rows[] | "  \(.prior_runs) earlier runs (\(.session_messages) messages): a step \(.step_us_p50) µs"' "$out/history.json"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
grep -E '"level":"(error|fatal)"|\b(ERROR|FATAL)\b' "$tmp/brigade.log" | head -5 >"$out/brigade-errors.txt" || true

# ---- report ----------------------------------------------------------------
J() { jq -r "$2" "$out/$1.json"; }
kb_per_run() { awk -v p="$1" -v b="$2" -v n="$runs" 'BEGIN { printf "%.1f", (p - b) / n }'; }
hold_row() {   # one table row per hold phase
  local f=hold-$1 lat=$2 held peak
  held=$(J "$f" '.mem_held_max_kb // empty')
  peak=$(J "$f" .mem_peak_kb.rss)
  awk -v name="$1" -v lat="$lat" -v n="$runs" -v ok="$(J "$f" .counts.completed)" \
      -v errs="$(J "$f" '.counts.failed + .counts.http + .counts.conn + .counts.timeout')" \
      -v maxf="$(J "$f" .max_in_flight)" -v t1="$(J "$f" .t_first_started_s)" -v tn="$(J "$f" .t_all_started_s)" \
      -v open="$(J "$f" .all_open_s)" -v te="$(J "$f" .t_all_ended_s)" -v held="${held:--}" -v peak="$peak" \
      -v base="$base_rss" -v ticks="$(J "$f" .cpu_ticks)" -v tck="$tck" 'BEGIN {
    hs = (held == "-") ? "-" : sprintf("%d | %.1f", held, (held - base) / n)
    if (held == "-") hs = "- | -"
    printf "| %s | %d | %d / %d | %d | %d | %.2f | %.2f | %.2f | %s | %d | %.1f | %.2f | %.0f |\n", name, lat, ok, n, errs,
      maxf, tn - t1, open, te, hs, peak, (peak - base) / n, ticks / tck, ticks / tck * 1e6 / n }'
}
steps_row() {   # steps_row AGENT CONC MODEL_CALLS
  local f=steps-$1-c$2 calls=$3
  awk -v p50="$(J "$f" .p50_ms)" -v p99="$(J "$f" .p99_ms)" -v L="$fast_ms" -v k="$calls" \
      -v rps="$(J "$f" .runs_per_s)" -v n="$(J "$f" .runs)" -v ok="$(J "$f" .counts.completed)" \
      -v cpu="$(J "$f" .cpu_ticks)" -v tck="$tck" -v a="$1" -v c="$2" 'BEGIN {
    printf "| %s | %d | %d | %d/%d | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f |\n", a, k, c, ok, n, p50, p99,
      (p50 - k * L) / k, (p99 - k * L) / k, rps, (ok ? cpu / tck * 1e6 / ok : 0) }'
}
first_errors=$(jq -r '.first_errors[]' "$out"/hold-*.json "$out"/steps-*.json 2>/dev/null | head -5)
full=$(J "hold-$held" '.mem_at_full')
report="$out/report.md"
{
  echo "## Agent runs benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: \`$cmdline\` ($build_note; $fd_note; brigade \`threads: 2\`)."
  echo "Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
       "$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); node $(node --version)."
  echo "Load average at start $load_start, at end $load_end."
  [[ -n "$src_note" ]] && echo "$src_note"
  echo
  echo "Setup: $users users, $runs sessions of \`hold\` + 2×$step_sessions step sessions in $(J setup .seconds) s;" \
       "brigade idle after setup: VmRSS $base_rss kB (VmHWM $base_hwm kB)."
  echo
  echo "| hold | model latency ms | completed | errors | max runs in flight | ramp-up s | all open together s | all ended at s | VmRSS all in flight kB | (that − idle) / run kB | peak VmRSS kB | (peak − idle) / run kB | brigade CPU s | CPU µs/run |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  hold_row a "$hold_ms"
  [[ -n "$long_ms" ]] && hold_row b "$long_ms"
  echo
  if [[ -n "$long_ms" ]]; then
    echo "Hold a had all $runs runs open together for only $(J hold-a .all_open_s) s (ramp-up $(J hold-a '((.t_all_started_s // 0) - (.t_first_started_s // 0)) * 100 | round / 100') s" \
         "against a ${hold_ms} ms latency), so hold b repeated it in the same process with [[latency:$long_ms]] in the message;" \
         "VmRSS before b: ${pre_b_rss} kB (what a left behind counts in b's per-run figures, which use the idle VmRSS after setup)."
  fi
  echo "With all runs in flight ($held): $(jq -r 'if . == null then "never" else "VmRSS \(.rss) kB (anon \(.anon), file \(.file)), \(.fds) open fds, \(.threads) threads" end' <<<"$full")."
  echo "After the hold phase(s), idle: VmRSS $after_rss kB, VmHWM $after_hwm kB."
  echo
  echo "Steps (model latency $fast_ms ms; time from writing the request to reading run.completed; a fresh connection per run, connect not timed):"
  echo
  echo "| agent | model calls | conc | completed | run p50 ms | run p99 ms | added p50 per step ms | added p99 per step ms | runs/s | brigade CPU µs/run |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for c in 1 64; do steps_row plain "$c" 1; steps_row clocked "$c" 2; steps_row looped "$c" $((loop_steps + 1)); done
  echo
  echo "The second step of \`clocked\` (a tool call and its result, then one more model call) adds, at p50:" \
       "$(awk -v a="$(J steps-clocked-c1 .p50_ms)" -v b="$(J steps-plain-c1 .p50_ms)" 'BEGIN { printf "%.2f", a - b }') ms at c=1," \
       "$(awk -v a="$(J steps-clocked-c64 .p50_ms)" -v b="$(J steps-plain-c64 .p50_ms)" 'BEGIN { printf "%.2f", a - b }') ms at c=64."
  echo
  echo "One step (a tool call and its result, then one more model call), averaged over the $loop_steps of \`looped\`," \
       "(looped − plain) / $loop_steps at p50:" \
       "$(awk -v a="$(J steps-looped-c1 .p50_ms)" -v b="$(J steps-plain-c1 .p50_ms)" -v k="$loop_steps" 'BEGIN { printf "%.0f", (a - b) / k * 1000 }') µs at c=1," \
       "$(awk -v a="$(J steps-looped-c64 .p50_ms)" -v b="$(J steps-plain-c64 .p50_ms)" -v k="$loop_steps" 'BEGIN { printf "%.2f", (a - b) / k }') ms at c=64;" \
       "brigade CPU per step $(awk -v a="$(J steps-looped-c1 .cpu_ticks)" -v an="$(J steps-looped-c1 .counts.completed)" -v b="$(J steps-plain-c1 .cpu_ticks)" -v bn="$(J steps-plain-c1 .counts.completed)" -v k="$loop_steps" -v t="$tck" 'BEGIN { if (an && bn) printf "%.0f", (a / an - b / bn) / t * 1e6 / k; else printf "-" }') µs at c=1."
  echo
  echo "A step by the conversation's length (\`looped\`, $loop_steps steps, one run at a time; from brigade's own trace of each run: a step = first model call's start → last's, over the steps between; the start = request → first model call; the end = last model call's end → the run's end, its durable commit; p50 of $history_sessions runs):"
  echo
  echo "| earlier runs | messages in the session after | a step µs | start µs | end µs | run µs |"
  echo "|---:|---:|---:|---:|---:|---:|"
  jq -r '.rows[] | "| \(.prior_runs) | \(.session_messages) | \(.step_us_p50) | \(.start_us_p50) | \(.end_us_p50) | \(.total_us_p50) |"' "$out/history.json"
  echo
  echo "First errors: ${first_errors:-none}"
  [[ -s "$out/brigade-errors.txt" ]] && { echo; echo "brigade log errors:"; sed 's/^/    /' "$out/brigade-errors.txt"; }
} >"$report"
echo
cat "$report"
echo
echo "raw results: ${out#"$root"/}/"
