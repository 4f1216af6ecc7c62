#!/usr/bin/env bash
# governance.sh — what governance costs on the hot path of a chat completion:
# the same request through two brigade servers that differ only in
# `governance: {enabled: true|false}`, measured in one run with the sides
# alternated, on loopback, against the in-process mock provider (no upstream
# network, so nothing hides the difference).
#
#   bench/governance.sh                    build (release) if needed and run it
#   BENCH_SECONDS=10 BENCH_ROUNDS=3 bench/governance.sh
#
# Sides (same config, same tenant/user/key set-up, same request body):
#   on   every check active but never refusing: tier, key and tenant rpm/tpm
#        (GCRA) and daily/monthly budgets (reservation + settle), a provider
#        max_concurrent so every call takes a fair-queue slot, x-ratelimit-*
#        headers on every response
#   off  the same config with `governance: {enabled: false}`: admit always
#        passes without reserving or counting (the fair-queue slot is still
#        taken, since the provider's max_concurrent is the same)
# For each round, concurrency (1 and 32) and side: a fixed-duration wrk run
# (bench/wrk/chat.lua) recording requests/s, p50/p99 latency and brigade's CPU
# microseconds per request (utime+stime from /proc/PID/stat over the run ÷
# requests). The side that goes first alternates per round (on,off / off,on
# / ...), so drift in the shared machine's load hits both sides alike. The
# report gives per-side medians over the rounds, the ratios on/off and the
# added p50 and CPU per request. It also runs the govern microbenchmark
# (tests/unit/govern/govern_bench) if GOVERN_BENCH names it.
#
# Environment:
#   BENCH_SECONDS      seconds per measured run (default 5)
#   BENCH_ROUNDS       rounds per side (default 7)
#   BENCH_WARMUP       seconds of warm-up per side (default 2)
#   BENCH_CONCS        concurrencies (default "1 32")
#   BENCH_WRK_THREADS  wrk threads when concurrency > 1 (default 2)
#   BENCH_THREADS      brigade loop threads (default 2)
#   BENCH_MAX_LOAD     wait (at most 2 min) while the 1-min load is above it (default 3)
#   BRIGADE            brigade binary (default: release build in build-bench/)
#   GOVERN_BENCH       path of a built govern_bench to run and quote (optional)
#   BENCH_KEEP         1 keeps the temp dir (configs, logs, data)
#
# Raw results go to bench/results/governance-<timestamp>/ (git-ignored).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
cmdline=$(bench_cmdline bench/governance.sh 'BENCH_|BRIGADE$|GOVERN_BENCH$')

secs=${BENCH_SECONDS:-5}
rounds=${BENCH_ROUNDS:-7}
warm=${BENCH_WARMUP:-2}
concs=${BENCH_CONCS:-1 32}
wrk_threads=${BENCH_WRK_THREADS:-2}
threads=${BENCH_THREADS:-2}
max_load=${BENCH_MAX_LOAD:-3}
lua="$root/bench/wrk/chat.lua"

