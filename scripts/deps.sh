#!/usr/bin/env bash
# deps.sh — install what brigade needs to build, test and benchmark, when it
# is missing: Debian packages (apt), the web console's npm packages (the
# build bundles them) and the e2e suite's (chromium drives the console tests).
# Safe to run again: it only installs what is not there.
#   scripts/deps.sh            build + test dependencies
#   scripts/deps.sh --bench    also the benchmark tools (wrk, nginx) and the
#                              Portkey gateway bench/gateway.sh compares (npm)
#   scripts/deps.sh --cluster  also nginx, the load balancer of scripts/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential meson ninja-build pkg-config
  libuv1-dev node-llhttp libcurl4-openssl-dev libcjson-dev libsqlite3-dev
  libfyaml-dev libssl-dev libsodium-dev libpcre2-dev
  liblz4-dev                    # trace packs are LZ4-compressed (src/store/trace_pack.h)
  libpq-dev postgresql-15
  bubblewrap libseccomp-dev
  libhiredis-dev redis-server   # governance.backend: redis (tests start their own server)
  libcmocka-dev clang libclang-rt-14-dev
  nodejs npm curl jq
  valgrind
  chromium
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(wrk nginx-light)
elif [[ "${1:-}" == "--cluster" ]]; then
  packages+=(nginx-light)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node may come from elsewhere than Debian's package; a working node+npm is enough.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
# One line per step; a step's whole output only when it fails.
deps_log="$(mktemp /tmp/brigade-deps-XXXXXX.log)"
trap 'rm -f "$deps_log"' EXIT
step() {  # step "what" command…
  echo "deps: $1"
  if ! "${@:2}" > "$deps_log" 2>&1; then
    echo "deps: FAILED: $1 — its output:" >&2
    cat "$deps_log" >&2
    exit 1
  fi
}

if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO=sudo
  step "apt-get update" $SUDO apt-get update -qq
  step "installing ${missing[*]}" \
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The nginx package starts a server on port 80 on install; the benchmark runs
# its own nginx on loopback, so stop the system one if it came up.
if [[ "${1:-}" == "--bench" || "${1:-}" == "--cluster" ]] && command -v systemctl >/dev/null; then
  systemctl stop nginx 2>/dev/null || true
fi

# The web console is bundled by esbuild at build time (src/console/meson.build):
# without these the build stops with a clear message. npm writes
# node_modules/.package-lock.json last, so an emptied or half-installed
# node_modules (an interrupted `npm ci`) is installed again.
if [[ -f console/package.json ]]; then
  if [[ ! -f console/node_modules/.package-lock.json ]] || [[ console/package-lock.json -nt console/node_modules ]]; then
    step "npm packages for console" npm --prefix console ci --no-audit --no-fund --loglevel=error
  fi
fi

if [[ -f tests/e2e/package.json ]]; then
  if [[ ! -f tests/e2e/node_modules/.package-lock.json ]] || [[ tests/e2e/package-lock.json -nt tests/e2e/node_modules ]]; then
    step "npm packages for tests/e2e" npm --prefix tests/e2e ci --no-audit --no-fund --loglevel=error
  fi
fi

# The Portkey OSS gateway, a measured target of bench/gateway.sh; only for --bench.
if [[ "${1:-}" == "--bench" && -f bench/portkey/package.json ]]; then
  if [[ ! -f bench/portkey/node_modules/.package-lock.json ]] || [[ bench/portkey/package-lock.json -nt bench/portkey/node_modules ]]; then
    step "npm packages for bench/portkey" npm --prefix bench/portkey ci --no-audit --no-fund --loglevel=error
  fi
fi
