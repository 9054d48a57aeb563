#!/usr/bin/env python3
"""Indexing a share: the time a node takes to build the file manifest (every file hashed with
BLAKE3) of the benchmark fixture, through the real API, release build, on 127.0.0.1.

  first request:  nothing cached, every byte read and hashed (target: at least 1 GB/s, warm page cache)
  second request: nothing changed, only metadata is read

Usage: bench/index.py [FIXTURE_DIR] [--bin target/release/aienv]
The fixture comes from ../shared/bench/make-fixture.sh (bench/index.sh makes it on /dev/shm).
"""
import argparse, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def call(url, method="GET", body=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fixture", nargs="?", default="/dev/shm/aienv-fixture")
    ap.add_argument("--bin", default="target/release/aienv")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    if not os.path.isdir(a.fixture):
        sys.exit(f"no fixture at {a.fixture}: run ../shared/bench/make-fixture.sh {a.fixture}")
    cold, warm, size, files = [], [], 0, 0
    for r in range(a.runs):
        with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
            ws = os.path.join(tmp, "ws")
            # A copy per run, so the first request really finds nothing cached (cp -a keeps it in tmpfs).
            subprocess.run(["cp", "-a", a.fixture, ws], check=True)
            port = free_port(); base = f"http://127.0.0.1:{port}/api/v1"
            p = subprocess.Popen([a.bin, "serve", "--data-dir", os.path.join(tmp, "data"), "--listen", f"127.0.0.1:{port}",
                                  "--discovery-interface", "127.0.0.1", "--discovery-group", f"239.255.77.77:{free_port()}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "AIENV_LOG": "warn"})
            try:
                for _ in range(500):
                    try: call(base + "/health"); break
                    except OSError: time.sleep(0.01)
                call(base + "/workspaces", "POST", {"path": ws, "create": True, "name": "fixture"})
                call(base + "/workspaces/fixture", "PATCH", {"sharing": {"enabled": True, "access": "open"}})
                t = time.perf_counter(); m = call(base + "/shares/fixture/files"); cold.append(time.perf_counter() - t)
                t = time.perf_counter(); call(base + "/shares/fixture/files"); warm.append(time.perf_counter() - t)
                size, files = m["bytes"], m["files"]
            finally:
                p.terminate(); p.wait(10)
    best = min(cold)
    print(f"fixture: {files} files, {size/1e9:.2f} GB (after default exclusions)")
    print("| figure | target | measured |")
    print("|---|---|---|")
    print(f"| index, nothing cached (best / worst of {a.runs}) | >= 1 GB/s | {size/1e9/best:.2f} GB/s ({best:.2f} s) / {size/1e9/max(cold):.2f} GB/s |")
    print(f"| re-index, nothing changed (best of {a.runs}) | - | {min(warm)*1000:.0f} ms |")

if __name__ == "__main__":
    main()
