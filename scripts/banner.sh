#!/usr/bin/env bash
# `npm start`'s banner, for port $1 of the checkout at $2. The admin token is a secret and a
# banner ends up in terminal logs and CI output: it says where the token is, and its curl reads
# it from .dev.vars when run, so the value itself is never printed.
set -euo pipefail
port=$1
root=$2

cat <<BANNER

  keywarden console: http://127.0.0.1:$port/   (sign in with a workspace's owner key, or the admin token)

  The API is on the same origin, http://127.0.0.1:$port

  Admin token: in $root/.dev.vars, the ADMIN_TOKEN= line (not shown here, to keep it out of logs).

  Create a first workspace and its owner key (the key is shown once):

    curl -s -X POST http://127.0.0.1:$port/v1/workspaces \\
      -H "Authorization: Bearer \$(grep ^ADMIN_TOKEN= "$root/.dev.vars" | cut -d= -f2-)" \\
      -H "Content-Type: application/json" \\
      -d '{"name": "My workspace"}'

  Then call the API with the returned key:

    curl -s http://127.0.0.1:$port/v1/me -H "Authorization: Bearer <key.key from above>"

  API reference: http://127.0.0.1:$port/openapi.json    Stop: Ctrl-C

BANNER
