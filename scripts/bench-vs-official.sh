#!/usr/bin/env bash
# Side-by-side benchmark: this server vs the official @larksuiteoapi/lark-mcp, both against
# one standalone sandbox (start, RSS, stdio latency, HTTP throughput, bytes the model reads).
# Not part of `cargo test` or .ci/run: it needs npm and takes about two minutes.
#
#   scripts/bench-vs-official.sh            # builds our release binary, installs the official one
#   BENCH_SKIP_BUILD=1 scripts/bench-vs-official.sh   # reuse target/release as it is
set -euo pipefail
cd "$(dirname "$0")/.."

OFFICIAL_VERSION="${OFFICIAL_VERSION:-0.5.1}"
OFFICIAL_DIR=target/bench-official
CLI_JS="$OFFICIAL_DIR/node_modules/@larksuiteoapi/lark-mcp/dist/cli.js"

command -v node >/dev/null || { echo "error: node is required" >&2; exit 2; }
command -v python3 >/dev/null || { echo "error: python3 is required" >&2; exit 2; }

installed="$(node -p "require('./$OFFICIAL_DIR/node_modules/@larksuiteoapi/lark-mcp/package.json').version" 2>/dev/null || true)"
if [ "$installed" != "$OFFICIAL_VERSION" ]; then
  mkdir -p "$OFFICIAL_DIR"
  # --ignore-scripts: keytar's native build needs libsecret and a download; the MCP server
  # runs without it (only login persistence is lost).
  npm install --prefix "$OFFICIAL_DIR" --ignore-scripts --no-audit --no-fund \
    "@larksuiteoapi/lark-mcp@$OFFICIAL_VERSION" >&2
fi

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  export CARGO_INCREMENTAL=0
  cargo build --release --bin lark-mcp-server >&2
fi

exec python3 scripts/bench/driver.py \
  --ours target/release/lark-mcp-server \
  --official "$CLI_JS" \
  --scratch target/bench-run "$@"
