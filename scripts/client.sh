#!/usr/bin/env bash
# Generates the typed client's schema from the OpenAPI document. With `--check`, fails when the
# committed schema is not what the document generates (CI runs that through `npm test`).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

generated=$(mktemp --suffix=.d.ts)
trap 'rm -f "$generated"' EXIT
openapi-typescript src/http/openapi.json --output "$generated" >/dev/null 2>&1 \
  || { openapi-typescript src/http/openapi.json --output "$generated"; exit 1; }
if [ "${1:-}" = "--check" ]; then
  if ! diff -q "$generated" clients/typescript/schema.d.ts >/dev/null; then
    say "clients/typescript/schema.d.ts disagrees with src/http/openapi.json: run bash scripts/client.sh"
    diff -u clients/typescript/schema.d.ts "$generated" | head -40
    exit 1
  fi
else
  cp "$generated" clients/typescript/schema.d.ts
fi
