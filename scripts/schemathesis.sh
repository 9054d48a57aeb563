#!/usr/bin/env bash
# Property-based API test: Schemathesis (from PyPI, run through uv) reads the OpenAPI document of
# a live node and sends it generated requests, valid and invalid. It fails on any 5xx answer, any
# status code the document does not list, and any body that does not match the documented schema.
#
#   scripts/schemathesis.sh            build target/debug/aienv if needed, then test it
#   AIENV_BIN=path scripts/schemathesis.sh        test that binary instead (no build)
#   SCHEMATHESIS_EXAMPLES=N scripts/schemathesis.sh   test cases per operation (default 100)
#   SCHEMATHESIS_SEED=N scripts/schemathesis.sh       replay a run (its seed is printed at the end)
#   scripts/schemathesis.sh [ARGS...]                 more `schemathesis run` options, e.g.
#                                                     --report junit --report-dir "$PWD/report"
#
# The node runs on 127.0.0.1 only, on a free port, with its own temp data dir, an API key, and
# discovery pinned to loopback on a multicast port of its own, and no peers; it is seeded with
# four small workspaces so that routes with path parameters meet real data. The operations that
# would reach beyond this machine's loopback, or change the machine, are left out (see below).
# The node is killed and the temp dir removed on exit, whatever happens. Exits non-zero when
# Schemathesis reports a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: a newer release may add checks, which should arrive as a deliberate change here.
SCHEMATHESIS_VERSION=4.32.5
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-100}"

say() { printf 'schemathesis.sh: %s\n' "$*" >&2; }

# Requests to the node go straight to it, never through a proxy of the environment's.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

if ! command -v uv >/dev/null 2>&1; then
  say "uv is missing; run scripts/install-deps.sh"
  exit 1
fi
if ! command -v python3 >/dev/null 2>&1; then
  say "python3 is missing; run scripts/install-deps.sh"
  exit 1
fi

if [ -n "${AIENV_BIN:-}" ]; then
  bin="$AIENV_BIN"
else
  cargo build --locked -p aienv-cli
  bin="${CARGO_TARGET_DIR:-target}/debug/aienv"
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/aienv-schemathesis.XXXXXX")"
node_pid=""
cleanup() {
  local rc=$?
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill "$node_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

data="$tmp/data"
mkdir -p "$data"
api_key="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
# A discovery port of its own (as tests/support's private_group does), so that this node and
# others on the machine (tests running at the same time) do not see each other.
group_port="$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

# The node's own settings and key only: no AIENV_* of the caller's leaks in.
unset AIENV_NODE AIENV_DATA_DIR AIENV_LISTEN AIENV_DISCOVERY_INTERFACE AIENV_DISCOVERY_GROUP AIENV_NAME
export AIENV_API_KEY="$api_key"
AIENV_LOG=info "$bin" serve \
  --listen 127.0.0.1:0 \
  --discovery-interface 127.0.0.1 \
  --discovery-group "239.255.77.77:$group_port" \
  --name schemathesis \
  --data-dir "$data" \
  </dev/null >/dev/null 2>"$tmp/node.log" &
node_pid=$!

# node.json names the URL once the node listens (port 0 picks a free one).
url=""
for _ in $(seq 300); do
  if ! kill -0 "$node_pid" 2>/dev/null; then
    say "the node exited before it was ready:"; cat "$tmp/node.log" >&2; exit 1
  fi
  url="$(python3 - "$data/node.json" "$node_pid" <<'EOF' 2>/dev/null || true
import json, sys
info = json.load(open(sys.argv[1]))
if info.get("pid") == int(sys.argv[2]):
    print(info["url"])
EOF
)"
  if [ -n "$url" ] && python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/api/v1/health", timeout=2)' "$url" 2>/dev/null; then
    break
  fi
  url=""
  sleep 0.1
done
if [ -z "$url" ]; then
  say "the node was not ready after 30 s:"; cat "$tmp/node.log" >&2; exit 1
fi
case "$url" in
  http://127.0.0.1:*) ;;
  *) say "the node listens on $url, not on 127.0.0.1"; exit 1 ;;
esac
say "node at $url (pid $node_pid, data dir $data)"

