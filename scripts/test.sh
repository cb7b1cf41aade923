#!/usr/bin/env bash
# `npm test`: the OpenAPI lint, native Rust tests, the client and console checks, the wasm
# build, the end-to-end suite in workerd, the browser tests, then Schemathesis.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

bash scripts/setup.sh

say "OpenAPI lint (redocly)"
bash scripts/lint-openapi.sh

say "native tests (cargo test)"
cargo test --quiet

say "typed client and console checks"
bash scripts/client.sh --check
tsc -p console/tsconfig.json

say "script checks"
bash tests/scripts/banner.test.sh

bash scripts/build.sh

say "end-to-end tests (vitest in workerd, real local D1 and KV)"
vitest run

bash scripts/browser-test.sh

say "schemathesis against the local Worker"
bash scripts/fuzz.sh
say "all tests passed"
