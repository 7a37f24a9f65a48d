// The built-in dashboard in real headless Chromium, against
// crates/axum-watch-examples/examples/dashboard_fixture.rs.
//
//   FIXTURE_BIN=target/debug/examples/dashboard_fixture node --test tests/browser/
//
// `scripts/browser-test` installs Chromium and playwright-core, builds the
// fixture and runs this. Screenshots land in <repo>/target/dashboard-*.png.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHOTS = join(REPO, 'target');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** Text that would create an element (and run script) if the page parsed data as HTML. */
const HOSTILE = '<img src=x onerror=alert(1)>';

async function freePort() {
  const server = createServer();
  await new Promise((ok, fail) => server.once('error', fail).listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** Starts the fixture on a free port and waits until /health/live answers. */
async function startFixture(bin) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(bin, [], {
    env: { ...process.env, PORT: String(port), RUST_LOG: process.env.RUST_LOG || 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let exited = null;
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exit = new Promise((ok) => child.once('exit', (code, signal) => { exited = { code, signal }; ok(); }));
  child.once('error', (e) => { exited = { error: e }; });

  const fixture = {
    base,
    output: () => output,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const stopped = await Promise.race([exit.then(() => true), sleep(3000).then(() => false)]);
      if (!stopped) {
        child.kill('SIGKILL');
        await exit;
      }
    },
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`the fixture exited early (${JSON.stringify(exited)}):\n${output}`);
    try {
      const r = await fetch(`${base}/health/live`);
      if (r.ok) return fixture;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await fixture.stop();
      throw new Error(`the fixture did not answer /health/live within 30 s:\n${output}`);
    }
    await sleep(100);
  }
}

/** The summary line the page should show for `probes`. */
function summaryOf(probes) {
  const n = { healthy: 0, degraded: 0, unhealthy: 0 };
  for (const p of probes) n[p.status] += 1;
  const total = probes.length;
  if (n.healthy === total) return `${total} / ${total} probes healthy`;
  return `${n.healthy} healthy, ${n.degraded} degraded, ${n.unhealthy} unhealthy / ${total} probes`;
}

/** The names of the cards a user can see, in page order. */
const visibleCards = (page) =>
  page.$$eval('[data-probe]', (cards) => cards.filter((c) => c.checkVisibility()).map((c) => c.dataset.probe));

const headerBackground = (page) =>
  page.evaluate(() => getComputedStyle(document.getElementById('header')).backgroundColor);

test('the built-in dashboard in headless Chromium', { timeout: 180_000 }, async (t) => {
  const bin = process.env.FIXTURE_BIN;
  assert.ok(bin, 'FIXTURE_BIN must name the built dashboard_fixture example');
  mkdirSync(SHOTS, { recursive: true });

  const fixture = await startFixture(resolve(bin));
  let browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
    const page = await context.newPage();

    const requests = [];
    const consoleMessages = [];
    const pageErrors = [];
    const dialogs = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => consoleMessages.push({ type: m.type(), text: m.text(), url: m.location().url }));
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      d.dismiss().catch(() => {});
    });

    const initial = await (await fetch(`${fixture.base}/health/status`)).json();
    assert.ok(initial.probes.length >= 4, 'the fixture registers several probes');
    assert.ok(initial.probes.some((p) => !p.critical), 'the fixture has a non-critical probe');

    const response = await page.goto(`${fixture.base}/health/dashboard`, { waitUntil: 'load' });
    assert.equal(response.status(), 200);
    assert.match(response.headers()['content-security-policy'] ?? '', /script-src 'sha256-/);

    await t.test('one card per probe, with its status and the optional badge', async () => {
      await page.waitForFunction(
        (want) => want.every(([name, status]) => document.querySelector(`[data-probe="${name}"]`)?.dataset.status === status),
        initial.probes.map((p) => [p.name, p.status]),
        { timeout: 10_000 },
      );
      const names = await page.$$eval('[data-probe]', (cards) => cards.map((c) => c.dataset.probe));
      assert.deepEqual(names, initial.probes.map((p) => p.name), 'cards follow the report, in its order');
      for (const p of initial.probes) {
        const card = page.locator(`[data-probe="${p.name}"]`);
        const badge = card.getByText('optional', { exact: true });
        assert.equal(await badge.isVisible(), !p.critical, `${p.name}: optional badge iff not critical`);
        assert.equal(await card.locator('h3').textContent(), p.name);
      }
    });

    await t.test('the header, summary and connection show the healthy report', async () => {
      await page.waitForFunction(() => document.getElementById('conn')?.dataset.state === 'open', null, { timeout: 5000 });
      assert.equal(await page.getAttribute('#header', 'data-status'), 'healthy');
      assert.equal(await page.textContent('#headline'), 'All Systems Operational');
      assert.match(await page.textContent('#checked'), /^Last checked \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/);
      assert.equal(await page.textContent('#summary'), summaryOf(initial.probes));
      assert.equal(await page.getAttribute('#summary', 'aria-live'), 'polite');
      assert.ok(await page.locator('#maintenance-banner').count(), 'the maintenance banner slot exists');
      assert.equal(await page.locator('#maintenance-banner').isVisible(), false, 'no maintenance is active');
    });

    await t.test('details are readable and sparklines come from history', async () => {
      const db = page.locator('[data-probe="db"]');
      const rows = Object.fromEntries(
        await db.locator('.details tr').evaluateAll((trs) => trs.map((tr) => [tr.cells[0].textContent, tr.cells[1].textContent])),
      );
      assert.match(rows['Last Rtt Ms'] ?? '', /^\d+\.\d{2} ms$/);
      assert.equal(rows['Circuit Breaker'], 'closed');
      assert.match(rows['Replication'] ?? '', /Role\s*primary/);
      assert.match(await db.locator('.latency').textContent(), /^\d+\.\d{2} ms$/);
      // History is fetched at once, then again as events arrive (at most every 5 s):
      // the sparkline grows from the first result or two to several.
      const sparkPoints = () =>
        page.evaluate(() => {
          const line = document.querySelector('[data-probe="db"] .spark:not([hidden]) polyline');
          return line ? line.getAttribute('points').trim().split(/\s+/).filter(Boolean).length : 0;
        });
      await page.waitForFunction(() => document.querySelector('[data-probe="db"] .spark:not([hidden])'), null, { timeout: 5000 });
      const first = await sparkPoints();
      assert.ok(first >= 2, `a sparkline is drawn (${first} points)`);
      await page.waitForFunction(
        (n) => {
          const line = document.querySelector('[data-probe="db"] .spark polyline');
          return line.getAttribute('points').trim().split(/\s+/).length >= Math.max(n + 1, 4);
        },
        first,
        { timeout: 12_000 },
      );
    });

    await t.test('dynamic text is escaped, never parsed as HTML', async () => {
      assert.equal(await page.locator('img').count(), 0, 'no <img> was created from data');
      const legacy = await page.locator('[data-probe="legacy-api"] .error').textContent();
      assert.ok(legacy.includes(HOSTILE), `the error renders as text: ${legacy}`);
      const cache = await page.locator('[data-probe="cache"] .details').textContent();
      assert.ok(cache.includes(HOSTILE), `the detail renders as text: ${cache}`);
      assert.deepEqual(dialogs, []);
    });

    await t.test('search and tag filters', async () => {
      await page.fill('#search', 'postgres');
      assert.deepEqual(await visibleCards(page), ['db'], 'search matches descriptions');
      await page.fill('#search', 'billing');
      assert.deepEqual(await visibleCards(page), ['legacy-api'], 'search matches tags');
      await page.fill('#search', '');
      await page.click('#tagbar button[data-tag="external"]');
      assert.deepEqual(await visibleCards(page), ['search', 'legacy-api']);
      await page.click('#tagbar button[data-tag="cache"]');
      assert.deepEqual(await visibleCards(page), ['cache', 'search', 'legacy-api'], 'tags match any');
      assert.equal(await page.getAttribute('#tagbar button[data-tag="cache"]', 'aria-pressed'), 'true');
      await page.click('#clear');
      assert.deepEqual(await visibleCards(page), initial.probes.map((p) => p.name));
    });

    await page.locator('#search').blur();
    await page.waitForTimeout(400);
    await page.screenshot({ path: join(SHOTS, 'dashboard-healthy.png'), fullPage: true, animations: 'disabled' });

    await t.test('a critical probe failing updates the page live', async () => {
      const before = {
        background: await headerBackground(page),
        summary: await page.textContent('#summary'),
        checked: await page.textContent('#checked'),
      };
      await page.evaluate(() => { window.notReloaded = true; });
      const r = await fetch(`${fixture.base}/fixture/db/unhealthy`, { method: 'POST' });
      assert.equal(r.status, 200);
      await page.waitForFunction(
        (bg) =>
          document.querySelector('[data-probe="db"]')?.dataset.status === 'unhealthy' &&
          getComputedStyle(document.getElementById('header')).backgroundColor !== bg,
        before.background,
        { timeout: 5000 },
      );
      assert.equal(await page.evaluate(() => window.notReloaded), true, 'no reload happened');
      assert.equal(await page.getAttribute('#header', 'data-status'), 'unhealthy');
      assert.equal(await page.textContent('#headline'), 'Unhealthy');
      const want = summaryOf(initial.probes.map((p) => (p.name === 'db' ? { ...p, status: 'unhealthy' } : p)));
      assert.notEqual(want, before.summary);
      await page.waitForFunction((s) => document.getElementById('summary').textContent === s, want, { timeout: 3000 });
      assert.match(await page.locator('[data-probe="db"] .error').textContent(), /connection refused/);
      await page.waitForFunction((c) => document.getElementById('checked').textContent !== c, before.checked, { timeout: 3000 });
      await page.waitForTimeout(700); // let the colour transition finish before the screenshot
      assert.notEqual(await headerBackground(page), before.background);
    });

    await page.screenshot({ path: join(SHOTS, 'dashboard-unhealthy.png'), fullPage: true, animations: 'disabled' });

    await t.test('the page follows a dark colour scheme', async () => {
      const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      await page.emulateMedia({ colorScheme: 'dark' });
      const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.notEqual(dark, light);
      await page.waitForTimeout(400);
      await page.screenshot({ path: join(SHOTS, 'dashboard-unhealthy-dark.png'), fullPage: true, animations: 'disabled' });
      await page.emulateMedia({ colorScheme: 'light' });
    });

    await t.test('nothing left the fixture origin and nothing went wrong', async () => {
      const origin = new URL(fixture.base).origin;
      const network = requests.filter((u) => !u.startsWith('data:'));
      const foreign = network.filter((u) => new URL(u).origin !== origin);
      assert.deepEqual(foreign, [], 'requests to other origins');
      for (const path of ['/health/dashboard', '/health/status/stream', '/health/history']) {
        assert.ok(network.some((u) => new URL(u).pathname === path), `requested ${path}: ${network.join(', ')}`);
      }
      // A server without the maintenance endpoint answers 404, which the page
      // tolerates but Chromium still logs; nothing else may be an error.
      const errors = consoleMessages.filter(
        (m) => m.type === 'error' && !(m.url.endsWith('/health/maintenance') && m.text.includes('404')),
      );
      assert.deepEqual(errors, [], 'console errors');
      assert.deepEqual(pageErrors, [], 'page errors');
      assert.deepEqual(dialogs, [], 'dialogs');
    });

    await t.test('the maintenance banner and the connection indicator', async () => {
      const extraErrors = [];
      const open = async (routes) => {
        const p = await context.newPage();
        p.on('pageerror', (e) => extraErrors.push(String(e)));
        for (const [pattern, handler] of routes) await p.route(pattern, handler);
        await p.goto(`${fixture.base}/health/dashboard`);
        return p;
      };

      // GET maintenance says a window is active: the banner shows when it ends.
      const active = await open([
        ['**/health/maintenance', (r) => r.fulfill({ json: { active: true, until: '2026-12-01T06:30:00.000000Z' } })],
      ]);
      await active.locator('#maintenance-banner').waitFor({ state: 'visible', timeout: 5000 });
      assert.match(await active.textContent('#maintenance-banner'), /until 2026-12-01 06:30:00 UTC/);
      await active.close();

      // A report-less maintenance event shows it too; a 404 from GET maintenance is ignored.
      const streamed = await open([
        ['**/health/maintenance', (r) => r.fulfill({ status: 404, body: '' })],
        [
          '**/health/status/stream',
          (r) => r.fulfill({ contentType: 'text/event-stream', body: 'retry: 60000\ndata: {"status":"maintenance"}\n\n' }),
        ],
      ]);
      await streamed.locator('#maintenance-banner').waitFor({ state: 'visible', timeout: 5000 });
      assert.equal(await streamed.locator('[data-probe]').count(), 0);
      await streamed.close();

      // A status event sent while the service drains shows the shutdown banner.
      const draining = await open([
        [
          '**/health/status/stream',
          (r) => r.fulfill({
            contentType: 'text/event-stream',
            body: 'retry: 60000\ndata: {"status":"healthy","checked_at":null,"timezone":"UTC","probes":[],"failing":[],"lifecycle":"draining"}\n\n',
          }),
        ],
      ]);
      await draining.locator('#draining-banner').waitFor({ state: 'visible', timeout: 5000 });
      assert.match(await draining.textContent('#draining-banner'), /Shutting down/);
      await draining.screenshot({ path: join(SHOTS, 'dashboard-draining.png'), fullPage: true, animations: 'disabled' });
      await draining.close();

      // The stream cannot be reached: the indicator turns grey.
      const live = await page.evaluate(() => getComputedStyle(document.querySelector('#conn .conn-dot')).backgroundColor);
      const cut = await open([['**/health/status/stream', (r) => r.abort()]]);
      await cut.waitForFunction(() => document.getElementById('conn').dataset.state === 'closed', null, { timeout: 5000 });
      assert.equal(await cut.textContent('#conn-text'), 'Disconnected');
      const grey = await cut.evaluate(() => getComputedStyle(document.querySelector('#conn .conn-dot')).backgroundColor);
      assert.notEqual(grey, live);
      await cut.close();
      assert.deepEqual(extraErrors, [], 'page errors');
    });
  } finally {
    await browser?.close().catch(() => {});
    await fixture.stop();
  }
});
