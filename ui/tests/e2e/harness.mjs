// Real nodes and a real Chromium for the UI's end-to-end tests. Every node is an `aienv serve`
// process on 127.0.0.1 with discovery pinned to loopback on a group port of its own; every node,
// browser and temp folder is removed when the test ends, also when it fails.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '../../..');
export const bin = process.env.AIENV_BIN ?? join(repo, 'target/debug/aienv');
export const chromiumPath = process.env.AIENV_CHROMIUM ?? '/usr/bin/chromium';
export const screens = join(repo, 'ui/test-results/screens');

/** Why these tests cannot run here, if they cannot (under CI that is a failure, not a skip). */
export function missing() {
  if (!existsSync(bin)) return `${bin} is not built (cargo build -p aienv-cli)`;
  if (!existsSync(chromiumPath)) return `no Chromium at ${chromiumPath} (apt-get install chromium)`;
  return null;
}

const cleanups = [];
export function onCleanup(f) {
  cleanups.push(f);
}
export async function cleanup() {
  while (cleanups.length) {
    try {
      await cleanups.pop()();
    } catch {
      /* keep cleaning */
    }
  }
}

export function tempDir(prefix = 'aienv-ui-') {
  const d = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A free UDP port on loopback for one test's discovery group. */
export async function privateGroup() {
  const s = createSocket('udp4');
  await new Promise((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  s.close();
  return `239.255.77.77:${port}`;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what, check, ms = 15000) {
  const until = Date.now() + ms;
  let last;
  while (Date.now() < until) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

/** Starts `aienv serve` and waits until it answers. `listen` keeps a port across restarts. */
export async function startNode(name, { group, dataDir = tempDir(), listen = '127.0.0.1:0', args = [], env = {} } = {}) {
  const record = join(dataDir, 'node.json');
  rmSync(record, { force: true });
  const log = join(dataDir, 'serve.log');
  const child = spawn(
    bin,
    ['serve', '--data-dir', dataDir, '--name', name, '--listen', listen, '--discovery-interface', '127.0.0.1',
      '--discovery-group', group, ...args],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, AIENV_NODE: '', AIENV_API_KEY: '', ...env } },
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const node = {
    name, dataDir, child, group,
    get log() { return stderr; },
    url: '',
    async stop() {
      if (child.exitCode !== null || child.signalCode) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
    async api(method, path, body) {
      const r = await fetch(`${node.url}/api/v1${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const data = await r.json().catch(() => null);
      if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(data)}`);
      return data;
    },
  };
  onCleanup(() => node.stop());
  await waitFor(`${name} to start (stderr: ${stderr})`, () => {
    if (child.exitCode !== null) throw new Error(`${name} exited: ${stderr}`);
    return existsSync(record);
  });
  node.url = JSON.parse(readFileSync(record, 'utf8')).url;
  await waitFor(`${name} to answer`, async () => (await fetch(`${node.url}/api/v1/health`)).ok);
  return node;
}

/** A workspace folder with a manifest and files, registered on `node`. */
export async function workspace(node, dir, manifest, files = {}) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'aienv.toml'), manifest);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    writeFileSync(join(dir, f), text);
  }
  return node.api('POST', '/workspaces', { path: dir });
}

export async function browser() {
  const { chromium } = await import('playwright-core');
  const b = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
  onCleanup(() => b.close());
  return b;
}

export async function page(b, url) {
  const p = await b.newPage({ viewport: { width: 1280, height: 800 } });
  await p.goto(url);
  return p;
}

export async function screenshot(p, name) {
  mkdirSync(screens, { recursive: true });
  await p.screenshot({ path: join(screens, `${name}.png`) });
}
