#!/usr/bin/env bash
# demo.sh — the README's first command: install what is missing, build, and
# serve brigade on its embedded defaults (SQLite in ./brigade-data, the
# built-in mock model; no API key needed). It creates a demo tenant with two
# users, shows each talking to the agent, then each connecting their own
# account at a demo identity provider (a real OAuth server, oidc-provider,
# on loopback) and the agent acting with that user's own token, with one
# risky call approved and one denied; and prints how to talk to it
# yourself. Ctrl-C stops the servers (gracefully).
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

# The demo identity provider: a real OAuth 2 / OpenID Connect server on a
# free loopback port, whose client "brigade" redirects back to brigade.
# Its client secret reaches brigade through the environment only.
export DEMO_OAUTH_CLIENT_SECRET="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
idp_log="$data/idp.log"
OAUTH_CLIENT_SECRET="$DEMO_OAUTH_CLIENT_SECRET" node tests/e2e/lib/oauth_server.mjs \
  --redirect-uri "http://$listen/oauth/callback" > "$idp_log" 2>&1 &
idp=$!
for _ in $(seq 1 100); do
  grep -q "^issuer " "$idp_log" 2>/dev/null && break
  if ! kill -0 $idp 2>/dev/null; then cat "$idp_log" >&2; echo "the identity provider did not start" >&2; exit 1; fi
  sleep 0.1
done
issuer="$(sed -n 's/^issuer //p' "$idp_log")"

# The embedded defaults, plus the provider, two tools that act with the
# caller's own token (its userinfo endpoint answers whose token it is) and
# an agent that uses them. `agents:` replaces the embedded list, so the
# default "assistant" is restated.
config="$data/demo.yaml"
cat > "$config" <<YAML
server:
  public_url: http://$listen
credential_providers:
  - name: demo-id
    kind: oauth2
    issuer: $issuer
    client_id: brigade
    client_secret_env: DEMO_OAUTH_CLIENT_SECRET
    scopes: [openid]
    allow_private_networks: true   # the demo's identity provider is on loopback (docs/egress.md)
tools:
  - name: whoami
    description: Which account the user connected at the demo identity provider, asked with the user's own token.
    url: $issuer/me
    allow_private_networks: true
    method: GET
    auth: {provider: demo-id, scopes: [openid]}
    effects: read
    parameters: {type: object, properties: {}, additionalProperties: false}
  - name: share_profile
    description: Share the user's profile at the demo identity provider; a person must approve each call.
    url: $issuer/me
    allow_private_networks: true
    method: GET
    auth: {provider: demo-id, scopes: [openid]}
    effects: external
    approval: always
    approval_timeout_s: 600
    parameters: {type: object, properties: {}, additionalProperties: false}
agents:
  - name: assistant
    description: A helpful assistant that remembers what you ask it to.
    model: mock-small
    system_prompt: You are a helpful assistant. Use the memory tool to remember what the user asks you to remember.
    tools: [memory, clock]
  - name: connected
    description: Acts with the caller's own account at the demo identity provider.
    model: mock-small
    tools: [whoami, share_profile]
    approval_by: tenant_admin
YAML

log="$data/serve.log"
# one log: the listening line (stdout) and the JSON log lines (stderr)
build/brigade serve --config "$config" --listen "$listen" --data-dir "$data" > "$log" 2>&1 &
server=$!
trap 'kill -INT $server 2>/dev/null; kill $idp 2>/dev/null; wait $server 2>/dev/null; exit 0' INT TERM
for _ in $(seq 1 100); do
  grep -q "listening on" "$log" 2>/dev/null && break
  if ! kill -0 $server 2>/dev/null; then cat "$log" >&2; kill $idp; echo "brigade did not start" >&2; exit 1; fi
  sleep 0.1
done
url="$(grep -o 'listening on http://[^ ]*' "$log" | head -1 | cut -d' ' -f3)"

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
# A demo run before this one left connections to its (now gone) identity
# provider: start from none.
for key in "$ALICE_KEY" "$BOB_KEY"; do
  for id in $(api GET /v1/connections "$key" | json '.data.map(c => c.id).join(" ")'); do
    api DELETE "/v1/connections/$id" "$key" >/dev/null
  done
