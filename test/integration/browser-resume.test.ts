// Resume in a real headless Chromium: the browser's own EventSource loses its
// connection (the server drops it twice, then cuts the next resume in the
// middle of its replay, inside an event) while events keep being published,
// reconnects with Last-Event-ID, and ends up with every event exactly once,
// in order, each with the id of its place in the channel. Runs on src/ through tsx, like the other tests.

import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { test } from 'node:test';
import express from 'express';
import type { Browser } from 'playwright-core';
import { EventStream } from '../../src/index.js';
import { launchChromium, requireChromium } from '../helpers/browser.js';
import { listen, type RunningServer } from '../helpers/server.js';
import { until } from '../helpers/sse-client.js';

const CHANNEL = 'resume';
/**
 * Connections the server drops while they are live (the first by destroying
 * the socket, the second by destroying the response). The reconnect after the
 * last of them is then cut in the middle of its replay, and the browser
 * resumes once more: LIVE_DROPS + 2 requests in all.
 */
const LIVE_DROPS = 2;
const REQUESTS = LIVE_DROPS + 2;
/** Index of the request whose replay is cut. */
const CUT_REQUEST = LIVE_DROPS;
/** Events published on a live connection before it is dropped, and on the last one before publishing stops. */
const LIVE_EVENTS_PER_CONNECTION = 150;
/**
 * Milliseconds between publishing steps; every 10th step is a burst of BURST
 * events published in one tick: about 120 events a second. Chromium waits
 * about 3 s before reconnecting (the library sends no `retry:`), so a resume
 * replays some 350 events; the last one, after two waits, some 700: more than
 * one replay page (500), yet within the default history (1000 per channel).
 * Timers only ever run late, so a slow machine publishes fewer, not more.
 */
const STEP_MS = 10;
const BURST = 4;
/** A safety cap: the publisher stops here even if the browser never came back. */
const MAX_EVENTS = 8000;

const PAGE = `<!doctype html>
<html>
<head><meta charset="utf-8"><title>resume</title></head>
<body>
<script>
  const state = { messages: [], opens: 0, errors: 0, streamOpens: [], resets: [] };
  window.sseState = state;
  const source = new EventSource('/events/${CHANNEL}');
  source.addEventListener('open', () => { state.opens++; });
  source.addEventListener('error', () => { state.errors++; });
  source.addEventListener('stream-open', (event) => { state.streamOpens.push(event.lastEventId); });
  source.addEventListener('stream-reset', (event) => { state.resets.push(event.data); });
  source.addEventListener('message', (event) => { state.messages.push({ data: event.data, id: event.lastEventId }); });
</script>
</body>
</html>`;

interface PageState {
  messages: Array<{ data: string; id: string }>;
  opens: number;
  errors: number;
  /** lastEventId of each `stream-open`: the position on a new stream, the id the page resumed from on a resumed one. */
  streamOpens: string[];
  /** Data of any `stream-reset` (history lost): there must be none. */
  resets: string[];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Sorted numbers as `0-4, 9, 12-15`, to name lost or repeated events briefly. */
function ranges(numbers: number[]): string {
  const sorted = [...numbers].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

function sequenceOf(id: string | undefined): number {
  const match = new RegExp(`^${CHANNEL}:(\\d+)$`).exec(id ?? '');
  assert.ok(match, `expected an id ${CHANNEL}:<seq>, got ${JSON.stringify(id)}`);
  return Number(match[1]);
}

/** Complete events the cut replay lets through; the next one is cut inside its `id:` line. */
const EVENTS_BEFORE_CUT = 49;

interface ReplayCut {
  /** Bytes of the cut write that went out, of its length. */
  sent: number;
  of: number;
}

/**
 * Breaks the response the way a network failure in the middle of a replay
 * would: of its replayed events, the first EVENTS_BEFORE_CUT go out whole,
 * the next one only up to the middle of its `id:` line, and nothing more
 * (later writes are lost on the way); a moment later the socket dies.
 */
function cutInReplay(res: ServerResponse): () => ReplayCut | null {
  let cut: ReplayCut | null = null;
  let ids = 0;
  const write = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean;
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (cut !== null) return true;
    if (!Buffer.isBuffer(chunk)) return write(chunk, ...rest);
    // A resumed stream opens without an id, so each `id:` line ends a replayed (or later, live) event.
    for (let at = chunk.indexOf('\nid: '); at !== -1; at = chunk.indexOf('\nid: ', at + 1)) {
      if (++ids <= EVENTS_BEFORE_CUT) continue;
      const end = at + `\nid: ${CHANNEL}:123`.length;
      cut = { sent: end, of: chunk.length };
      write(chunk.subarray(0, end));
      // Not at once: the response corks its socket until the next tick, and this write would be lost with it.
      setTimeout(() => res.socket?.destroy(), 200);
      return true;
    }
    return write(chunk, ...rest);
  }) as typeof res.write;
  return () => cut;
}

