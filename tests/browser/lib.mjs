// What the browser tests share: the fixture process, Chromium's flags and
// axe-core run inside a page.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

async function freePort() {
  const server = createServer();
  await new Promise((ok, fail) => server.once('error', fail).listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}

/**
 * Starts the fixture on a free port with `env` added (`AUTH=basic`, say)
 * and waits until the process listens and `/health/live` answers with
 * `headers`.
 */
export async function startFixture(bin, env = {}, headers = {}) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(bin, [], {
    env: { ...process.env, PORT: String(port), RUST_LOG: process.env.RUST_LOG || 'warn', ...env },
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
      const r = await fetch(`${base}/health/live`, { headers });
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

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * The WCAG 2 A and AA violations axe-core finds in `page` as it is now,
 * as `id: target…` lines. axe is evaluated through the debugging
 * protocol, which the page's CSP does not govern; the page itself loads
 * nothing.
 */
export async function axeViolations(page) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }, resultTypes: ['violations', 'passes'] }),
  );
  if (!result.passes.some((r) => r.id === 'color-contrast') && !result.violations.some((r) => r.id === 'color-contrast')) {
    throw new Error('axe did not check the contrast of any text');
  }
  return result.violations.flatMap((v) =>
    v.nodes.map((n) => `${v.id}: ${n.target.join(' ')} — ${n.failureSummary?.split('\n').slice(0, 2).join(' ')}`),
  );
}
