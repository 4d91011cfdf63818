// GRIP reliable streaming and resuming behind a real Pushpin.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import express from 'express';
import { EventStream, type EventStreamOptions } from '../../src/index.js';
import { RedisEventStore } from '../../src/redis.js';
import { forkAppProcess } from '../helpers/app-process.js';
import { type RunningPushpin, requirePushpin, startPushpin } from '../helpers/pushpin.js';
import { requireRedis, startRedis } from '../helpers/redis.js';
import { cleanups } from '../helpers/requirements.js';
import { controlForwarder, listen, type RunningServer } from '../helpers/server.js';
import { openRaw, RecordingEventSource, until } from '../helpers/sse-client.js';

interface Origin {
  server: RunningServer;
  /** `Grip-Last` headers Pushpin sent when it followed the Grip-Link to recover a gap. */
  recoveries: string[];
}

/** The app server: `<prefix>events/:id` from `eventStream`, recording Pushpin's recovery requests. */
async function origin(eventStream: () => EventStream, prefix = '/'): Promise<Origin> {
  const recoveries: string[] = [];
  const app = express();
  app.get(`${prefix}events/:id`, (req, res, next) => {
    const gripLast = req.headers['grip-last'];
    if (typeof gripLast === 'string') recoveries.push(gripLast);
    void eventStream()('{id}')(req, res, next);
  });
  return { server: await listen(app), recoveries };
}

/**
 * The origin behind a fresh Pushpin, both closed after the test. Pushpin
 * needs the origin's port first, so the EventStream comes later: `serve`
 * sets it (and closes it after the test).
 */
async function originBehindPushpin(defer: (fn: () => unknown) => void) {
  let eventStream: EventStream | null = null;
  const app = await origin(() => eventStream!);
  defer(() => app.server.close());
  const pushpin = await startPushpin({ routes: app.server.port });
  defer(() => pushpin.stop());
  const serve = (served: EventStream): EventStream => {
    eventStream = served;
    defer(() => served.close());
    return served;
  };
  return { app, pushpin, serve };
}

/**
 * A real HTTP forwarder in front of Pushpin's control API that loses the
 * publish requests `lose` picks: it answers them 200 as Pushpin would, and
 * never forwards them.
 */
async function lossyControl(
  pushpin: RunningPushpin,
  lose: (index: number) => boolean,
): Promise<{ server: RunningServer; state: { lost: number } }> {
  let index = 0;
  const state = { lost: 0 };
  const server = await controlForwarder(pushpin.controlUri, (req) => {
    if (!req.url?.startsWith('/publish') || !lose(index++)) return 'forward';
    state.lost++;
    return 'lose';
  });
  return { server, state };
}

const indexOf = (data: string): number => (JSON.parse(data) as { i: number }).i;
const range = (count: number) => Array.from({ length: count }, (_, i) => i);

