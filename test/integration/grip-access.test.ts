// Access control behind a real Pushpin: a proxied request is authorized before hold instructions are
// sent; held streams end at their closing time (by the expiry publish, or by the proxy fetching their
// signed link when the process that held them is gone) and on disconnect(); a forged or tampered link
// is refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import express from 'express';
import { EventStream, type EventStreamOptions } from '../../src/index.js';
import { gripSig } from '../helpers/grip-sig.js';
import { requirePushpin, startPushpin } from '../helpers/pushpin.js';
import { cleanups } from '../helpers/requirements.js';
import { listen } from '../helpers/server.js';
import { get, openRaw, parseAll, until } from '../helpers/sse-client.js';

const SSE = { accept: 'text/event-stream' };

/** An origin behind a fresh Pushpin whose EventStream the test sets (and may replace) later. */
async function behindPushpin(defer: (fn: () => unknown) => void) {
  let eventStream: EventStream | null = null;
  const fetches: Array<{ url: string; gripLast: string | undefined }> = [];
  const app = express();
  app.get('/events/:channel', (req, res, next) => {
    if (req.url.includes('eventstream_link='))
      fetches.push({ url: req.url, gripLast: req.headers['grip-last'] as string | undefined });
    void eventStream!('{channel}')(req, res, next);
  });
  const origin = await listen(app);
  defer(() => origin.close());
  const pushpin = await startPushpin({ routes: origin.port });
  defer(() => pushpin.stop());
  const grip = { control_uri: pushpin.controlUri, verify_key: pushpin.sigKey };
  const serve = (options: Omit<EventStreamOptions, 'grip'>): EventStream => {
    const served = new EventStream({ grip, ...options });
    eventStream = served;
    defer(() => served.close());
    return served;
  };
  return { origin, pushpin, serve, fetches };
}

function closes(text: string): unknown[] {
  return parseAll(text)
    .filter((event) => event.event === 'stream-close')
    .map((event) => JSON.parse(event.data));
}

function ended(stream: { res: { complete: boolean; on: (event: 'end' | 'close', fn: () => void) => unknown } }): Promise<number> {
  return new Promise((resolve) => {
    if (stream.res.complete) resolve(Date.now());
    stream.res.on('end', () => resolve(Date.now()));
    stream.res.on('close', () => resolve(Date.now()));
  });
}

test('behind Pushpin: authorize runs before hold instructions; a refusal reaches the client as plain text', {
  timeout: 60_000,
}, async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  const { pushpin, origin, serve } = await behindPushpin(defer);
  const asked: Array<readonly string[]> = [];
  serve({
    authorize: (request, channels) => {
      asked.push(channels);
      return (request as { headers: Record<string, unknown> }).headers.cookie === 'session=ok';
    },
  });
  const refused = await get(`${pushpin.proxyUrl}/events/private`, SSE);
  assert.equal(refused.status, 403);
  assert.match(refused.body, /Forbidden/);
  assert.equal(refused.headers['grip-hold'], undefined);
  const held = await openRaw(`${pushpin.proxyUrl}/events/private`, { ...SSE, cookie: 'session=ok' });
  defer(() => held.close());
  assert.equal(held.status, 200);
  await until(() => held.text().includes('stream-open'));
  assert.deepEqual(asked, [['private'], ['private']]);
  // Straight to the origin with a valid Grip-Sig (as Pushpin would): still authorized first.
  const direct = await get(`${origin.url}/events/private`, { ...SSE, 'grip-sig': gripSig(pushpin.sigKey) });
  assert.equal(direct.status, 403);
});

test('behind Pushpin: a held stream allowed { until } is told stream-close "expired" and ended by then, while live events flow', {
  timeout: 60_000,
}, async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  const { pushpin, serve } = await behindPushpin(defer);
  const lifetime = 9000;
  let deadline = 0;
  const eventStream = serve({
    authorize: () => {
      deadline = Date.now() + lifetime;
      return { until: deadline };
    },
  });
  const held = await openRaw(`${pushpin.proxyUrl}/events/ticker`, SSE);
  defer(() => held.close());
  await until(() => held.text().includes('stream-open'));
  const done = ended(held);
  // Publishes keep the proxy from fetching the link while the stream is busy: the expiry publish must end it.
  const ticker = setInterval(() => void eventStream.publishEvent('ticker', { data: Date.now() }).catch(() => {}), 200);
  defer(() => clearInterval(ticker));
  const endedAt = await done;
  clearInterval(ticker);
  assert.ok(endedAt <= deadline + 1000, `ended ${endedAt - deadline} ms after until`);
  assert.deepEqual(closes(held.text()), [{ reason: 'expired' }]);
  assert.ok(parseAll(held.text()).filter((event) => event.event === undefined).length > 5, 'live events reached it meanwhile');
});

