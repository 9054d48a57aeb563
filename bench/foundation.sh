#!/usr/bin/env bash
# Builds the release binary and measures the foundation figures (see bench/foundation.py).
#   bench/foundation.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { command -v apt-get >/dev/null && apt-get install -y -qq wrk >/dev/null; } || true
cargo build --release --locked -p aienv-cli
exec python3 bench/foundation.py "$@"
