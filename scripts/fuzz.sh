#!/usr/bin/env bash
# Schemathesis against the local Worker (scripts/fuzz.mjs), in a network namespace of its own
# when `unshare --net` works, so that no request it provokes (provider validations, webhook
# deliveries to generated hosts) can leave the machine: inside, only loopback is up.
set -euo pipefail
source "$(dirname "$0")/local-worker.sh"

state=$(fresh_state fuzz-state)
export ADMIN_TOKEN FUZZ_STATE="$state" SCHEMATHESIS_BIN="$SCHEMATHESIS_ROOT/bin/schemathesis"
if unshare --net true 2>/dev/null; then
  say "schemathesis against the local Worker (network namespace: loopback only)"
  unshare --net bash -c 'ip link set lo up && exec node scripts/fuzz.mjs'
elif [ "${KEYWARDEN_FUZZ_WITHOUT_NETNS:-}" = 1 ]; then
  say "schemathesis against the local Worker (no network namespace: KEYWARDEN_FUZZ_WITHOUT_NETNS=1)"
  node scripts/fuzz.mjs
else
  # Without a namespace, generated provider hosts would be contacted for real.
  say "skipping schemathesis: \`unshare --net\` is not permitted here (KEYWARDEN_FUZZ_WITHOUT_NETNS=1 forces it)"
fi
