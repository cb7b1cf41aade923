#!/usr/bin/env bash
# Builds the console into build/public/ (served by Workers static assets, beside the Worker):
# one esbuild bundle of console/src with Preact, the page, its styles and its headers.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

out=build/public
if [ -f "$out/app.js" ] && [ -z "$(find console clients -newer "$out/app.js" -print -quit)" ]; then
  exit 0
fi
say "building the console"
mkdir -p "$out"
"$ESBUILD_BIN" console/src/main.ts --bundle --minify --format=esm --target=es2022 --log-level=warning --outfile="$out/app.js"
cp console/index.html console/styles.css console/_headers "$out/"
