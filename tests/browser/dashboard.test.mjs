// The built-in dashboard in real headless Chromium, against
// crates/axum-watch-examples/examples/dashboard_fixture.rs.
//
//   FIXTURE_BIN=target/debug/examples/dashboard_fixture node --test tests/browser/
//
// `scripts/browser-test` installs Chromium and playwright-core, builds the
// fixture and runs this. Screenshots land in <repo>/target/dashboard-*.png.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, axeViolations, startFixture } from './lib.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHOTS = join(REPO, 'target');
/** Text that would create an element (and run script) if the page parsed data as HTML. */
const HOSTILE = '<img src=x onerror=alert(1)>';
const STAMP = /(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) UTC/;

/** The summary line the page should show for `probes`. */
function summaryOf(probes) {
  const n = { healthy: 0, degraded: 0, unhealthy: 0 };
  for (const p of probes) n[p.status] += 1;
  const total = probes.length;
  if (n.healthy === total) return `${total} / ${total} probes healthy`;
  return `${n.healthy} healthy, ${n.degraded} degraded, ${n.unhealthy} unhealthy / ${total} probes`;
}

/** The order the cards should be in: critical failures, critical degraded, other failures, healthy. */
function severityOrder(probes) {
  const rank = (p) =>
    p.critical && p.status === 'unhealthy' ? 0
      : p.critical && p.status === 'degraded' ? 1
        : p.status === 'unhealthy' ? 2
          : p.status === 'degraded' ? 3 : 4;
  return probes.map((p, i) => ({ p, i })).sort((a, b) => rank(a.p) - rank(b.p) || a.i - b.i).map(({ p }) => p.name);
}

/** The names of the cards a user can see, in page order. */
const visibleCards = (page) =>
  page.$$eval('[data-probe]', (cards) => cards.filter((c) => c.checkVisibility()).map((c) => c.dataset.probe));

const cardNames = (page) => page.$$eval('[data-probe]', (cards) => cards.map((c) => c.dataset.probe));

const headerBackground = (page) =>
  page.evaluate(() => getComputedStyle(document.getElementById('header')).backgroundColor);

/** Seconds since the epoch of a `YYYY-MM-DD HH:MM:SS UTC` text. */
const utcSeconds = (text) => Date.parse(text.match(STAMP)[1].replace(' ', 'T') + 'Z') / 1000;

