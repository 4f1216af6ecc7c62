#!/usr/bin/env bash
# test.sh — the README's second command, and what CI runs (.ci/run): every
# test suite, then one summary line "N passed, N failed".
#
#   1. unit tests (cmocka, meson test) on the normal build
#   2. the same unit tests on an AddressSanitizer + UndefinedBehaviorSanitizer build
#   3. end-to-end tests (node --test, the official openai package) against
#      the sanitizer build of the real server and mock-llm on loopback; then
#      the e2e files known to pass on PostgreSQL once more with the
#      PostgreSQL store (a throwaway server, scripts/pg-test.sh)
#   4. the chaos run (bench/chaos.sh at 20% provider faults with a fallback:
#      ≥ 99.9% served, nothing wrongly charged), CHAOS_SECONDS (default 20)
#   5. the MCP conformance suite, client mode (scripts/mcp-conformance.sh)
#   6. libFuzzer targets (clang), FUZZ_SECONDS each (default 20)
#   7. the style checks (scripts/check-style.sh)
#   8. the instruction gate: instructions per gateway request (callgrind,
#      release build) within 10% of bench/instructions.baseline
#
# Exits non-zero if anything failed. Logs of each suite are in build-test-logs/.
set -uo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
logs="$root/build-test-logs"
mkdir -p "$logs"

