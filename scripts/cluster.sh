#!/usr/bin/env bash
# cluster.sh — a several-instance brigade deployment on this machine, for
# trying scale-out (docs/scale-out.md): PostgreSQL 15 and Redis from the
# Debian packages, each in a temporary directory and on loopback only, N
# `brigade serve` instances sharing them, and nginx in front as the load
# balancer. It prints how to talk to it; Ctrl-C stops everything and
# removes the directory (unless --keep).
#
#   scripts/cluster.sh                    2 instances, load balancer on 127.0.0.1:8090
#   scripts/cluster.sh --instances 3 --port 9000
#   scripts/cluster.sh --dir /tmp/c --keep
#   scripts/cluster.sh --check            start, make a few calls through the
#                                         balancer (both instances must answer),
#                                         print the result, stop (for CI)
#
# What every instance must share, and what each keeps for itself: the
# store (PostgreSQL) and the governance counters (Redis) are shared; the
# key files of the data directory (secret, vault.key, audit_ed25519.key) are
# made by the first instance and copied to the others, which must have the
# same ones; each instance has its own data directory for its reservation
# journal and its lock.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

instances=2; port=8090; dir=""; keep=0; check=0
while (($#)); do
  case "$1" in
    --instances) instances="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --check) check=1; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "cluster.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "cluster.sh: $*" >&2; exit 1; }
[[ "$instances" =~ ^[0-9]+$ ]] && ((instances >= 1 && instances <= 16)) || die "--instances must be 1 to 16"
[[ "$port" =~ ^[0-9]+$ ]] && ((port >= 1024 && port <= 65535)) || die "--port must be 1024 to 65535"

scripts/deps.sh --cluster
scripts/build.sh >/dev/null
bin="$root/build/brigade"

[[ -n "$dir" ]] || dir="$(mktemp -d /tmp/brigade-cluster.XXXXXX)"
mkdir -p "$dir"; dir="$(realpath "$dir")"
# PostgreSQL runs as its own account when we are root (scripts/pg-test.sh):
# it must reach $dir/pg. The instances' directories stay 0700.
chmod 0755 "$dir"
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ -f "$dir/nginx.pid" ]] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
  scripts/pg-test.sh stop "$dir/pg" 2>/dev/null || true
  if ((keep)); then echo "kept $dir"; else rm -rf "$dir"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
wait_line() {   # wait_line FILE REGEX PID WHAT
  for _ in $(seq 300); do
    grep -Eq "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { cat "$1" >&2; die "$4 exited"; }
    sleep 0.1
  done
  cat "$1" >&2; die "$4 did not start within 30 s"
}

# ---- PostgreSQL (a unix socket in $dir/pg/sock, no TCP) and Redis ---------
db_url="$(scripts/pg-test.sh start "$dir/pg")"
redis_port="$(free_port)"
mkdir -p "$dir/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir/redis" --save '' --appendonly no \
  --protected-mode yes >"$dir/redis.log" 2>&1 &
pids+=($!)
wait_line "$dir/redis.log" "Ready to accept connections" "${pids[-1]}" redis-server
redis_url="redis://127.0.0.1:$redis_port/0"

# ---- the instances ---------------------------------------------------------
admin_token="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
ports=()
for i in $(seq 1 "$instances"); do ports+=("$(free_port)"); done
config() {   # config I
  cat <<YAML
server:
  listen: "127.0.0.1:${ports[$1-1]}"
  data_dir: "$dir/i$1"
  public_url: "http://127.0.0.1:$port"
store:
  kind: postgres
  url: "$db_url"
  pool_size: 8
governance:
  backend: redis
  redis:
    url: "$redis_url"
    instances: $instances
YAML
}
start_instance() {   # start_instance I
  mkdir -p -m 700 "$dir/i$1"
  config "$1" >"$dir/i$1.yaml"
  BRIGADE_ADMIN_TOKEN="$admin_token" "$bin" serve --config "$dir/i$1.yaml" >"$dir/i$1.log" 2>&1 &
  pids+=($!)
  wait_line "$dir/i$1.log" "listening on" "${pids[-1]}" "brigade instance $1"
}
start_instance 1
# the key files the first instance made: every instance needs the same ones
for i in $(seq 2 "$instances"); do
  mkdir -p -m 700 "$dir/i$i"
  for f in secret vault.key audit_ed25519.key; do
    [[ -f "$dir/i1/$f" ]] && install -m 600 "$dir/i1/$f" "$dir/i$i/$f"
  done
  start_instance "$i"
