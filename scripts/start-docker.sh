#!/usr/bin/env bash
# Makes sure a Docker daemon answers, for the runtime tests that start environments as containers.
# On CI machines and dev containers there is no init system to start dockerd, so this starts it in
# the background and leaves it running (the tests need it; that is intended).
#
#   scripts/start-docker.sh
#
# Exits 0 at once if `docker info` works. Otherwise starts `dockerd` (unless one is already running
# and only slow to come up), logging to ${AIENV_DOCKERD_LOG:-/tmp/aienv-dockerd.log}, and waits up
# to ${AIENV_DOCKERD_WAIT:-60} s for `docker info`. Needs root (or sudo) and the docker.io package
# (scripts/install-deps.sh installs it). Idempotent; concurrent runs start one daemon.
set -euo pipefail

LOG="${AIENV_DOCKERD_LOG:-/tmp/aienv-dockerd.log}"
WAIT="${AIENV_DOCKERD_WAIT:-60}"
LOCK="${AIENV_DOCKERD_LOCK:-/tmp/aienv-dockerd.lock}"

say() { echo "start-docker: $*"; }
die() { echo "start-docker: $*" >&2; exit 1; }

# A daemon that accepts connections but hangs must not hang this script: bound each probe.
docker_ok() { timeout 5 docker info >/dev/null 2>&1; }

command -v docker >/dev/null 2>&1 \
  || die "the docker client is missing; run scripts/install-deps.sh (Debian package docker.io)"

if docker_ok; then exit 0; fi

if [ -n "${DOCKER_HOST:-}" ]; then
  die "DOCKER_HOST=$DOCKER_HOST does not answer 'docker info'; start that daemon, or unset DOCKER_HOST to use a local one"
fi

# Is a dockerd already running (started by someone else, or by an earlier run still coming up)?
running_dockerd() {
  local pid
  for f in /run/docker.pid /var/run/docker.pid; do
    if [ -r "$f" ]; then
      pid="$(cat "$f" 2>/dev/null || true)"
      if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "dockerd" ]; then
        echo "$pid"; return 0
      fi
    fi
  done
  pgrep -x dockerd 2>/dev/null | head -n1 | grep . && return 0
  return 1
}

# Serialize concurrent runs so that only one of them can start a daemon.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$LOCK"
  flock -w "$WAIT" 9 || die "another start-docker.sh holds $LOCK for over ${WAIT}s"
  if docker_ok; then exit 0; fi
fi

if pid="$(running_dockerd)"; then
  say "dockerd already running (pid $pid); waiting for it to answer"
else
  command -v dockerd >/dev/null 2>&1 \
    || die "dockerd is missing; run scripts/install-deps.sh (Debian package docker.io)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "dockerd must run as root: run this script as root"
    SUDO="sudo -n"
  fi
  mkdir -p "$(dirname "$LOG")"
  say "starting dockerd (log: $LOG)"
  # setsid + nohup: the daemon outlives this script and the shell or CI step that ran it.
  # shellcheck disable=SC2086
  setsid nohup $SUDO dockerd >>"$LOG" 2>&1 </dev/null 9>&- &
  pid=$!
fi

deadline=$((SECONDS + WAIT))
while ! docker_ok; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "start-docker: 'docker info' still fails after ${WAIT}s; last lines of $LOG:" >&2
    tail -n 30 "$LOG" >&2 2>/dev/null || echo "  (no log at $LOG)" >&2
    die "fix the cause above (often: missing iptables/cgroups, or not root), or start dockerd yourself"
  fi
  if ! kill -0 "$pid" 2>/dev/null && ! running_dockerd >/dev/null; then
    echo "start-docker: dockerd (pid $pid) exited; last lines of $LOG:" >&2
    tail -n 30 "$LOG" >&2 2>/dev/null || true
    die "dockerd did not stay up; fix the cause above and run this script again"
  fi
  sleep 0.5
done
say "docker is up (server $(timeout 5 docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
