# Sourced by the scripts that measure a local Worker (bench.sh, model-list-memory.sh): the
# tools, the build and .dev.vars (which sets ADMIN_TOKEN), then `fresh_state` for local D1/KV.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

bash scripts/setup.sh
bash scripts/build.sh
source scripts/dev-vars.sh

# fresh_state NAME: prints .wrangler/NAME, emptied and migrated, for `wrangler dev --persist-to`.
fresh_state() {
  local state=".wrangler/$1"
  rm -rf "$state"
  CI=true wrangler d1 migrations apply DB --local --persist-to "$state" >/dev/null
  echo "$state"
}
