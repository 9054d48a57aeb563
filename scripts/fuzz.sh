#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for SECONDS (default 60), one after the
# other, on one core each. Exits non-zero if any target finds a crash (panic, failed assertion,
# sanitizer report, out-of-memory or timeout); the input is then in fuzz/artifacts/TARGET/.
#
#   scripts/fuzz.sh [SECONDS]
#
# Needs rustup: installs the nightly toolchain and cargo-fuzz when they are missing. New corpus
# entries (hex names) land in fuzz/corpus/TARGET/ and are ignored by git; the seed-* ones are
# kept. See fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS]   (seconds per target, default 60)" >&2
  exit 2
fi

if ! command -v rustup >/dev/null 2>&1; then
  echo "rustup is needed (https://rustup.rs): the fuzz targets build with a nightly compiler." >&2
  exit 1
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "==> installing the nightly toolchain (rustup)"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --locked
fi

cd fuzz
# The unpack target makes its staging folders under TMPDIR: keep them in the build folder.
export TMPDIR="$PWD/target/fuzz-tmp"
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR"
trap 'rm -rf "$TMPDIR"' EXIT

echo "==> building the fuzz targets"
cargo +nightly fuzz build

failed=()
for target in $(cargo +nightly fuzz list); do
  echo "==> fuzzing $target for ${secs}s"
  mkdir -p "corpus/$target" "artifacts/$target"
  # One process (libFuzzer's default): the machine may be shared.
  if ! cargo +nightly fuzz run "$target" -- -max_total_time="$secs" -print_final_stats=1; then
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "==> crashes in: ${failed[*]} (inputs in fuzz/artifacts/; replay one with" >&2
  echo "    cd fuzz && cargo +nightly fuzz run TARGET artifacts/TARGET/crash-..., then make it a regression test)" >&2
  exit 1
fi
echo "==> no crashes (${secs}s per target)"
