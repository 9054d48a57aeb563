#!/usr/bin/env python3
"""What TLS between peers costs a clone: the benchmark fixture cloned between two real nodes on
127.0.0.1 (release build, tmpfs at both ends) over TLS (the default: pinned certificates,
AES-GCM via rustls/ring), and between two nodes started with --plain-peers, in the same run,
alternating, so both see the same machine.

Target: TLS costs under 10% of clone throughput.

Usage: bench/tls.py [FIXTURE] [--runs 3] [--bin target/release/aienv]
"""
import argparse, json, os, socket, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clone import call, free_port, node, wait_job  # noqa: E402


def pair(binary, tmp, src_dir, label, extra, procs):
    """Two nodes sharing the fixture; their processes go into `procs` at once, so that a failure
    later on still ends them."""
    group = f"239.255.77.77:{free_port(socket.SOCK_DGRAM)}"
    root = os.path.join(tmp, label)
    os.makedirs(root)
    s = node(binary, root, "src", group, extra)
    procs.append(s[0])
    d = node(binary, root, "dst", group, extra)
    procs.append(d[0])
    call(s[1] + "/workspaces", "POST", {"path": src_dir})
    call(s[1] + "/shares/fixture/files")  # index once, outside the timings
    for _ in range(500):
        if any(e["workspace"] == "fixture" for e in call(d[1] + "/catalog")): break
        time.sleep(0.02)
    else:
        sys.exit(f"{label}: the share never reached the other node")
    return s, d


def clone_once(dbase, target):
    t = time.perf_counter()
    job = call(dbase + "/clones", "POST", {"source": "src/fixture", "to": target, "compress": "off"})
    job = wait_job(dbase, job["id"])
    took = time.perf_counter() - t
    if job["state"] != "done": sys.exit(f"clone failed: {job['error']}")
    call(f"{dbase}/workspaces/{job['result_workspace_id']}", "DELETE")
    subprocess.run(["rm", "-rf", target], check=True)
    return took, job["progress"]["bytes_done"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fixture", nargs="?", default="/dev/shm/aienv-fixture")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bin", default="target/release/aienv")
    ap.add_argument("--out", default="bench/out/tls.json")
    a = ap.parse_args()
    res = {"tls": [], "plain": []}
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        src = os.path.join(tmp, "src")
        subprocess.run(["cp", "-a", a.fixture, src], check=True)
        with open(os.path.join(src, "aienv.toml"), "w") as f:
            f.write('[workspace]\nname = "fixture"\n\n[sharing]\nenabled = true\naccess = "open"\npython_envs = "copy"\n')
        procs = []
        try:
            pairs = {"tls": pair(a.bin, tmp, src, "tls", (), procs),
                     "plain": pair(a.bin, tmp, src, "plain", ("--plain-peers",), procs)}
            scheme = {k: call(d[1] + "/peers")[0]["scheme"] for k, (s, d) in pairs.items()}
            if scheme != {"tls": "https", "plain": "http"}: sys.exit(f"unexpected schemes: {scheme}")
            size = 0
            for r in range(a.runs):
                for k in ("plain", "tls") if r % 2 else ("tls", "plain"):
                    took, size = clone_once(pairs[k][1][1], os.path.join(tmp, f"{k}{r}"))
                    res[k].append(took)
        finally:
            for p in procs: p.terminate()
            for p in procs: p.wait(10)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    json.dump({**res, "bytes": size}, open(a.out, "w"), indent=2)
    med = {k: statistics.median(v) for k, v in res.items()}
    cost = 1 - med["plain"] / med["tls"]
    print(f"fixture: {size/1e9:.2f} GB cloned, compression off; medians of {a.runs}, alternating")
    print("| clone | time | throughput |")
    print("|---|---|---|")
    for k in ("plain", "tls"):
        print(f"| {k} | {med[k]:.2f} s | {size/med[k]/1e6:.0f} MB/s |")
    print(f"TLS costs {cost*100:.1f}% of clone throughput (target: under 10%)")


if __name__ == "__main__":
    main()
