// The dashboard's replica list in real headless Chromium, against
// crates/axum-watch-examples/examples/dashboard_fixture.rs (memory storage).
//
//   FIXTURE_BIN=target/debug/examples/dashboard_fixture node --test tests/browser/
//
// The fixture has no shared storage, so its page has no replica list and
// never asks for the fleet view. The page a shared storage serves differs
// only by `<body data-fleet>` (the Rust tests check the server marks it);
// here the browser gets that page and scripted `status?scope=fleet` answers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, axeViolations, sleep, startFixture } from './lib.mjs';

// Shared history: every replica's results; the sparkline draws this replica's.
const history = {
  probes: {
    db: [
      { name: 'db', status: 'healthy', latency_ms: 1, replica: 'pod-a' },
      { name: 'db', status: 'unhealthy', latency_ms: 50, replica: 'pod-b' },
      { name: 'db', status: 'healthy', latency_ms: 2, replica: 'pod-a' },
    ],
  },
};

// The shared alert log: each replica's changes, labelled with the replica.
const alerts = {
  alerts: [
    { probe: 'db', old_status: 'healthy', new_status: 'unhealthy', timestamp: '2026-03-29T14:20:00.000000Z', replica: 'pod-b', id: 'b-1', critical: true, error: 'connection refused' },
    { probe: 'db', old_status: 'unhealthy', new_status: 'healthy', timestamp: '2026-03-29T14:10:00.000000Z', replica: 'pod-a', id: 'a-2', critical: true },
    { probe: 'db', old_status: 'healthy', new_status: 'unhealthy', timestamp: '2026-03-29T14:05:00.000000Z', replica: 'pod-a', id: 'a-1', critical: true },
  ],
};
// This replica's alerter: it delivered pod-a's records (it never saw pod-b's).
const deliveries = { alerters: [{ alerter: 'pager', waiting: 0, undelivered: [] }] };

const replica = (id, status, extra = {}) => ({
  replica: id,
  self: false,
  stale: false,
  status,
  reported_at: '2026-03-29T14:22:01.843000Z',
  probes: [
    { name: 'db', status, critical: true, latency_ms: 1.5, error: status === 'healthy' ? null : 'connection refused', description: null, tags: [], details: null },
    { name: 'queue', status: 'healthy', critical: true, latency_ms: 0.5, error: null, description: null, tags: [], details: null },
  ],
  ...extra,
});

