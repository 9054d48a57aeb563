#!/usr/bin/env python3
"""Discovery figures, real `aienv serve` processes on 127.0.0.1 (release build), discovery
pinned to 127.0.0.1 on a group port of this run's own:

  1. a node's exec -> listed by another node            (target: p95 under 300 ms)
  2. goodbye (SIGTERM) -> gone from the other's list     (target: under 300 ms)
  3. crash (SIGKILL) -> gone from the other's list       (target: under 5 s)
  4. a share on one node -> in the other's catalog       (target: under 1 s)
  5. 64 nodes: idle CPU of each, memory per peer         (targets: under 1% of a core; under 10 KB)

Usage: bench/discovery.py [--runs N] [--nodes 64] [--bin target/release/aienv]
"""
import argparse, json, os, socket, statistics, subprocess, sys, tempfile, time, urllib.request

def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def get(url, path):
    with urllib.request.urlopen(url + path, timeout=5) as r:
        return json.load(r)

def send(url, method, path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)

class Node:
    def __init__(self, binary, root, name, group):
        self.data = os.path.join(root, name)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen([binary, "serve", "--data-dir", self.data, "--listen", f"127.0.0.1:{self.port}",
                                   "--discovery-interface", "127.0.0.1", "--discovery-group", group, "--name", name],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "AIENV_LOG": "warn"})
        self.wait_ready()
        self.id = get(self.url, "/api/v1/discovery")["instance_id"]

    def wait_ready(self):
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                get(self.url, "/api/v1/health"); return
            except OSError:
                if self.p.poll() is not None: sys.exit(f"node exited with {self.p.returncode}")
                time.sleep(0.005)
        sys.exit("node did not start")

    def peer_ids(self):
        return {p["id"] for p in get(self.url, "/api/v1/peers")}

    def stop(self, sig="term"):
        (self.p.terminate if sig == "term" else self.p.kill)()
        self.p.wait(10)

def poll(check, limit=15.0, every=0.002):
    t = time.perf_counter()
    while time.perf_counter() - t < limit:
        if check(): return time.perf_counter()
        time.sleep(every)
    raise TimeoutError("condition not met")

def pct(xs, q):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]

def ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split(); return int(f[11]) + int(f[12])

def rss_kb(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1])

