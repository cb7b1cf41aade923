#!/usr/bin/env bash
# Runs the Worker locally and prints workerd's memory while providers answer long model lists
# (see scripts/model-list-memory.mjs). Figures only; it asserts nothing.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

bash scripts/setup.sh
bash scripts/build.sh
source scripts/dev-vars.sh

state=.wrangler/memory-state
rm -rf "$state"
CI=true wrangler d1 migrations apply DB --local --persist-to "$state" >/dev/null
ADMIN_TOKEN="$ADMIN_TOKEN" MEMORY_STATE="$state" node scripts/model-list-memory.mjs
