#!/usr/bin/env bash
# Installs the system packages that building and testing aienv need, on Debian/Ubuntu, and makes
# sure `uv` (the Python package manager the Python environments use, and which runs Schemathesis
# for scripts/schemathesis.sh) and `cargo deny` (the dependency policy check, deny.toml) are there.
# Elsewhere it prints what to install. Idempotent: packages already present are skipped.
#
#   scripts/install-deps.sh            engine + tests + desktop build (WebKitGTK) + runtime tests
set -euo pipefail

# Engine: a C toolchain for crates that build C. Desktop (Tauri v2 on Linux): WebKitGTK 4.1 and
# friends. Benchmarks: wrk (load) is optional and installed by bench/foundation.sh itself.
# The multi-host test builds network namespaces with iproute2.
# Runtime tests (environments as containers and VMs): Docker's engine (daemon started by
# scripts/start-docker.sh), QEMU with qemu-img, a Debian kernel with its modules (/boot/vmlinuz-*,
# e1000.ko) and a static busybox for the test image and the test VM's initramfs (cpio, gzip).
# Web UI: Node.js and npm build it (ui/, Vite); its browser tests drive Debian's Chromium.
# Desktop smoke test (tests/e2e/desktop.rs) and bench/desktop.py: the app runs under Xvfb (xvfb,
# with xauth for xvfb-run), ImageMagick takes and measures the screenshot (import, convert),
# xdotool finds the window, and dbus (its dbus-daemon package has dbus-run-session) gives the app
# a session bus of its own, which silences the tray's warning.
PKGS=(build-essential pkg-config libssl-dev iproute2
      libwebkit2gtk-4.1-dev libxdo-dev libayatana-appindicator3-dev librsvg2-dev
      xvfb xauth imagemagick xdotool dbus
      docker.io qemu-system-x86 qemu-utils linux-image-amd64 busybox-static cpio gzip curl
      chromium openssh-server openssh-client)
# Node.js may come from Debian (nodejs + npm) or from NodeSource (nodejs with npm inside, which
# conflicts with Debian's npm): ask apt only for what is missing as a command.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
# Python 3 with pip installs uv when it is missing (below), and scripts/schemathesis.sh uses it;
# a Python of pyenv's or another is as good as Debian's.
command -v python3 >/dev/null 2>&1 || PKGS+=(python3)
python3 -m pip --version >/dev/null 2>&1 || PKGS+=(python3-pip)

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo is missing; install Rust from https://rustup.rs (stable, 1.89 or newer)" >&2
  exit 1
fi

# uv: present, or installed from PyPI with the Python that is on PATH.
ensure_uv() {
  if ! command -v uv >/dev/null 2>&1; then
    if ! command -v python3 >/dev/null 2>&1; then
      echo "install-deps: uv is missing and so is python3; install Python 3 (with pip), or uv from https://docs.astral.sh/uv/" >&2
      return 1
    fi
    echo "install-deps: installing uv from PyPI (python3 -m pip install uv)"
    # Debian's own Python refuses pip installs (PEP 668) unless told; uv is one static binary.
    if ! PIP_ROOT_USER_ACTION=ignore PIP_BREAK_SYSTEM_PACKAGES=1 \
      python3 -m pip install --quiet --disable-pip-version-check uv; then
      echo "install-deps: 'python3 -m pip install uv' failed; install uv by hand (https://docs.astral.sh/uv/)" >&2
      return 1
    fi
    # pyenv puts new console scripts on PATH only through its shims.
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
    hash -r
  fi
  if ! command -v uv >/dev/null 2>&1; then
    local bin
    bin="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
    echo "install-deps: uv is installed but not on PATH; add ${bin:-the Python scripts directory} to PATH" >&2
    return 1
  fi
  echo "install-deps: uv at $(command -v uv) ($(uv --version 2>/dev/null || echo 'version unknown'))"
}

# cargo-deny: present, or built from crates.io (a few minutes, once).
ensure_cargo_deny() {
  if ! cargo deny --version >/dev/null 2>&1; then
    echo "install-deps: installing cargo-deny (cargo install --locked cargo-deny)"
    cargo install --locked cargo-deny
  fi
  echo "install-deps: $(cargo deny --version)"
}

# Wheels the LAN-cache tests serve from one node to another (tests/e2e/pyenv.rs): numpy and
# scikit-learn with their dependencies, for the python3 on PATH, downloaded once from PyPI so
# that nothing is downloaded while the tests run.
ensure_test_wheels() {
  local dir="${AIENV_TEST_WHEELS:-$HOME/.cache/aienv-test/wheels}"
  if ! ls "$dir"/numpy-*.whl "$dir"/scikit_learn-*.whl >/dev/null 2>&1; then
    echo "install-deps: downloading test wheels (numpy, scikit-learn) into $dir"
    mkdir -p "$dir"
    if ! python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
      -d "$dir" numpy scikit-learn; then
      echo "install-deps: could not download the test wheels; tests/e2e/pyenv.rs will say so" >&2
      return 0
    fi
  fi
  echo "install-deps: test wheels in $dir ($(ls "$dir" | wc -l) files)"
}

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: not a Debian-like system; install the equivalents of: ${PKGS[*]}" >&2
  echo "  (macOS needs only Xcode's command line tools; Windows needs WebView2, present on Windows 11)" >&2
  ensure_uv || true
  ensure_cargo_deny
  ensure_test_wheels
  exit 0
fi

find_missing() {
  missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
}

# Two passes: installing one package can remove another that conflicts with it (on these machines
# Debian's qemu-system-x86 removed a newer qemu-utils from backports); the second pass puts back
# the matching version.
for pass in 1 2; do
  find_missing
  if [ ${#missing[@]} -eq 0 ]; then break; fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "install-deps: run as root, or install: ${missing[*]}" >&2; exit 1
    fi
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$pass" -eq 1 ]; then $SUDO apt-get update -qq; fi
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
done
find_missing
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: still missing after apt-get install: ${missing[*]}; install them by hand" >&2
  exit 1
fi

ensure_uv
ensure_cargo_deny
ensure_test_wheels
