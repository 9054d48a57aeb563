#!/usr/bin/env python3
"""Runtime figures, a real `aienv serve` (release build) on 127.0.0.1, discovery pinned to
127.0.0.1 on a group port of this run's own:

  1. overhead of `aienv run` over starting the same tool by hand and polling its port
     (target: under 100 ms). The tool is busybox httpd, which is up in about a millisecond, so
     what is measured is ours. Measured through the CLI (as a user types it, process start
     included) and through the API (POST /runs, then GET /runs/ID until running).
  2. stop of a run whose process tree has 50 processes (target: under 2 s, none left)
  3. 20 concurrent process runs, each writing 20 log lines a second, with a WebSocket subscriber
     (`aienv events`) receiving them: node CPU (target: under 10% of one core)
  4. the resource probe, warm, through GET /api/v1/resources (target: under 50 ms)

Usage: bench/runtime.py [--runs 20] [--bin target/release/aienv]
"""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time
import urllib.request

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def call(url, method="GET", body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)

def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False

def group_members(pgid):
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit(): continue
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        f = stat[stat.rfind(")") + 2:].split()
        if int(f[2]) == pgid and f[0] != "Z": out.append(int(pid))
    return out

def cpu_seconds(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

def pct(xs, q):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(q * len(xs)))]

MANIFEST = """[workspace]
name = "bench"

[environment.httpd]
kind = "process"
[[environment.httpd.tool]]
name = "web"
command = "exec busybox httpd -f -p {host}:{port} -h ."
url = "http://{host}:{port}/"

[environment.tree]
kind = "process"
command = "for i in $(seq 49); do sleep 1000 & done; wait"

[environment.chatty]
kind = "process"
command = "i=0; while true; do i=$((i+1)); echo log line $i from $AIENV_RUN_ID; sleep 0.05; done"
"""

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--bin", default="target/release/aienv")
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    root = tempfile.mkdtemp(prefix="aienv-bench-runtime-")
    ws = os.path.join(root, "ws"); os.makedirs(ws)
    open(os.path.join(ws, "aienv.toml"), "w").write(MANIFEST)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AIENV_LOG": "warn", "AIENV_DATA_DIR": os.path.join(root, "data")}
    group = f"239.255.77.77:{free_port()}"
    node = subprocess.Popen([binary, "serve", "--data-dir", env["AIENV_DATA_DIR"], "--listen", f"127.0.0.1:{port}",
                             "--discovery-interface", "127.0.0.1", "--discovery-group", group, "--name", "bench"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    watcher = None
    try:
        for _ in range(2000):
            if port_open(port): break
            time.sleep(0.005)
        subprocess.run([binary, "workspace", "add", ws], env=env, check=True, stdout=subprocess.DEVNULL)
        api = url + "/api/v1"

        # 1. overhead
        by_hand, cli, via_api = [], [], []
        for _ in range(a.runs):
            p = free_port()
            t = time.perf_counter()
            h = subprocess.Popen(["sh", "-c", f"exec busybox httpd -f -p 127.0.0.1:{p} -h ."], cwd=ws,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while not port_open(p): time.sleep(0.001)
            by_hand.append(time.perf_counter() - t)
            h.terminate(); h.wait()

            t = time.perf_counter()
            out = subprocess.run([binary, "run", "bench", "httpd", "--json"], env=env, check=True, capture_output=True)
            cli.append(time.perf_counter() - t)
            call(f"{api}/runs/{json.loads(out.stdout)['id']}", "DELETE")

            t = time.perf_counter()
            r = call(f"{api}/runs", "POST", {"workspace": "bench", "environment": "httpd"})
            while r["state"] in ("starting", "waiting_ready"):
                time.sleep(0.002)
                r = call(f"{api}/runs/{r['id']}")
            via_api.append(time.perf_counter() - t)
            assert r["state"] == "running", r
            call(f"{api}/runs/{r['id']}", "DELETE")
        m = lambda xs: statistics.median(xs) * 1000
        print(f"1. start to ready, median of {a.runs} (p95):")
        print(f"   by hand (spawn + poll port)  {m(by_hand):7.1f} ms ({pct(by_hand, .95)*1000:.1f})")
        print(f"   aienv run (CLI)              {m(cli):7.1f} ms ({pct(cli, .95)*1000:.1f})   overhead {m(cli) - m(by_hand):.1f} ms")
        print(f"   POST /runs until running     {m(via_api):7.1f} ms ({pct(via_api, .95)*1000:.1f})   overhead {m(via_api) - m(by_hand):.1f} ms")

        # 2. stop of 50 processes
        stops = []
        for _ in range(5):
            r = call(f"{api}/runs", "POST", {"workspace": "bench", "environment": "tree"})
            pgid = None
            while pgid is None or len(group_members(pgid)) < 50:
                time.sleep(0.01)
                pgid = call(f"{api}/runs/{r['id']}")["handle"].get("pgid")
            t = time.perf_counter()
            call(f"{api}/runs/{r['id']}", "DELETE")
            stops.append(time.perf_counter() - t)
            left = group_members(pgid)
            assert not left, f"processes left: {left}"
        print(f"2. stop of a 50-process tree: median {m(stops):.1f} ms, max {max(stops)*1000:.1f} ms, none left")

        # 3. 20 chatty runs with a WebSocket subscriber
        watcher = subprocess.Popen([binary, "events"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        received = []  # read as it comes: a full pipe would stall the subscriber, and so the node's sends
        reader = threading.Thread(target=lambda: received.extend(watcher.stdout), daemon=True)
        reader.start()
        ids = [call(f"{api}/runs", "POST", {"workspace": "bench", "environment": "chatty"})["id"] for _ in range(20)]
        time.sleep(2)
        c0, t0 = cpu_seconds(node.pid), time.perf_counter()
        time.sleep(10)
        c1, t1 = cpu_seconds(node.pid), time.perf_counter()
        for i in ids: call(f"{api}/runs/{i}", "DELETE")
        time.sleep(0.5)
        watcher.terminate()
        reader.join(5)
        got = b"".join(received).decode(errors="replace")
        events = [json.loads(l) for l in got.splitlines() if '"run_log"' in l]
        lines = sum(len(e["log"]["lines"]) for e in events)
        written = sum(len(call(f"{api}/runs/{i}/logs?tail=10000")) for i in ids)
        lagged = got.count('"lagged"')
        print(f"3. 20 runs x 20 lines/s, streamed: node CPU {100 * (c1 - c0) / (t1 - t0):.2f}% of a core; "
              f"{lines} of the {written} lines written reached the subscriber in {len(events)} messages"
              f"{f', {lagged} lagged' if lagged else ''}")

        # 4. resource probe
        call(f"{api}/resources")
        times = []
        for _ in range(50):
            t = time.perf_counter(); call(f"{api}/resources"); times.append(time.perf_counter() - t)
        print(f"4. GET /resources warm: median {m(times):.2f} ms, p95 {pct(times, .95)*1000:.2f} ms")
    finally:
        if watcher and watcher.poll() is None: watcher.kill()
        node.terminate(); node.wait(10)
        # Runs outlive the node by design: end the benchmark's own.
        try:
            for r in json.load(open(os.path.join(env["AIENV_DATA_DIR"], "runs.json"))):
                g = r["handle"].get("pgid")
                if g and group_members(g): os.killpg(g, signal.SIGKILL)
        except (OSError, ValueError):
            pass
        shutil.rmtree(root, ignore_errors=True)

if __name__ == "__main__":
    main()
