#!/usr/bin/env bash
# check-style.sh — rules of the code base that a script can check, so they
# hold without anyone remembering them:
#   1. scopes are minted only by authentication: identity/scope_mint.h is
#      included only under src/identity/ (and unit tests);
#   2. handlers reach SQLite and PostgreSQL only through store.h: sqlite3.h
#      and libpq-fe.h only in src/store/;
#   3. every C file starts with a comment saying what it is for;
#   4. docs/openapi.json describes exactly the routes of src/api/routes.c;
#   5. a folder under src/ includes only the folders that the table in
#      docs/architecture.md ("Layers") lets it include (scripts/check-layers.py).
set -uo pipefail
cd "$(dirname "$0")/.."
bad=0
while IFS= read -r f; do
  echo "style: $f includes identity/scope_mint.h (only src/identity/ may mint scopes)"; bad=1
done < <(grep -rlE '^\s*#\s*include\s*"identity/scope_mint\.h"' src | grep -v '^src/identity/')
while IFS= read -r f; do
  echo "style: $f includes sqlite3.h (only src/store/ may talk to SQLite)"; bad=1
done < <(grep -rl '#include <sqlite3.h>' src | grep -v '^src/store/')
while IFS= read -r f; do
  echo "style: $f includes libpq-fe.h (only src/store/ may talk to PostgreSQL)"; bad=1
done < <(grep -rl '#include <libpq-fe.h>' src | grep -v '^src/store/')
for f in $(find src tests/unit fuzz bench -name '*.[ch]' 2>/dev/null); do
  head -1 "$f" | grep -q '^/\*' || { echo "style: $f does not start with a comment saying what it is for"; bad=1; }
done
if [[ -f scripts/check-openapi.py ]]; then
  python3 scripts/check-openapi.py || bad=1
fi
python3 scripts/check-layers.py || bad=1
((bad == 0)) && echo "style: ok"
exit $bad
