#!/usr/bin/env bash
# `npm run bench`: run the Worker locally and measure it from a second process on loopback,
# once with D1 answering authentication and once with the Durable Object key authority.
set -euo pipefail
source "$(dirname "$0")/local-worker.sh"

fresh_state bench-state-catalogue >/dev/null
fresh_state bench-state-object >/dev/null
ADMIN_TOKEN="$ADMIN_TOKEN" BENCH_STATE=".wrangler/bench-state" node scripts/bench.mjs
