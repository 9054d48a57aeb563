#!/usr/bin/env bash
# Runs aienv: the desktop app where there is a display, otherwise a headless node whose web UI
# address is printed. Extra arguments go to `aienv serve` (e.g. --listen 127.0.0.1:47478).
#
#   scripts/run.sh [serve flags...]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -z "${AIENV_HEADLESS:-}" ]; then
  scripts/install-deps.sh
  scripts/build-ui.sh
  exec cargo run --release --locked -p aienv-desktop
fi
scripts/build-ui.sh
cargo build --release --locked -p aienv-cli
exec target/release/aienv serve "$@"
