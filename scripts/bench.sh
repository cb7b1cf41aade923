#!/usr/bin/env bash
# `npm run bench`: run the Worker locally and measure it from a second process on loopback.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

bash scripts/setup.sh
bash scripts/build.sh
source scripts/dev-vars.sh

state=.wrangler/bench-state
rm -rf "$state"
CI=true wrangler d1 migrations apply DB --local --persist-to "$state" >/dev/null
ADMIN_TOKEN="$ADMIN_TOKEN" BENCH_STATE="$state" node scripts/bench.mjs
