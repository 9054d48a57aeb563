#!/usr/bin/env bash
# Builds the web UI (ui/, Svelte + Vite) into ui/dist, which the node's binary embeds
# (crates/api/build.rs). npm packages come from the lock file; nothing is fetched at run time.
#
#   scripts/build-ui.sh            install (npm ci) when needed, build
#   scripts/build-ui.sh --check    also type-check (svelte-check) and run the unit tests (Vitest)
set -euo pipefail
cd "$(dirname "$0")/../ui"

if ! command -v npm >/dev/null 2>&1; then
  echo "build-ui: npm is missing; run scripts/install-deps.sh (Debian packages nodejs and npm)" >&2
  exit 1
fi
# Reinstall only when the lock file changed since the last install.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ "${1:-}" = "--check" ]; then
  npm run --silent check
  npm run --silent test:unit
fi
npm run --silent build
