// The dashboard shows times in the registry's zone, not the browser's: the
// fixture runs with TIMEZONE=Asia/Kolkata (UTC+05:30), the browser in
// America/New_York, in real headless Chromium.
//
//   FIXTURE_BIN=target/debug/examples/dashboard_fixture node --test tests/browser/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, startFixture } from './lib.mjs';

/** `2026-03-29T19:52:01.843000+05:30` as the page writes it: `2026-03-29 19:52:01 Asia/Kolkata`. */
const kolkata = (ts) => ts.slice(0, 19).replace('T', ' ') + ' Asia/Kolkata';

test("times in the registry's zone, whatever the browser's", { timeout: 120_000 }, async () => {
  const bin = process.env.FIXTURE_BIN;
  assert.ok(bin, 'FIXTURE_BIN must name the built dashboard_fixture example');
  const fixture = await startFixture(resolve(bin), { TIMEZONE: 'Asia/Kolkata' });
  let browser;
  try {
    const report = await (await fetch(`${fixture.base}/health/status`)).json();
    assert.equal(report.timezone, 'Asia/Kolkata');
    assert.match(report.checked_at, /\+05:30$/, 'the registry stamps its zone');

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const context = await browser.newContext({ timezoneId: 'America/New_York', viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.route('**/health/maintenance', (r) => r.fulfill({ json: { active: true, until: '2026-12-01T06:30:00.000000Z' } }));
    await page.goto(`${fixture.base}/health/dashboard`);
    assert.equal(await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone), 'America/New_York');

    await page.waitForFunction(() => document.querySelectorAll('[data-probe="db"] .timeline .seg').length >= 3, null, { timeout: 15_000 });
    assert.match(await page.textContent('#checked'), /^Last checked \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} Asia\/Kolkata$/);

    // A detail stamped in UTC is converted: 14:22:01 UTC is 19:52:01 in Kolkata (10:22:01 in New York).
    const save = page.locator('[data-probe="cache"] .details tr', { hasText: 'Last Save At' }).locator('td');
    assert.equal(await save.textContent(), '2026-03-29 19:52:01 Asia/Kolkata');

    // The maintenance window's end, given in UTC.
    await page.locator('#maintenance-banner').waitFor({ state: 'visible', timeout: 8000 });
    assert.equal(await page.textContent('#maintenance-text'), 'until 2026-12-01 12:00:00 Asia/Kolkata');

    // Each segment of a timeline is one of the history's results, at its time in the zone.
    const titles = await page.$$eval('[data-probe="db"] .timeline .seg', (s) => s.map((x) => x.title));
    const history = await (await fetch(`${fixture.base}/health/history`)).json();
    const stamps = new Set(history.probes.db.map((r) => kolkata(r.checked_at)));
    assert.ok(history.probes.db.every((r) => r.checked_at.endsWith('+05:30')), 'history is stamped in the zone');
    for (const title of titles) {
      const time = title.split(' · ')[0];
      assert.ok(stamps.has(time), `${time} is a result's time in Kolkata`);
    }
    assert.match(await page.textContent('[data-probe="db"] .since'), /^Healthy since \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} Asia\/Kolkata \([^)]+\)$/);
    assert.deepEqual(errors, [], 'page errors');
  } finally {
    await browser?.close().catch(() => {});
    await fixture.stop();
  }
});