test('the built-in dashboard in headless Chromium', { timeout: 240_000 }, async (t) => {
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
    assert.equal(new Set(initial.probes.map((p) => p.status)).size, 3, 'the fixture starts in a mixed state');

    const response = await page.goto(`${fixture.base}/health/dashboard`, { waitUntil: 'load' });
    assert.equal(response.status(), 200);
    assert.match(response.headers()['content-security-policy'] ?? '', /script-src 'sha256-/);

    await t.test('one card per probe, failing first, and a control for registration order', async () => {
      await page.waitForFunction(
        (want) => want.every(([name, status]) => document.querySelector(`[data-probe="${name}"]`)?.dataset.status === status),
        initial.probes.map((p) => [p.name, p.status]),
        { timeout: 10_000 },
      );
      const want = severityOrder(initial.probes);
      assert.notDeepEqual(want, initial.probes.map((p) => p.name), 'the mixed state reorders the cards');
      assert.deepEqual(await cardNames(page), want, 'failing cards come first');
      await page.selectOption('#order', 'registration');
      assert.deepEqual(await cardNames(page), initial.probes.map((p) => p.name), 'registration order on demand');
      await page.selectOption('#order', 'severity');
      assert.deepEqual(await cardNames(page), want);
      for (const p of initial.probes) {
        const card = page.locator(`[data-probe="${p.name}"]`);
        const badge = card.getByText('optional', { exact: true });
        assert.equal(await badge.isVisible(), !p.critical, `${p.name}: optional badge iff not critical`);
        assert.equal(await card.locator('h3').textContent(), p.name);
      }
    });

    await t.test('the header says how long the status has held and what is failing', async () => {
      await page.waitForFunction(() => document.getElementById('conn')?.dataset.state === 'open', null, { timeout: 5000 });
      assert.equal(await page.getAttribute('#header', 'data-status'), 'healthy');
      assert.equal(await page.textContent('#headline'), 'All Systems Operational');
      assert.match(await page.textContent('#checked'), /^Last checked \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/);
      await page.waitForFunction(() => !document.getElementById('held').hidden, null, { timeout: 5000 });
      assert.match(await page.textContent('#held'), /^Healthy for \d+ s, since \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/);
      const failing = initial.probes.filter((p) => p.status !== 'healthy');
      const line = await page.textContent('#failing');
      for (const p of failing) assert.ok(line.includes(`${p.name} (${p.status})`), `${p.name} is named: ${line}`);
      assert.match(line, /^Not critical, failing: /, 'only non-critical probes fail');
      assert.equal(await page.textContent('#summary'), summaryOf(initial.probes));
      assert.equal(await page.getAttribute('#summary', 'aria-live'), 'polite');
      assert.ok(await page.locator('#maintenance-banner').count(), 'the maintenance banner slot exists');
      assert.equal(await page.locator('#maintenance-banner').isVisible(), false, 'no maintenance is active');
    });

    await t.test('details: nested tables, sortable columns, units and sentences', async () => {
      // [label, text, tooltip] of each label/value row of a card's details.
      const rowsOf = (probe) =>
        page.locator(`[data-probe="${probe}"] .details > tbody > tr`).evaluateAll((trs) =>
          trs.filter((tr) => tr.cells.length === 2)
            .map((tr) => [tr.cells[0].textContent, tr.cells[1].textContent, tr.cells[1].querySelector('[title]')?.title ?? '']));
      const db = Object.fromEntries((await rowsOf('db')).map(([k, v]) => [k, v]));
      assert.match(db['Last Rtt'] ?? '', /^\d+\.\d{2} ms$/);
      assert.match(db['Circuit Breaker'] ?? '', /^Closed: the probe is called as usual/);
      assert.match(await page.locator('[data-probe="db"] .latency').textContent(), /^\d+\.\d{2} ms$/);
      // The nested replication object is its own table, under a full-width heading.
      const replication = page.locator('[data-probe="db"] .details tr.nested table.sub');
      assert.equal(await replication.count(), 1);
      assert.match(await replication.textContent(), /Role\s*primary/);

      const cache = Object.fromEntries((await rowsOf('cache')).map(([k, v, title]) => [k, { v, title }]));
      assert.equal(cache['Used Memory']?.v, '252.0 GiB');
      assert.match(cache['Used Memory']?.title, /270553174016 bytes/, 'the raw value is in the tooltip');
      assert.equal(cache['Hit Ratio']?.v, '97%');
      assert.equal(cache['Uptime']?.v, '1 d 2 h');
      assert.equal(cache['Warn Below']?.v, 'Degraded when free space is below 10%.');
      assert.equal(cache['Last Save At']?.v, '2026-03-29 14:22:01 UTC', 'a timestamp in the registry\'s zone');
      assert.equal(cache['Last Save At']?.title, 'Raw value: 2026-03-29T14:22:01.843000Z');

      // The per-route table: a real table, one row per route, a column per figure.
      const table = page.locator('[data-probe="queue"] table.grid-table');
      assert.equal(await table.count(), 1);
      assert.equal(await page.locator('[data-probe="queue"]').evaluate((c) => c.classList.contains('wide')), true, 'the card takes the full width');
      const heads = await table.locator('thead th').allTextContents();
      assert.deepEqual(heads, ['Routes', 'Request Count', 'Error Count', 'Error Rate', 'Last Status Code', 'Avg Rtt', 'P50 Rtt', 'P95 Rtt', 'P99 Rtt']);
      const routes = () => table.locator('tbody th').allTextContents();
      assert.deepEqual(await routes(), ['GET /jobs', 'POST /jobs', 'DELETE /jobs/{id}']);
      const narrow = await table.evaluate((t) =>
        [...t.querySelectorAll('th, td')].filter((c) => c.scrollWidth > c.clientWidth + 1).map((c) => c.textContent));
      assert.deepEqual(narrow, [], 'no cell is narrower than its content');
      const post = await table.locator('tbody tr', { hasText: 'POST /jobs' }).locator('td').allTextContents();
      assert.deepEqual(post, ['310', '31', '10%', '503', '18.50 ms', '15.00 ms', '61.20 ms', '1.25 s']);
      await table.getByRole('button', { name: 'Request Count' }).click();
      assert.deepEqual(await routes(), ['DELETE /jobs/{id}', 'POST /jobs', 'GET /jobs'], 'sorted ascending');
      assert.equal(await table.locator('thead th').nth(1).getAttribute('aria-sort'), 'ascending');
      await table.getByRole('button', { name: 'Request Count' }).click();
      assert.deepEqual(await routes(), ['GET /jobs', 'POST /jobs', 'DELETE /jobs/{id}'], 'sorted descending');
      // The sort survives the next report re-rendering the details.
      const checked = await page.textContent('#checked');
      await page.waitForFunction((c) => document.getElementById('checked').textContent !== c, checked, { timeout: 5000 });
      assert.equal(await page.locator('[data-probe="queue"] table.grid-table thead th').nth(1).getAttribute('aria-sort'), 'descending');
    });

    await t.test('since when, a status timeline and a sparkline from history', async () => {
      await page.waitForFunction(() => document.querySelectorAll('[data-probe="db"] .timeline .seg').length >= 3, null, { timeout: 15_000 });
      const segs = await page.$$eval('[data-probe="db"] .timeline .seg', (s) => s.map((x) => ({ status: x.dataset.status, title: x.title })));
      assert.ok(segs.length >= 3, `${segs.length} segments`);
      for (const s of segs) {
        assert.equal(s.status, 'healthy');
        assert.match(s.title, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC · Healthy · \d+\.\d{2} ms$/);
      }
      assert.match(await page.textContent('[data-probe="db"] .since'), /^Healthy since \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC \(\d+ s\)$/);
      const legacy = await page.$$eval('[data-probe="legacy-api"] .timeline .seg', (s) => s.map((x) => x.title));
      assert.ok(legacy.some((title) => title.includes('upstream answered 502')), 'a failing segment shows its error');
      const sparkPoints = () =>
        page.evaluate(() => {
          const line = document.querySelector('[data-probe="db"] .spark:not([hidden]) polyline');
          return line ? line.getAttribute('points').trim().split(/\s+/).filter(Boolean).length : 0;
        });
      const first = await sparkPoints();
      assert.ok(first >= 3, `a sparkline is drawn (${first} points)`);
      // One legend for every timeline: the statuses and each kind of mark, each explained.
      const legend = await page.$$eval('#legend [data-legend]', (items) =>
        items.filter((i) => i.checkVisibility()).map((i) => [i.dataset.legend, i.textContent, i.title, i.querySelector('.seg')?.dataset.kind ?? '']));
      assert.deepEqual(legend, [
        ['healthy', 'Healthy', '', ''],
        ['degraded', 'Degraded', '', ''],
        ['unhealthy', 'Unhealthy', '', ''],
        ['gap', 'No data', 'no data: no result recorded', 'gap'],
        ['open', 'Circuit open', 'circuit open: not called', 'open'],
        ['maintenance', 'Maintenance', 'maintenance: results recorded, alerts held', 'maintenance'],
        ['draining', 'Draining', 'draining: the service was shutting down and stopped checking', 'draining'],
      ]);
    });

    await t.test('results during maintenance are marked on the timeline', async () => {
      const on = await fetch(`${fixture.base}/health/maintenance`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ minutes: 10 }),
      });
      assert.equal(on.status, 200, await on.text());
      try {
        await page.locator('#maintenance-banner').waitFor({ state: 'visible', timeout: 8000 });
        await page.waitForFunction(
          () => document.querySelectorAll('[data-probe="db"] .timeline .seg[data-kind="maintenance"]').length >= 2,
          null,
          { timeout: 20_000 },
        );
        const marked = await page.$$eval('[data-probe="db"] .timeline .seg[data-kind="maintenance"]', (s) => s.map((x) => [x.dataset.status, x.title]));
        for (const [status, title] of marked) {
          assert.equal(status, 'healthy');
          assert.match(title, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC · Healthy · \d+\.\d{2} ms · maintenance: results recorded, alerts held$/);
        }
        const label = await page.getAttribute('[data-probe="db"] .timeline', 'aria-label');
        assert.match(label, /; marked: maintenance$/);
      } finally {
        assert.equal((await fetch(`${fixture.base}/health/maintenance`, { method: 'DELETE' })).status, 200);
      }
      await page.locator('#maintenance-banner').waitFor({ state: 'hidden', timeout: 8000 });
      // Results after the window are plain again.
      await page.waitForFunction(
        () => {
          const segs = [...document.querySelectorAll('[data-probe="db"] .timeline .seg')];
          return segs.length > 0 && !segs.at(-1).dataset.kind && segs.some((s) => s.dataset.kind === 'maintenance');
        },
        null,
        { timeout: 15_000 },
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
      assert.deepEqual(await visibleCards(page), ['legacy-api', 'search']);
      await page.click('#tagbar button[data-tag="cache"]');
      assert.deepEqual(await visibleCards(page), ['legacy-api', 'search', 'cache'], 'tags match any');
      assert.equal(await page.getAttribute('#tagbar button[data-tag="cache"]', 'aria-pressed'), 'true');
      await page.click('#clear');
      assert.deepEqual(await visibleCards(page), severityOrder(initial.probes));
    });

    await t.test('no WCAG AA violation, light and dark', async () => {
      assert.deepEqual(await axeViolations(page), [], 'light');
      await page.emulateMedia({ colorScheme: 'dark' });
      assert.deepEqual(await axeViolations(page), [], 'dark');
      await page.emulateMedia({ colorScheme: 'light' });
    });

    await page.locator('#search').blur();
    await page.waitForTimeout(400);
    await page.screenshot({ path: join(SHOTS, 'dashboard-healthy.png'), fullPage: true, animations: 'disabled' });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(SHOTS, 'dashboard-healthy-dark.png'), fullPage: true, animations: 'disabled' });
    await page.emulateMedia({ colorScheme: 'light' });

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
      const now = initial.probes.map((p) => (p.name === 'db' ? { ...p, status: 'unhealthy' } : p));
      const want = summaryOf(now);
      assert.notEqual(want, before.summary);
      await page.waitForFunction((s) => document.getElementById('summary').textContent === s, want, { timeout: 3000 });
      assert.deepEqual(await cardNames(page), severityOrder(now), 'the failing critical card moved first');
      assert.equal((await cardNames(page))[0], 'db');
      assert.match(await page.locator('[data-probe="db"] .error').textContent(), /connection refused/);
      await page.waitForFunction((c) => document.getElementById('checked').textContent !== c, before.checked, { timeout: 3000 });

      // Since when: a time and a duration that grows (the exact text is
      // checked below against the recorded transition and a set clock).
      const since = await page.textContent('[data-probe="db"] .since');
      assert.match(since, /^Unhealthy since (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) UTC \((\d+) s\)$/);
      const at = utcSeconds(since);
      await page.waitForFunction(
        (s) => {
          const t = document.querySelector('[data-probe="db"] .since').textContent;
          return t.startsWith(s.split(' (')[0]) && t !== s;
        },
        since,
        { timeout: 4000 },
      );
      assert.match(await page.textContent('#held'), /^Unhealthy for \d+ s, since \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/);
      assert.equal(utcSeconds(await page.textContent('#held')), at, 'the overall status has held since db failed');
      assert.match(await page.textContent('#failing'), /^Failing: db \(unhealthy\); not critical: legacy-api \(unhealthy\), search \(degraded\)$/);

      // The timeline gains the failing results, with their error in the tooltip.
      await page.waitForFunction(
        () => [...document.querySelectorAll('[data-probe="db"] .timeline .seg')].some((s) => s.dataset.status === 'unhealthy'),
        null,
        { timeout: 12_000 },
      );
      const titles = await page.$$eval('[data-probe="db"] .timeline .seg[data-status="unhealthy"]', (s) => s.map((x) => x.title));
      assert.match(titles[0], /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC · Unhealthy · (\d+\.\d{2} ms|—)( · circuit open: not called)? · io::Error: connection refused/);

      // The alert log: the change, and what the pager did with it.
      await page.waitForFunction(() => document.querySelector('#alert-list [data-alert-probe="db"]'), null, { timeout: 12_000 });
      const alert = page.locator('#alert-list [data-alert-probe="db"]').first();
      assert.match(await alert.textContent(), /db healthy → unhealthy/);
      assert.equal(await alert.locator('.delivery').getAttribute('data-delivery'), 'sent');
      const rejected = page.locator('#alert-list [data-alert-probe="legacy-api"] .delivery').first();
      assert.equal(await rejected.getAttribute('data-delivery'), 'rejected');
      assert.match(await rejected.textContent(), /pager: rejected \(403 from the pager/);
      await page.waitForTimeout(700); // let the colour transition finish before the screenshot
      assert.notEqual(await headerBackground(page), before.background);
    });

    await page.screenshot({ path: join(SHOTS, 'dashboard-unhealthy.png'), fullPage: true, animations: 'disabled' });
    // The first screen alone, small enough for the README (docs/dashboard.png).
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(SHOTS, 'dashboard-unhealthy-top.png'), animations: 'disabled' });

    await t.test('since when, exactly: the recorded transition against a clock the test sets', async () => {
      // The time of the change is the server's record of it; the page's
      // clock is fixed 75 s later, so the text is known to the character.
      const body = await (await fetch(`${fixture.base}/health/alerts`)).json();
      const ms = (ts) => Date.parse(ts.replace(/(\.\d{3})\d*/, '$1'));
      const changes = body.alerts.filter((a) => a.probe === 'db' && a.old_status === 'healthy' && a.new_status === 'unhealthy');
      assert.equal(changes.length, 1, JSON.stringify(body.alerts));
      const [change] = changes;
      const at = ms(change.timestamp);
      const shown = change.timestamp.slice(0, 19).replace('T', ' ') + ' UTC';
      const timed = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
      try {
        await timed.clock.setFixedTime(at + 75_000);
        const p = await timed.newPage();
        p.on('pageerror', (e) => pageErrors.push(String(e)));
        await p.goto(`${fixture.base}/health/dashboard`);
        const sinceIs = (want) =>
          p.waitForFunction((w) => document.querySelector('[data-probe="db"] .since')?.textContent === w, want, { timeout: 15_000 })
            .catch(async (e) => { throw new Error(`${e.message}\nwanted ${want}\nshown ${await p.textContent('[data-probe="db"] .since')}`); });
        await sinceIs(`Unhealthy since ${shown} (1 min 15 s)`);
        assert.equal(await p.textContent('#held'), `Unhealthy for 1 min 15 s, since ${shown}`);
        await timed.clock.setFixedTime(at + (2 * 3600 + 3 * 60 + 4) * 1000);
        await sinceIs(`Unhealthy since ${shown} (2 h 3 min)`);
        assert.equal(await p.textContent('#held'), `Unhealthy for 2 h 3 min, since ${shown}`);
      } finally {
        await timed.close();
      }
    });

    await t.test('the page follows a dark colour scheme', async () => {
      const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      await page.emulateMedia({ colorScheme: 'dark' });
      const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.notEqual(dark, light);
      assert.deepEqual(await axeViolations(page), [], 'dark, unhealthy');
      await page.waitForTimeout(400);
      await page.screenshot({ path: join(SHOTS, 'dashboard-unhealthy-dark.png'), fullPage: true, animations: 'disabled' });
      await page.emulateMedia({ colorScheme: 'light' });
      assert.deepEqual(await axeViolations(page), [], 'light, unhealthy');
    });

    await t.test('usable at 375 px wide', async () => {
      for (const scheme of ['light', 'dark']) {
        const narrow = await browser.newContext({ viewport: { width: 375, height: 812 }, colorScheme: scheme });
        const p = await narrow.newPage();
        p.on('pageerror', (e) => pageErrors.push(String(e)));
        await p.goto(`${fixture.base}/health/dashboard`);
        await p.waitForFunction(() => document.querySelectorAll('[data-probe] .timeline .seg').length > 0, null, { timeout: 10_000 });
        const width = await p.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(width <= 375, `no horizontal scrolling of the page (${width} px)`);
        const cardWidths = await p.$$eval('[data-probe]', (cs) => cs.map((c) => c.getBoundingClientRect().right));
        assert.ok(cardWidths.every((r) => r <= 375), `cards fit: ${cardWidths}`);
        assert.deepEqual(await axeViolations(p), [], `375 px, ${scheme}`);
        await p.waitForTimeout(300);
        await p.screenshot({ path: join(SHOTS, `dashboard-375-${scheme}.png`), fullPage: true, animations: 'disabled' });
        await narrow.close();
      }
    });

    await t.test('keyboard focus is visible', async () => {
      await page.focus('#order');
      await page.keyboard.press('Tab');
      const outline = await page.evaluate(() => {
        const s = getComputedStyle(document.activeElement);
        return { id: document.activeElement.id, style: s.outlineStyle, width: s.outlineWidth };
      });
      assert.equal(outline.id, 'search');
      assert.notEqual(outline.style, 'none');
      await page.keyboard.press('Tab');
      const chip = await page.evaluate(() => ({ tag: document.activeElement.dataset.tag, style: getComputedStyle(document.activeElement).outlineStyle }));
      assert.ok(chip.tag, 'the first tag chip takes focus next');
      assert.notEqual(chip.style, 'none');
    });

    await t.test('nothing left the fixture origin and nothing went wrong', async () => {
      const origin = new URL(fixture.base).origin;
      const network = requests.filter((u) => !u.startsWith('data:'));
      const foreign = network.filter((u) => new URL(u).origin !== origin);
      assert.deepEqual(foreign, [], 'requests to other origins');
      for (const path of ['/health/dashboard', '/health/status/stream', '/health/history', '/health/alerts', '/health/alerts/deliveries']) {
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
      await draining.close();

      // The timeline of a draining service: a result every second, a pause
      // with no data, then the drain, after which no result follows.
      const t0 = Date.parse('2026-12-04T10:00:00Z');
      const stamp = (s) => new Date(t0 + s * 1000).toISOString().replace('Z', '000Z');
      const dbAt = (s) => ({ name: 'db', status: 'healthy', critical: true, latency_ms: 1.5, error: null, description: null, tags: [], details: null, checked_at: stamp(s) });
      const drainReport = { status: 'healthy', checked_at: stamp(14), timezone: 'UTC', probes: [dbAt(13)], failing: [], lifecycle: 'draining' };
      const timeline = await open([
        ['**/health/history', (r) => r.fulfill({ json: { probes: { db: [0, 1, 2, 3, 4, 12, 13].map(dbAt) } } })],
        ['**/health/status/stream', (r) => r.fulfill({ contentType: 'text/event-stream', body: `retry: 60000\ndata: ${JSON.stringify(drainReport)}\n\n` })],
      ]);
      await timeline.waitForFunction(() => document.querySelectorAll('[data-probe="db"] .timeline .seg').length === 9, null, { timeout: 10_000 });
      const segs = await timeline.$$eval('[data-probe="db"] .timeline .seg', (s) => s.map((x) => [x.dataset.kind ?? '', x.title]));
      assert.deepEqual(segs.map(([kind]) => kind), ['', '', '', '', '', 'gap', '', '', 'draining']);
      assert.equal(segs[5][1], 'No data: no result for 8 s, 2026-12-04 10:00:04 UTC to 2026-12-04 10:00:12 UTC');
      assert.equal(segs[8][1], 'Draining since 2026-12-04 10:00:14 UTC: the service is shutting down, no result follows');
      assert.match(await timeline.getAttribute('[data-probe="db"] .timeline', 'aria-label'), /: 7 healthy; marked: draining, no data$/);
      await timeline.screenshot({ path: join(SHOTS, 'dashboard-draining.png'), fullPage: true, animations: 'disabled' });
      await timeline.close();

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
