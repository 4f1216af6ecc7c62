#!/usr/bin/env bash
# pg-test.sh — a throwaway PostgreSQL 15 server for tests, from the Debian
# package (postgresql-15), in a temporary directory, listening only on a
# unix socket inside that directory (no TCP port, so parallel runs never
# collide and nothing is reachable from the network).
#
#   scripts/pg-test.sh start DIR    initdb + start; prints the connection URL
#   scripts/pg-test.sh stop DIR     stop the server (DIR is left for the caller)
#   scripts/pg-test.sh url DIR      print the URL of a started server
#
# PostgreSQL refuses to run as root. As root the server runs as the
# unprivileged `postgres` account the package creates (runuser), and DIR is
# handed to it; as anyone else it runs as the current user.
# Unit tests and e2e use it: BRIGADE_TEST_PG_URL=$(scripts/pg-test.sh start DIR).
set -euo pipefail

cmd="${1:-}"; dir="${2:-}"
if [[ -z "$cmd" || -z "$dir" ]]; then
  echo "usage: $0 start|stop|url DIR" >&2; exit 2
fi
bin="${PG_BIN:-/usr/lib/postgresql/15/bin}"
if [[ ! -x "$bin/initdb" ]]; then
  echo "pg-test: $bin/initdb not found: install postgresql-15 (scripts/deps.sh)" >&2; exit 1
fi

as_pg() {   # run a command as the server's account
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

dir="$(realpath -m "$dir")"
data="$dir/data"
sock="$dir/sock"
url() { echo "postgresql:///brigade?host=$sock&user=brigade"; }

case "$cmd" in
  start)
    mkdir -p "$dir"
    if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; chmod 0755 "$dir"; fi
    as_pg mkdir -p "$sock"
    if [[ ! -f "$data/PG_VERSION" ]]; then
      # trust on the socket only: the socket lives in DIR (mode 0755 dir,
      # the socket itself is what tests connect to); no TCP listener at all
      as_pg "$bin/initdb" -D "$data" -U brigade --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    as_pg "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 30 \
      -o "-c listen_addresses='' -c unix_socket_directories='$sock' -c max_connections=200 -c fsync=off -c synchronous_commit=on" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    if ! as_pg /usr/lib/postgresql/15/bin/psql -h "$sock" -U brigade -d postgres -Atqc \
         "SELECT 1 FROM pg_database WHERE datname = 'brigade'" | grep -q 1; then
      as_pg "$bin/createdb" -h "$sock" -U brigade brigade
    fi
    chmod 0777 "$sock" 2>/dev/null || as_pg chmod 0777 "$sock"
    url
    ;;
  stop)
    [[ -f "$data/postmaster.pid" ]] || exit 0
    as_pg "$bin/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null
    ;;
  url) url ;;
  *) echo "usage: $0 start|stop|url DIR" >&2; exit 2 ;;
esac