die() { echo "governance.sh: $*" >&2; exit 1; }
[[ "$secs" =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a positive integer"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
[[ "$warm" =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be an integer"
for c in $concs; do [[ "$c" =~ ^[1-9][0-9]*$ ]] || die "BENCH_CONCS: '$c' is not a positive integer"; done

for t in wrk curl awk ss; do
  command -v "$t" >/dev/null 2>&1 || die "missing $t: run scripts/deps.sh --bench"
done

if [[ -z "${BRIGADE:-}" ]]; then
  BRIGADE="$root/build-bench/brigade"
  if [[ ! -d build-bench ]]; then
    meson setup build-bench --buildtype=release -Db_lto=true >/dev/null || die "meson setup failed"
  fi
  echo "building brigade (release) in build-bench/ ..."
  ninja -j2 -C build-bench brigade >/dev/null || die "build failed (ninja -C build-bench brigade)"
fi
[[ -x "$BRIGADE" ]] || die "no brigade binary at $BRIGADE"

# ---- a quiet machine, temp dir, process bookkeeping, cleanup --------------
bench_wait_quiet "$max_load"
tmp=$(mktemp -d /tmp/brigade-gbench.XXXXXX)
stamp=$(date +%Y%m%dT%H%M%S)
out="$root/bench/results/governance-$stamp"
mkdir -p "$out"
pids=()
# shellcheck disable=SC2034  # read by bench_cleanup (lib.sh)
keep_files=(on.yaml off.yaml on.log off.log)
# shellcheck disable=SC2034
stop_wait_s=5
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

tck=$(getconf CLK_TCK)
json_field() { sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" | head -1; }
post() {   # post URL TOKEN BODY -> response body; fails on non-2xx
  local r code
  r=$(curl -s -w '\n%{http_code}' -X POST "$1" -H "authorization: Bearer $2" \
        -H 'content-type: application/json' -d "$3")
  code=${r##*$'\n'}
  [[ "$code" == 2* ]] || die "POST $1 -> HTTP $code: ${r%$'\n'*}"
  echo "${r%$'\n'*}"
}

# Limits high enough never to refuse, but set, so every check runs.
big='rpm: 100000000, tpm: 1000000000000, daily_budget_usd: 1000000, monthly_budget_usd: 1000000'
key_limits='{"limits":{"rpm":100000000,"tpm":1000000000000,"daily_budget_usd":1000000,"monthly_budget_usd":1000000}}'
admin_token="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
declare -A url pid key

start_side() {   # start_side on|off
  local s=$1 enabled=true
  [[ $s == off ]] && enabled=false
  mkdir -p -m 700 "$tmp/data-$s"
  cat >"$tmp/$s.yaml" <<EOF
# generated by bench/governance.sh (side: $s)
server: {listen: "127.0.0.1:0", data_dir: "$tmp/data-$s", threads: $threads}
providers: [{name: mock, kind: mock, max_concurrent: 100000}]
models: [{name: bench-model, provider: mock, input_usd_per_mtok: 1, output_usd_per_mtok: 2}]
tiers: [{name: default, $big, max_concurrent_runs: 100000}]
governance:
  enabled: $enabled
  queue_per_user: 100000
  queue_global: 1000000
  tenant_limits: {$big, max_concurrent_runs: 100000}
EOF
  BRIGADE_ADMIN_TOKEN=$admin_token BRIGADE_LOG=${BRIGADE_LOG:-warn} \
    "$BRIGADE" serve --config "$tmp/$s.yaml" --data-dir "$tmp/data-$s" >"$tmp/$s.log" 2>&1 &
  pid[$s]=$!; pids+=("${pid[$s]}")
  url[$s]=$(bench_wait_line "$tmp/$s.log" 'http://127\.0\.0\.1:[0-9]+' "${pid[$s]}" "brigade serve ($s)")
  local admin_key user_id
  admin_key=$(post "${url[$s]}/v1/tenants" "$admin_token" '{"name":"bench"}' | json_field admin_key)
  [[ -n "$admin_key" ]] || die "$s: no admin_key from POST /v1/tenants"
  user_id=$(post "${url[$s]}/v1/users" "$admin_key" '{"external_id":"u1"}' | json_field id)
  [[ -n "$user_id" ]] || die "$s: no id from POST /v1/users"
  key[$s]=$(post "${url[$s]}/v1/users/$user_id/keys" "$admin_key" "$key_limits" | json_field key)
  [[ "${key[$s]}" == bk_usr_* ]] || die "$s: no bk_usr_ key from POST /v1/users/$user_id/keys"
  echo "brigade ($s)  pid ${pid[$s]}  ${url[$s]}"
}
start_side on
start_side off

# ---- sanity: 200 with a completion; x-ratelimit-* headers only when on ----
body='{"model":"bench-model","messages":[{"role":"user","content":"hello [[tokens:16]]"}]}'
for s in on off; do
  curl -s -D "$tmp/h-$s" -o "$tmp/b-$s" -w '%{http_code}' -X POST "${url[$s]}/v1/chat/completions" \
    -H "authorization: Bearer ${key[$s]}" -H 'content-type: application/json' -d "$body" >"$tmp/code-$s"
  if [[ $(cat "$tmp/code-$s") != 200 ]] || ! grep -q '"choices"' "$tmp/b-$s"; then
    die "$s: sanity request -> HTTP $(cat "$tmp/code-$s"): $(cat "$tmp/b-$s")"
  fi
  n=$(grep -ci '^x-ratelimit-' "$tmp/h-$s" || true)
  if [[ $s == on ]]; then ((n == 6)) || die "on: expected 6 x-ratelimit-* headers, got $n"
  else ((n == 0)) || die "off: expected no x-ratelimit-* headers, got $n"; fi
done
echo "sanity: on answers with 6 x-ratelimit-* headers, off with none"

# ---- runs ----------------------------------------------------------------
tsv="$out/results.tsv"
printf 'round\tside\tconc\trequests\trps\tp50_us\tp99_us\terrors\tcpu_us_per_req\n' >"$tsv"

wrk_run() {   # wrk_run SIDE CONC SECONDS
  local th=1
  (($2 > 1)) && th=$wrk_threads
  ((th > $2)) && th=$2
  BENCH_KEY=${key[$1]} timeout $(($3 + 30)) \
    wrk -s "$lua" --latency -t"$th" -c"$2" -d"$3s" --timeout 5s "${url[$1]}"
}

run_case() {   # run_case ROUND SIDE CONC
  local r=$1 s=$2 c=$3 name="$2-c$3-r$1" p0 p1 line
  p0=$(bench_cpu_ticks "${pid[$s]}")
  wrk_run "$s" "$c" "$secs" >"$out/wrk-$name.txt" 2>&1 || true
  p1=$(bench_cpu_ticks "${pid[$s]}")
  line=$(grep '^BENCH ' "$out/wrk-$name.txt" || true)
  [[ -n "$line" ]] || die "$name: wrk printed no result (see $out/wrk-$name.txt)"
  awk -v r="$r" -v s="$s" -v c="$c" -v p0="$p0" -v p1="$p1" -v tck="$tck" -v line="$line" 'BEGIN {
    n = split(line, kv, " ")
    for (i = 2; i <= n; i++) { split(kv[i], a, "="); v[a[1]] = a[2] }
    err = v["errors_connect"] + v["errors_read"] + v["errors_write"] + v["errors_status"] + v["errors_timeout"]
    req = v["requests"]
    cpu = (req > 0) ? (p1 - p0) * 1e6 / tck / req : 0
    printf "%s\t%s\t%s\t%d\t%.0f\t%d\t%d\t%d\t%.2f\n", r, s, c, req, v["rps"], v["p50_us"], v["p99_us"], err, cpu
  }' >>"$tsv"
  tail -1 "$tsv" | awk -F'\t' -v n="$name" '{printf "  %-12s %8s req/s  p50 %5s us  p99 %6s us  errors %s  CPU %s us/req\n", n, $5, $6, $7, $8, $9}'
}

if ((warm > 0)); then
  echo "warming up ($warm s per side) ..."
  for s in on off; do wrk_run "$s" 32 "$warm" >"$out/warmup-$s.txt" 2>&1 || true; done
fi

echo "measuring ($secs s per run, $rounds round(s), concurrencies: $concs) ..."
for r in $(seq "$rounds"); do
  order="on off"; ((r % 2 == 0)) && order="off on"
  for c in $concs; do
    for s in $order; do run_case "$r" "$s" "$c"; done
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# Governance really counted on the on side: /v1/me shows today's spend.
me_on=$(curl -s -H "authorization: Bearer ${key[on]}" "${url[on]}/v1/me" || true)
echo "$me_on" >"$out/me-on.json"
spent_on=$(grep -o '"spent_usd" *: *[0-9.e+-]*' <<<"$me_on" | head -1 | awk -F: '{print $2 + 0}')

micro=""
if [[ -n "${GOVERN_BENCH:-}" ]]; then
  [[ -x "$GOVERN_BENCH" ]] || die "GOVERN_BENCH=$GOVERN_BENCH is not executable"
  micro=$("$GOVERN_BENCH" 2>&1 || true)
  echo "$micro" >"$out/govern_bench.txt"
fi

# ---- report --------------------------------------------------------------
report="$out/report.md"
{
  echo "## Governance overhead — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1);" \
       "load average at start $load_start, at end $load_end."
  echo "Command: \`$cmdline\` ($secs s per run, $rounds rounds per side, brigade $threads loop threads," \
       "wrk 1 thread at c=1, $wrk_threads above)."
  if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
    echo "Source: commit $(git -C "$root" rev-parse --short HEAD)," \
         "$(git -C "$root" status --porcelain 2>/dev/null | wc -l) uncommitted path(s) in the work tree."
  fi
  echo
  echo "Medians over the rounds (every run is in results.tsv)."
  echo
  echo "| conc | side | req/s | p50 µs | p99 µs | errors | brigade CPU µs/req |"
  echo "|---:|---|---:|---:|---:|---:|---:|"
  awk -F'\t' -v concs="$concs" '
    function med(k, col,    n, i, j, x, a) {
      n = cnt[k]
      for (i = 1; i <= n; i++) {
        x = val[k, i, col] + 0
        for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]
        a[j + 1] = x
      }
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    NR > 1 { k = $3 "-" $2; n = ++cnt[k]; for (c = 4; c <= NF; c++) val[k, n, c] = $c; errs[k] += $8 }
    END {
      nc = split(concs, cs, " ")
      for (i = 1; i <= nc; i++) for (j = 1; j <= 2; j++) {
        s = (j == 1) ? "on" : "off"; k = cs[i] "-" s
        rps[k] = med(k, 5); p50[k] = med(k, 6); p99[k] = med(k, 7); cpu[k] = med(k, 9)
        printf "| %s | %s | %.0f | %.0f | %.0f | %d | %.1f |\n", cs[i], s, rps[k], p50[k], p99[k], errs[k], cpu[k]
      }
      print ""
      print "On against off, from the medians above, and (paired) the median over rounds of each"
      print "round on/off ratio or on − off difference (the two runs of a round are adjacent in time):"
      print ""
      print "| conc | req/s on/off | paired | p50 on/off | added p50 µs | paired | added p99 µs | added CPU µs/req | paired |"
      print "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
      for (i = 1; i <= nc; i++) {
        on = cs[i] "-on"; off = cs[i] "-off"
        for (r = 1; r <= cnt[on] && r <= cnt[off]; r++) {
          d = cs[i] "-d"; cnt[d] = r
          val[d, r, 1] = val[on, r, 5] / val[off, r, 5]
          val[d, r, 2] = val[on, r, 6] - val[off, r, 6]
          val[d, r, 3] = val[on, r, 9] - val[off, r, 9]
        }
        printf "| %s | %.3f | %.3f | %.3f | %+d | %+d | %+d | %+.1f | %+.1f |\n", cs[i],
          rps[on] / rps[off], med(d, 1), p50[on] / p50[off], p50[on] - p50[off], med(d, 2),
          p99[on] - p99[off], cpu[on] - cpu[off], med(d, 3)
      }
    }' "$tsv"
  echo
  echo "Governance was counting on the \"on\" side: its user's spend today is ${spent_on:-?} USD (GET /v1/me)."
  if [[ -n "$micro" ]]; then
    echo
    echo "Microbenchmark (\`$GOVERN_BENCH\`, one thread, uncontended):"
    echo
    echo '```'
    echo "$micro"
    echo '```'
  fi
} >"$report"

echo
cat "$report"
echo
echo "raw results: ${out#"$root"/}/"
