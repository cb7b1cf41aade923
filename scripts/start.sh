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

# --test-scheduled: /__scheduled runs the cron too, as Cloudflare's cron docs show it.
wrangler dev --port "$PORT" --ip 127.0.0.1 --test-scheduled --show-interactive-dev-session=false &
wrangler_pid=$!
trap 'kill -TERM $wrangler_pid 2>/dev/null; wait $wrangler_pid 2>/dev/null' INT TERM EXIT

ready=false
for _ in $(seq 1 240); do
  if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then ready=true; break; fi
  if ! kill -0 "$wrangler_pid" 2>/dev/null; then say "wrangler dev exited"; exit 1; fi
  sleep 0.5
done
if [ "$ready" != true ]; then say "keywarden did not answer /healthz within 2 minutes"; exit 1; fi

bash scripts/banner.sh "$PORT" "$ROOT"
wait "$wrangler_pid"
