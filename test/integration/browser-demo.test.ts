// The demo page in a real headless Chromium: the browser's own EventSource
// receives live `tick` events, and a message sent through the page's form
// comes back as a `chat` event. Needs dist/ built (npm test builds first).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { createDemo } from '../../demo/app.js';
import { launchChromium, requireChromium } from '../helpers/browser.js';
import { until } from '../helpers/sse-client.js';

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const SCREENSHOT = `${ARTIFACTS}demo.png`;

test('demo page: live ticks and a posted chat message arrive through the browser EventSource', {
  timeout: 120_000,
}, async (t) => {
  if (!requireChromium(t)) return;

  const demo = createDemo({ tickMs: 200 });
  const server = http.createServer(demo.app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  let browser: Browser | undefined;

  try {
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 960, height: 760 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      // Failed HTTP responses are checked below, from the responses themselves.
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
        pageErrors.push(`console: ${message.text()}`);
      }
    });
    const failedResponses: string[] = [];
    page.on('response', (response) => {
      if (response.status() >= 400) {
        failedResponses.push(`${response.status()} ${response.request().method()} ${new URL(response.url()).pathname}`);
      }
    });
    const eventSourceRequests: string[] = [];
    page.on('request', (request) => {
      if (request.resourceType() === 'eventsource') eventSourceRequests.push(request.url());
    });

    await page.goto(`${origin}/`);
    assert.equal(await page.locator('#room').textContent(), 'demo');

    // The stream opens: the browser fired `open`, and the library's opening event was dispatched.
    await page.locator('#status[data-state="open"]').waitFor();
    await page.locator('#events li[data-type="stream-open"]').waitFor({ state: 'attached' });
    assert.deepEqual(eventSourceRequests, [`${origin}/events/demo`], 'the page subscribes with an EventSource');
    assert.deepEqual(demo.eventStream.stats().channels, { demo: 1 }, 'the server sees one subscriber on "demo"');

    // Live ticks, newest first, consecutive: none lost, none out of order.
    const tickCounts = () =>
      page.$$eval('#events li[data-type="tick"]', (items) => items.map((item) => Number(item.getAttribute('data-count'))));
    await page.locator('#events li[data-type="tick"]').nth(2).waitFor({ state: 'attached' });
    const firstTicks = await tickCounts();
    assert.ok(firstTicks.length >= 3);
    for (let i = 1; i < firstTicks.length; i++) {
      assert.equal(firstTicks[i - 1], firstTicks[i]! + 1, `ticks arrive in order without gaps: ${firstTicks.join(', ')}`);
    }
    // Read one item's count and text together: a new tick may land between two separate reads.
    const newest = await page.$eval('#events li[data-type="tick"]', (item) => ({
      count: item.getAttribute('data-count'),
      text: item.querySelector('.body')?.textContent,
    }));
    assert.equal(newest.text, `tick #${newest.count}`);
    assert.match((await page.locator('#events li[data-type="tick"] .time').first().textContent()) ?? '', /^\d{2}:\d{2}:\d{2}$/);

    // The page shows how many listen to its room, from subscribers(): this page alone.
    await page.locator('#listening[data-count="1"]').waitFor({ state: 'attached' });
    assert.equal(await page.locator('#listening').textContent(), 'Listening: 1');
    // A second listener on the room shows up in the next tick.
    const second = await browser.newPage();
    await second.goto(`${origin}/`);
    await page.locator('#listening[data-count="2"]').waitFor({ state: 'attached' });
    await second.close();
    await page.locator('#listening[data-count="1"]').waitFor({ state: 'attached' });

    // The server exposes Prometheus metrics, with the streams the pages opened.
    const metrics = await (await fetch(`${origin}/metrics`)).text();
    assert.match(metrics, /^# TYPE eventstream_streams gauge$/m);
    assert.match(metrics, /^eventstream_streams\{mode="direct"\} 1$/m);
    assert.match(metrics, /^eventstream_streams_opened_total\{mode="direct"\} 2$/m);
    assert.match(metrics, /^eventstream_streams_closed_total\{reason="client"\} 1$/m);

    // Bad input: the server's 400 message is shown, nothing is published.
    await page.locator('#chat-text').fill('   ');
    await page.locator('#chat-send').click();
    await page.locator('#form-message', { hasText: 'The message is empty.' }).waitFor();
    assert.equal(await page.locator('#events li[data-type="chat"]').count(), 0);

    // A message through the form comes back as a chat event, shown as text (not HTML).
    const message = 'Hello from <b>Chromium</b> & "friends" ✓';
    await page.locator('#chat-text').fill(message);
    await page.locator('#chat-send').click();
    const chatItem = page.locator('#events li[data-type="chat"]');
    await chatItem.waitFor();
    assert.equal(await chatItem.count(), 1);
    assert.equal(await chatItem.locator('.body').textContent(), message);
    assert.equal(await page.locator('#events b').count(), 0, 'chat text must not be parsed as HTML');
    assert.equal(await page.locator('#chat-text').inputValue(), '', 'the input is cleared after sending');
    assert.equal(await page.locator('#form-message').textContent(), '', 'the earlier error is cleared');

    // Ticks keep coming after the chat message.
    const lastSeen = firstTicks[0]!;
    await page.locator(`#events li[data-type="tick"][data-count="${lastSeen + 3}"]`).waitFor({ state: 'attached' });
    assert.equal(await page.locator('#status').getAttribute('data-state'), 'open');

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.ok(existsSync(SCREENSHOT));

    assert.deepEqual(pageErrors, [], 'the page logs no errors');
    assert.deepEqual(failedResponses, ['400 POST /publish/demo'], 'only the deliberately bad message fails');

    // Closing the browser ends its stream; the server lets go of the subscriber.
    await browser.close();
    browser = undefined;
    await until(() => demo.eventStream.stats().streams === 0, 5000, 'the browser stream to close on the server');
    assert.deepEqual(demo.eventStream.stats().channels, {});
  } finally {
    await browser?.close();
    await demo.stop();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