done

# ---- nginx in front --------------------------------------------------------
{
  echo "worker_processes 1; pid $dir/nginx.pid; error_log $dir/nginx-error.log warn; daemon on;"
  echo "events { worker_connections 4096; }"
  echo "http {"
  echo "  access_log off; client_body_temp_path $dir/nginx-tmp; proxy_temp_path $dir/nginx-tmp;"
  echo "  upstream brigade { least_conn;"
  for p in "${ports[@]}"; do echo "    server 127.0.0.1:$p max_fails=1 fail_timeout=5s;"; done
  echo "    keepalive 64; }"
  echo "  server { listen 127.0.0.1:$port;"
  echo "    client_max_body_size 16m;"
  echo "    location / { proxy_pass http://brigade; proxy_http_version 1.1; proxy_set_header Connection \"\";"
  echo "      proxy_buffering off; proxy_read_timeout 3600s; proxy_next_upstream error timeout; } }"
  echo "}"
} >"$dir/nginx.conf"
mkdir -p "$dir/nginx-tmp"
nginx -c "$dir/nginx.conf" -p "$dir" 2>"$dir/nginx-start.log" || { cat "$dir/nginx-start.log" >&2; die "nginx did not start"; }
url="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

if ((check)); then
  # A tenant, a user and a key made through the balancer; calls through it
  # until each instance has served some (its own /metrics says), every
  # answer checked, and the user's spend as governance counts it.
  api() { curl -sS -X "$1" "$2" -H "authorization: Bearer $3" -H 'content-type: application/json' ${4:+-d "$4"}; }
  jget() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{console.log(eval("JSON.parse(s)"+process.argv[1]))})' "$1"; }
  adm="$(api POST "$url/v1/tenants" "$admin_token" '{"name":"cluster-check"}' | jget .admin_key)"
  uid="$(api POST "$url/v1/users" "$adm" '{"external_id":"check"}' | jget .id)"
  key="$(api POST "$url/v1/users/$uid/keys" "$adm" '{}' | jget .key)"
  [[ -n "$key" && "$key" != undefined ]] || die "no user key made through the balancer (tenant admin key: ${adm:0:6}…, user: $uid)"
  calls=$((instances * 4)); ok=0
  for _ in $(seq 1 "$calls"); do
    out="$(api POST "$url/v1/chat/completions" "$key" '{"model":"mock-small","messages":[{"role":"user","content":"hi"}]}')"
    [[ "$(echo "$out" | jget .object)" == chat.completion ]] && ok=$((ok + 1))
  done
  served=0
  for p in "${ports[@]}"; do
    n="$(curl -sS "http://127.0.0.1:$p/metrics" -H "authorization: Bearer $admin_token" |
         awk '/^brigade_http_server_requests_total/ && /chat\/completions/ && / 200|"200"/ {s += $NF} END {print s + 0}')"
    ((n > 0)) && served=$((served + 1))
  done
  spent="$(api GET "$url/v1/me" "$key" | jget '.usage.day.spent_usd')"
  echo "cluster check: $instances instances ($served served calls), $ok/$calls calls answered through the balancer, the user's spend as governed: \$$spent"
  ((ok == calls)) || die "some calls failed"
  ((served == instances)) || die "not every instance served a call"
  exit 0
fi

cat <<EOF

brigade cluster: $instances instances behind nginx at $url
  PostgreSQL   $db_url
  Redis        $redis_url
  instances    $(for i in $(seq 1 "$instances"); do printf '127.0.0.1:%s ' "${ports[$i-1]}"; done)
  logs         $dir/i*.log, $dir/redis.log, $dir/pg/server.log
  admin token  $admin_token

Try it:
  export U=$url T=$admin_token
  curl -s -X POST \$U/v1/tenants -H "authorization: Bearer \$T" -d '{"name":"acme"}'
  (then POST /v1/users and /v1/users/{id}/keys with the tenant's admin_key;
   every call may land on any instance: budgets, limits and the audit chain are shared)

Ctrl-C stops everything$( ((keep)) && echo " (the directory is kept)" || echo " and removes $dir").
EOF
while :; do
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || die "a process of the cluster exited (see $dir)"; done
  sleep 2
done
