// The web UI in a real Chromium against real nodes: peers found live, a clone started from the
// Catalog reaching 100%, a run started from its workspace with a tool link that answers, a
// manifest error marked at its line, a node restart survived without a reload. Each screen is
// saved at 1280x800 under ui/test-results/screens/.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  browser, cleanup, missing, page, privateGroup, screenshot, startNode, tempDir, waitFor, workspace,
} from './harness.mjs';

const why = missing();
if (why && process.env.CI) throw new Error(`the UI end-to-end tests cannot run: ${why}`);
const skip = why ? `skipped: ${why}` : false;
if (skip) console.log(`ui e2e ${skip}`);

const SHARED = `
[workspace]
name = "vision"
description = "image models"

[sharing]
enabled = true
access = "open"

[[project]]
name = "trainer"

[environment.lab]
kind = "process"
projects = ["trainer"]
description = "a small web server standing in for a notebook"
command = "echo lab is up"

[[environment.lab.tool]]
name = "Files"
command = "python3 -m http.server {port} --bind {host}"
url = "http://{host}:{port}/"
`;

describe('web UI', { skip }, () => {
  let b;
  before(async () => {
    b = await browser();
  });
  after(cleanup);

  it('shows a peer that joins, live', async () => {
    const group = await privateGroup();
    const a = await startNode('alpha', { group });
    const p = await page(b, a.url);
    await p.click('nav >> text=Peers');
    await p.waitForSelector('text=No peers yet');
    await screenshot(p, 'peers-empty');
    const t0 = Date.now();
    await startNode('beta', { group });
    await p.waitForSelector('[data-testid="peer-row"] >> text=beta', { timeout: 10000 });
    console.log(`beta shown on alpha's page ${Date.now() - t0} ms after it was started`);
    await screenshot(p, 'peers');
    await p.close();
  });

  it('clones from the catalog with a progress bar that reaches 100%', async () => {
    const group = await privateGroup();
    const owner = await startNode('owner', { group });
    const user = await startNode('user', { group });
    const files = { 'trainer/train.py': 'print("train")\n', 'trainer/data.bin': 'x'.repeat(3_000_000) };
    await workspace(owner, join(tempDir(), 'vision'), SHARED, files);
    // A workspace shared without environments: an entry of its own, files to clone.
    const data = '[workspace]\nname = "datasets"\n\n[sharing]\nenabled = true\n';
    await workspace(owner, join(tempDir(), 'datasets'), data, { 'labels.csv': 'id,label\n' });
    const p = await page(b, user.url + '/#/catalog');
    await p.waitForSelector('[data-testid="catalog-entry"] >> text=lab', { timeout: 10000 });
    await p.waitForSelector('[data-testid="catalog-entry"]:has-text("datasets") .badge:has-text("files")', { timeout: 10000 });
    await screenshot(p, 'catalog');
    await p.emulateMedia({ colorScheme: 'dark' });
    await screenshot(p, 'catalog-dark');
    await p.emulateMedia({ colorScheme: 'light' });
    await p.fill('#catalog-search', 'no such thing');
    await p.waitForSelector('text=No environment matches');
    await p.fill('#catalog-search', 'vision owner');
    await p.click('[data-testid="catalog-entry"] >> button:has-text("Clone")');
    const target = join(tempDir(), 'vision-clone');
    await p.fill('input[aria-label="Target folder"]', target);
    await screenshot(p, 'clone-dialog');
    await p.click('dialog >> button:has-text("Clone")');
    await p.waitForSelector('[data-testid="clone-job"]');
    await p.waitForSelector('[data-testid="clone-job"] [role="progressbar"][aria-valuenow="100"]', { timeout: 20000 });
    await p.waitForSelector('[data-testid="clone-job"] >> text=done');
    await p.waitForSelector('text=Cloned vision from owner');
    await p.waitForTimeout(300); // the bar's last step animates
    await screenshot(p, 'clones');
    assert.equal(readFileSync(join(target, 'trainer/train.py'), 'utf8'), 'print("train")\n');
    await p.close();
  });

  it("asks the owner to approve a peer's clone, which goes on after Approve", async () => {
    const group = await privateGroup();
    const owner = await startNode('owner', { group });
    const user = await startNode('user', { group });
    const manifest = '[workspace]\nname = "private"\n\n[sharing]\nenabled = true\naccess = "approve"\n';
    await workspace(owner, join(tempDir(), 'private'), manifest, { 'notes.md': 'ours\n' });
    const p = await page(b, owner.url + '/#/workspaces');
    await waitFor('the share reaches the user', async () =>
      (await user.api('GET', '/catalog')).some((e) => e.workspace === 'private'));
    const target = join(tempDir(), 'private-clone');
    const job = await user.api('POST', '/clones', { source: 'owner/private', to: target });
    const card = '[aria-label="Access requests"] >> text=asks to clone';
    await p.waitForSelector(card, { timeout: 10000 });
    assert.match(await p.textContent('[aria-label="Access requests"]'), /user asks to clone private/);
    await screenshot(p, 'access-request');
    await p.click('[aria-label="Access requests"] >> button:has-text("Approve")');
    const done = await waitFor('the clone finishes', async () => {
      const j = await user.api('GET', `/clones/${job.id}`);
      return j.state !== 'running' && j;
    });
    assert.equal(done.state, 'done', JSON.stringify(done));
    assert.equal(readFileSync(join(target, 'notes.md'), 'utf8'), 'ours\n');
    await p.waitForSelector(card, { state: 'detached' });
    const audit = await owner.api('GET', '/audit');
    assert.ok(audit.some((r) => r.action === 'access_request' && r.allowed && r.peer_name === 'user'));
    // The grant is a token the owner sees (and can revoke) on the workspace's page, with new ones.
    await p.goto(owner.url + '/#/workspaces/private');
    await p.waitForSelector('[data-testid="token-row"] >> text=granted to user', { timeout: 10000 });
    await p.fill('input[aria-label="Token label"]', 'colleague');
    await p.click('button:has-text("New token")');
    await p.waitForSelector('text=shown once');
    assert.match(await p.textContent('.secret'), /aienv clone owner\/private --token aienv_st_[0-9a-f]{64}/);
    await p.waitForSelector('[data-testid="token-row"] >> text=colleague');
    await screenshot(p, 'share-tokens');
    await p.close();
  });

  it('starts a run whose tool link answers, and shows its log', async () => {
    const group = await privateGroup();
    const a = await startNode('runner', { group });
    const ws = await workspace(a, join(tempDir(), 'vision'), SHARED, { 'trainer/hello.txt': 'hello from the workspace\n' });
    const p = await page(b, `${a.url}/#/workspaces/${ws.id}`);
    await p.waitForSelector('[data-testid="environment-row"] >> text=lab');
    await screenshot(p, 'workspace');
    await p.click('[data-testid="environment-row"] >> button:has-text("Run")');
    const link = await p.waitForSelector('[data-testid="tool-link"].ready', { timeout: 20000 });
    const href = await link.getAttribute('href');
    assert.match(href, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const r = await fetch(href + 'trainer/hello.txt');
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'hello from the workspace\n');
    await screenshot(p, 'runs');
    await p.click('[data-testid="run-row"] a');
    await p.waitForSelector('[data-testid="run-log"] >> text=lab is up');
    const usage = await p.waitForSelector('[data-testid="run-usage"]');
    assert.match(await usage.textContent(), /^CPU \d+\.\d% · memory \d[\d.]* [KMG]?B · \d+ process/);
    await screenshot(p, 'run-log');
    await p.click('button:has-text("Stop")');
    await p.waitForSelector('text=stopped');
    await p.close();
  });

  it('marks a manifest error at its line and keeps the last good manifest', async () => {
    const group = await privateGroup();
    const a = await startNode('editor', { group });
    const ws = await workspace(a, join(tempDir(), 'vision'), SHARED);
    const p = await page(b, `${a.url}/#/workspaces/${ws.id}`);
    const editor = p.locator('textarea[aria-label="aienv.toml"]');
    await waitFor('the manifest text', async () => (await editor.inputValue()).includes('[workspace]'));
    const text = await editor.inputValue();
    const broken = text.replace('kind = "process"', 'kind = "processs"');
    await editor.fill(broken);
    await p.click('button:has-text("Save")');
    const error = await p.waitForSelector('[data-testid="manifest-error"]');
    const line = broken.split('\n').findIndex((l) => l.includes('processs')) + 1;
    assert.match(await error.textContent(), new RegExp(`^line ${line}, column \\d+: `));
    assert.equal(await p.locator('.gutter .err').textContent(), String(line), 'the gutter marks the line');
    await error.scrollIntoViewIfNeeded();
    await screenshot(p, 'manifest-error');
    const onDisk = readFileSync(join(ws.path, 'aienv.toml'), 'utf8');
    assert.ok(onDisk.includes('kind = "process"\n'), 'nothing invalid was written');
    await p.close();
  });

  it('survives a node restart without a reload', async () => {
    const group = await privateGroup();
    const dataDir = tempDir();
    let a = await startNode('phoenix', { group, dataDir });
    const listen = a.url.replace('http://', '');
    const p = await page(b, `${a.url}/#/workspaces`);
    await p.waitForSelector('[role="status"] >> text=Live');
    await a.stop();
    await p.waitForSelector('[role="status"] >> text=Reconnecting');
    await screenshot(p, 'reconnecting');
    a = await startNode('phoenix', { group, dataDir, listen });
    await p.waitForSelector('[role="status"] >> text=Live', { timeout: 15000 });
    // Made after the restart: it reaches the page over the new connection.
    await workspace(a, join(tempDir(), 'after'), '[workspace]\nname = "after-restart"\n');
    await p.waitForSelector('[data-testid="workspace-card"] >> text=after-restart', { timeout: 10000 });
    await screenshot(p, 'workspaces');
    await p.click('nav >> text=Settings');
    await p.waitForSelector('text=Discovery interfaces');
    await screenshot(p, 'settings');
    assert.ok(existsSync(join(dataDir, 'node.json')));
    await p.close();
  });

  it('runs an environment on the peer with the GPUs from "Run on…", and its link works here', async () => {
    // The GPUs are simulated (the binary is built with the `test-hooks` feature).
    const group = await privateGroup();
    const laptop = await startNode('laptop', { group, env: { AIENV_TEST_RESOURCES: '{"gpus":[]}' } });
    const gpuBox = await startNode('gpu-box', {
      group,
      args: ['--remote-runs', 'peers'],
      env: { AIENV_TEST_RESOURCES: '{"gpus":[{"name":"H100","memory_gb":80,"free_gb":79},{"name":"H100","memory_gb":80,"free_gb":79}]}' },
    });
    const res = await gpuBox.api('GET', '/resources');
    assert.equal(res.gpus.length, 2, 'build the binary with --features test-hooks (scripts/test.sh does)');
    await workspace(laptop, join(tempDir(), 'trainer'), `
[workspace]
name = "trainer"

[sharing]
enabled = true

[environment.train]
kind = "process"
command = "echo training on GPU $CUDA_VISIBLE_DEVICES; exec sleep 600"
requires = { gpus = 1, vram_gb = 40 }

[[environment.train.tool]]
name = "Files"
command = "exec python3 -m http.server {port} --bind {host}"
url = "http://{host}:{port}/"
`, { 'hello.txt': 'hello from the laptop\n' });
    await waitFor('gpu-box announces its GPUs', async () =>
      (await laptop.api('GET', '/peers')).some((p) => p.name === 'gpu-box' && p.resources?.gpus?.length === 2));
    const p = await page(b, `${laptop.url}/#/catalog`);
    await p.click('[data-testid="catalog-entry"] >> button:has-text("Run on…")');
    const first = await p.waitForSelector('[data-testid="run-on-candidate"]');
    assert.match(await first.textContent(), /fits\s*gpu-box: 2 free GPUs, 79 GB free/);
    const all = await p.locator('[data-testid="run-on-candidate"]').allTextContents();
    assert.ok(all.some((t) => t.includes('laptop: no GPU')), all.join(' | '));
    await screenshot(p, 'run-on');
    await p.click('[data-testid="run-on-candidate"] >> button:has-text("Run on gpu-box")');
    await p.waitForSelector('[data-testid="run-row"] >> text=running', { timeout: 30000 });
    await screenshot(p, 'run-on-peer');
    const href = await p.locator('[data-testid="run-row"] a[href^="http://127.0.0.1:"]').first().getAttribute('href');
    const r = await fetch(href + 'hello.txt');
    assert.equal(await r.text(), 'hello from the laptop\n', 'the link points at gpu-box, which received the workspace');
    const there = await gpuBox.api('GET', '/runs');
    assert.equal(there.length, 1);
    assert.match(there[0].notes[0], /started by peer "laptop"/);
    await p.click('[data-testid="run-row"] a:not([href^="http"])');
    await p.waitForSelector('[data-testid="run-log"] >> text=training on GPU 0');
    await p.click('button:has-text("Stop")');
    await p.waitForSelector('text=stopped');
    await waitFor('gpu-box stopped it', async () => (await gpuBox.api('GET', '/runs'))[0].state === 'stopped');
    await p.close();
  });
});
