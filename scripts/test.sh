#!/usr/bin/env bash
# The one command that checks everything: installs what the tests need, then runs formatting,
# lints (engine and desktop package) and every test (unit, API, end-to-end with real nodes).
#
#   scripts/test.sh
#
# With CI set, tests that need something missing fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# A clean run builds ~6 GB under target/. Say so up front rather than failing mid-build with
# "No space left on device".
free_gb=$(df -Pk . | awk 'NR==2 {print int($4 / 1048576)}')
if [ "${free_gb:-0}" -lt 10 ]; then
  echo "only ${free_gb} GB free on $(df -P . | awk 'NR==2 {print $6}'): the build and tests need about 10 GB." >&2
  echo "Free some space (for example 'cargo clean' in other checkouts) and run again." >&2
  exit 1
fi
# Incremental compilation only helps rebuilds, and its caches double target/ on a fresh clone.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi

step "system packages"
scripts/install-deps.sh

step "container engine for the runtime tests"
# Without it the container tests skip (and fail under CI): say why instead of stopping here.
scripts/start-docker.sh || echo "(no Docker daemon: the container tests cannot run)"

step "web UI: install, type-check, unit tests, build (embedded in the node by crates/api/build.rs)"
scripts/build-ui.sh --check

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (engine and desktop) -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo deny (deny.toml): licenses, bans (no wildcards), sources (crates.io only), advisories"
cargo deny --locked check --hide-inclusion-graph bans licenses sources
# The RustSec advisory database is a git repository on GitHub, which not every machine that runs
# this can reach: checked when it can be fetched (or against a copy fetched before), else said.
advisory_db=https://github.com/RustSec/advisory-db
if GIT_TERMINAL_PROMPT=0 timeout 30 git ls-remote --exit-code "$advisory_db" HEAD >/dev/null 2>&1; then
  cargo deny --locked check --hide-inclusion-graph advisories
elif compgen -G "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-*/crates" >/dev/null; then
  echo "(cannot reach $advisory_db: checking advisories against the copy fetched before, which may be out of date)"
  cargo deny --locked --offline check --hide-inclusion-graph advisories
else
  echo "(advisories NOT checked: the RustSec advisory database ($advisory_db) cannot be fetched from this machine, and no copy was fetched before)"
fi

step "build the aienv binary the end-to-end tests start"
# test-hooks: the e2e tests give nodes simulated machines (AIENV_TEST_RESOURCES); never in a release.
cargo build --locked -p aienv-cli --features test-hooks

step "build the desktop app the desktop smoke test starts under Xvfb (not a default member)"
cargo build --locked -p aienv-desktop

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  # --workspace: the desktop package (not a default member) has unit tests too (its tray menu).
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --locked --doc
else
  echo "(cargo-nextest not found: using cargo test)"
  cargo test --workspace --locked --no-fail-fast
fi

step "API fuzzing: Schemathesis against a live node (no 5xx; every answer as the OpenAPI document says)"
# The binary built above: building it again here without test-hooks would replace it, and the
# UI's end-to-end tests below need the hook.
AIENV_BIN="${CARGO_TARGET_DIR:-target}/debug/aienv" scripts/schemathesis.sh

step "web UI end-to-end: real nodes, real Chromium (screenshots in ui/test-results/screens/)"
npm --prefix ui run --silent test:e2e
