#!/usr/bin/env python3
"""Cloning the benchmark fixture between two real nodes on 127.0.0.1 (release build, both ends on
tmpfs), against the baselines in the same run:

  rsync -a SRC/ DST/                                   (tmpfs to tmpfs, same machine)
  tar -cf - | zstd -1 -T0 | socat TCP | zstd -d | tar -xf -   (over loopback)
  aienv clone: from the request to the registered workspace, every hash verified

then a re-clone after 1% of the files changed (aienv pull against rsync of the same update),
and the peak resident memory of both nodes.

Usage: bench/clone.py [FIXTURE] [--runs 3] [--bin target/release/aienv]
Needs rsync, socat and zstd (bench/clone.sh installs them on Debian).
"""
import argparse, json, os, random, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request

def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def call(url, method="GET", body=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)

def node(binary, root, name, group, extra=()):
    port = free_port()
    p = subprocess.Popen([binary, "serve", "--data-dir", os.path.join(root, f"data-{name}"), "--listen", f"127.0.0.1:{port}",
                          "--discovery-interface", "127.0.0.1", "--discovery-group", group, "--name", name, *extra],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(root, f"{name}.log"), "w"),
                         env={**os.environ, "AIENV_LOG": os.environ.get("AIENV_LOG", "warn")})
    base = f"http://127.0.0.1:{port}/api/v1"
    for _ in range(1000):
        try: call(base + "/health"); return p, base
        except OSError: time.sleep(0.01)
    sys.exit("node did not start")

