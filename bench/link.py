#!/usr/bin/env python3
"""Cloning over a 1 Gbit/s link: two network namespaces made by this script, joined by a veth
pair rate-limited with tc (tbf, 1 gbit), a real node in each (addresses 10.78.0.x exist only
inside them). Needs root and iproute2. Measures

  the weights alone (incompressible), compression off:  effective rate vs line rate (target >= 95%)
  the venv alone, compression on (zstd -1):             uncompressed bytes per second (target > line rate)
  the venv alone, --compress auto:                      what auto chose, and its rate

Usage: bench/link.py [FIXTURE] [--bin target/release/aienv] [--plain]
(--plain: both nodes with --plain-peers, no TLS, to compare with the default)
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time

LINE = 1e9 / 8  # bytes per second

def sh(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fixture", nargs="?", default="/dev/shm/aienv-fixture")
    ap.add_argument("--bin", default=os.path.abspath("target/release/aienv"))
    ap.add_argument("--plain", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces and tc)")
    tag = f"al{os.getpid() % 10000}"
    ns = [f"{tag}a", f"{tag}b"]
    procs = []
    tmp = tempfile.mkdtemp(dir="/dev/shm")
    try:
        for n in ns:
            sh("ip", "netns", "add", n)
        sh("ip", "-n", ns[0], "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", ns[1])
        for i, n in enumerate(ns):
            sh("ip", "-n", n, "addr", "add", f"10.78.0.{i+1}/24", "dev", f"v{i}")
            sh("ip", "-n", n, "link", "set", "lo", "up")
            sh("ip", "-n", n, "link", "set", f"v{i}", "up")
            sh("ip", "netns", "exec", n, "tc", "qdisc", "add", "dev", f"v{i}", "root", "tbf", "rate", "1gbit", "burst", "512kb", "latency", "20ms")
        # Workspaces: the weights alone, the venv alone (hard-linked copies of the fixture).
        for name, part in [("weights", "models"), ("venv", ".venv")]:
            d = os.path.join(tmp, name)
            os.makedirs(d)
            sh("cp", "-al", os.path.join(a.fixture, part), os.path.join(d, part))
            with open(os.path.join(d, "aienv.toml"), "w") as f:
                f.write(f'[workspace]\nname = "{name}"\n\n[sharing]\nenabled = true\naccess = "open"\npython_envs = "copy"\n\n[environment.e]\nkind = "process"\n')
        urls = []
        for i, n in enumerate(ns):
            data = os.path.join(tmp, f"data{i}")
            p = subprocess.Popen(["ip", "netns", "exec", n, a.bin, "serve", "--data-dir", data, "--listen", f"10.78.0.{i+1}:0",
                                  "--discovery-interface", f"10.78.0.{i+1}", "--name", f"host{i}",
                                  *(["--plain-peers"] if a.plain else [])],
                                 stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, f"node{i}.log"), "w"),
                                 env={**os.environ, "AIENV_LOG": "warn"})
            procs.append(p)
            for _ in range(500):
                try:
                    rec = json.load(open(os.path.join(data, "node.json")))
                    if rec["pid"] == p.pid: urls.append(rec["url"]); break
                except (OSError, ValueError): pass
                time.sleep(0.02)
            else:
                sys.exit(f"node {i} did not start: " + open(os.path.join(tmp, f"node{i}.log")).read())
        def cli(i, *args):
            out = sh("ip", "netns", "exec", ns[i], a.bin, "--node", urls[i], "--json", *args, check=False)
            if out.returncode != 0: sys.exit(f"aienv {args}: {out.stderr}")
            return json.loads(out.stdout)
        for name in ["weights", "venv"]:
            cli(0, "workspace", "add", os.path.join(tmp, name))
            cli(0, "peers")  # warm
        time.sleep(1.5)
        for name in ["weights", "venv"]:
            # the source indexes when it shares
            sh("ip", "netns", "exec", ns[0], "curl", "-s", "-o", "/dev/null", f"{urls[0]}/api/v1/shares/{name}/files")
        rows = []
        for name, compress in [("weights", "off"), ("weights", "auto"), ("venv", "off"), ("venv", "on"), ("venv", "auto")]:
            target = os.path.join(tmp, f"clone-{name}-{compress}")
            t = time.perf_counter()
            job = cli(1, "clone", f"host0/{name}", "--to", target, "--compress", compress)
            dt = time.perf_counter() - t
            p = job["progress"]
            rows.append((name, compress, p["bytes_total"], p["bytes_sent"], dt))
            cli(1, "workspace", "remove", job["result_workspace_id"])
            shutil.rmtree(target)
        print("| share | compression | data | on the wire | time | data rate | share of the 1 Gbit/s line |")
        print("|---|---|---|---|---|---|---|")
        for name, c, total, sent, dt in rows:
            print(f"| {name} | {c} | {total/1e6:.0f} MB | {sent/1e6:.0f} MB | {dt:.2f} s | {total/dt/1e6:.0f} MB/s | {total/dt/LINE*100:.0f}% |")
    finally:
        for p in procs:
            p.terminate()
            try: p.wait(10)
            except subprocess.TimeoutExpired: p.kill()
        for n in ns:
            sh("ip", "netns", "del", n, check=False)
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
