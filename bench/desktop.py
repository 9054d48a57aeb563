#!/usr/bin/env python3
"""Desktop app figures, release build, under an Xvfb display of this run's own, discovery pinned
to 127.0.0.1 on a group port of this run's own:

  1. cold start, 5 times, each with a fresh data dir and fresh WebKit caches: from spawn to the
     app's `aienv-desktop: ready in N ms` line, printed once the page shows the node's data
     (target: under 1.5 s). A build that does not print that line is timed to its window
     existing and its node answering /health, and the table says so.
  2. resident memory of the whole app after 10 s idle: the app and every process below it
     (WebKit's web and network processes), as the sum of RSS and the sum of PSS, which counts
     shared pages once (target: under 150 MB)
     Baseline in the same run: the same web UI in a Chromium app window (`chromium --app=URL`,
     what an Electron app is made of) on a headless `aienv serve`, both counted the same way
  3. size of the release binary (target: under 25 MB) and of the .deb under
     target/release/bundle/deb/ when one is there (scripts/build-deb.sh; target: under 10 MB)

Without --bin it builds target/release/aienv-desktop first, with the features the Tauri CLI's
build uses, so the binary measured is the one the .deb ships.

Usage: bench/desktop.py [--runs 5] [--bin target/release/aienv-desktop] [--out bench/out/desktop.json]
"""
import argparse, glob, json, os, shutil, signal, socket, statistics, subprocess, tempfile, time
import urllib.request

READY = "aienv-desktop: ready in "
TITLE = "AI Environment Manager"

def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def health(url):
    try:
        req = urllib.request.Request(url + "/api/v1/health")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False

