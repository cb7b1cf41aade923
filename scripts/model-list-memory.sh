#!/usr/bin/env bash
# Runs the Worker locally and prints workerd's memory while providers answer long model lists
# (see scripts/model-list-memory.mjs). Figures only; it asserts nothing.
set -euo pipefail
source "$(dirname "$0")/local-worker.sh"

state=$(fresh_state memory-state)
ADMIN_TOKEN="$ADMIN_TOKEN" MEMORY_STATE="$state" node scripts/model-list-memory.mjs
