#!/usr/bin/env bash
# Lints the OpenAPI document with Redocly's recommended rules (redocly.yaml): no errors and no
# warnings, but for the findings .redocly.lint-ignore.yaml keeps with a reason each. Offline.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
mkdir -p .wrangler

export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
redocly lint src/http/openapi.json --format=stylish --max-problems=50 2>&1 | tee .wrangler/openapi-lint.log >/dev/null || {
  cat .wrangler/openapi-lint.log
  say "the OpenAPI document does not lint clean"
  exit 1
}
if grep -q "warning" .wrangler/openapi-lint.log; then
  cat .wrangler/openapi-lint.log
  say "the OpenAPI document has lint warnings"
  exit 1
fi
say "OpenAPI lint: $(grep -E 'valid|warning|error' .wrangler/openapi-lint.log | tail -n1)"