test('behind Pushpin: a held stream whose process is gone still ends at its closing time, through its signed link', {
  timeout: 60_000,
}, async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  const { pushpin, serve, fetches } = await behindPushpin(defer);
  let deadline = 0;
  const first = serve({
    authorize: () => {
      deadline = Date.now() + 7000;
      return { until: deadline };
    },
  });
  const held = await openRaw(`${pushpin.proxyUrl}/events/orphan`, SSE);
  defer(() => held.close());
  await until(() => held.text().includes('stream-open'));
  // The process that held it goes (its expiry timer with it); another takes its place, with no authorize at all.
  await first.close();
  const second = serve({});
  const done = ended(held);
  const endedAt = await done;
  assert.ok(endedAt <= deadline + 2500, `ended ${endedAt - deadline} ms after until`);
  assert.deepEqual(closes(held.text()), [{ reason: 'expired' }]);
  assert.ok(fetches.length >= 1, 'Pushpin fetched the link');
  // The link carried the channels: the new process held it on them without resolving anything from credentials.
  await second.publishEvent('orphan', { data: 'late' }).catch(() => {});
});

test('behind Pushpin: disconnect(channel) tells every held stream on it why and ends it; other channels and reliable holds too', {
  timeout: 60_000,
}, async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  const { pushpin, serve } = await behindPushpin(defer);
  const eventStream = serve({ gripReliable: true });
  const a1 = await openRaw(`${pushpin.proxyUrl}/events/user-42`, SSE);
  const a2 = await openRaw(`${pushpin.proxyUrl}/events/user-42`, SSE);
  const other = await openRaw(`${pushpin.proxyUrl}/events/user-43`, SSE);
  defer(() => other.close());
  for (const stream of [a1, a2, other]) await until(() => stream.text().includes('stream-open'));
  await eventStream.publishEvent('user-42', { data: 'before' });
  await until(() => a1.text().includes('before') && a2.text().includes('before'));
  const started = Date.now();
  await eventStream.disconnect('user-42', { reason: 'revoked' });
  const [endA1, endA2] = await Promise.all([ended(a1), ended(a2)]);
  assert.ok(Math.max(endA1, endA2) - started < 2000, `ended ${Math.max(endA1, endA2) - started} ms after disconnect`);
  for (const stream of [a1, a2]) assert.deepEqual(closes(stream.text()), [{ reason: 'revoked' }]);
  await eventStream.publishEvent('user-43', { data: 'still here' });
  await until(() => other.text().includes('still here'));
  assert.deepEqual(closes(other.text()), []);
});

test('behind Pushpin: a link this origin did not sign, or one tampered with, is a 403; a good one holds on its own channels', {
  timeout: 60_000,
}, async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  const { pushpin, origin, serve, fetches } = await behindPushpin(defer);
  serve({ gripReliable: true, authorize: () => ({ until: Date.now() + 60_000 }) });
  const held = await openRaw(`${pushpin.proxyUrl}/events/mine`, SSE);
  defer(() => held.close());
  await until(() => fetches.length >= 1, 10_000, 'Pushpin to follow the link once');
  const link = fetches[0]!.url;
  const sig = { ...SSE, 'grip-sig': gripSig(pushpin.sigKey) };

  const good = await get(`${origin.url}${link}`, sig);
  assert.equal(good.status, 200);
  assert.equal(good.headers['grip-hold'], 'stream');
  assert.match(String(good.headers['grip-channel']), /^events-mine; prev-id=\d+, events-mine#close, events-#expire-\d+$/);
  assert.equal(good.body, '', 'a follow-up adds nothing to a stream that missed nothing');

  const token = new URL(link, 'http://x').searchParams.get('eventstream_link')!;
  const [payload, mac] = token.split('.') as [string, string];
  const widened = Buffer.from(JSON.stringify({ c: ['mine', 'someone-else'], e: null })).toString('base64url');
  for (const [what, forged] of [
    ['another channel list under the same signature', `${widened}.${mac}`],
    ['a signature of another key', `${payload}.${Buffer.alloc(32, 1).toString('base64url')}`],
    ['no signature', payload],
  ] as const) {
    const path = `/events/someone-else?eventstream_link=${encodeURIComponent(forged)}`;
    const refused = await get(`${origin.url}${path}`, sig);
    assert.equal(refused.status, 403, what);
    assert.equal(refused.headers['grip-hold'], undefined, what);
  }
  // Without a Grip-Sig a link parameter means nothing: the request is a client's, and authorize decides.
  const client = await openRaw(`${origin.url}${link}`, SSE);
  assert.equal(client.status, 200);
  client.close();
});