def procs():
    """pid -> ppid of every live process."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit(): continue
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        f = stat[stat.rfind(")") + 2:].split()
        if f[0] != "Z": out[int(pid)] = int(f[1])
    return out

def descendants(root):
    ppids = procs()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in ppids.items() if pp == p]
        out += kids; todo += kids
    return out

def comm(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return ""

def status_kb(pid, field, path="status"):
    try:
        for line in open(f"/proc/{pid}/{path}"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0

class Xvfb:
    def __init__(self):
        for n in range(200, 300):
            if os.path.exists(f"/tmp/.X11-unix/X{n}") or os.path.exists(f"/tmp/.X{n}-lock"): continue
            self.p = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(200):
                if self.p.poll() is not None: break  # another server took the number meanwhile
                if os.path.exists(f"/tmp/.X11-unix/X{n}"):
                    self.display = f":{n}"; return
                time.sleep(0.02)
            self.p.kill(); self.p.wait()
        raise SystemExit("no Xvfb display could be started in :200..:299")

    def has_window(self):
        env = {**os.environ, "DISPLAY": self.display}
        return subprocess.run(["xdotool", "search", "--name", f"^{TITLE}$"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0

    def stop(self):
        self.p.terminate(); self.p.wait(10)

class App:
    """One cold start: fresh data dir, fresh XDG dirs (WebKit's caches), a session bus of its own."""
    def __init__(self, binary, x, root, i):
        self.dir = os.path.join(root, f"run{i}")
        self.data = os.path.join(self.dir, "data"); os.makedirs(self.data)
        open(os.path.join(self.data, "config.toml"), "w").write(
            f'name = "bench{i}"\ndiscovery_interfaces = ["127.0.0.1"]\n'
            f'discovery_group = "239.255.77.77:{free_port(socket.SOCK_DGRAM)}"\n')
        env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "AIENV_NODE", "AIENV_API_KEY")}
        env.update(DISPLAY=x.display, GDK_BACKEND="x11", AIENV_DATA_DIR=self.data, AIENV_LOG="warn",
                   XDG_DATA_HOME=os.path.join(self.dir, "xdg-data"), XDG_CACHE_HOME=os.path.join(self.dir, "xdg-cache"),
                   XDG_CONFIG_HOME=os.path.join(self.dir, "xdg-config"))
        cmd = ([shutil.which("dbus-run-session"), "--"] if shutil.which("dbus-run-session") else []) + [binary]
        self.log = os.path.join(self.dir, "app.log")
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=open(self.log, "w"))
        self.pid = None

    def app_pid(self):
        if self.pid is None:
            self.pid = next((p for p in [self.p.pid] + descendants(self.p.pid) if comm(p) == "aienv-desktop"), None)
        return self.pid

    def ready_line(self):
        return next((l for l in open(self.log, errors="replace") if l.startswith(READY)), None)

    def wait_ready(self, x, limit=60):
        """Seconds from spawn to ready; the app's own figure (ms, None without its line)."""
        fallback = None
        while time.perf_counter() - self.t0 < limit:
            if self.p.poll() is not None:
                raise SystemExit(f"the app exited with {self.p.returncode}:\n{open(self.log).read()[-3000:]}")
            line = self.ready_line()
            if line:
                return time.perf_counter() - self.t0, int(line[len(READY):].split()[0])
            if fallback is None:
                try:
                    url = json.load(open(os.path.join(self.data, "node.json")))["url"]
                except (OSError, ValueError, KeyError):
                    url = None
                if url and health(url) and x.has_window():
                    fallback = time.perf_counter() - self.t0
            # The window and /health come before the page has loaded: a build that prints the
            # line prints it a little later, so wait a while for it before falling back.
            elif time.perf_counter() - self.t0 > fallback + 5:
                return fallback, None
            time.sleep(0.01)
        raise SystemExit(f"the app was not ready within {limit} s:\n{open(self.log).read()[-3000:]}")

    def memory(self):
        """(RSS, PSS) in KB, summed over the app and every process below it."""
        pids = [self.app_pid()] + descendants(self.app_pid())
        return (sum(status_kb(p, "VmRSS") for p in pids), sum(status_kb(p, "Pss", "smaps_rollup") for p in pids),
                sorted(comm(p) for p in pids))

    def stop(self):
        tree = [self.p.pid] + descendants(self.p.pid)
        if self.app_pid(): os.kill(self.app_pid(), signal.SIGTERM)
        try:
            self.p.wait(15)
        except subprocess.TimeoutExpired:
            pass
        for p in tree:  # whatever did not quit on SIGTERM
            try: os.kill(p, signal.SIGKILL)
            except OSError: pass
        self.p.wait()

def tree_memory(root):
    """(RSS, PSS) in KB over `root` and every process below it."""
    pids = [root] + descendants(root)
    return sum(status_kb(p, "VmRSS") for p in pids), sum(status_kb(p, "Pss", "smaps_rollup") for p in pids)

