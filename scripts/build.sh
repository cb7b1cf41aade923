#!/usr/bin/env bash
# Builds the Worker (build/worker/shim.mjs + build/index_bg.wasm), skipping when nothing changed.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

output=build/index_bg.wasm
if [ -f "$output" ] && [ -z "$(find src migrations build.rs Cargo.toml Cargo.lock -newer "$output" -print -quit)" ]; then
  exit 0
fi
say "building the Worker (wasm32, release)"
debian_rust_env
worker-build --release
