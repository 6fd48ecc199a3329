#!/usr/bin/env bash
# Usage: scripts/test.sh   — the whole test suite, as CI runs it (after fmt and clippy).
# tests/replicas.rs runs a real redis-server: Debian's package is installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null; then
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq redis-server
fi
cargo test
bash scripts/conformance.sh
bash scripts/sdk_check.sh
bash scripts/readme_check.sh
