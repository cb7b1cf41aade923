#!/usr/bin/env bash
# Browser tests: the console in headless Chromium against `wrangler dev` on loopback.
set -euo pipefail
source "$(dirname "$0")/local-worker.sh"
bash scripts/ensure-chromium.sh
export STATE PORT ADMIN_TOKEN
STATE=$(fresh_state browser-tests)
PORT=${BROWSER_TEST_PORT:-8799}
say "browser tests (headless Chromium, the console against the local Worker)"
node --test --test-concurrency=1 "tests/browser/*.test.mjs"