done
echo
echo "Alice and Bob each ask the \"connected\" agent who they are at the identity provider."
echo "Neither has connected an account yet, so each run waits in waiting_auth with a link:"
ca="$(api POST /v1/sessions "$ALICE_KEY" '{"agent":"connected"}' | json .id)"
cb="$(api POST /v1/sessions "$BOB_KEY" '{"agent":"connected"}' | json .id)"
ask='{"content":"Who am I there? [[tool:whoami {}]]"}'
ra="$(api POST "/v1/sessions/$ca/messages" "$ALICE_KEY" "$ask")"
rb="$(api POST "/v1/sessions/$cb/messages" "$BOB_KEY" "$ask")"
printf '  alice: run %s  status %s\n' "$(echo "$ra" | json .run.id)" "$(echo "$ra" | json .run.status)"
printf '  bob:   run %s  status %s\n' "$(echo "$rb" | json .run.id)" "$(echo "$rb" | json .run.status)"
echo
echo "Each connects their own account (a browser would open connect_url; here a script signs in):"
for who in alice bob; do
  key_var="${who^^}_KEY"
  link="$(api POST /v1/connections "${!key_var}" '{"provider":"demo-id"}' | json .connect_url)"
  printf '  %-5s %s\n        -> %s\n' "$who" "$link" "$(node scripts/demo_connect.mjs "$link" "$who" 2>>"$idp_log")"
done
# wait_run KEY RUN_ID: poll until the run has ended; print its final message
wait_run() {
  local st
  for _ in $(seq 1 100); do
    st="$(api GET "/v1/runs/$2" "$1" | json .status)"
    [[ "$st" == completed || "$st" == failed || "$st" == cancelled ]] && break
    sleep 0.1
  done
  api GET "/v1/sessions/$(api GET "/v1/runs/$2" "$1" | json .session_id)/messages" "$1" |
    json '.data.filter(m => m.run_id === "'"$2"'" && m.role === "assistant").map(m => m.content).pop() + "  ['"$st"']"'
}
echo
echo "Both runs went on by themselves, each with its own user's token:"
printf '  alice: %s\n' "$(wait_run "$ALICE_KEY" "$(echo "$ra" | json .run.id)")"
printf '  bob:   %s\n' "$(wait_run "$BOB_KEY" "$(echo "$rb" | json .run.id)")"
echo
echo "share_profile needs a person's approval (approval: always; approval_by: tenant_admin):"
share='{"content":"Share my profile. [[tool:share_profile {}]]"}'
ra="$(api POST "/v1/sessions/$ca/messages" "$ALICE_KEY" "$share" | json .run.id)"
rb="$(api POST "/v1/sessions/$cb/messages" "$BOB_KEY" "$share" | json .run.id)"
api GET /v1/approvals "$TENANT_ADMIN_KEY" |
  json '.data.map(a => `  pending: ${a.tool} in run ${a.run_id} (call ${a.id}): ${a.reason}`).join("\n")'
call_of() { api GET "/v1/runs/$2" "$1" | json '.approvals.filter(a => a.status === "pending")[0].id'; }
echo "The tenant admin approves Alice's call and denies Bob's:"
api POST "/v1/runs/$ra/approvals/$(call_of "$ALICE_KEY" "$ra")" "$TENANT_ADMIN_KEY" '{"decision":"approve"}' >/dev/null
api POST "/v1/runs/$rb/approvals/$(call_of "$BOB_KEY" "$rb")" "$TENANT_ADMIN_KEY" '{"decision":"deny","note":"not today"}' >/dev/null
printf '  alice: %s\n' "$(wait_run "$ALICE_KEY" "$ra")"
printf '  bob:   %s\n' "$(wait_run "$BOB_KEY" "$rb")"

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

Connect an account in your browser (the demo identity provider signs in any account name):

  curl $url/v1/connections -H "authorization: Bearer $ALICE_KEY" -d '{"provider":"demo-id"}'

then open its connect_url. Pending approvals: curl $url/v1/approvals -H "authorization: Bearer \$TENANT_ADMIN_KEY".

Keys are in $creds; the server admin token is in $data/demo-admin-token.
The configuration is $config; the identity provider is $issuer.
Models: mock-small, mock-large (GET $url/v1/models). Ctrl-C stops the servers.
MSG
wait $server