def hwm_mb(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmHWM:"): return int(l.split()[1]) / 1024

def timed(cmd, **kw):
    t = time.perf_counter(); subprocess.run(cmd, check=True, **kw); return time.perf_counter() - t

def tar_zstd_socat(src, dst):
    os.makedirs(dst)
    port = free_port()
    recv = subprocess.Popen(f"socat -u TCP-LISTEN:{port},reuseaddr,bind=127.0.0.1 - | zstd -d -q | tar -xf - -C {dst}", shell=True)
    time.sleep(0.2)
    t = time.perf_counter()
    subprocess.run(f"tar -cf - -C {src} . | zstd -1 -T0 -q | socat -u - TCP:127.0.0.1:{port}", shell=True, check=True)
    recv.wait()
    return time.perf_counter() - t

def wait_job(base, job_id):
    while True:
        j = call(f"{base}/clones/{job_id}")
        if j["state"] != "running": return j
        time.sleep(0.005)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fixture", nargs="?", default="/dev/shm/aienv-fixture")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bin", default="target/release/aienv")
    ap.add_argument("--out", default="bench/out/clone.json")
    a = ap.parse_args()
    res = {"rsync": [], "tar_zstd": [], "aienv": [], "rsync_update": [], "aienv_pull": [], "pull_sent": [], "changed_bytes": []}
    hwm = []
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        src = os.path.join(tmp, "src")
        subprocess.run(["cp", "-a", a.fixture, src], check=True)
        # Share everything rsync copies: the default exclusions would leave out __pycache__.
        with open(os.path.join(src, "aienv.toml"), "w") as f:
            f.write('[workspace]\nname = "fixture"\n\n[sharing]\nenabled = true\naccess = "open"\npython_envs = "copy"\ninclude = ["__pycache__/"]\n\n'
                    '[environment.notebook]\nkind = "process"\n')
        files = [os.path.join(d, n) for d, _, ns in os.walk(src) for n in ns]
        size = sum(os.path.getsize(f) for f in files if not os.path.islink(f))
        group = f"239.255.77.77:{free_port(socket.SOCK_DGRAM)}"
        sp, sbase = node(a.bin, tmp, "src", group)
        dp, dbase = node(a.bin, tmp, "dst", group)
        try:
            call(sbase + "/workspaces", "POST", {"path": src})
            # The source indexes when it shares (kept current by the watcher); warm it here.
            call(sbase + "/shares/fixture/files")
            for _ in range(500):
                if any(e["workspace"] == "fixture" for e in call(dbase + "/catalog")): break
                time.sleep(0.02)
            for r in range(a.runs):
                d = os.path.join(tmp, f"rsync{r}"); res["rsync"].append(timed(["rsync", "-a", src + "/", d + "/"]))
                d2 = os.path.join(tmp, f"tar{r}"); res["tar_zstd"].append(tar_zstd_socat(src, d2)); shutil.rmtree(d2)
                target = os.path.join(tmp, f"clone{r}")
                t = time.perf_counter()
                job = call(dbase + "/clones", "POST", {"source": "src/fixture", "to": target, "compress": "auto"})
                job = wait_job(dbase, job["id"])
                res["aienv"].append(time.perf_counter() - t)
                if job["state"] != "done": sys.exit(f"clone failed: {job['error']}")
                if r < a.runs - 1:
                    call(f"{dbase}/workspaces/{job['result_workspace_id']}", "DELETE"); shutil.rmtree(target)
            # 1% of the files change (a few bytes appended), then both tools bring the copy up to
            # date; a fresh 1% each run.
            rnd = random.Random(7)
            regular = [f for f in files if not os.path.islink(f) and "aienv.toml" not in f]
            last = os.path.join(tmp, f"rsync{a.runs - 1}")
            for r in range(a.runs):
                changed = rnd.sample(regular, len(regular) // 100)
                time.sleep(1.1)  # a new mtime second, so rsync's quick check sees the change
                changed_bytes = 0
                for f in changed:
                    with open(f, "ab") as fh: fh.write(b"# changed\n")
                    changed_bytes += os.path.getsize(f)
                res["changed_bytes"].append(changed_bytes)
                res["rsync_update"].append(timed(["rsync", "-a", src + "/", last + "/"]))
                t = time.perf_counter()
                job = call(dbase + "/clones", "POST", {"pull": "fixture", "compress": "auto"})
                job = wait_job(dbase, job["id"])
                res["aienv_pull"].append(time.perf_counter() - t)
                res["pull_sent"].append(job["progress"]["bytes_sent"])
                if job["state"] != "done": sys.exit(f"pull failed: {job['error']}")
            # The pulled clone is the source, byte for byte (what rsync's copy is too).
            diff = subprocess.run(["diff", "-rq", "--no-dereference", src, target], capture_output=True, text=True)
            # Not compared: the clone's own record, the manifest it gets (not shared), and secrets
            # the default exclusions keep home (*.pem, *.key).
            import re
            skip = re.compile(r"(: \.aienv$|aienv\.toml|^Only in " + re.escape(src) + r".*: .*\.(pem|key)$)")
            extra = [l for l in diff.stdout.splitlines() if not skip.search(l)]
            if extra: sys.exit("the pulled clone differs from the source:\n" + "\n".join(extra[:20]))
            hwm = [hwm_mb(sp.pid), hwm_mb(dp.pid)]
        finally:
            sp.terminate(); dp.terminate(); sp.wait(10); dp.wait(10)
            if os.environ.get("AIENV_LOG"):
                print(open(os.path.join(tmp, "dst.log")).read()[-3000:])
                print(open(os.path.join(tmp, "src.log")).read()[-1500:])
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    json.dump({**res, "hwm_mb": hwm, "files": len(files), "bytes": size}, open(a.out, "w"), indent=2)
    med = {k: statistics.median(v) for k, v in res.items() if v}
    print(f"fixture: {len(files)} files, {size/1e9:.2f} GB; medians of {a.runs}")
    print("| figure | target | measured |")
    print("|---|---|---|")
    print(f"| full clone, request -> registered, every hash verified | <= 0.8x rsync -a | {med['aienv']:.2f} s = {med['aienv']/med['rsync']:.2f}x rsync ({med['rsync']:.2f} s) |")
    print(f"| same, against tar, zstd -1, TCP | <= 0.5x | {med['aienv']/med['tar_zstd']:.2f}x ({med['tar_zstd']:.2f} s) |")
    print(f"| pull after 1% of files changed: time | <= rsync of the update | {med['aienv_pull']:.3f} s = {med['aienv_pull']/med['rsync_update']:.2f}x rsync ({med['rsync_update']:.3f} s) |")
    print(f"| pull after 1% changed: bytes sent / changed bytes | <= 1.2x | {med['pull_sent']/med['changed_bytes']:.2f}x ({med['pull_sent']/1e6:.1f} MB / {med['changed_bytes']/1e6:.1f} MB) |")
    print(f"| peak resident memory, source / receiver | < 150 MB | {hwm[0]:.0f} / {hwm[1]:.0f} MB |")

if __name__ == "__main__":
    main()
