#!/usr/bin/env python3
"""Foundation figures for `aienv serve` (release build), all on 127.0.0.1:

  1. exec -> first 200 on /api/v1/health            (target: under 100 ms)
  2. idle node: resident memory, CPU over 10 s       (target: under 20 MB, no periodic CPU)
  3. 1,000 registered workspaces: exec -> 200        (start-up load, target: under 300 ms)
  4. GET /api/v1/workspaces with 1,000 workspaces, 50 concurrent clients, wrk: p99 (target: 20 ms)

Usage: bench/foundation.py [--runs N] [--bin target/release/aienv]
Builds nothing: run `cargo build --release -p aienv-cli` first (bench/foundation.sh does both).
"""
import argparse, json, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

def health_ok(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False

def start(binary, data_dir):
    """Starts a node and returns (process, port, ms from exec to the first 200)."""
    port = free_port()
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "serve", "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}",
                          "--discovery-interface", "127.0.0.1", "--name", "bench"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "AIENV_LOG": "warn"})
    while not health_ok(port):
        if p.poll() is not None:
            sys.exit(f"aienv serve exited with {p.returncode}")
        if time.perf_counter() - t0 > 10:
            p.kill(); sys.exit("aienv serve did not answer within 10 s")
    return p, port, (time.perf_counter() - t0) * 1000

def stop(p):
    p.terminate()
    try: p.wait(5)
    except subprocess.TimeoutExpired: p.kill(); p.wait()

def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

def cpu_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime

MANIFEST = """[workspace]
name = "ws-{i}"
description = "benchmark workspace {i}"

[sharing]
enabled = {shared}
access = "token"
exclude = [".venv/", "*.ckpt"]

[[project]]
name = "trainer"
git = {{ remote = "https://example.org/trainer.git", rev = "main" }}

[[project]]
name = "data"

[environment.notebook]
kind = "process"
projects = ["trainer", "data"]
python = {{ version = "3.11", requirements = "trainer/requirements.txt" }}
requires = {{ gpus = 1, vram_gb = 16, ram_gb = 32 }}

[[environment.notebook.tool]]
name = "JupyterLab"
command = "jupyter lab --no-browser --port {{port}} --IdentityProvider.token={{token}}"
url = "http://{{host}}:{{port}}/lab?token={{token}}"
ready = {{ http = "/api/status" }}

[environment.serve]
kind = "container"
image = "vllm/vllm-openai:latest"
ports = [8000]
gpus = "all"
"""

def make_registry(root, n):
    data = os.path.join(root, "data"); os.makedirs(data)
    entries = []
    for i in range(n):
        d = os.path.join(root, "ws", f"ws-{i}"); os.makedirs(d)
        with open(os.path.join(d, "aienv.toml"), "w") as f:
            f.write(MANIFEST.format(i=i, shared="true" if i % 3 == 0 else "false"))
        entries.append({"id": f"{i:012x}", "path": d, "added": 0})
    with open(os.path.join(data, "registry.json"), "w") as f:
        json.dump({"format": 1, "workspaces": entries}, f)
    return data

def wrk_p99(port, seconds):
    wrk = shutil.which("wrk")
    if not wrk:
        return None, "wrk not installed (apt-get install wrk)"
    out = subprocess.run([wrk, "-t2", "-c50", f"-d{seconds}s", "--latency",
                          f"http://127.0.0.1:{port}/api/v1/workspaces"], capture_output=True, text=True).stdout
    def ms(label):
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        v = float(m.group(1)); return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"p50_ms": ms("50%"), "p90_ms": ms("90%"), "p99_ms": ms("99%"), "requests_per_s": rps}, out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--bin", default="target/release/aienv")
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--out", default="bench/out/foundation.json")
    a = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        # 1. start-up, empty registry (a fresh data dir each run, as on first start)
        times = []
        for r in range(a.runs):
            p, _, ms = start(a.bin, os.path.join(tmp, f"empty{r}"))
            times.append(ms); stop(p)
        results["startup_empty_ms"] = {"median": statistics.median(times), "max": max(times)}

        # 2. idle node
        p, port, _ = start(a.bin, os.path.join(tmp, "idle"))
        time.sleep(2)
        c0 = cpu_ticks(p.pid); time.sleep(10); c1 = cpu_ticks(p.pid)
        hz = os.sysconf("SC_CLK_TCK")
        results["idle"] = {"rss_mb": rss_mb(p.pid), "cpu_ms_per_10s": (c1 - c0) * 1000 / hz}
        stop(p)

        # 3. 1,000 workspaces: start-up load
        data = make_registry(tmp, 1000)
        times = []
        for _ in range(max(5, a.runs // 2)):
            p, port, ms = start(a.bin, data)
            times.append(ms); stop(p)
        results["startup_1000_ms"] = {"median": statistics.median(times), "max": max(times)}

        # 4. list latency under load
        p, port, _ = start(a.bin, data)
        results["idle_1000"] = {"rss_mb": rss_mb(p.pid)}
        wrk, raw = wrk_p99(port, a.wrk_seconds)
        results["list_1000_c50"] = wrk if wrk else {"skipped": raw}
        stop(p)

    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    json.dump(results, open(a.out, "w"), indent=2)
    s, i, l = results["startup_empty_ms"], results["idle"], results["startup_1000_ms"]
    print("| figure | target | measured |")
    print("|---|---|---|")
    print(f"| exec -> 200 on /health (median / max of {a.runs}) | < 100 ms | {s['median']:.1f} / {s['max']:.1f} ms |")
    print(f"| idle node: resident memory | < 20 MB | {i['rss_mb']:.1f} MB |")
    print(f"| idle node: CPU used in 10 s | timers only | {i['cpu_ms_per_10s']:.0f} ms |")
    print(f"| 1,000 workspaces: exec -> 200 (median / max) | < 300 ms | {l['median']:.1f} / {l['max']:.1f} ms |")
    print(f"| 1,000 workspaces: resident memory | - | {results['idle_1000']['rss_mb']:.1f} MB |")
    w = results["list_1000_c50"]
    if "p99_ms" in w:
        print(f"| GET /workspaces (1,000), 50 clients: p50 / p99 | p99 < 20 ms | {w['p50_ms']:.2f} / {w['p99_ms']:.2f} ms ({w['requests_per_s']:.0f} req/s) |")
    else:
        print(f"| GET /workspaces (1,000), 50 clients | p99 < 20 ms | skipped: {w['skipped']} |")

if __name__ == "__main__":
    main()
