#!/usr/bin/env bash
# Records what the GPU probe reads on a machine with NVIDIA GPUs, and checks the probe and a GPU
# run there with a real node (pinned to loopback). The recorded outputs become the parser's test
# fixtures (crates/runtime/tests/fixtures/nvidia-smi/NAME.{csv,txt}).
#
#   bench/record-gpu.sh OUT_DIR [AIENV_BINARY]
set -euo pipefail
out=${1:?usage: record-gpu.sh OUT_DIR [AIENV_BINARY]}
bin=${2:-target/debug/aienv}
mkdir -p "$out"
name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr -cs 'A-Za-z0-9' '-' | tr 'A-Z' 'a-z' | sed 's/-$//')
nvidia-smi --query-gpu=index,name,memory.total,memory.used,driver_version \
  --format=csv,noheader,nounits > "$out/$name.csv"
nvidia-smi > "$out/$name.txt"
echo "recorded $out/$name.csv and .txt"

data=$(mktemp -d)
ws=$(mktemp -d)
trap 'kill $node 2>/dev/null || true; rm -rf "$data" "$ws"' EXIT
"$bin" serve --data-dir "$data" --listen 127.0.0.1:0 --discovery-interface 127.0.0.1 \
  --discovery-group 239.255.77.77:47999 > "$out/serve.log" 2>&1 &
node=$!
for _ in $(seq 100); do [ -f "$data/node.json" ] && break; sleep 0.1; done
export AIENV_DATA_DIR=$data
"$bin" resources | tee "$out/resources.txt"
"$bin" resources --json > "$out/resources.json"
# Warm probe time, as the API answers it (the first call fills the cache).
url=$(python3 -c "import json;print(json.load(open('$data/node.json'))['url'])")
curl -s -o /dev/null "$url/api/v1/resources"
curl -s -o /dev/null -w "warm /resources: %{time_total}s\n" "$url/api/v1/resources" | tee -a "$out/resources.txt"

cat > "$ws/aienv.toml" <<'TOML'
[workspace]
name = "gpu"
[environment.smi]
kind = "process"
command = "echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES; nvidia-smi -L; sleep 30"
requires = { gpus = 1, vram_gb = 16, cuda = "11.0" }
[environment.huge]
kind = "process"
command = "sleep 30"
requires = { gpus = 64, vram_gb = 400 }
TOML
"$bin" workspace add "$ws" >/dev/null
"$bin" run gpu smi | tee "$out/run.txt"
sleep 2
id=$("$bin" runs --json | python3 -c "import json,sys;print(json.load(sys.stdin)[0]['id'])")
"$bin" logs "$id" | tee -a "$out/run.txt"
"$bin" stop "$id" | tee -a "$out/run.txt"
"$bin" run gpu huge 2>&1 | tee -a "$out/run.txt" || true
