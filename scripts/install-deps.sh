#!/usr/bin/env bash
# Installs the system packages that building and testing aienv need, on Debian/Ubuntu.
# Elsewhere it prints what to install. Idempotent: packages already present are skipped.
#
#   scripts/install-deps.sh            engine + tests + desktop build (WebKitGTK)
set -euo pipefail

# Engine: a C toolchain for crates that build C. Desktop (Tauri v2 on Linux): WebKitGTK 4.1 and
# friends. Benchmarks: wrk (load) is optional and installed by bench/foundation.sh itself.
# The multi-host test builds network namespaces with iproute2.
PKGS=(build-essential pkg-config libssl-dev iproute2
      libwebkit2gtk-4.1-dev libxdo-dev libayatana-appindicator3-dev librsvg2-dev)

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo is missing; install Rust from https://rustup.rs (stable, 1.89 or newer)" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: not a Debian-like system; install the equivalents of: ${PKGS[*]}" >&2
  echo "  (macOS needs only Xcode's command line tools; Windows needs WebView2, present on Windows 11)" >&2
  exit 0
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: run as root, or install: ${missing[*]}" >&2; exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
