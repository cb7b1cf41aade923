#!/usr/bin/env bash
# Installs everything keywarden needs to build, run and test, from the package registries only.
# Idempotent: each step checks first, so a second run does nothing and takes about a second.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

ensure_wasm_target() {
  if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || [ -f "$DEBIAN_RUST_MARKER" ]; then
    return
  fi
  say "adding the wasm32-unknown-unknown target"
  if ! rustup target add wasm32-unknown-unknown; then
    # Fallback of TOOLCHAIN.md: Debian's rustc-web builds std for wasm32 with -Zbuild-std.
    say "rustup could not add the target; installing Debian's rustc-web instead"
    apt-get update && apt-get install -y rustc-web cargo-web rust-web-src
    mkdir -p "$TOOLS_HOME" && touch "$DEBIAN_RUST_MARKER"
  fi
}

ensure_npm_packages() {
  local stamp="node_modules/.keywarden-stamp" want
  want=$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$NODE_BIN_DIR/node" ]; then
    return
  fi
  say "installing npm packages (Node 24, wrangler, vitest, binaryen, autocannon)"
  # `npm ci`: the lockfile (which lists every platform's optional binaries) is installed as it
  # is and never rewritten, so a first run leaves the checkout clean.
  npm ci --no-audit --no-fund --loglevel=error
  want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
  echo "$want" > "$stamp"
}

# cargo install <crate> <version> <root> <binary>: only when that version is not there yet.
ensure_cargo_tool() {
  local crate=$1 version=$2 root=$3 binary=$4
  if [ -x "$root/bin/$binary" ] && "$root/bin/$binary" --version 2>/dev/null | grep -q "$version"; then
    return
  fi
  # Clones share the tool cache: one installs while the others wait, then find it there.
  mkdir -p "$TOOLS_HOME"
  exec 9>"$TOOLS_HOME/.install.lock"
  flock 9
  if ! { [ -x "$root/bin/$binary" ] && "$root/bin/$binary" --version 2>/dev/null | grep -q "$version"; }; then
    say "installing $crate $version into $root (a few minutes, once)"
    # No --locked for wasm-bindgen-cli: its lockfile does not resolve offline (TOOLCHAIN.md).
    cargo install "$crate" --version "$version" --root "$root" --quiet
  fi
  flock -u 9
}

# A Python of 3.12 or later: schemathesis crashes under the machine's 3.11.
find_python() {
  local candidate
  for candidate in python3.14 python3.13 python3.12 "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$candidate"
      return
    fi
  done
  return 1
}

ensure_schemathesis() {
  local python
  if "$SCHEMATHESIS_ROOT/bin/schemathesis" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION$"; then
    return
  fi
  python=$(find_python) || { say "schemathesis needs Python 3.12 or later: none on PATH nor under ~/.pyenv/versions"; exit 1; }
  say "installing schemathesis $SCHEMATHESIS_VERSION into $SCHEMATHESIS_ROOT ($python)"
  rm -rf "$SCHEMATHESIS_ROOT"
  "$python" -m venv "$SCHEMATHESIS_ROOT"
  "$SCHEMATHESIS_ROOT/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
}

ensure_wasm_target
ensure_npm_packages
ensure_schemathesis
[ -n "$WORKER_VERSION" ] && [ -n "$WASM_BINDGEN_VERSION" ] || { say "Cargo.lock lacks worker or wasm-bindgen"; exit 1; }
ensure_cargo_tool worker-build "$WORKER_VERSION" "$WORKER_BUILD_ROOT" worker-build
ensure_cargo_tool wasm-bindgen-cli "$WASM_BINDGEN_VERSION" "$WASM_BINDGEN_ROOT" wasm-bindgen