test('browser EventSource: resumes after server-side drops with every event once, in order', { timeout: 90_000 }, async (t) => {
  if (!requireChromium(t)) return;

  const eventStream = new EventStream();
  /** Every request to the SSE endpoint, in arrival order, with the Last-Event-ID it carried. */
  const requests: Array<{ lastEventId: string | undefined }> = [];
  /** Open responses of the SSE endpoint: what the server drops. */
  const live = new Set<ServerResponse>();
  let replayCut: () => ReplayCut | null = () => null;

  const app = express();
  app.get('/', (_req, res) => {
    res.type('html').send(PAGE);
  });
  app.get(
    '/events/:id',
    (req, res, next) => {
      const header = req.headers['last-event-id'];
      requests.push({ lastEventId: Array.isArray(header) ? header[0] : header });
      if (requests.length - 1 === CUT_REQUEST) replayCut = cutInReplay(res);
      live.add(res);
      res.on('close', () => live.delete(res));
      next();
    },
    eventStream('{id}'),
  );

  let server: RunningServer | undefined;
  let browser: Browser | undefined;
  try {
    server = await listen(app);
    browser = await launchChromium();
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    const state = () => page.evaluate(() => (globalThis as unknown as { sseState: PageState }).sseState);

    await page.goto(`${server.url}/`);
    await page.waitForFunction(() => (globalThis as unknown as { sseState: PageState }).sseState.streamOpens.length === 1);
    assert.equal(requests.length, 1);
    assert.equal(requests[0]!.lastEventId, undefined, 'the first request is not a resume');
    const [openId] = (await state()).streamOpens;
    // The stream opens with the client's position as its id: events continue from the next sequence number.
    const startSeq = sequenceOf(openId);

    // A steady numbered stream, one or a burst of events per step. Each live
    // connection is dropped once the browser is back on it and has had
    // LIVE_EVENTS_PER_CONNECTION live events; publishing goes on while it is away.
    const started = Date.now();
    const log: string[] = [];
    let published = 0;
    let liveDrops = 0;
    let connections = 1;
    let connectionStart = 0;
    let step = 0;
    while (published < MAX_EVENTS) {
      if (requests.length > connections) {
        connections = requests.length;
        connectionStart = published;
        const from = requests.at(-1)!.lastEventId;
        log.push(`request ${connections} at ${Date.now() - started} ms, after event ${published - 1}, from ${from}`);
      }
      const settled = live.size === 1 && requests.length === liveDrops + 1 + (liveDrops === LIVE_DROPS ? 1 : 0);
      if (settled && published - connectionStart >= LIVE_EVENTS_PER_CONNECTION) {
        if (liveDrops === LIVE_DROPS) break;
        const [res] = live;
        if (liveDrops === 0) res!.socket!.destroy();
        else res!.destroy();
        liveDrops++;
        log.push(`drop ${liveDrops} at ${Date.now() - started} ms, after event ${published - 1}`);
      }
      const count = ++step % 10 === 0 ? BURST : 1;
      const writes: Promise<void>[] = [];
      for (let i = 0; i < count; i++) writes.push(eventStream.publishEvent(CHANNEL, { data: published++ }));
      await Promise.all(writes);
      await sleep(STEP_MS);
    }
    const total = published;
    const publishMs = Date.now() - started;
    assert.ok(total < MAX_EVENTS, `the browser did not come back in time: ${requests.length} requests, ${liveDrops} drops`);

    // Everything published reaches the page, then a moment more for anything arriving twice.
    // (If some never come, the assertions below say which.)
    await page
      .waitForFunction((n) => (globalThis as unknown as { sseState: PageState }).sseState.messages.length >= n, total, {
        timeout: 10_000,
      })
      .catch(() => {});
    await sleep(300);
    const final = await state();
    const cut = replayCut();
    t.diagnostic(
      `${total} events in ${publishMs} ms; ${log.join('; ')}; replay cut after ${cut?.sent} of ${cut?.of} bytes; ` +
        `page: ${final.messages.length} messages, ${final.opens} opens, ${final.errors} errors, ${final.streamOpens.length} stream-opens`,
    );

    assert.deepEqual(final.resets, [], 'no stream-reset: the history covered every disconnection');
    // Every event exactly once, in order: first which are missing or repeated, readably, then the whole sequence.
    const expected = Array.from({ length: total }, (_, i) => String(i));
    const times = new Map<string, number>();
    for (const { data } of final.messages) times.set(data, (times.get(data) ?? 0) + 1);
    assert.deepEqual(
      {
        missing: ranges(expected.filter((data) => !times.has(data)).map(Number)),
        repeated: ranges([...times].filter(([, n]) => n > 1).map(([data]) => Number(data))),
        unexpected: [...times.keys()].filter((data) => !/^\d+$/.test(data) || Number(data) >= total),
      },
      { missing: '', repeated: '', unexpected: [] },
      `of ${total} events published, the page received ${final.messages.length}`,
    );
    assert.deepEqual(
      final.messages.map((message) => message.data),
      expected,
      'the page received every event 0..N-1 exactly once, in order',
    );
    // Each with consecutive ids in the channel, starting right after the opening position.
    assert.deepEqual(
      final.messages.map((message) => message.id),
      expected.map((_, i) => `${CHANNEL}:${startSeq + 1 + i}`),
      'lastEventIds are consecutive resume:<seq> values',
    );

    // The browser came back after each drop, saying where it stood.
    assert.equal(liveDrops, LIVE_DROPS);
    assert.ok(cut !== null, 'the replay of the last resume was cut');
    assert.equal(requests.length, REQUESTS, 'one request per connection');
    assert.equal(final.opens, REQUESTS, 'the EventSource opened once per connection');
    assert.ok(final.errors >= REQUESTS - 1, `an error event per lost connection, got ${final.errors}`);
    const seenIds = new Set<string | undefined>([openId, ...final.messages.map((message) => message.id)]);
    let previous = startSeq;
    for (const { lastEventId } of requests.slice(1)) {
      assert.ok(seenIds.has(lastEventId), `a reconnect resumes from an id the page received, got ${lastEventId}`);
      const seq = sequenceOf(lastEventId);
      assert.ok(seq > previous, `each resume starts further on: ${requests.map((r) => r.lastEventId).join(', ')}`);
      previous = seq;
    }
    // A resumed stream opens without an id: the page keeps the one it resumed from until the replay moves it on.
    assert.deepEqual(
      final.streamOpens.slice(1),
      requests.slice(1).map((request) => request.lastEventId),
      'each resumed stream opened at the id its request resumed from',
    );
    // The cut replay's whole events count, its cut one does not: the browser resumed right after the last whole one.
    assert.equal(
      sequenceOf(requests[CUT_REQUEST + 1]!.lastEventId),
      sequenceOf(requests[CUT_REQUEST]!.lastEventId) + EVENTS_BEFORE_CUT,
      'the resume after the cut replay starts after its last whole event',
    );
    assert.deepEqual(pageErrors, [], 'the page throws no errors');

    // Closing the browser ends its stream; the server lets go of the subscriber.
    await browser.close();
    browser = undefined;
    await until(() => eventStream.stats().streams === 0, 5000, 'the browser stream to close on the server');
  } finally {
    await browser?.close();
    await server?.close();
    await eventStream.close();
  }
});
