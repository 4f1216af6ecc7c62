#!/usr/bin/env bash
# build.sh — configure (once) and build brigade into build/ (release-ish:
# -O2 with debug info). Pass extra meson options to the first setup.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -f build/build.ninja ]]; then
  meson setup build --buildtype=debugoptimized "$@"
fi
ninja -C build