test('the dashboard lists the replicas when a shared storage is configured', { timeout: 120_000 }, async () => {
  const bin = process.env.FIXTURE_BIN;
  assert.ok(bin, 'FIXTURE_BIN must name the built dashboard_fixture example');
  const fixture = await startFixture(resolve(bin));
  let browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const errors = [];

    // Memory storage: no list, and no request for the fleet view.
    const plain = await context.newPage();
    const asked = [];
    plain.on('request', (r) => { if (r.url().includes('scope=fleet')) asked.push(r.url()); });
    plain.on('pageerror', (e) => errors.push(String(e)));
    await plain.goto(`${fixture.base}/health/dashboard`);
    await plain.locator('[data-probe]').first().waitFor({ timeout: 10_000 });
    await sleep(500);
    assert.equal(await plain.locator('#replicas').isVisible(), false);
    assert.deepEqual(asked, []);
    await plain.close();

    // The page a shared storage serves, with a scripted fleet.
    const open = async (fleet) => {
      const page = await context.newPage();
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.route('**/health/dashboard', async (route) => {
        const original = await route.fetch();
        const body = (await original.text()).replace('<body>', '<body data-fleet>');
        await route.fulfill({ response: original, body });
      });
      await page.route('**/health/status?scope=fleet', (route) => route.fulfill({ json: fleet }));
      await page.route('**/health/history', (route) => route.fulfill({ json: history }));
      await page.route('**/health/alerts', (route) => route.fulfill({ json: alerts }));
      await page.route('**/health/alerts/deliveries', (route) => route.fulfill({ json: deliveries }));
      await page.goto(`${fixture.base}/health/dashboard`);
      return page;
    };

    const page = await open({
      scope: 'fleet',
      status: 'unhealthy',
      replica: 'pod-a',
      store: 'ok',
      replicas: [
        replica('pod-a', 'healthy', { self: true }),
        replica('pod-b', 'unhealthy'),
        replica('pod-c', 'degraded', { stale: true, reported_at: '2026-03-29T13:00:00.000000Z' }),
      ],
    });
    await page.locator('#replicas').waitFor({ state: 'visible', timeout: 10_000 });
    const items = await page.$$eval('#replica-list [data-replica]', (nodes) =>
      nodes.map((n) => ({ id: n.dataset.replica, status: n.dataset.status, stale: n.dataset.stale, text: n.textContent })),
    );
    assert.deepEqual(items.map((i) => [i.id, i.status, i.stale]), [
      ['pod-a', 'healthy', 'false'],
      ['pod-b', 'unhealthy', 'false'],
      ['pod-c', 'degraded', 'true'],
    ]);
    assert.match(items[0].text, /this replica/);
    assert.match(items[2].text, /stale/);
    assert.match(items[2].text, /reported 2026-03-29 13:00:00 UTC/);
    assert.equal(await page.locator('#store-note').isVisible(), false);

    // The grid: replicas × probes, each cell the latest status, the stale replica marked.
    const grid = await page.$$eval('#fleet-grid tbody tr', (rows) =>
      rows.map((tr) => ({
        replica: tr.dataset.replica,
        stale: tr.dataset.stale,
        head: tr.cells[0].textContent,
        cells: [...tr.querySelectorAll('td')].map((td) => [td.dataset.cellProbe, td.dataset.status, td.textContent]),
      })),
    );
    assert.deepEqual(await page.$$eval('#fleet-grid thead th', (ths) => ths.map((th) => th.textContent)), ['Replica', 'db', 'queue']);
    for (const row of grid) row.head = row.head.trim();
    assert.deepEqual(grid, [
      { replica: 'pod-a', stale: 'false', head: 'pod-a (this replica)', cells: [['db', 'healthy', 'Healthy'], ['queue', 'healthy', 'Healthy']] },
      { replica: 'pod-b', stale: 'false', head: 'pod-b', cells: [['db', 'unhealthy', 'Unhealthy'], ['queue', 'healthy', 'Healthy']] },
      { replica: 'pod-c', stale: 'true', head: 'pod-c (stale)', cells: [['db', 'degraded', 'Degraded'], ['queue', 'healthy', 'Healthy']] },
    ]);
    assert.equal(await page.getAttribute('#fleet-grid tr[data-replica="pod-b"] td[data-cell-probe="db"]', 'title'), 'connection refused');

    // The alert log holds every replica's changes, each labelled, newest first;
    // this replica's deliveries say nothing of another replica's records.
    await page.waitForFunction(
      () => document.querySelector('#alert-list [data-alert-replica="pod-b"] .delivery')?.dataset.delivery === 'elsewhere',
      null,
      { timeout: 10_000 },
    );
    const log = await page.$$eval('#alert-list li', (lis) =>
      lis.map((li) => [li.dataset.alertReplica, li.querySelector('.alert-time').textContent, li.querySelector('.alert-replica')?.textContent,
        li.querySelector('.delivery')?.dataset.delivery, li.querySelector('.delivery')?.textContent]));
    assert.deepEqual(log, [
      ['pod-b', '2026-03-29 14:20:00 UTC', 'pod-b', 'elsewhere', 'delivery on pod-b'],
      ['pod-a', '2026-03-29 14:10:00 UTC', 'pod-a (this replica)', 'sent', 'pager: sent'],
      ['pod-a', '2026-03-29 14:05:00 UTC', 'pod-a (this replica)', 'sent', 'pager: sent'],
    ]);
    assert.deepEqual(await axeViolations(page), [], 'the fleet view, light');

    // The grid links each replica to its cards; the selector goes back.
    await page.click('#fleet-grid button.view-replica[data-replica="pod-b"]');
    await page.waitForFunction(() => document.querySelector('[data-probe="db"]')?.dataset.status === 'unhealthy', null, { timeout: 5000 });
    assert.match(await page.textContent('#viewing-note'), /^Showing the cards of pod-b, as it last reported at 2026-03-29 14:22:01 UTC\.$/);
    assert.equal(await page.inputValue('#replica-select'), 'pod-b');
    assert.equal(await page.textContent('[data-probe="db"] .error'), 'connection refused');
    assert.equal(
      await page.locator('[data-probe="db"] .spark').getAttribute('aria-label'),
      'Latency over the last 1 check: 50.00 to 50.00 ms',
      "pod-b's history",
    );
    await page.screenshot({ path: resolve('target', 'dashboard-replica-pod-b.png'), fullPage: true });
    await page.selectOption('#replica-select', '');
    await page.waitForFunction(() => document.querySelector('[data-probe="db"]')?.dataset.status === 'healthy', null, { timeout: 5000 });
    assert.equal(await page.locator('#viewing-note').isVisible(), false);
    assert.equal(
      await page.locator('[data-probe="db"] .spark').getAttribute('aria-label'),
      'Latency over the last 2 checks: 1.00 to 2.00 ms',
    );
    await page.emulateMedia({ colorScheme: 'dark' });
    assert.deepEqual(await axeViolations(page), [], 'the fleet view, dark');
    await page.screenshot({ path: resolve('target', 'dashboard-replicas-dark.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.waitForFunction(
      () => document.querySelector('[data-probe="db"] .spark')?.getAttribute('aria-label')?.includes('last 2 checks'),
      null,
      { timeout: 10_000 },
    );
    assert.equal(
      await page.locator('[data-probe="db"] .spark').getAttribute('aria-label'),
      'Latency over the last 2 checks: 1.00 to 2.00 ms',
    );
    await page.screenshot({ path: resolve('target', 'dashboard-replicas.png'), fullPage: true });
    await page.close();

    // The store is unreachable: this replica alone, and a note saying so.
    const alone = await open({
      scope: 'fleet',
      status: 'healthy',
      replica: 'pod-a',
      store: 'unreachable',
      replicas: [replica('pod-a', 'healthy', { self: true })],
    });
    await alone.locator('#store-note').waitFor({ state: 'visible', timeout: 10_000 });
    assert.equal(await alone.locator('#replica-list [data-replica]').count(), 1);
    await alone.close();
    assert.deepEqual(errors, [], 'page errors');
  } finally {
    await browser?.close().catch(() => {});
    await fixture.stop();
  }
});