def share_one(node, root, name):
    ws = os.path.join(root, f"ws-{name}")
    send(node.url, "POST", "/api/v1/workspaces", {"path": ws, "create": True})
    send(node.url, "POST", f"/api/v1/workspaces/ws-{name}/environments", {"name": "notebook", "kind": "process"})
    send(node.url, "POST", f"/api/v1/workspaces/ws-{name}/environments", {"name": "serve", "kind": "container", "image": "vllm/vllm-openai:latest"})
    return ws

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--nodes", type=int, default=64)
    ap.add_argument("--bin", default="target/release/aienv")
    ap.add_argument("--out", default="bench/out/discovery.json")
    a = ap.parse_args()
    group = f"239.255.77.77:{free_port(socket.SOCK_DGRAM)}"
    res = {}
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as root:
        observer = Node(a.bin, root, "observer", group)
        appear, goodbye, crash, catalog = [], [], [], []
        for r in range(a.runs):
            n = Node.__new__(Node)
            t0 = time.perf_counter()
            Node.__init__(n, a.bin, root, f"n{r}", group)
            t = poll(lambda: n.id in observer.peer_ids())
            appear.append((t - n.t0) * 1000)
            if r < max(5, a.runs // 2):
                # a catalog change: share a workspace, time until the observer lists it
                ws = share_one(n, root, f"n{r}")
                t0 = time.perf_counter()
                send(n.url, "PATCH", f"/api/v1/workspaces/ws-n{r}", {"sharing": {"enabled": True, "access": "open"}})
                t = poll(lambda: any(e["owner"]["id"] == n.id for e in get(observer.url, "/api/v1/catalog")))
                catalog.append((t - t0) * 1000)
            if r % 2 == 0:
                t0 = time.perf_counter(); n.p.terminate()
                t = poll(lambda: n.id not in observer.peer_ids()); goodbye.append((t - t0) * 1000); n.p.wait(10)
            elif len(crash) < 5:
                t0 = time.perf_counter(); n.p.kill()
                t = poll(lambda: n.id not in observer.peer_ids()); crash.append((t - t0) * 1000); n.p.wait(10)
            else:
                n.stop()
                poll(lambda: n.id not in observer.peer_ids())
        res["appear_ms"] = {"p50": pct(appear, .5), "p95": pct(appear, .95), "max": max(appear), "n": len(appear)}
        res["goodbye_ms"] = {"p50": pct(goodbye, .5), "max": max(goodbye), "n": len(goodbye)}
        res["crash_ms"] = {"p50": pct(crash, .5), "max": max(crash), "n": len(crash)}
        res["catalog_ms"] = {"p50": pct(catalog, .5), "max": max(catalog), "n": len(catalog)}
        alone_rss = rss_kb(observer.p.pid)
        observer.stop()

        # Many nodes on one machine.
        group2 = f"239.255.77.77:{free_port(socket.SOCK_DGRAM)}"
        nodes = []
        for i in range(a.nodes):
            nodes.append(Node(a.bin, root, f"m{i}", group2))
        for i, n in enumerate(nodes[:8]):
            share_one(n, root, f"m{i}")
            send(n.url, "PATCH", f"/api/v1/workspaces/ws-m{i}", {"sharing": {"enabled": True, "access": "open"}})
        t0 = time.perf_counter()
        poll(lambda: all(len(n.peer_ids()) == a.nodes - 1 for n in nodes[:: max(1, a.nodes // 8)]), limit=60, every=0.2)
        res["many_all_listed_s"] = time.perf_counter() - t0
        time.sleep(3)
        rss_before = [rss_kb(n.p.pid) for n in nodes]
        c0 = [ticks(n.p.pid) for n in nodes]; time.sleep(10); c1 = [ticks(n.p.pid) for n in nodes]
        hz = os.sysconf("SC_CLK_TCK")
        cpu = [(b - x) / hz / 10 * 100 for x, b in zip(c0, c1)]
        catalog_entries = len(get(nodes[-1].url, "/api/v1/catalog"))
        # memory per peer: the resident size of a node that knows N-1 peers (and 8 peers' catalogs)
        # over that of a node that knew one peer, per peer.
        per_peer_kb = (statistics.median(rss_before) - alone_rss) / (a.nodes - 2)
        res["many"] = {"nodes": a.nodes, "cpu_pct_mean": statistics.mean(cpu), "cpu_pct_max": max(cpu),
                       "rss_kb_median": statistics.median(rss_before), "rss_kb_one_peer": alone_rss,
                       "kb_per_peer": per_peer_kb, "catalog_entries_seen": catalog_entries}
        for n in nodes:
            n.p.terminate()
        for n in nodes:
            n.p.wait(10)

    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    json.dump(res, open(a.out, "w"), indent=2)
    r = res
    print("| figure | target | measured |")
    print("|---|---|---|")
    print(f"| exec -> listed by another node (p50 / p95 / max of {r['appear_ms']['n']}) | p95 < 300 ms | {r['appear_ms']['p50']:.0f} / {r['appear_ms']['p95']:.0f} / {r['appear_ms']['max']:.0f} ms |")
    print(f"| goodbye -> gone (p50 / max of {r['goodbye_ms']['n']}) | < 300 ms | {r['goodbye_ms']['p50']:.0f} / {r['goodbye_ms']['max']:.0f} ms |")
    print(f"| crash -> gone (p50 / max of {r['crash_ms']['n']}) | < 5 s | {r['crash_ms']['p50']/1000:.2f} / {r['crash_ms']['max']/1000:.2f} s |")
    print(f"| share -> in another node's catalog (p50 / max of {r['catalog_ms']['n']}) | < 1 s | {r['catalog_ms']['p50']:.0f} / {r['catalog_ms']['max']:.0f} ms |")
    m = r["many"]
    print(f"| {m['nodes']} nodes: idle CPU per node (mean / max) | < 1% of a core | {m['cpu_pct_mean']:.2f}% / {m['cpu_pct_max']:.2f}% |")
    print(f"| {m['nodes']} nodes: resident memory per node (median) | - | {m['rss_kb_median']/1024:.1f} MB |")
    print(f"| {m['nodes']} nodes: memory per peer (peer table + catalog) | < 10 KB | {m['kb_per_peer']:.1f} KB |")
    print(f"| {m['nodes']} nodes: time until all listed all | - | {r['many_all_listed_s']:.1f} s |")

if __name__ == "__main__":
    main()
