#!/usr/bin/env python3
"""Rebuilding the benchmark fixture's venv from a peer's packages (issue 10), against the
baselines in the same run, on the same machine, everything on tmpfs:

  copy:   cp -a FIXTURE/.venv DEST                       (warm page cache: it cannot be dropped here)
  pip:    python3 -m venv X && X/bin/pip install --no-index --find-links WHEELS -r pins.txt
  aienv:  a user node runs a process environment whose `python.requirements` are the fixture's
          pins; it builds `.aienv/venv/ENV` with uv through its own package index, which fetches
          every wheel from the owner node (`--wheel-dir WHEELS`), both with `--package-upstream
          none`. Cold: the user's package store and uv cache are emptied before every repetition.
  aienv, warm uv cache: the same rebuild again right after (store and uv cache kept).
  aienv, plain: the cold rebuild between two nodes started with --plain-peers (no TLS).
  aienv, local: the owner rebuilds the same environment from its own wheel folder (no peer hop).

Targets: aienv (cold, from the peer) < 2x copy, and pip >= 5x aienv.

The wheelhouse holds exactly the fixture venv's versions (`pip freeze`), downloaded once from
PyPI with the interpreter that made the venv (cached in ~/.cache/aienv-bench/wheels/).

Usage: bench/pyenv.py [--fixture DIR] [--runs 3] [--bin target/release/aienv] [--keep]
Without --fixture, the fixture is made on /dev/shm with ../shared/bench/make-fixture.sh (16 MB of
weights, which do not matter here) and removed afterwards unless --keep.
"""
import argparse, datetime, hashlib, json, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clone import call, free_port  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UV_LINE = re.compile(r"\b(Resolved|Prepared|Installed) (\d+) packages? in ([\d.]+)(ms|s)\b")


def base_python(venv):
    """The interpreter that made `venv` (pyvenv.cfg's `home`), and its version."""
    cfg = dict(l.split(" = ", 1) for l in open(os.path.join(venv, "pyvenv.cfg")).read().splitlines() if " = " in l)
    for name in ("python3", "python"):
        p = os.path.join(cfg["home"], name)
        if os.path.exists(p):
            return p, cfg.get("version") or cfg.get("version_info")
    sys.exit(f"no interpreter in {cfg['home']} (from {venv}/pyvenv.cfg)")


def real_uv(given):
    """uv's binary: a pyenv shim costs a bash start per call, so look through it."""
    uv = given or shutil.which("uv")
    if not uv: sys.exit("uv is not installed (pip install uv); the rebuild needs it")
    if "/shims/" in uv:
        uv = subprocess.run(["pyenv", "which", "uv"], capture_output=True, text=True, check=True).stdout.strip()
    return uv


def pins_of(venv):
    out = subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout
    pins = sorted(l for l in out.splitlines() if "==" in l and not l.startswith(("-e", "#")))
    return "\n".join(pins) + "\n"


def wheelhouse(python, version, pins, cache):
    """Every pinned version as a wheel, once per set of pins (downloaded from PyPI)."""
    key = hashlib.sha256((version + pins).encode()).hexdigest()[:12]
    d = os.path.join(cache, f"py{version}-{key}")
    if not os.path.exists(os.path.join(d, ".complete")):
        os.makedirs(d, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
            f.write(pins); f.flush()
            subprocess.run([python, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--only-binary=:all:",
                            "--no-deps", "-d", d, "-r", f.name], check=True)
        open(os.path.join(d, ".complete"), "w").close()
    return d


def tree_size(d):
    n = size = 0
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p): n += 1; size += os.path.getsize(p)
    return n, size


def timed(cmd, **kw):
    t = time.perf_counter(); subprocess.run(cmd, check=True, **kw); return time.perf_counter() - t


class Node:
    def __init__(self, binary, root, name, group, extra, env):
        self.data = os.path.join(root, f"data-{name}")
        port = free_port()
        self.log = os.path.join(root, f"{name}.log")
        self.p = subprocess.Popen([binary, "serve", "--data-dir", self.data, "--listen", f"127.0.0.1:{port}",
                                   "--discovery-interface", "127.0.0.1", "--discovery-group", group, "--name", name,
                                   "--package-upstream", "none", *extra],
                                  stdout=subprocess.DEVNULL, stderr=open(self.log, "w"),
                                  env={**os.environ, "AIENV_LOG": os.environ.get("AIENV_LOG", "warn"), **env})
        self.base = f"http://127.0.0.1:{port}/api/v1"
        for _ in range(1000):
            try: call(self.base + "/health"); return
            except OSError: time.sleep(0.01)
        sys.exit(f"node {name} did not start")

    def stop(self):
        self.p.terminate()
        try: self.p.wait(10)
        except subprocess.TimeoutExpired: self.p.kill(); self.p.wait()


