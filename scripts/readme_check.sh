#!/usr/bin/env bash
# Runs the README's shell blocks marked `<!-- readme-check -->` against the debug binary and
# checks that every ```json block parses, so the first thing a reader pastes works.
# Needs `cargo build` first (it does not build, to stay quick), curl, python3 and openssl.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/debug/lark-mcp-server
[[ -x $bin ]] || { echo "readme_check: $bin missing, run cargo build" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Free ports chosen by the kernel, so a developer's own sandbox on 18080 or server on 3000
# (or a parallel CI job) cannot make the check fail or answer in its place.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Split the README into files: one per marked ```sh block, one per ```json block.
python3 - "$work" <<'PY'
import re, sys
out, text = sys.argv[1], open("README.md", encoding="utf-8").read()
sh = re.findall(r"<!-- readme-check -->\n```sh\n(.*?)```\n", text, re.S)
js = re.findall(r"^```json\n(.*?)^```$", text, re.S | re.M)
if not sh or not js:
    sys.exit("readme_check: no marked sh blocks or no json blocks found")
for i, b in enumerate(sh):
    open(f"{out}/block{i}.sh", "w").write(b)
for i, b in enumerate(js):
    open(f"{out}/config{i}.json", "w").write(b)
PY

fail=0
for f in "$work"/config*.json; do
  if python3 -m json.tool "$f" >/dev/null; then echo "ok   json $(basename "$f")"
  else echo "FAIL json $(basename "$f")"; fail=1; fi
done

for f in "$work"/block*.sh; do
  sandbox_port=$(free_port) mcp_port=$(free_port)
  # The blocks are written for a reader with the default ports and a release build; point
  # them at the debug binary and the free ports without making them harder to read.
  sed -i -e "s#cargo run --release --#$bin#g" -e "s#\blark-mcp-server serve#$bin serve#g" \
    -e "s#127\.0\.0\.1:18080#127.0.0.1:$sandbox_port#g" \
    -e "s#127\.0\.0\.1:3000#127.0.0.1:$mcp_port#g" -e "s#--port 3000#--port $mcp_port#g" "$f"
  start=$(date +%s%N)
  # timeout leads its own process group, so killing that group afterwards also stops any
  # server a block left behind (after a failure the block's own kill never runs).
  LARK_SANDBOX_PORT=$sandbox_port timeout 60 bash -euo pipefail "$f" >"$f.out" 2>"$f.err" &
  pid=$!
  rc=0; wait "$pid" || rc=$?
  kill -- -"$pid" 2>/dev/null || true
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  if [[ $rc -eq 0 ]]; then
    echo "ok   sh   $(basename "$f") (${ms} ms): $(grep -v '^ *$' "$f.out" | tail -n 1 | cut -c1-110)"
  else
    echo "FAIL sh   $(basename "$f") (exit $rc, ${ms} ms)"; sed 's/^/     /' "$f" "$f.out" "$f.err"; fail=1
  fi
done

[[ $fail -eq 0 ]] && echo "readme_check: all blocks ok"
exit "$fail"