# Seed data: alpha and beta (the workspaces the edits work on; alpha is shared), gamma (the one
# DELETE /workspaces/{id} may forget) and delta (shared, for the peer-facing /shares operations
# only, so that edits of the others cannot unshare it).
seed() {
  local name="$1" shared="$2" dir="$tmp/workspaces/$1"
  mkdir -p "$dir/trainer" "$dir/data"
  printf "print('train')\n" >"$dir/trainer/train.py"
  printf 'numpy\n' >"$dir/trainer/requirements.txt"
  printf 'a,b\n1,2\n' >"$dir/data/sample.csv"
  cat >"$dir/aienv.toml" <<EOF
[workspace]
name = "$name"
description = "seeded for the Schemathesis run"

[sharing]
enabled = $shared
access = "open"

[[project]]
name = "trainer"

[[project]]
name = "data"

[environment.train]
kind = "process"
projects = ["trainer"]
command = "python trainer/train.py"
python = { requirements = "trainer/requirements.txt" }

[environment.serve]
kind = "container"
image = "aienv-schemathesis-absent:latest"

[environment.sandbox]
kind = "vm"
disk = "images/disk.qcow2"
memory_gb = 1
EOF
  AIENV_DATA_DIR="$data" "$bin" workspace add "$dir" --json
}
declare -A id
for ws in alpha:true beta:false gamma:false delta:true; do
  name="${ws%%:*}"
  out="$(seed "$name" "${ws##*:}")" || { say "cannot seed $name: $out"; cat "$tmp/node.log" >&2; exit 1; }
  id[$name]="$(printf '%s' "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
done
say "seeded workspaces alpha (${id[alpha]}), beta (${id[beta]}), gamma (${id[gamma]}), delta (${id[delta]})"

# Path parameters: half the time a seeded value (by name or id: a rename leaves the id),
# otherwise whatever is generated. DELETE /workspaces/{id} gets gamma only, so the others stay.
cat >"$tmp/schemathesis.toml" <<EOF
hooks = "$tmp/hooks.py"

# No crash cache in the checkout: every run starts from a fresh node, with fresh ids.
[cache]
enabled = false

[dictionaries.workspaces]
values = ["alpha", "${id[alpha]}", "beta", "${id[beta]}"]

[dictionaries.doomed]
values = ["gamma", "${id[gamma]}"]

[dictionaries.shared]
values = ["delta", "${id[delta]}"]

[dictionaries.items]
values = ["trainer", "data", "train", "serve", "sandbox"]

[dictionaries.images]
values = ["aienv-schemathesis-absent:latest"]

[parameters]
"path.id" = { dictionary = "workspaces", probability = 0.5 }
"path.workspace" = { dictionary = "shared", probability = 0.5 }
"path.name" = { dictionary = "items", probability = 0.5 }
"query.name" = { dictionary = "images", probability = 0.5 }

[[operations]]
include-operation-id = "remove_workspace"
parameters = { "path.id" = { dictionary = "doomed", probability = 0.5 } }

# The one documented 5xx: 503 when this machine has no container engine running (docker save
# streams the image). It is the machine's state, not a fault of the node; any other 5xx fails.
[[operations]]
include-operation-id = "image"
checks = { not_a_server_error = { expected-statuses = ["2xx", "3xx", "4xx", 503] } }
EOF
# The manifest is TOML text (PUT /workspaces/{id}/manifest); Schemathesis sends it as text.
cat >"$tmp/hooks.py" <<'EOF'
import schemathesis

schemathesis.serializer.alias("application/toml", "text/plain")
EOF

seed_arg="${SCHEMATHESIS_SEED:-$RANDOM}"
schemathesis() {
  (cd "$tmp" && uvx --quiet --from "schemathesis==${SCHEMATHESIS_VERSION}" schemathesis \
    --config-file "$tmp/schemathesis.toml" run "$url/api/v1/openapi.json" \
    --header "Authorization: Bearer $api_key" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$EXAMPLES" \
    --seed "$seed_arg" \
    --generation-database none \
    --request-timeout 20 \
    --workers 2 \
    --no-color \
    "$@")
}

# Left out, each for a reason:
#   GET  /events                  a WebSocket stream: it never ends, and Schemathesis speaks HTTP
#   POST /runs                    starts processes, containers and VMs on this machine
#   POST /clones                  contacts peers and writes a clone wherever `to` says
#   POST /peers                   the node would probe whatever address was generated: traffic
#                                 that must not leave loopback
#   POST /workspaces              `create: true` writes an aienv.toml (and folders) at any
#                                 absolute path generated, e.g. /aienv.toml
#   POST /workspaces/proposal     reads every file under any folder generated, e.g. / (slow)
# And PUT /sharing runs on its own afterwards: pausing all sharing would turn the /shares
# operations into 404s for the rest of the run.
rc=0
schemathesis \
  --exclude-path /api/v1/events \
  --exclude-operation-id start_run \
  --exclude-operation-id start_clone \
  --exclude-operation-id add_peer \
  --exclude-operation-id create_workspace \
  --exclude-operation-id propose_workspace \
  --exclude-operation-id set_sharing \
  "$@" || rc=$?
schemathesis --include-operation-id set_sharing "$@" || rc=$?
if [ "$rc" -ne 0 ]; then
  say "Schemathesis found failures (exit $rc); the node's log:"
  tail -n 50 "$tmp/node.log" >&2
fi
exit "$rc"
