#!/usr/bin/env bash
# Installs Chromium for the browser tests when there is none (not for `npm start`, which needs none).
set -euo pipefail
source "$(dirname "$0")/env.sh"

# The browser tests drive Debian's Chromium (Playwright's and Puppeteer's own downloads cannot
# reach their hosts here). CHROMIUM_PATH names another browser on machines without apt.
ensure_chromium() {
  if [ -n "${CHROMIUM_PATH:-}" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    return
  fi
  if command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's chromium for the browser tests (once)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null; }
  else
    say "no chromium and no apt-get: set CHROMIUM_PATH to a Chromium binary for the browser tests"
  fi
}

ensure_chromium
