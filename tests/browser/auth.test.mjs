// The dashboard under Basic, API-key and custom authentication, in real
// headless Chromium, against crates/axum-watch-examples/examples/dashboard_fixture.rs
// started with AUTH=basic, AUTH=api-key or AUTH=custom.
//
//   FIXTURE_BIN=target/debug/examples/dashboard_fixture node --test tests/browser/
//
// The page reads the stream with fetch, so the credentials it has go with
// every request it makes: the browser's Basic credentials, or the API key
// it was given, in the key's header and never in a URL, or the cookies a
// custom check relies on.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, startFixture } from './lib.mjs';

const KEY = 'k3y-for-tests';
/** The session cookie's value that the fixture's custom check (AUTH=custom) accepts. */
const SESSION = 's3ss10n-for-tests';

/** Waits for `db` to show `status` on `page`. */
const dbIs = (page, status, timeout = 8000) =>
  page.waitForFunction((s) => document.querySelector('[data-probe="db"]')?.dataset.status === s, status, { timeout });

/** Records what `page` asks for, and what goes wrong in it. */
function watch(page) {
  const seen = { requests: [], errors: [], console: [] };
  page.on('request', (r) => seen.requests.push({ url: r.url(), headers: r.headers(), kind: r.resourceType() }));
  page.on('pageerror', (e) => seen.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') seen.console.push({ text: m.text(), url: m.location().url }); });
  return seen;
}

test('live updates under Basic authentication', { timeout: 120_000 }, async () => {
  const bin = process.env.FIXTURE_BIN;
  assert.ok(bin, 'FIXTURE_BIN must name the built dashboard_fixture example');
  const basic = { authorization: 'Basic ' + Buffer.from('ops:s3cret').toString('base64') };
  const fixture = await startFixture(resolve(bin), { AUTH: 'basic' }, basic);
  let browser;
  try {
    assert.equal((await fetch(`${fixture.base}/health/status`)).status, 401, 'the fixture asks for credentials');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const context = await browser.newContext({ httpCredentials: { username: 'ops', password: 's3cret' } });
    const page = await context.newPage();
    const seen = watch(page);
    const answers = [];
    page.on('response', (r) => answers.push([new URL(r.url()).pathname, r.status()]));
    await page.goto(`${fixture.base}/health/dashboard`);
    await dbIs(page, 'healthy');
    await page.waitForFunction(() => document.getElementById('conn').dataset.state === 'open', null, { timeout: 5000 });
    assert.equal((await fetch(`${fixture.base}/fixture/db/unhealthy`, { method: 'POST' })).status, 200);
    await dbIs(page, 'unhealthy');
    await page.waitForFunction(() => document.querySelector('#alert-list [data-alert-probe="db"]'), null, { timeout: 12_000 });
    const stream = answers.filter(([path]) => path === '/health/status/stream');
    assert.ok(stream.length >= 1 && stream.every(([, code]) => code === 200), `the stream was served: ${JSON.stringify(stream)}`);
    const ownRequests = seen.requests.filter((r) => r.kind === 'fetch');
    assert.ok(ownRequests.some((r) => r.url.endsWith('/health/status/stream')), 'the stream is read with fetch');
    assert.equal(await page.locator('#signin').isVisible(), false, 'no key form under Basic');
    // Chromium logs the first, unauthenticated try of the document before it answers the challenge.
    const errors = seen.console.filter((m) => !(m.text.includes('401') && m.url.endsWith('/health/dashboard')));
    assert.deepEqual(errors, [], 'console errors');
    assert.deepEqual(seen.errors, [], 'page errors');
  } finally {
    await browser?.close().catch(() => {});
    await fixture.stop();
  }
});

test('live updates under API-key authentication, the key in a header and never in a URL', { timeout: 120_000 }, async () => {
  const bin = process.env.FIXTURE_BIN;
  assert.ok(bin, 'FIXTURE_BIN must name the built dashboard_fixture example');
  const fixture = await startFixture(resolve(bin), { AUTH: 'api-key' }, { 'x-api-key': KEY });
  let browser;
  try {
    assert.equal((await fetch(`${fixture.base}/health/status`)).status, 403, 'the fixture asks for the key');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const context = await browser.newContext();
    const page = await context.newPage();
    const seen = watch(page);
    const answers = [];
    page.on('response', (r) => answers.push({ path: new URL(r.url()).pathname, status: r.status() }));
    // The page itself (no data in it) loads without the key, which a
    // browser could not send when it loads a page; every request for data
    // carries only what the page adds.
    const response = await page.goto(`${fixture.base}/health/dashboard`);
    assert.equal(response.status(), 200);
    assert.match(await page.evaluate(() => document.body.dataset.keyHeader), /^x-api-key$/);

    // Without the key the stream is refused, and the page asks for it.
    await page.locator('#signin').waitFor({ state: 'visible', timeout: 5000 });
    assert.equal(await page.locator('[data-probe]').count(), 0);
    assert.equal(await page.textContent('#conn-text'), 'Disconnected');
    await page.fill('#key-input', KEY);
    await page.press('#key-input', 'Enter');
    await dbIs(page, 'healthy');
    await page.waitForFunction(() => document.getElementById('conn').dataset.state === 'open', null, { timeout: 5000 });
    assert.equal(await page.locator('#signin').isVisible(), false);
    assert.equal(await page.inputValue('#key-input'), '', 'the field does not keep the key');

    // Live: a change on the server reaches the page through the keyed stream.
    assert.equal((await fetch(`${fixture.base}/fixture/db/unhealthy`, { method: 'POST' })).status, 200);
    await dbIs(page, 'unhealthy');
    await page.waitForFunction(
      () => [...document.querySelectorAll('[data-probe="db"] .timeline .seg')].some((s) => s.dataset.status === 'unhealthy'),
      null,
      { timeout: 12_000 },
    );

    const own = seen.requests.filter((r) => r.kind === 'fetch');
    const afterKey = own.filter((r) => r.headers['x-api-key'] === KEY);
    for (const path of ['/health/status/stream', '/health/history', '/health/alerts', '/health/alerts/deliveries']) {
      assert.ok(afterKey.some((r) => new URL(r.url).pathname === path), `${path} was asked for with the key`);
    }
    for (const r of own) {
      assert.ok(r.headers['x-api-key'] === undefined || r.headers['x-api-key'] === KEY, r.url);
    }
    const leaked = seen.requests.filter((r) => r.url.includes(KEY) || decodeURIComponent(r.url).includes(KEY));
    assert.deepEqual(leaked, [], 'the key is in no URL');
    assert.ok(!fixture.output().includes(KEY), 'the key is in no log line of the server');
    const refusedAfterKey = answers.filter((a) => a.status === 403).length;
    // Only the tries before the key was given were refused, each logged by Chromium.
    assert.ok(refusedAfterKey >= 1);
    const errors = seen.console.filter((m) => !m.text.includes('403'));
    assert.deepEqual(errors, [], 'console errors besides the refusals before the key');
    assert.equal(seen.console.length, refusedAfterKey, 'one console line per refused try, none after the key');
    assert.deepEqual(seen.errors, [], 'page errors');

    // The key is kept for the tab: a reload connects without asking again.
    await page.reload();
    await dbIs(page, 'unhealthy');
    assert.equal(await page.locator('#signin').isVisible(), false);
  } finally {
    await browser?.close().catch(() => {});
    await fixture.stop();
  }
});

test('live updates under custom authentication that accepts a session cookie', { timeout: 120_000 }, async () => {
  const bin = process.env.FIXTURE_BIN;
  assert.ok(bin, 'FIXTURE_BIN must name the built dashboard_fixture example');
  const cookie = { cookie: `dash_session=${SESSION}` };
  const fixture = await startFixture(resolve(bin), { AUTH: 'custom' }, cookie);
  let browser;
  try {
    assert.equal((await fetch(`${fixture.base}/health/status`)).status, 403, 'the check refuses a request without the session');
    assert.equal((await fetch(`${fixture.base}/health/dashboard`)).status, 403, 'and the page too');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const context = await browser.newContext();
    // What the application's own login would have left in the browser.
    await context.addCookies([{ name: 'dash_session', value: SESSION, url: fixture.base, httpOnly: true, sameSite: 'Strict' }]);
    const page = await context.newPage();
    const seen = watch(page);
    const answers = [];
    page.on('response', (r) => answers.push({ path: new URL(r.url()).pathname, status: r.status() }));
    // Playwright shows cookies only among all of a request's headers.
    const sent = [];
    page.on('request', (r) => {
      if (r.resourceType() === 'fetch') sent.push(r.allHeaders().then((headers) => ({ url: r.url(), cookie: headers.cookie ?? '' })));
    });
    const response = await page.goto(`${fixture.base}/health/dashboard`);
    assert.equal(response.status(), 200);
    await dbIs(page, 'healthy');
    await page.waitForFunction(() => document.getElementById('conn').dataset.state === 'open', null, { timeout: 5000 });

    assert.equal((await fetch(`${fixture.base}/fixture/db/unhealthy`, { method: 'POST' })).status, 200);
    await dbIs(page, 'unhealthy');
    await page.waitForFunction(() => document.querySelector('#alert-list [data-alert-probe="db"]'), null, { timeout: 12_000 });

    const own = await Promise.all(sent);
    for (const path of ['/health/status/stream', '/health/history', '/health/alerts', '/health/alerts/deliveries']) {
      assert.ok(own.some((r) => new URL(r.url).pathname === path && r.cookie.includes(SESSION)), `${path} was asked for with the cookie`);
    }
    assert.deepEqual(answers.filter((a) => a.status >= 400), [], 'nothing was refused');
    assert.deepEqual(seen.requests.filter((r) => r.url.includes(SESSION)), [], 'the session is in no URL');
    assert.equal(await page.locator('#signin').isVisible(), false, 'no key form under custom authentication');
    assert.deepEqual(seen.console, [], 'console errors');
    assert.deepEqual(seen.errors, [], 'page errors');
  } finally {
    await browser?.close().catch(() => {});
    await fixture.stop();
  }
});