scripts/deps.sh || { echo "deps: installing dependencies failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
skipped=0
declare -a report=()

# A skipped test is neither passed nor failed: it is counted apart, so a
# suite that skips everything cannot look green.
count() {  # count SUITE PASSED FAILED [SKIPPED]
  local skip=${4:-0}
  passed=$((passed + $2)); failed=$((failed + $3)); skipped=$((skipped + skip))
  if ((skip)); then
    report+=("$(printf '%-12s %4d passed, %d failed, %d skipped' "$1" "$2" "$3" "$skip")")
  else
    report+=("$(printf '%-12s %4d passed, %d failed' "$1" "$2" "$3")")
  fi
}

# meson's testlog.json has one JSON object per test.
meson_counts() {
  python3 - "$1" <<'PY'
import json, sys
ok = bad = skip = 0
try:
    for line in open(sys.argv[1]):
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"): ok += 1
        elif r == "SKIP": skip += 1
        else: bad += 1
except FileNotFoundError:
    pass
print(ok, bad, skip)
PY
}

run_unit() {  # run_unit SUITE BUILDDIR [meson options…]
  local name=$1 dir=$2; shift 2
  if [[ ! -f "$dir/build.ninja" ]]; then
    meson setup "$dir" "$@" > "$logs/$name-setup.log" 2>&1 || { cat "$logs/$name-setup.log"; count "$name" 0 1; return 1; }
  fi
  if ! ninja -C "$dir" > "$logs/$name-build.log" 2>&1; then
    tail -40 "$logs/$name-build.log"; count "$name" 0 1; return 1
  fi
  rm -f "$dir/meson-logs/testlog.json"
  meson test -C "$dir" --suite unit --print-errorlogs --num-processes 2 > "$logs/$name.log" 2>&1
  local rc=$?
  read -r ok bad skip < <(meson_counts "$dir/meson-logs/testlog.json")
  if ((rc != 0 && bad == 0)); then bad=1; fi
  ((bad)) && grep -E "FAIL|ERROR|TIMEOUT" "$logs/$name.log" | head -40
  count "$name" "$ok" "$bad" "$skip"
}

echo "== unit tests"
run_unit unit build --buildtype=debugoptimized
echo "== unit tests under ASan+UBSan"
# UBSan only prints by default: a finding must fail the test, as in the e2e run
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  run_unit unit-asan build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

# e2e_counts LOG RC: "passed failed skipped" of a node --test TAP log
e2e_counts() {
  local log=$1 rc=$2 ok bad skip cancelled
  ok=$(grep -E '^# pass ' "$log" | tail -1 | awk '{print $3}')
  bad=$(grep -E '^# fail ' "$log" | tail -1 | awk '{print $3}')
  # node counts skipped and todo tests apart from "pass"; a cancelled test
  # (a timeout, a file that died) is a failure
  skip=$(grep -E '^# (skipped|todo) ' "$log" | awk '{s += $3} END {print s + 0}')
  cancelled=$(grep -E '^# cancelled ' "$log" | tail -1 | awk '{print $3}')
  ok=${ok:-0}; bad=$(( ${bad:-0} + ${cancelled:-0} ))
  if ((rc != 0 && bad == 0)); then bad=1; fi
  echo "$ok $bad $skip"
}

# Some e2e files run again on the PostgreSQL store (every file passes there,
# docs/scale-out.md; these cover the store's own paths: isolation, budgets,
# memory search, approvals, stored Responses, the audit chain and its
# tampering, the vault, the CLIs through --config, and redis_governance's
# two instances sharing one database and one Redis, and cluster_runs' runs
# read and cancelled across them). About 2 min under ASan
# on a busy 2-core machine.
pg_e2e_files=(isolation gateway governance memory approvals responses redis_governance
              cluster_runs audit security_audit vault usage)

echo "== end-to-end tests"
if [[ -x build-asan/brigade ]]; then
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  # every credential the tests use, and every child's stderr, for the
  # whole-suite check that no log holds a credential
  export BRIGADE_E2E_SECRETS_DIR="$logs/e2e-secrets"
  rm -rf "$BRIGADE_E2E_SECRETS_DIR"; mkdir -p "$BRIGADE_E2E_SECRETS_DIR"
  # The whole suite takes 15-25 minutes under ASan on two busy cores; the
  # bound only stops a hung run (CI allows 90 minutes for everything).
  (cd tests/e2e && BRIGADE_BIN="$root/build-asan/brigade" timeout 2700 node --test --test-reporter=tap \
      --test-concurrency=1 ./*.test.mjs) > "$logs/e2e.log" 2>&1
  rc=$?
  read -r ok bad skip < <(e2e_counts "$logs/e2e.log" "$rc")
  ((bad)) && grep -E -B2 -A20 '^not ok' "$logs/e2e.log" | head -80
  count e2e "$ok" "$bad" "$skip"

  echo "== end-to-end tests on PostgreSQL (${pg_e2e_files[*]})"
  pg_dir="$(mktemp -d /tmp/brigade-e2e-pg-XXXXXX)"
  if pg_url="$(scripts/pg-test.sh start "$pg_dir" 2> "$logs/e2e-pg-server.log")"; then
    (cd tests/e2e && BRIGADE_E2E_STORE=postgres BRIGADE_E2E_PG_URL="$pg_url" BRIGADE_BIN="$root/build-asan/brigade" \
        timeout 900 node --test --test-reporter=tap --test-concurrency=1 "${pg_e2e_files[@]/%/.test.mjs}") \
        > "$logs/e2e-pg.log" 2>&1
    rc=$?
    read -r ok bad skip < <(e2e_counts "$logs/e2e-pg.log" "$rc")
    ((bad)) && grep -E -B2 -A20 '^not ok' "$logs/e2e-pg.log" | head -80
    count e2e-pg "$ok" "$bad" "$skip"
  else
    # no PostgreSQL server (postgresql-15 missing): a failure, never a skip
    cat "$logs/e2e-pg-server.log"; count e2e-pg 0 1
  fi
  scripts/pg-test.sh stop "$pg_dir" > /dev/null 2>&1
  rm -rf "$pg_dir"

  if node tests/e2e/check_secrets.mjs; then count secrets 1 0; else count secrets 0 1; fi
else
  echo "no sanitizer build of brigade; end-to-end tests not run"
  count e2e 0 1
fi

# Several instances as deployed: scripts/cluster.sh starts PostgreSQL,
# Redis, two instances (the README's build) and nginx in front, makes a
# tenant, a user and a key through the balancer and calls until both
# instances served, every answer checked (docs/scale-out.md).
cluster_port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
if timeout 900 scripts/cluster.sh --check --instances 2 --port "$cluster_port" > "$logs/cluster.log" 2>&1; then
  tail -1 "$logs/cluster.log"; count cluster 1 0
else
  tail -30 "$logs/cluster.log"; count cluster 0 1
fi

# Chaos: 20% random provider faults on both deployments of a model with a
# healthy fallback, hedging and stream resume (docs/benchmarks.md): every
# answer charged right (chaos.sh fails otherwise) and at least 99.9% of
# requests served.
echo "== chaos (bench/chaos.sh, 20% faults, with a fallback)"
if [[ -x build/brigade ]] && BRIGADE="$root/build/brigade" BENCH_SECONDS=${CHAOS_SECONDS:-20} BENCH_FAULT_RATE=0.2 \
    BENCH_FALLBACK=1 BENCH_HEDGE_MS=500 BENCH_RESUME=1 BENCH_MIN_SUCCESS=99.9 bench/chaos.sh > "$logs/chaos.log" 2>&1; then
  count chaos 1 0
else
  tail -30 "$logs/chaos.log"; count chaos 0 1
fi

# The MCP conformance suite, client mode (scripts/mcp-conformance.sh):
# brigade's MCP client against every client scenario of the released
# protocol versions, with tests/mcp-conformance/expected-failures.yaml as the
# baseline; one count per scenario (a match with the baseline passes).
echo "== MCP conformance (client scenarios, sanitizer build)"
mcp_bin="$root/build-asan/brigade"; [[ -x "$mcp_bin" ]] || mcp_bin="$root/build/brigade"
scripts/mcp-conformance.sh "$mcp_bin" > "$logs/mcp-conformance.log" 2>&1
read -r ok bad < <(sed -n 's/^mcp-conformance: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$logs/mcp-conformance.log")
if [[ -z "${ok:-}" ]]; then tail -30 "$logs/mcp-conformance.log"; ok=0; bad=1;
elif ((bad)); then grep -A25 '  FAIL ' "$logs/mcp-conformance.log" | head -60; fi
count mcp-conformance "$ok" "$bad"

echo "== fuzz targets (${FUZZ_SECONDS:-20} s each)"
if scripts/fuzz.sh "${FUZZ_SECONDS:-20}" > "$logs/fuzz.log" 2>&1; then :; fi
ok=$(grep -c '^fuzz: ok ' "$logs/fuzz.log"); bad=$(grep -c '^fuzz: FAIL ' "$logs/fuzz.log")
((bad)) && grep -E '^fuzz: FAIL|ERROR|SUMMARY' "$logs/fuzz.log" | head -20
((ok + bad == 0)) && { tail -20 "$logs/fuzz.log"; bad=1; }
count fuzz "$ok" "$bad"

echo "== instruction gate (callgrind)"
if bench/instructions_gate.sh > "$logs/gate.log" 2>&1; then count gate 1 0; else tail -20 "$logs/gate.log"; count gate 0 1; fi
grep '^gate (' "$logs/gate.log" || true   # the figures against the committed ones

echo "== style checks"
if scripts/check-style.sh > "$logs/style.log" 2>&1; then count style 1 0; else cat "$logs/style.log"; count style 0 1; fi

echo
printf '%s\n' "${report[@]}"
((skipped)) && echo "($skipped skipped: not counted as passed)"
echo "$passed passed, $failed failed"
((failed == 0))
