#!/usr/bin/env bash
# `npm start`: set up, build, migrate local D1, and run keywarden on 127.0.0.1:$PORT.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
PORT=${PORT:-8787}

bash scripts/setup.sh
bash scripts/build.sh

source scripts/dev-vars.sh

say "applying migrations to the local D1 database"
CI=true wrangler d1 migrations apply DB --local >/dev/null

wrangler dev --port "$PORT" --ip 127.0.0.1 --show-interactive-dev-session=false &
wrangler_pid=$!
trap 'kill -TERM $wrangler_pid 2>/dev/null; wait $wrangler_pid 2>/dev/null' INT TERM EXIT

ready=false
for _ in $(seq 1 240); do
  if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then ready=true; break; fi
  if ! kill -0 "$wrangler_pid" 2>/dev/null; then say "wrangler dev exited"; exit 1; fi
  sleep 0.5
done
if [ "$ready" != true ]; then say "keywarden did not answer /healthz within 2 minutes"; exit 1; fi

cat <<BANNER

  keywarden is running on http://127.0.0.1:$PORT

  Admin token (from .dev.vars): $ADMIN_TOKEN

  Create a first workspace and its owner key (the key is shown once):

    curl -s -X POST http://127.0.0.1:$PORT/v1/workspaces \\
      -H "Authorization: Bearer $ADMIN_TOKEN" \\
      -H "Content-Type: application/json" \\
      -d '{"name": "My workspace"}'

  Then call the API with the returned key:

    curl -s http://127.0.0.1:$PORT/v1/me -H "Authorization: Bearer <key.key from above>"

  API reference: http://127.0.0.1:$PORT/openapi.json    Stop: Ctrl-C

BANNER
wait "$wrangler_pid"
