#!/usr/bin/env node
// Web UI figures, in a real Chromium (Debian's, driven by playwright-core from ui/node_modules)
// against a real `aienv serve` (release build by default) on 127.0.0.1 with discovery pinned to
// 127.0.0.1 on a group port of this run's own:
//
//   1. first meaningful paint: navigation to the catalog showing its first entry (target 500 ms),
//      and the browser's first contentful paint, median of 10 cold page loads
//   2. JS + CSS shipped, gzipped (target 200 KB)
//   3. a catalog of 5,000 entries: filtering on a key press until the list shows the result, and
//      scrolling through it (frames over 50 ms counted) (target: no visible lag, under 100 ms)
//   4. event to screen: a (small) workspace edited through the API until the page shows it, and the
//      part of that from the event's arrival on the WebSocket to the screen (target 100 ms),
//      median of 20
//
// Usage: node bench/ui.mjs [--bin target/release/aienv]   (needs `npm ci && npm run build` in ui/)
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSocket } from 'node:dgram';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(repo, 'ui/package.json'));
const { chromium } = require('playwright-core');
const argBin = process.argv.indexOf('--bin');
const bin = argBin > 0 ? process.argv[argBin + 1] : join(repo, 'target/release/aienv');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const tmp = mkdtempSync(join(tmpdir(), 'aienv-bench-ui-'));
let node;
try {
  // 2. What the page ships.
  const dist = join(repo, 'ui/dist/assets');
  let gz = 0, raw = 0;
  for (const f of readdirSync(dist).filter((f) => /\.(js|css)$/.test(f))) {
    const b = readFileSync(join(dist, f));
    raw += b.length;
    gz += gzipSync(b, { level: 9 }).length;
  }

  // A node sharing one workspace of 5,000 environments.
  const s = createSocket('udp4');
  await new Promise((r) => s.bind(0, '127.0.0.1', r));
  const group = `239.255.77.77:${s.address().port}`;
  s.close();
  const data = join(tmp, 'data');
  node = spawn(bin, ['serve', '--data-dir', data, '--name', 'bench', '--listen', '127.0.0.1:0',
    '--discovery-interface', '127.0.0.1', '--discovery-group', group], { stdio: 'ignore' });
  while (!existsSync(join(data, 'node.json'))) await sleep(20);
  const url = JSON.parse(readFileSync(join(data, 'node.json'), 'utf8')).url;
  const ws = join(tmp, 'many');
  mkdirSync(ws);
  let manifest = '[workspace]\nname = "many"\n\n[sharing]\nenabled = true\naccess = "open"\n';
  for (let i = 0; i < 5000; i++) manifest += `\n[environment.env-${i}]\nkind = "process"\ncommand = "true"\n`;
  writeFileSync(join(ws, 'aienv.toml'), manifest);
  const api = async (method, path, body) => {
    const r = await fetch(url + '/api/v1' + path, { method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
    return r.json();
  };
  await api('POST', '/workspaces', { path: ws });
  const small = join(tmp, 'small');
  mkdirSync(small);
  writeFileSync(join(small, 'aienv.toml'), '[workspace]\nname = "small"\n\n[environment.lab]\nkind = "process"\ncommand = "true"\n');
  const created = await api('POST', '/workspaces', { path: small });
  while ((await api('GET', '/catalog')).length < 5000) await sleep(50);

  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  // 1. Cold loads: a fresh context each time (no cache).
  const fmp = [], fcp = [];
  for (let i = 0; i < 10; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    await page.addInitScript(() => {
      new MutationObserver((_, obs) => {
        if (document.querySelector('[data-testid="catalog-entry"]')) {
          window.__shown = performance.now();
          obs.disconnect();
        }
      }).observe(document, { childList: true, subtree: true });
    });
    await page.goto(url + '/#/catalog');
    await page.waitForFunction(() => window.__shown);
    fmp.push(await page.evaluate(() => window.__shown));
    fcp.push(await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN));
    await ctx.close();
  }

  // 3. Filter and scroll 5,000 entries.
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(url + '/#/catalog');
  await page.waitForSelector('[data-testid="catalog-entry"]');
  const filters = [];
  for (const q of ['env-4', 'env-49', 'env-499', 'env-4999', '', 'env-1', 'env-12', 'env-123', 'env-1234', '']) {
    filters.push(await page.evaluate(async (q) => {
      const input = document.getElementById('catalog-search');
      const t0 = performance.now();
      input.value = q;
      input.dispatchEvent(new Event('input', { bubbles: true }));
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      return performance.now() - t0;
    }, q));
  }
  const scroll = await page.evaluate(async () => {
    const vp = document.querySelector('.viewport');
    const frames = [];
    let last = performance.now();
    for (let i = 0; i < 120; i++) {
      vp.scrollTop += 2500;
      await new Promise((r) => requestAnimationFrame(r));
      const now = performance.now();
      frames.push(now - last);
      last = now;
    }
    return { long: frames.filter((f) => f > 50).length, worst: Math.max(...frames), rows: vp.scrollTop };
  });

  // 4. Event to screen. Every WebSocket message's arrival time is recorded by the page.
  await page.addInitScript(() => {
    const Native = window.WebSocket;
    window.__arrivals = [];
    window.WebSocket = class extends Native {
      constructor(...a) {
        super(...a);
        this.addEventListener('message', (e) => window.__arrivals.push([performance.now(), e.data]));
      }
    };
  });
  await page.goto(url + '/?events#/workspaces');
  await page.waitForSelector('[data-testid="workspace-card"]');
  const updates = [], screens = [];
  for (let i = 0; i < 20; i++) {
    const [total, fromEvent] = await page.evaluate(async ({ id, i }) => {
      const text = `edit ${i} ${Math.random()}`;
      const t0 = performance.now();
      const seen = new Promise((r) => {
        const obs = new MutationObserver(() => {
          if (document.body.textContent.includes(text)) { obs.disconnect(); r(performance.now()); }
        });
        obs.observe(document.body, { childList: true, subtree: true, characterData: true });
      });
      fetch(`/api/v1/workspaces/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ description: text }) });
      const shown = await seen;
      const arrived = window.__arrivals.find(([, d]) => d.includes(text))?.[0] ?? NaN;
      return [shown - t0, shown - arrived];
    }, { id: created.id, i });
    updates.push(total);
    screens.push(fromEvent);
  }
  await browser.close();

  const row = (what, value, target) => console.log(`${what.padEnd(58)} ${value.padStart(12)}   target ${target}`);
  console.log(`web UI (${bin}, Chromium ${browser.version?.() ?? ''})`);
  row('first meaningful paint (catalog shows data), median of 10', `${median(fmp).toFixed(0)} ms`, '< 500 ms');
  row('first contentful paint, median of 10', `${median(fcp).toFixed(0)} ms`, '-');
  row('JS + CSS shipped, gzipped (raw)', `${(gz / 1024).toFixed(1)} KB`, `< 200 KB  (${(raw / 1024).toFixed(0)} KB raw)`);
  row('filter 5,000 entries to the screen, median / worst of 10', `${median(filters).toFixed(1)} / ${Math.max(...filters).toFixed(1)} ms`, '< 100 ms');
  row('scroll 5,000 entries, 120 frames: frames over 50 ms', `${scroll.long} (worst ${scroll.worst.toFixed(0)} ms)`, '0');
  row('edit to screen (PATCH -> page shows it), median / worst', `${median(updates).toFixed(1)} / ${Math.max(...updates).toFixed(1)} ms`, '-');
  row('event to screen (message arrives -> shown), median / worst', `${median(screens).toFixed(1)} / ${Math.max(...screens).toFixed(1)} ms`, '< 100 ms');
} finally {
  if (node && node.exitCode === null) {
    node.kill('SIGTERM');
    await new Promise((r) => node.once('exit', r));
  }
  rmSync(tmp, { recursive: true, force: true });
}
