#!/usr/bin/env bash
# `npm test`: native Rust tests, the wasm build, then the end-to-end suite in workerd.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

bash scripts/setup.sh

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
say "all tests passed"