def wait_peer(node, name):
    for _ in range(500):
        if any(p["name"] == name for p in call(node.base + "/peers")): return
        time.sleep(0.02)
    sys.exit(f"{name} never appeared as a peer of {node.base}")


def rebuild(node, ws, env_name, workspace):
    """Starts the environment (its venv removed first, so it is built again); returns the seconds
    from the request until the run got past `starting` (the set-up done and the command started),
    the run record once it ended, and its log."""
    shutil.rmtree(os.path.join(ws, ".aienv", "venv"), ignore_errors=True)
    t = time.perf_counter()
    run = call(node.base + "/runs", "POST", {"workspace": workspace, "environment": env_name})
    while run["state"] == "starting":
        time.sleep(0.01)
        run = call(f"{node.base}/runs/{run['id']}")
    took = time.perf_counter() - t
    while run["state"] not in ("exited", "stopped", "failed"):
        time.sleep(0.05)
        run = call(f"{node.base}/runs/{run['id']}")
    log = call(f"{node.base}/runs/{run['id']}/logs?tail=10000")
    if run["state"] != "exited" or run.get("exit_code") != 0:
        print("\n".join(log[-40:]), file=sys.stderr)
        sys.exit(f"the run on {node.base} ended {run['state']} ({run.get('exit_code')}): {run.get('error')}")
    return took, run, log


