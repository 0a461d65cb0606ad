// The status page in real headless Chromium: environments with their states, updates without a
// reload when the state changes, data shown as text (never markup), readable on a phone.
// The screenshots are kept in test/artifacts/ (gitignored).
import t from 'tap';
import http from 'node:http';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { World, freePort, suffix } from '../helpers/world.ts';

const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const MARKUP = '<b id="injected">bold</b>';

t.test('status page shows environments and follows their state', async (t) => {
  const world = await World.create();
  const tmp = await mkdtemp(path.join(tmpdir(), 'pulser-page-'));
  const served = `served-${suffix()}`;
  const plain = `plain-${suffix()}`;
  // `plain` answers its probe from a local server that can be switched; its body is markup.
  let healthy = false;
  const health = http.createServer((_req, res) => {
    if (healthy) res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"pass"}');
    else res.writeHead(503, { 'content-type': 'text/html' }).end(MARKUP);
  });
  const plainPort = await freePort();
  await new Promise<void>((r) => health.listen(plainPort, '127.0.0.1', r));
  let ctx: BrowserContext | null = null;
  t.teardown(async () => {
    await ctx?.close();
    await world.cleanup();
    health.close();
    await rm(tmp, { recursive: true, force: true });
  });

  const alerts = 'alerts:\n  probe_interval: 250ms\n  for: { down: 500ms }';
  await world.env(served, { extra: alerts });
  await world.env(plain, { port: plainPort, extra: alerts });
  const p = world.start({ stateDir: path.join(tmp, 'state'), monitor: { logPollMs: 1000, kpiPollMs: 1000, backups: { lastBackupAt: async () => new Date(Date.now() - 2 * 3_600_000) } } });
  const [rec] = await world.pass(served);
  t.equal(rec!.outcome, 'applied');
  await p.monitor.start();
  const app = p.server();
  const port = await freePort();
  await app.listen({ host: '127.0.0.1', port });
  t.teardown(() => app.close());

  ctx = await chromium.launchPersistentContext(path.join(tmp, 'chromium-profile'), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 390, height: 844 },
  });
  const page = await ctx.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`http://127.0.0.1:${port}/`);

  const card = (env: string) => page.locator(`article[data-env="${env}"]`);
  await card(served).locator('[data-state="in sync"]').waitFor({ timeout: 15_000 });
  t.pass(`${served} is shown in sync`);
  await card(plain).locator('[data-state="down"]').waitFor({ timeout: 15_000 });
  t.pass(`${plain} is shown down (it never had a pass, its probe fails)`);
  await card(plain).locator('li[data-alert="PulserEnvDown"]').filter({ hasText: 'firing' }).waitFor({ timeout: 15_000 });
  t.pass('the firing alert is listed');
  const servedText = await card(served).innerText();
  t.match(servedText, /pulser-demo\/odoo:17\.0\.1/, 'the running image is shown');
  t.match(servedText, /last backup\s+.*\(2\.0 h ago\)/, 'the last backup and its age are shown');
  t.match(servedText, /health\s+up/);
  const plainText = await card(plain).innerText();
  // describeProbe quotes the body as JSON, so its quotes come escaped; the tags stay visible as text.
  t.ok(plainText.includes('<b id=') && plainText.includes('>bold</b>'), 'the probe body is shown as text');
  t.equal(await page.locator('#injected').count(), 0, 'and never becomes markup');
  const passLink = page.locator('#passes a').first();
  await passLink.waitFor({ timeout: 10_000 });
  const href = await passLink.getAttribute('href');
  t.match(href, new RegExp(`^/api/evidence/[^/]+/${served}/summary\\.md$`), 'recent passes link to their evidence');
  const evidence = await page.request.get(`http://127.0.0.1:${port}${href}`);
  t.equal(evidence.status(), 200, 'the evidence link works');
  t.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no horizontal scrolling on a phone-sized screen');
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'status-page-phone.png'), fullPage: true });

  // State changes show up without a reload: the page keeps its own marker.
  await page.evaluate(() => {
    (window as unknown as { marker: number }).marker = 42;
  });
  healthy = true;
  const container = world.docker.getContainer((await world.containersOf(served))[0]!.Id);
  await container.pause();
  await card(plain).locator('[data-state="in sync"], [data-state="no pass yet"]').waitFor({ timeout: 15_000 });
  t.match(await card(plain).innerText(), /health\s+up/, `${plain} turns up`);
  await card(served).locator('[data-state="down"]').waitFor({ timeout: 15_000 });
  t.pass(`${served} turns down once its container is paused`);
  t.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 42, 'updated in place, no reload');
  await container.unpause();
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: path.join(ARTIFACTS, 'status-page-desktop.png'), fullPage: true });
  t.same(pageErrors, [], 'no script errors');
});
