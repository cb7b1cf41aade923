#!/usr/bin/env bash
# `npm run bench`: run the Worker locally and measure it from a second process on loopback.
set -euo pipefail
source "$(dirname "$0")/local-worker.sh"

state=$(fresh_state bench-state)
ADMIN_TOKEN="$ADMIN_TOKEN" BENCH_STATE="$state" node scripts/bench.mjs