def uv_phases(log):
    """uv's own account of its install: Resolved / Prepared / Installed ... in X."""
    out = {}
    for line in log:
        m = UV_LINE.search(line)
        if m:
            out[m.group(1).lower()] = float(m.group(3)) / (1000 if m.group(4) == "ms" else 1)
            out[m.group(1).lower() + "_n"] = int(m.group(2))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixture", help="an existing fixture (make-fixture.sh output); default: make one on /dev/shm")
    ap.add_argument("--make-fixture", default=os.path.join(os.path.dirname(REPO), "shared", "bench", "make-fixture.sh"))
    ap.add_argument("--runs", type=int, default=3, help="repetitions (medians are reported)")
    ap.add_argument("--bin", default=os.path.join(REPO, "target", "release", "aienv"))
    ap.add_argument("--uv", help="uv binary (default: uv on PATH, through a pyenv shim)")
    ap.add_argument("--wheel-cache", default=os.path.expanduser("~/.cache/aienv-bench/wheels"))
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "out", f"pyenv-{datetime.date.today()}.json"))
    ap.add_argument("--keep", action="store_true", help="keep the fixture this script made")
    a = ap.parse_args()
    if not os.access(a.bin, os.X_OK): sys.exit(f"{a.bin} missing: cargo build --release -p aienv-cli")
    uv = real_uv(a.uv)
    uv_version = subprocess.run([uv, "--version"], capture_output=True, text=True).stdout.strip()

    made = None
    fixture = a.fixture
    if not fixture:
        made = fixture = tempfile.mkdtemp(prefix="aienv-pyenv-fixture-", dir="/dev/shm")
        subprocess.run(["bash", a.make_fixture, fixture, "16"], check=True)
    venv = os.path.join(fixture, ".venv")
    python, version = base_python(venv)
    pins = pins_of(venv)
    wheels = wheelhouse(python, version, pins, a.wheel_cache)
    n_pins = pins.count("\n")
    n_wheels = len([f for f in os.listdir(wheels) if f.endswith(".whl")])
    if n_wheels != n_pins: sys.exit(f"{wheels}: {n_wheels} wheels for {n_pins} pins")
    venv_files, venv_bytes = tree_size(venv)
    wheel_bytes = sum(os.path.getsize(os.path.join(wheels, f)) for f in os.listdir(wheels))
    print(f"fixture venv: {venv_files} files, {venv_bytes/1e6:.0f} MB, {n_pins} packages; wheels {wheel_bytes/1e6:.0f} MB; "
          f"python {version} ({python}); {uv_version}", flush=True)

    res = {k: [] for k in ("copy", "pip", "pip_venv", "aienv_peer", "aienv_peer_warm", "aienv_peer_plain", "aienv_local")}
    uvlog = {k: [] for k in ("aienv_peer", "aienv_peer_warm", "aienv_peer_plain", "aienv_local")}
    setups = []
    nodes = []
    tmp = tempfile.mkdtemp(prefix="aienv-pyenv-", dir="/dev/shm")
    try:
        manifest = ('[workspace]\nname = "pyenv-bench"\n\n[environment.fixture]\nkind = "process"\n'
                    'command = "python trainer/train.py"\npython = { requirements = "trainer/requirements.lock.txt" }\n')
        wss = {}
        for who in ("owner", "user", "user-plain"):
            ws = wss[who] = os.path.join(tmp, f"ws-{who}")
            os.makedirs(os.path.join(ws, "trainer"))
            shutil.copy(os.path.join(fixture, "trainer", "train.py"), os.path.join(ws, "trainer"))
            open(os.path.join(ws, "trainer", "requirements.lock.txt"), "w").write(pins)
            open(os.path.join(ws, "aienv.toml"), "w").write(manifest)
        pins_file = os.path.join(wss["user"], "trainer", "requirements.lock.txt")
        uvcache = {w: os.path.join(tmp, f"uv-cache-{w}") for w in wss}
        # uv's venv uses the interpreter that made the fixture, and never downloads one.
        nodeenv = {"AIENV_UV": uv, "UV_PYTHON": python, "UV_PYTHON_DOWNLOADS": "never"}
        group = f"239.255.77.77:{free_port(socket.SOCK_DGRAM)}"
        owner = Node(a.bin, tmp, "owner", group, ["--wheel-dir", wheels], {**nodeenv, "UV_CACHE_DIR": uvcache["owner"]})
        nodes.append(owner)
        user = Node(a.bin, tmp, "user", group, [], {**nodeenv, "UV_CACHE_DIR": uvcache["user"]})
        nodes.append(user)
        # A second pair, peers over plain HTTP (--plain-peers): what TLS between peers costs.
        group_plain = f"239.255.77.77:{free_port(socket.SOCK_DGRAM)}"
        owner_plain = Node(a.bin, tmp, "owner-plain", group_plain, ["--wheel-dir", wheels, "--plain-peers"], nodeenv)
        nodes.append(owner_plain)
        user_plain = Node(a.bin, tmp, "user-plain", group_plain, ["--plain-peers"], {**nodeenv, "UV_CACHE_DIR": uvcache["user-plain"]})
        nodes.append(user_plain)
        wait_peer(user, "owner"); wait_peer(owner, "user")
        wait_peer(user_plain, "owner-plain"); wait_peer(owner_plain, "user-plain")
        for who, n in (("owner", owner), ("user", user), ("user-plain", user_plain)):
            call(n.base + "/workspaces", "POST", {"path": wss[who]})
        # An owner hashes its wheel folder once, when first asked (kept while files stay): done
        # here, outside the timings, as an owner that served before would have.
        for o in (owner, owner_plain):
            for pin in pins.splitlines():
                url = f"{o.base}/index/simple/{re.sub(r'[-_.]+', '-', pin.split('==')[0]).lower()}/"
                try: urlopen_text(url)
                except OSError as e: sys.exit(f"{url}: {e}")

        for r in range(a.runs):
            dest = os.path.join(tmp, "copy")
            res["copy"].append(timed(["cp", "-a", venv, dest])); shutil.rmtree(dest)

            x = os.path.join(tmp, "pipvenv")
            t = time.perf_counter()
            subprocess.run([python, "-m", "venv", x], check=True)
            res["pip_venv"].append(time.perf_counter() - t)
            subprocess.run([os.path.join(x, "bin", "pip"), "install", "-q", "--disable-pip-version-check", "--no-index",
                            "--find-links", wheels, "-r", pins_file], check=True)
            res["pip"].append(time.perf_counter() - t); shutil.rmtree(x)

            # Cold: nothing of the packages on the user's machine.
            shutil.rmtree(uvcache["user"], ignore_errors=True)
            shutil.rmtree(os.path.join(user.data, "packages"), ignore_errors=True)
            took, run, log = rebuild(user, wss["user"], "fixture", "pyenv-bench")
            res["aienv_peer"].append(took); uvlog["aienv_peer"].append(uv_phases(log)); setups.append(run.get("setup"))
            if not any("accuracy" in l for l in log): sys.exit("train.py printed no accuracy:\n" + "\n".join(log[-20:]))
            if r == 0:
                built = os.path.join(wss["user"], ".aienv", "venv", "fixture")
                got = subprocess.run([uv, "pip", "freeze", "--python", os.path.join(built, "bin", "python")],
                                     capture_output=True, text=True, check=True).stdout
                canon = lambda text: {re.sub(r"[-_.]+", "-", l.split("==")[0]).lower() + "==" + l.split("==")[1]
                                      for l in text.splitlines() if "==" in l}
                if canon(got) != canon(pins):
                    sys.exit("the rebuilt venv differs from the fixture's: " + " ".join(sorted(canon(got) ^ canon(pins))))
                built_files, built_bytes = tree_size(built)

            took, _, log = rebuild(user, wss["user"], "fixture", "pyenv-bench")
            res["aienv_peer_warm"].append(took); uvlog["aienv_peer_warm"].append(uv_phases(log))

            shutil.rmtree(uvcache["user-plain"], ignore_errors=True)
            shutil.rmtree(os.path.join(user_plain.data, "packages"), ignore_errors=True)
            took, _, log = rebuild(user_plain, wss["user-plain"], "fixture", "pyenv-bench")
            res["aienv_peer_plain"].append(took); uvlog["aienv_peer_plain"].append(uv_phases(log))

            shutil.rmtree(uvcache["owner"], ignore_errors=True)
            took, _, log = rebuild(owner, wss["owner"], "fixture", "pyenv-bench")
            res["aienv_local"].append(took); uvlog["aienv_local"].append(uv_phases(log))
            print(f"run {r + 1}/{a.runs}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in res.items()), flush=True)
    finally:
        for n in reversed(nodes): n.stop()
        if os.environ.get("AIENV_LOG"):
            for n in nodes: print(open(n.log).read()[-3000:])
        shutil.rmtree(tmp, ignore_errors=True)
        if made and not a.keep: shutil.rmtree(made, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in res.items()}
    uvmed = {k: {p: statistics.median(d[p] for d in v if p in d) for p in ("resolved", "prepared", "installed") if all(p in d for d in v)}
             for k, v in uvlog.items()}
    summary = {"date": str(datetime.date.today()), "runs": a.runs, "python": version, "uv": uv_version,
               "venv_files": venv_files, "venv_bytes": venv_bytes, "packages": n_pins, "wheel_bytes": wheel_bytes,
               "rebuilt_files": built_files, "rebuilt_bytes": built_bytes,
               "seconds": res, "median": med, "uv_phases": uvlog, "uv_phases_median": uvmed, "setup": setups,
               "ratio_rebuild_over_copy": med["aienv_peer"] / med["copy"], "ratio_pip_over_rebuild": med["pip"] / med["aienv_peer"]}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    json.dump(summary, open(a.out, "w"), indent=2)

    def ph(k):
        u = uvmed[k]
        return ", ".join(f"{p} {u[p]:.2f}" for p in ("resolved", "prepared", "installed") if p in u)
    print(f"\nvenv: {n_pins} packages, {venv_files} files, {venv_bytes/1e6:.0f} MB (rebuilt: {built_files} files, "
          f"{built_bytes/1e6:.0f} MB: no pip, no .pyc); wheels {wheel_bytes/1e6:.0f} MB; medians of {a.runs}, seconds")
    print("| method | seconds | uv's phases (s) |")
    print("|---|---|---|")
    print(f"| cp -a of the venv (warm page cache) | {med['copy']:.2f} | |")
    print(f"| python -m venv + pip install --no-index --find-links (venv alone {med['pip_venv']:.2f}) | {med['pip']:.2f} | |")
    print(f"| aienv rebuild from the peer, cold (request -> command started) | {med['aienv_peer']:.2f} | {ph('aienv_peer')} |")
    print(f"| same, uv cache and store warm | {med['aienv_peer_warm']:.2f} | {ph('aienv_peer_warm')} |")
    print(f"| same, cold, peers over plain HTTP (--plain-peers) | {med['aienv_peer_plain']:.2f} | {ph('aienv_peer_plain')} |")
    print(f"| aienv rebuild on the owner from its wheel folder, cold uv cache | {med['aienv_local']:.2f} | {ph('aienv_local')} |")
    r1, r2 = summary["ratio_rebuild_over_copy"], summary["ratio_pip_over_rebuild"]
    print(f"\nrebuild / copy = {r1:.2f}x (target < 2x: {'met' if r1 < 2 else 'NOT met'})")
    print(f"pip / rebuild  = {r2:.2f}x (target >= 5x: {'met' if r2 >= 5 else 'NOT met'})")
    print(f"written {a.out}")


def urlopen_text(url):
    import urllib.request
    with urllib.request.urlopen(url, timeout=120) as r:
        return r.read()


if __name__ == "__main__":
    main()
