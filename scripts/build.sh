#!/usr/bin/env bash
# Builds the console (build/public/) and the Worker (build/worker/shim.mjs + build/index_bg.wasm),
# each skipped when nothing it is built from changed, and then the OpenAPI document, minified,
# into build/public/ every time: that is cheap, and the wasm does not depend on it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

bash scripts/build-console.sh

output=build/index_bg.wasm
if [ ! -f "$output" ] || [ -n "$(find src migrations Cargo.toml Cargo.lock -newer "$output" ! -path src/http/openapi.json -print -quit)" ]; then
  say "building the Worker (wasm32, release)"
  (debian_rust_env && worker-build --release)
fi

# The pretty-printed source is for people and diffs; its whitespace is a third of its bytes.
mkdir -p build/public
node -e 'const fs = require("fs"); fs.writeFileSync(process.argv[2], JSON.stringify(JSON.parse(fs.readFileSync(process.argv[1], "utf8"))))' \
  src/http/openapi.json build/public/openapi.json.tmp
mv build/public/openapi.json.tmp build/public/openapi.json
