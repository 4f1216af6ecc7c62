#!/usr/bin/env bash
# demo.sh — the README's first command: install what is missing, build, and
# serve brigade on its embedded defaults (SQLite in ./brigade-data, the
# built-in mock model; no API key needed). It creates a demo tenant with two
# users, shows each talking to the gateway, and prints how to talk to it
# yourself. Ctrl-C stops the server (gracefully).
#   BRIGADE_LISTEN=127.0.0.1:8080  where to listen
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
scripts/build.sh >/dev/null
echo "built $(build/brigade --version)"

listen="${BRIGADE_LISTEN:-127.0.0.1:8080}"
data=./brigade-data
mkdir -p "$data" && chmod 700 "$data"
# A server admin token for this demo, kept in the data dir (mode 600).
if [[ -z "${BRIGADE_ADMIN_TOKEN:-}" ]]; then
  if [[ ! -s "$data/demo-admin-token" ]]; then
    (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$data/demo-admin-token")
  fi
  BRIGADE_ADMIN_TOKEN="$(cat "$data/demo-admin-token")"
fi
export BRIGADE_ADMIN_TOKEN

log="$data/serve.log"
build/brigade serve --listen "$listen" --data-dir "$data" > "$log.out" 2> "$log" &
server=$!
trap 'kill -INT $server 2>/dev/null; wait $server 2>/dev/null; exit 0' INT TERM
for _ in $(seq 1 100); do
  grep -q "listening on" "$log.out" 2>/dev/null && break
  if ! kill -0 $server 2>/dev/null; then cat "$log" >&2; echo "brigade did not start" >&2; exit 1; fi
  sleep 0.1
done
url="$(grep -o 'http://[^ ]*' "$log.out" | head -1)"

api() {  # api METHOD PATH TOKEN [BODY]
  curl -sS -X "$1" "$url$2" -H "authorization: Bearer $3" -H 'content-type: application/json' ${4:+-d "$4"}
}
json() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const o=JSON.parse(s);console.log(eval("o"+process.argv[1]))})' "$1"; }

creds="$data/demo-credentials"
if [[ ! -s "$creds" ]]; then
  tenant="$(api POST /v1/tenants "$BRIGADE_ADMIN_TOKEN" '{"name":"demo"}')"
  adm="$(echo "$tenant" | json .admin_key)"
  : > "$creds"; chmod 600 "$creds"
  echo "TENANT_ADMIN_KEY=$adm" >> "$creds"
  for who in alice bob; do
    uid="$(api POST /v1/users "$adm" "{\"external_id\":\"$who\"}" | json .id)"
    key="$(api POST "/v1/users/$uid/keys" "$adm" '{}' | json .key)"
    echo "${who^^}_KEY=$key" >> "$creds"
  done
fi
# shellcheck disable=SC1090
source "$creds"

ask() {  # ask KEY WHO
  api POST /v1/chat/completions "$1" \
    "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello from $2 [[tokens:12]]\"}]}" |
    json '.choices[0].message.content'
}
echo
echo "brigade is serving at $url (logs: $log)"
echo
echo "Two users of tenant \"demo\" ask the mock model at the same time:"
ask "$ALICE_KEY" alice | sed 's/^/  alice <- /' & p1=$!
ask "$BOB_KEY" bob | sed 's/^/  bob   <- /' & p2=$!
wait $p1 $p2 || true
echo
echo "Each sees only their own usage:"
sleep 0.3
echo "  alice: $(api GET /v1/me "$ALICE_KEY" | json '.usage.day.spent_usd') USD today"
echo "  bob:   $(api GET /v1/me "$BOB_KEY" | json '.usage.day.spent_usd') USD today"
cat <<MSG

Talk to it with any OpenAI client — change only the base URL and the key:

  curl $url/v1/chat/completions \\
    -H "authorization: Bearer $ALICE_KEY" -H 'content-type: application/json' \\
    -d '{"model":"mock-small","messages":[{"role":"user","content":"hi"}],"stream":true}'

  OpenAI(base_url="$url/v1", api_key="$ALICE_KEY")   # Python / JS SDKs alike

Keys are in $creds; the server admin token is in $data/demo-admin-token.
Models: mock-small, mock-large (GET $url/v1/models). Ctrl-C stops the server.
MSG
wait $server