for (const storeKind of ['memory', 'redis'] as const) {
  test(`reliable mode (${storeKind} store): a publish lost on the way to Pushpin is recovered through Grip-Link; the client gets every event once, in order`, {
    timeout: 60_000,
  }, async (t) => {
    if (!requirePushpin(t)) return;
    if (storeKind === 'redis' && !requireRedis(t)) return;
    const defer = cleanups(t);
    const { app, pushpin, serve } = await originBehindPushpin(defer);
    // The 4th and the 9th publish requests never reach Pushpin.
    const control = await lossyControl(pushpin, (index) => index === 3 || index === 8);
    defer(() => control.server.close());
    const grip = { control_uri: control.server.url, verify_key: pushpin.sigKey };
    let options: EventStreamOptions = { grip, gripReliable: true };
    if (storeKind === 'redis') {
      const redis = await startRedis();
      defer(() => redis.stop());
      const store = new RedisEventStore({ url: redis.url });
      defer(() => store.close());
      // A shared store turns reliable mode on by itself.
      options = { grip, store };
    }
    const eventStream = serve(new EventStream(options));

    const client = new RecordingEventSource(`${pushpin.proxyUrl}/events/sure`);
    defer(() => client.close());
    await client.opened;
    const total = 12;
    // One request per event, so a lost request is a lost event.
    for (let i = 0; i < total; i++) {
      await eventStream.publishEvent('sure', { data: { i } });
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    await client.waitFor(total, 'message', 20_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(control.state.lost, 2);
    assert.deepEqual(
      client.events.map((event) => indexOf(event.data)),
      range(total),
    );
    const first = Number(client.events[0]!.lastEventId.split(':')[1]);
    assert.deepEqual(
      client.events.map((event) => event.lastEventId),
      range(total).map((i) => `sure:${first + i}`),
    );
    // Pushpin noticed the gaps and asked the origin for what it missed (one recovery may cover both).
    assert.ok(app.recoveries.length >= 1, `${app.recoveries.length} recoveries`);
    for (const gripLast of app.recoveries) assert.match(gripLast, /^events-sure; last-id=\d+$/);
  });
}

test('behind Pushpin a client that reconnects with Last-Event-ID first gets what it missed from the history', {
  timeout: 60_000,
}, async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  const { pushpin, serve } = await originBehindPushpin(defer);
  const eventStream = serve(new EventStream({ grip: { control_uri: pushpin.controlUri, verify_key: pushpin.sigKey } }));

  const first = new RecordingEventSource(`${pushpin.proxyUrl}/events/back`);
  await first.opened;
  await eventStream.publishEvent('back', { data: { i: 0 } });
  await first.waitFor(1);
  const lastId = first.events[0]!.lastEventId;
  first.close();

  for (let i = 1; i <= 100; i++) await eventStream.publishEvent('back', { data: { i } });
  const resumed = await openRaw(`${pushpin.proxyUrl}/events/back`, { accept: 'text/event-stream', 'last-event-id': lastId });
  defer(() => resumed.close());
  const dataOf = () => [...resumed.text().matchAll(/^data: (\{.*\})$/gm)].map((match) => indexOf(match[1]!));
  await until(() => dataOf().length === 100, 10_000, 'the 100 missed events');
  await eventStream.publishEvent('back', { data: { i: 101 } });
  await until(() => dataOf().length === 101, 10_000, 'a live event after the replay');
  assert.deepEqual(dataOf(), range(102).slice(1));
  // Nothing before the position it resumed from.
  assert.ok(!resumed.text().includes('"i":0}'));
});

test('two app processes sharing a Redis store behind one Pushpin: a client back with its last id gets exactly the 100 events published from both meanwhile', {
  timeout: 90_000,
}, async (t) => {
  if (!requirePushpin(t) || !requireRedis(t)) return;
  const defer = cleanups(t);
  const redis = await startRedis();
  defer(() => redis.stop());
  const store = new RedisEventStore({ url: redis.url });
  defer(() => store.close());

  let eventStreamA: EventStream | null = null;
  const appA = await origin(() => eventStreamA!, '/a/');
  defer(() => appA.server.close());
  const processB = await forkAppProcess('/b/');
  defer(() => processB.close());
  const pushpin = await startPushpin({
    routes: [
      { pathPrefix: '/a/', targets: [appA.server.port] },
      { pathPrefix: '/b/', targets: [processB.port] },
    ],
  });
  defer(() => pushpin.stop());
  const grip = { control_uri: pushpin.controlUri, verify_key: pushpin.sigKey };
  eventStreamA = new EventStream({ grip, store });
  defer(() => eventStreamA!.close());
  await processB.configure({ grip, redisStore: { url: redis.url } });

  const first = new RecordingEventSource(`${pushpin.proxyUrl}/a/events/both`);
  await first.opened;
  await eventStreamA.publishEvent('both', { data: { i: -1 } });
  await first.waitFor(1);
  const lastId = first.events[0]!.lastEventId;
  first.close();

  // 100 events while the client is away, from both processes in turn.
  for (let i = 0; i < 100; i++) {
    if (i % 2 === 0) await eventStreamA.publishEvent('both', { data: { i } });
    else await processB.publish('both', { data: { i } });
  }
  // It comes back through the other process.
  const resumed = await openRaw(`${pushpin.proxyUrl}/b/events/both`, { accept: 'text/event-stream', 'last-event-id': lastId });
  defer(() => resumed.close());
  const received = () => [...resumed.text().matchAll(/^data: (\{.*\})$/gm)].map((match) => indexOf(match[1]!));
  await until(() => received().length >= 100, 10_000, 'the 100 missed events');
  await processB.publish('both', { data: { i: 100 } });
  await eventStreamA.publishEvent('both', { data: { i: 101 } });
  await until(() => received().length >= 102, 10_000, 'live events after the replay');
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual(received(), range(102));
  const ids = [...resumed.text().matchAll(/^id: (both:\d+)$/gm)].map((match) => match[1]!);
  const seq0 = Number(lastId.split(':')[1]);
  assert.deepEqual(
    ids,
    range(102).map((i) => `both:${seq0 + 1 + i}`),
  );
});

test('Redis killed without persistence behind Pushpin: the held client is told of the loss by a stream-reset, then gets new events; no id names two events', {
  timeout: 90_000,
}, async (t) => {
  if (!requirePushpin(t) || !requireRedis(t)) return;
  const defer = cleanups(t);
  const { app, pushpin, serve } = await originBehindPushpin(defer);
  const redis = await startRedis();
  defer(() => redis.stop());
  const store = new RedisEventStore({ url: redis.url });
  defer(() => store.close());
  const eventStream = serve(new EventStream({ grip: { control_uri: pushpin.controlUri, verify_key: pushpin.sigKey }, store }));

  const client = new RecordingEventSource(`${pushpin.proxyUrl}/events/kept`, ['message', 'stream-reset']);
  defer(() => client.close());
  await client.opened;
  for (let i = 0; i < 5; i++) await eventStream.publishEvent('kept', { data: { i } });
  await client.waitFor(5);

  await redis.crash(() => new Promise((resolve) => setTimeout(resolve, 100)));
  // Publish until the client has a new event: Pushpin recovers the gap in ids through the Grip-Link first.
  let i = 5;
  const deadline = Date.now() + 30_000;
  while (!client.events.some((event) => event.type === 'message' && indexOf(event.data) >= 5)) {
    assert.ok(Date.now() < deadline, `no new event reached the client: ${JSON.stringify(client.events)}`);
    await eventStream.publishEvent('kept', { data: { i: i++ } }).catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const resetAt = client.events.findIndex((event) => event.type === 'stream-reset');
  assert.ok(
    resetAt === 5,
    `the stream-reset comes right after the events of the lost generation: ${JSON.stringify(client.events)}`,
  );
  assert.ok(app.recoveries.length >= 1, 'Pushpin followed the Grip-Link');
  const seqs = client.events.filter((event) => event.type === 'message').map((event) => Number(event.lastEventId.split(':')[1]));
  assert.deepEqual(
    [...seqs].sort((x, y) => x - y),
    seqs,
    'ids only grow',
  );
  assert.equal(new Set(seqs).size, seqs.length, 'no id twice');
  const resetSeq = Number(client.events[resetAt]!.lastEventId.split(':')[1]);
  assert.ok(resetSeq > seqs[4]!, 'the new generation numbers above the lost one');
  for (const event of client.events.slice(resetAt + 1)) assert.ok(Number(event.lastEventId.split(':')[1]) > resetSeq);
});
