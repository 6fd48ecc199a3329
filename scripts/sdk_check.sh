#!/usr/bin/env bash
# The sandbox through Lark's official Python SDK (lark-oapi, pinned) as the client:
# contact and im calls, log ids, booleans as True/False, download file names, and
# one-click registration (register_app) for a Feishu and a Lark tenant, and the long
# connection (ws.Client receiving im.message.receive_v1 from /_sandbox/incoming).
# The venv is cached under target/sdk-venv; reruns only start the sandbox and the check.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="target/sdk-venv"
pin="lark-oapi==1.7.5"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# pip is only asked when the pinned version is not installed yet.
"$venv/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("lark-oapi") != sys.argv[1])' \
  "${pin#*==}" 2>/dev/null ||
  "$venv/bin/pip" install -q --disable-pip-version-check "$pin"
cargo build --quiet

log="target/sdk-sandbox.log"
: >"$log"
# Port 0: the sandbox picks a free port and prints it on stdout.
target/debug/lark-mcp-server sandbox --port 0 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
url=""
for _ in $(seq 100); do
  url=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -n1 || true)
  [ -n "$url" ] && break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "sdk: the sandbox did not start"; cat "$log"; exit 1
fi
"$venv/bin/python" scripts/sdk_check.py "$url"
