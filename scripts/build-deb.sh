#!/usr/bin/env bash
# Builds the desktop app's installable Debian package with the Tauri CLI (npm's @tauri-apps/cli
# v2, which npx fetches from the npm registry: the .deb bundler needs nothing from elsewhere;
# AppImage bundling would download tools, so it is not built here).
#
#   scripts/build-deb.sh                  web UI, release build, .deb; prints its path and size
#   scripts/build-deb.sh --install-check  then installs it (apt-get, as root or with sudo), starts
#                                         the installed app under Xvfb with a temp data dir and
#                                         discovery on loopback, checks node.json and /health, and
#                                         removes the package again
#
# Other platforms build their own bundles, on that platform, with the same CLI from the repo root:
#   macOS:   npx --yes @tauri-apps/cli@^2 build --bundles app,dmg -- -p aienv-desktop
#            Needs Xcode (or its command line tools) for the compiler, codesign and hdiutil (the
#            .dmg). Unsigned builds only open after a right-click > Open; to sign and notarise, set
#            APPLE_SIGNING_IDENTITY (a Developer ID certificate in the keychain) and APPLE_ID,
#            APPLE_PASSWORD (an app-specific password), APPLE_TEAM_ID.
#            Both architectures in one: add --target universal-apple-darwin (rustup target add
#            aarch64-apple-darwin x86_64-apple-darwin).
#   Windows: npx --yes @tauri-apps/cli@^2 build --bundles msi,nsis -- -p aienv-desktop
#            Needs the MSVC build tools (Visual Studio Build Tools, "Desktop development with
#            C++") and WebView2 at run time: Windows 11 has it; on Windows 10 the installers
#            fetch it (bundle.windows.webviewInstallMode). The CLI downloads WiX v3 (.msi, which
#            only builds on Windows) and NSIS (the -setup.exe) on first use. Signing:
#            bundle.windows.certificateThumbprint, or a signCommand.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }

check=""
case "${1:-}" in
  --install-check) check=1 ;;
  "") ;;
  *) echo "usage: scripts/build-deb.sh [--install-check]" >&2; exit 2 ;;
esac

if ! command -v npx >/dev/null 2>&1; then
  echo "build-deb: npx is missing; run scripts/install-deps.sh (Debian packages nodejs and npm)" >&2
  exit 1
fi

say "web UI (ui/dist: the node embeds it, and the bundle config points at it)"
scripts/build-ui.sh

say "release build and .deb (Tauri CLI from npm)"
# The root package is left out of the workspace's default members, so the CLI's `cargo build`
# must be told which package to build (the arguments after `--` go to cargo).
start=$(date +%s)
npx --yes @tauri-apps/cli@^2 build --bundles deb -- -p aienv-desktop --locked
secs=$(( $(date +%s) - start ))

version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' tauri.conf.json | head -n1)
deb=$(ls -t target/release/bundle/deb/*_"${version}"_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
  echo "build-deb: no .deb for version $version under target/release/bundle/deb/; see the output above" >&2
  exit 1
fi
size=$(stat -c %s "$deb")
say "built $deb: $(( size / 1024 )) KiB ($(awk -v s="$size" 'BEGIN{printf "%.1f", s/1e6}') MB) in ${secs} s"

[ -n "$check" ] || exit 0

# --- install check ---------------------------------------------------------------------------
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "build-deb: --install-check installs a package: run as root, or install sudo" >&2; exit 1
  fi
fi
for tool in Xvfb curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build-deb: $tool is missing; run scripts/install-deps.sh" >&2; exit 1; }
done
pkg=$(dpkg-deb -f "$deb" Package)
if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
  echo "build-deb: $pkg is already installed; remove it first (apt-get remove $pkg): the check removes what it installed" >&2
  exit 1
fi

tmp=$(mktemp -d)
xvfb_pid="" app_pid=""
cleanup() {
  [ -n "$app_pid" ] && kill -KILL "$app_pid" 2>/dev/null || true
  [ -n "$xvfb_pid" ] && kill "$xvfb_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  say "removing $pkg"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "$pkg" >/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

say "installing $deb"
# apt-get resolves the package's dependencies (WebKitGTK and the rest) from the archive.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "./$deb" >/dev/null
bin=$(dpkg -L "$pkg" | grep -m1 '^/usr/bin/' || true)
[ -n "$bin" ] && [ -x "$bin" ] || { echo "build-deb: $pkg installed no program under /usr/bin" >&2; exit 1; }

# A display number nobody uses.
n=150
while [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ]; do n=$((n + 1)); done
Xvfb ":$n" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
xvfb_pid=$!
for _ in $(seq 100); do [ -e "/tmp/.X11-unix/X$n" ] && break; sleep 0.1; done

# Discovery pinned to loopback on a group port of this check's own.
group_port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$tmp/data"
cat >"$tmp/data/config.toml" <<EOF
name = "deb-check"
discovery_interfaces = ["127.0.0.1"]
discovery_group = "239.255.77.77:$group_port"
EOF

say "starting $bin under Xvfb :$n"
DISPLAY=":$n" AIENV_DATA_DIR="$tmp/data" XDG_DATA_HOME="$tmp/xdg-data" XDG_CACHE_HOME="$tmp/xdg-cache" \
  XDG_CONFIG_HOME="$tmp/xdg-config" "$bin" >"$tmp/app.log" 2>&1 &
app_pid=$!
url=""
for _ in $(seq 300); do
  if ! kill -0 "$app_pid" 2>/dev/null; then
    echo "build-deb: the installed app exited at once:" >&2; cat "$tmp/app.log" >&2; exit 1
  fi
  if [ -f "$tmp/data/node.json" ]; then
    url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$tmp/data/node.json" 2>/dev/null || true)
    [ -n "$url" ] && curl -sf --noproxy '*' "$url/api/v1/health" >/dev/null && break
  fi
  url=""
  sleep 0.2
done
if [ -z "$url" ]; then
  echo "build-deb: the installed app wrote no node.json that answers /health within 60 s:" >&2
  cat "$tmp/app.log" >&2; exit 1
fi
sleep 3 # a few seconds up: it must not fall over once the window is there
kill -0 "$app_pid" 2>/dev/null || { echo "build-deb: the installed app died:" >&2; cat "$tmp/app.log" >&2; exit 1; }
say "install check passed: $bin runs, its node answers at $url"
kill -TERM "$app_pid" 2>/dev/null || true
for _ in $(seq 50); do kill -0 "$app_pid" 2>/dev/null || break; sleep 0.2; done