def chromium_baseline(x, root):
    """The web UI in a Chromium app window on a headless node, after 10 s idle: (RSS, PSS) in KB of
    Chromium's processes plus the node's. None when Chromium or the release CLI is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    cli = os.path.abspath("target/release/aienv")
    if not chromium or not os.path.exists(cli):
        return None
    data = os.path.join(root, "baseline-node")
    node = subprocess.Popen([cli, "serve", "--data-dir", data, "--listen", "127.0.0.1:0",
                             "--discovery-interface", "127.0.0.1",
                             "--discovery-group", f"239.255.77.77:{free_port(socket.SOCK_DGRAM)}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    browser = None
    try:
        for _ in range(500):
            if os.path.exists(os.path.join(data, "node.json")): break
            time.sleep(0.01)
        url = json.load(open(os.path.join(data, "node.json")))["url"]
        env = {**os.environ, "DISPLAY": x.display}
        browser = subprocess.Popen([chromium, f"--app={url}", f"--user-data-dir={os.path.join(root, 'chromium')}",
                                    "--no-sandbox", "--no-first-run", "--disable-background-networking",
                                    "--disable-component-update", "--disable-sync", "--window-size=1200,800"],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(15)
        b_rss, b_pss = tree_memory(browser.pid)
        n_rss, n_pss = tree_memory(node.pid)
        return b_rss + n_rss, b_pss + n_pss
    finally:
        for p in (browser, node):
            if p and p.poll() is None:
                for c in [p.pid] + descendants(p.pid):
                    try: os.kill(c, signal.SIGTERM)
                    except OSError: pass
                try: p.wait(10)
                except subprocess.TimeoutExpired: p.kill(); p.wait()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bin", default=None)
    ap.add_argument("--out", default="bench/out/desktop.json")
    a = ap.parse_args()
    for tool in ("Xvfb", "xdotool"):
        if not shutil.which(tool): raise SystemExit(f"{tool} is missing: run scripts/install-deps.sh")
    if a.bin is None:
        # The features the Tauri CLI builds with (scripts/build-deb.sh): the .deb's binary, and no
        # rebuild of tauri between the two.
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "aienv-desktop",
                        "--features", "tauri/custom-protocol"], check=True)
        a.bin = "target/release/aienv-desktop"
    binary = os.path.abspath(a.bin)

    x = Xvfb()
    root = tempfile.mkdtemp(prefix="aienv-bench-desktop-")
    starts, own, apps = [], [], []
    try:
        for i in range(a.runs):
            app = App(binary, x, root, i); apps.append(app)
            t, ms = app.wait_ready(x)
            starts.append(t); own.append(ms)
            if i < a.runs - 1:
                app.stop()
        time.sleep(10)
        rss, pss, names = app.memory()
        app.stop()
        baseline = chromium_baseline(x, root)
    finally:
        for app in apps:
            if app.p.poll() is None: app.stop()
        x.stop()
        shutil.rmtree(root, ignore_errors=True)

    deb = sorted(glob.glob("target/release/bundle/deb/*.deb"), key=os.path.getmtime)
    res = {"bin": binary, "runs": a.runs, "start_s": starts, "start_app_ms": own,
           "start_median_s": statistics.median(starts), "rss_kb": rss, "pss_kb": pss, "processes": names,
           "baseline_rss_kb": baseline and baseline[0], "baseline_pss_kb": baseline and baseline[1],
           "binary_bytes": os.path.getsize(binary),
           "deb": deb[-1] if deb else None, "deb_bytes": os.path.getsize(deb[-1]) if deb else None}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    json.dump(res, open(a.out, "w"), indent=2)

    by_line = all(ms is not None for ms in own)
    how = ("spawn -> `ready in N ms` line" if by_line else
           "spawn -> window + /health (this build prints no ready line: the page may not be painted yet)")
    print(f"{binary}, {a.runs} cold starts under Xvfb {x.display}")
    print("| figure | target | measured |")
    print("|---|---|---|")
    print(f"| cold start, {how} (median / max of {a.runs}) | < 1.5 s | {res['start_median_s']:.2f} / {max(starts):.2f} s |")
    print(f"| memory after 10 s idle, app + {len(names) - 1} child processes: PSS (RSS) | < 150 MB | "
          f"{pss/1024:.0f} MB ({rss/1024:.0f} MB) |")
    if baseline:
        print(f"| baseline: the same UI in a Chromium app window + a headless node: PSS (RSS) | - | "
              f"{baseline[1]/1024:.0f} MB ({baseline[0]/1024:.0f} MB); the app uses {pss/baseline[1]:.2f}x its PSS |")
    print(f"| binary ({os.path.relpath(binary)}) | < 25 MB | {res['binary_bytes']/1e6:.1f} MB |")
    print(f"| .deb | < 10 MB | " + (f"{res['deb_bytes']/1e6:.1f} MB ({os.path.basename(res['deb'])}) |" if deb else
                                   "none under target/release/bundle/deb (scripts/build-deb.sh) |"))
    if by_line:
        print(f"the app's own figures (from its process start): {', '.join(str(ms) for ms in own)} ms")
    print(f"processes counted: {', '.join(names)}")

if __name__ == "__main__":
    main()
