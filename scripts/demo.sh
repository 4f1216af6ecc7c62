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

# One run of the "assistant" agent, streamed; prints each event as a line.
run() {  # run KEY SESSION WHO CONTENT
  local body
  body="$(node -e 'console.log(JSON.stringify({content: process.argv[1], stream: true}))' "$4")"
  curl -sN "$url/v1/sessions/$2/messages" -H "authorization: Bearer $1" \
       -H 'content-type: application/json' -d "$body" |
    node -e '
      const who = process.argv[1]; let buf = "", ev = "";
      process.stdin.on("data", d => {
        buf += d; let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i); buf = buf.slice(i + 1);
          if (line.startsWith("event: ")) ev = line.slice(7);
          else if (line.startsWith("data: ")) {
            const o = JSON.parse(line.slice(6));
            if (ev === "tool.call") console.log(`  ${who}: tool call  ${o.name} ${o.arguments}`);
            else if (ev === "tool.result") console.log(`  ${who}: tool result ${o.preview}`);
            else if (ev === "run.completed") console.log(`  ${who}: answer     ${o.message.content}`);
            else if (ev === "run.failed") console.log(`  ${who}: FAILED ${o.error.code}: ${o.error.message}`);
          }
        }
      });' "$3"
}
session() { api POST /v1/sessions "$1" '{"agent":"assistant"}' | json .id; }

echo
echo "brigade is serving at $url (logs: $log)"
echo
sa="$(session "$ALICE_KEY")"; sb="$(session "$BOB_KEY")"
echo "Alice and Bob talk to the same agent at the same time; each asks it to remember a secret:"
run "$ALICE_KEY" "$sa" alice 'Remember my locker code. [[tool:memory {"action":"save","key":"locker","value":"alice-4711"}]]' & p1=$!
run "$BOB_KEY" "$sb" bob 'Remember my locker code. [[tool:memory {"action":"save","key":"locker","value":"bob-0815"}]]' & p2=$!
wait $p1 $p2 || true
echo
echo "Then each asks it to look the code up — the memory tool sees only its own user's memory:"
run "$ALICE_KEY" "$sa" alice 'What is my locker code? [[tool:memory {"action":"search","query":"locker"}]]' & p1=$!
run "$BOB_KEY" "$sb" bob 'What is my locker code? [[tool:memory {"action":"search","query":"locker"}]]' & p2=$!
wait $p1 $p2 || true
echo
echo "Each user's memory through the API, and what each has spent (mock prices):"
for who in ALICE BOB; do
  key_var="${who}_KEY"
  printf '  %-5s memory: %s   spent today: %s USD\n' "${who,,}" \
    "$(api GET '/v1/memory?q=locker' "${!key_var}" | json '.data.map(m => m.key + "=" + m.value).join(", ")')" \
    "$(api GET /v1/me "${!key_var}" | json '.usage.day.spent_usd')"
done
cat <<MSG

Talk to the agent yourself (a session, then messages; stream:true gives events):

  curl $url/v1/sessions -H "authorization: Bearer $ALICE_KEY" -d '{"agent":"assistant"}'
  curl -N $url/v1/sessions/SESSION_ID/messages -H "authorization: Bearer $ALICE_KEY" \\
    -d '{"content":"hello","stream":true}'

Or use the OpenAI-compatible gateway with any OpenAI client — change only the base URL and the key:

  curl $url/v1/chat/completions \\
    -H "authorization: Bearer $ALICE_KEY" -H 'content-type: application/json' \\
    -d '{"model":"mock-small","messages":[{"role":"user","content":"hi"}],"stream":true}'

  OpenAI(base_url="$url/v1", api_key="$ALICE_KEY")   # Python / JS SDKs alike

Keys are in $creds; the server admin token is in $data/demo-admin-token.
Models: mock-small, mock-large (GET $url/v1/models). Ctrl-C stops the server.
MSG
wait $server
