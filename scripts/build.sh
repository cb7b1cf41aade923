#!/usr/bin/env bash
# Builds the console (build/public/) and the Worker (build/worker/shim.mjs + build/index_bg.wasm),
# each skipped when nothing it is built from changed.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

bash scripts/build-console.sh

output=build/index_bg.wasm
if [ -f "$output" ] && [ -z "$(find src migrations build.rs Cargo.toml Cargo.lock -newer "$output" -print -quit)" ]; then
  exit 0
fi
say "building the Worker (wasm32, release)"
debian_rust_env
worker-build --release
