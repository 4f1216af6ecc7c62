#!/usr/bin/env bash
# fuzz.sh — build the libFuzzer targets with clang (ASan+UBSan) into
# build-fuzz/ and run each for SECONDS (default 20; longer by hand, e.g.
# scripts/fuzz.sh 3600). Seeds come from fuzz/corpus/<target>/; findings
# are written to build-fuzz/findings/. Prints "fuzz: ok NAME" or
# "fuzz: FAIL NAME" per target.
set -uo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
if [[ ! -f build-fuzz/build.ninja ]]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false --buildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false || exit 1
fi
ninja -C build-fuzz || exit 1
mkdir -p build-fuzz/findings
status=0
for bin in $(find build-fuzz/fuzz -type f -name 'fuzz_*' -perm -u+x | sort); do
  name="$(basename "$bin")"
  work="build-fuzz/corpus-$name"
  mkdir -p "$work"
  seeds=()
  [[ -d "fuzz/corpus/$name" ]] && seeds+=("fuzz/corpus/$name")
  if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="build-fuzz/findings/$name-" "$work" "${seeds[@]}" > "build-fuzz/$name.log" 2>&1; then
    echo "fuzz: ok $name ($(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "build-fuzz/$name.log" | tail -1) runs)"
  else
    echo "fuzz: FAIL $name"; tail -40 "build-fuzz/$name.log"; status=1
  fi
done
exit $status
