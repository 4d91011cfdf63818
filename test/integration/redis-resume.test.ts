/**
 * Several application processes sharing one RedisEventStore, in direct mode
 * (no GRIP): one EventStream runs in this test process, another in a forked
 * process (test/helpers/grip-app-process.ts), both on a real redis-server.
 * Clients are real `eventsource` clients on real HTTP servers, plus raw
 * requests where a header matters.
 *
 * What is checked: every process sends every client the same events in the
 * same order with the same ids; a client resumes from its last id on another
 * process; a Redis outage fails publishes and new streams promptly, while
 * connected subscribers stay and miss nothing once Redis is back; composite
 * ids of multi-channel streams resume across processes.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { EventStoreError, EventStream, type EventStreamOptions, type ServerSentEvent } from '../../src/index.js';
import { RedisEventStore, type RedisEventStoreOptions } from '../../src/redis.js';
import { type AppProcess, forkAppProcess } from '../helpers/app-process.js';
import { redisForFile, requireRedis, startRedis, uniqueKeyPrefix } from '../helpers/redis.js';
import { cleanups } from '../helpers/requirements.js';
import { listen } from '../helpers/server.js';
import { get, openRaw, parseAll, type ReceivedEvent, RecordingEventSource, until } from '../helpers/sse-client.js';

const SSE = { accept: 'text/event-stream' };
const TYPES = ['message', 'stream-open', 'stream-reset'];

const sharedRedis = redisForFile();

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// Process A: an EventStream on a RedisEventStore in this process

interface LocalApp {
  url: string;
  eventStream: EventStream;
  store: RedisEventStore;
  /** Responses currently streaming. */
  live: Set<ServerResponse>;
  publish(channel: string, event: ServerSentEvent): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts the prefix's numbering at 0 rather than at Redis's clock (the store
 * keeps whatever epoch it finds), so ids can be checked as `channel:1`, `channel:2`, ...
 */
async function pinEpoch(storeOptions: RedisEventStoreOptions): Promise<void> {
  const raw = new Redis(storeOptions.url!);
  try {
    await raw.set(`${storeOptions.keyPrefix}epoch`, '0', 'NX');
  } finally {
    await raw.quit();
  }
}

/** Serves `/events/<channel>[+<channel>...]` from an EventStream on its own RedisEventStore. */
async function localApp(storeOptions: RedisEventStoreOptions, options: EventStreamOptions = {}): Promise<LocalApp> {
  await pinEpoch(storeOptions);
  const store = new RedisEventStore(storeOptions);
  const eventStream = new EventStream({ clientRetry: 20, ...options, store });
  const live = new Set<ServerResponse>();
  const server = await listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const match = /^\/events\/(.+)$/.exec(url.pathname);
    if (match === null) {
      res.writeHead(404).end();
      return;
    }
    live.add(res);
    res.on('close', () => live.delete(res));
    void eventStream.run(req, res, match[1]!.split('+'));
  });
  let closed: Promise<void> | null = null;
  return {
    url: server.url,
    eventStream,
    store,
    live,
    publish: (channel, event) => eventStream.publishEvent(channel, event),
    close: () =>
      (closed ??= (async () => {
        await eventStream.close();
        // A store passed in is the caller's to close.
        await store.close();
        await server.close();
      })()),
  };
}

/** Process A (an EventStream in this process) and process B (a forked app process), both on one Redis store. */
async function processesOnOneStore(
  defer: (cleanup: () => unknown) => void,
  storeOptions: RedisEventStoreOptions,
): Promise<{ a: LocalApp; b: AppProcess }> {
  const a = await localApp(storeOptions);
  defer(() => a.close());
  const b = await forkAppProcess();
  defer(() => b.close());
  await b.configure({ redisStore: storeOptions, clientRetry: 20 });
  return { a, b };
}

// ---------------------------------------------------------------------------
// Reading what clients got

interface Payload {
  from: 'A' | 'B' | 'C';
  n: number;
}

const payloadOf = (data: string): Payload => JSON.parse(data) as Payload;
const label = (data: string): string => {
  const { from, n } = payloadOf(data);
  return `${from}${n}`;
};
const range = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => from + i);

/** The sequence number in a single-channel id `channel:seq`. */
function seqOf(id: string, channel: string): number {
  const match = new RegExp(`^${channel}:(\\d+)$`).exec(id);
  assert.ok(match !== null, `id ${JSON.stringify(id)} is not ${channel}:<seq>`);
  return Number(match[1]);
}

/** A composite id `a:<n>,b:<m>` as [n, m]. */
function compositeOf(id: string): [number, number] {
  const match = /^a:(\d+),b:(\d+)$/.exec(id);
  assert.ok(match !== null, `id ${JSON.stringify(id)} is not a:<seq>,b:<seq>`);
  return [Number(match[1]), Number(match[2])];
}

/** Asserts that `events` carry ids channel:first, channel:first+1, ... */
function assertConsecutive(events: readonly ReceivedEvent[], channel: string, first: number, what: string): void {
  assert.deepEqual(
    events.map((event) => event.lastEventId),
    range(first, events.length).map((seq) => `${channel}:${seq}`),
    `${what}: ids are consecutive from ${channel}:${first}`,
  );
}

/** Publishes `count` events on `channel`, alternating A and B (A first); awaits each when serial, else fires them all at once. */
async function publishAlternating(
  a: { publish(channel: string, event: ServerSentEvent): Promise<unknown> },
  b: { publish(channel: string, event: ServerSentEvent): Promise<unknown> },
  channel: string,
  from: number,
  count: number,
  serial: boolean,
): Promise<string[]> {
  const labels: string[] = [];
  const inFlight: Promise<unknown>[] = [];
  for (let n = from; n < from + count; n++) {
    const origin = n % 2 === 0 ? 'A' : 'B';
    const publisher = origin === 'A' ? a : b;
    const done = publisher.publish(channel, { data: { from: origin, n } });
    labels.push(`${origin}${n}`);
    if (serial) await done;
    else inFlight.push(done);
  }
  await Promise.all(inFlight);
  return labels;
}

/** Retries a publish that fails with the store's error until it goes through (Redis coming back, connections reconnecting). */
async function publishWhenBack(publish: () => Promise<unknown>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await publish();
      return;
    } catch (error) {
      const storeFailure = error instanceof EventStoreError || /EventStoreError/.test(String(error));
      if (!storeFailure) throw error;
      if (Date.now() > deadline) throw new Error(`${what}: still failing after ${timeoutMs} ms: ${String(error)}`);
      await sleep(50);
    }
  }
}

// ---------------------------------------------------------------------------

test('two processes on one Redis store: every client of either process gets every event once, all in the same order with the same ids', {
  timeout: 90_000,
}, async (t) => {
  if (!requireRedis(t)) return;
  const defer = cleanups(t);
  const storeOptions = { url: sharedRedis.url, keyPrefix: uniqueKeyPrefix('redis-resume') };
  const { a, b } = await processesOnOneStore(defer, storeOptions);

  const channels = ['room', 'side'] as const;
  // Two clients per process on 'room', one per process on 'side'.
  const clients: Record<(typeof channels)[number], Array<{ at: string; source: RecordingEventSource }>> = { room: [], side: [] };
  for (const [channel, perProcess] of [
    ['room', 2],
    ['side', 1],
  ] as const) {
    for (let i = 0; i < perProcess; i++) {
      for (const [at, base] of [
        ['A', a.url],
        ['B', b.url],
      ] as const) {
        const source = new RecordingEventSource(`${base}/events/${channel}`, TYPES);
        defer(() => source.close());
        clients[channel].push({ at, source });
      }
    }
  }
  await Promise.all([...clients.room, ...clients.side].map(({ source }) => source.opened));
  assert.equal((await b.counts()).streams, 3, 'process B serves its three clients directly');
  assert.equal(a.eventStream.stats().streams, 3);
  // Nothing was published on the fresh prefix: every stream opens at its epoch (pinned at 0), whichever process serves it.
  for (const channel of channels) {
    for (const { at, source } of clients[channel])
      assert.equal(source.of('stream-open')[0]!.lastEventId, `${channel}:0`, `${channel} client at ${at}`);
  }

  // 'room': 100 published one after another (A, B, A, ...), then 100 fired at once from both processes.
  // 'side': the same pattern, at the same time, 60 events.
  const [roomSerial, sideSerial] = await Promise.all([
    publishAlternating(a, b, 'room', 0, 100, true),
    publishAlternating(a, b, 'side', 0, 30, true),
  ]);
  const [roomConcurrent, sideConcurrent] = await Promise.all([
    publishAlternating(a, b, 'room', 100, 100, false),
    publishAlternating(a, b, 'side', 30, 30, false),
  ]);
  const published = { room: [...roomSerial, ...roomConcurrent], side: [...sideSerial, ...sideConcurrent] };

  for (const channel of channels) {
    const expected = published[channel];
    await Promise.all(clients[channel].map(({ source }) => source.waitFor(expected.length, 'message', 20_000)));
  }
  // Anything sent twice would arrive right behind.
  await sleep(300);

  for (const channel of channels) {
    const expected = published[channel];
    const [reference, ...others] = clients[channel];
    const order = reference!.source.of('message').map((event) => label(event.data));
    const ids = reference!.source.of('message').map((event) => event.lastEventId);
    // Complete, each event once.
    assert.equal(order.length, expected.length, `${channel}: event count at ${reference!.at}`);
    assert.deepEqual([...order].sort(), [...expected].sort(), `${channel}: every event exactly once`);
    // Events published one after another keep that order; concurrent ones keep each process's own order.
    const serialCount = channel === 'room' ? roomSerial.length : sideSerial.length;
    assert.deepEqual(
      order.slice(0, serialCount),
      expected.slice(0, serialCount),
      `${channel}: serial publishes in publish order`,
    );
    for (const origin of ['A', 'B']) {
      const fromOrigin = order.slice(serialCount).filter((entry) => entry.startsWith(origin));
      const publishedFromOrigin = expected.slice(serialCount).filter((entry) => entry.startsWith(origin));
      assert.deepEqual(fromOrigin, publishedFromOrigin, `${channel}: ${origin}'s concurrent publishes in ${origin}'s order`);
    }
    // Ids are the store's: consecutive from 1 on a fresh prefix.
    assertConsecutive(reference!.source.of('message'), channel, 1, `${channel} at ${reference!.at}`);
    // Every client, whichever process serves it, got the same events in the same order with the same ids.
    for (const { at, source } of others) {
      assert.deepEqual(
        source.of('message').map((event) => label(event.data)),
        order,
        `${channel}: client at ${at} has the same order`,
      );
      assert.deepEqual(
        source.of('message').map((event) => event.lastEventId),
        ids,
        `${channel}: client at ${at} has the same ids`,
      );
      // Nobody had to reconnect.
      assert.equal(source.of('stream-open').length, 1, `${channel}: client at ${at} stayed connected`);
      assert.equal(source.of('stream-reset').length, 0);
    }
  }
  // The shared counters agree with what was delivered.
  assert.equal(await a.store.head('room'), 200);
  assert.equal(await a.store.head('side'), 60);
});

test('a client dropped from process A resumes on process B with its last id: exactly the 100 it missed, in order, then live ones', {
  timeout: 90_000,
}, async (t) => {
  if (!requireRedis(t)) return;
  const defer = cleanups(t);
  const storeOptions = { url: sharedRedis.url, keyPrefix: uniqueKeyPrefix('redis-resume') };
  const { a, b } = await processesOnOneStore(defer, storeOptions);

  // A witness on B stays connected throughout: its order is the order everyone must see.
  const witness = new RecordingEventSource(`${b.url}/events/resume`, TYPES);
  defer(() => witness.close());
  const dropped = new RecordingEventSource(`${a.url}/events/resume`, TYPES);
  defer(() => dropped.close());
  await Promise.all([witness.opened, dropped.opened]);

  await publishAlternating(a, b, 'resume', 0, 10, true);
  await Promise.all([witness.waitFor(10), dropped.waitFor(10)]);
  dropped.close();
  await until(() => a.eventStream.stats().streams === 0, 5000, 'process A to notice the client left');
  const lastId = dropped.of('message').at(-1)!.lastEventId;
  assert.equal(lastId, 'resume:10');

  // 100 published while it is away, from both processes: 50 one by one, 50 at once.
  const missed = [
    ...(await publishAlternating(a, b, 'resume', 10, 50, true)),
    ...(await publishAlternating(a, b, 'resume', 60, 50, false)),
  ];
  await witness.waitFor(110);
  const canonical = witness.of('message').slice(10);
  assert.deepEqual(canonical.map((event) => label(event.data)).sort(), [...missed].sort());
  assertConsecutive(canonical, 'resume', 11, 'witness');

  // An `eventsource` client on process B, resuming through ?lastEventId= (a page building its own URL).
  const resumed = new RecordingEventSource(`${b.url}/events/resume?lastEventId=${encodeURIComponent(lastId)}`, TYPES);
  defer(() => resumed.close());
  // A raw request with the Last-Event-ID header, as a reconnecting EventSource sends it.
  const raw = await openRaw(`${b.url}/events/resume`, { ...SSE, 'last-event-id': lastId });
  defer(() => raw.close());
  assert.equal(raw.status, 200);
  assert.match(String(raw.headers['content-type']), /^text\/event-stream/);

  await resumed.waitFor(100);
  await until(() => parseAll(raw.text()).length >= 101, 10_000, 'the raw replay');
  await sleep(200);
  assert.deepEqual(
    resumed.of('message').map((event) => [label(event.data), event.lastEventId]),
    canonical.map((event) => [label(event.data), event.lastEventId]),
    'exactly the missed events, in the order every process sent them, with their ids',
  );
  assert.equal(resumed.of('stream-reset').length, 0);
  const rawEvents = parseAll(raw.text());
  assert.equal(rawEvents[0]!.event, 'stream-open');
  assert.equal(rawEvents[0]!.id, undefined, 'a resumed stream keeps the client its own id until an event moves it on');
  assert.deepEqual(
    rawEvents.slice(1).map((event) => [label(event.data), event.id]),
    canonical.map((event) => [label(event.data), event.lastEventId]),
    'the Last-Event-ID header replays the same',
  );

  // Then live events, from both processes, follow without a gap.
  const live = await publishAlternating(a, b, 'resume', 110, 10, true);
  await resumed.waitFor(110);
  await until(() => parseAll(raw.text()).length >= 111, 10_000, 'the raw stream to go live');
  await witness.waitFor(120);
  await sleep(200);
  assert.deepEqual(
    resumed
      .of('message')
      .slice(100)
      .map((event) => label(event.data)),
    live,
  );
  assertConsecutive(resumed.of('message'), 'resume', 11, 'resumed client');
  assert.equal(resumed.of('message').length, 110, 'nothing twice');
  assert.deepEqual(
    parseAll(raw.text())
      .slice(1)
      .map((event) => event.id),
    range(11, 110).map((seq) => `resume:${seq}`),
  );
  assert.equal(resumed.of('stream-open').length, 1, 'no reconnect was needed');
});

test('Redis goes away and comes back: publishes and new streams fail promptly meanwhile; connected subscribers miss nothing; a client resumes what it missed', {
  timeout: 120_000,
}, async (t) => {
  if (!requireRedis(t)) return;
  const defer = cleanups(t);
  // Its own server: it is restarted. AOF keeps the counters, so ids carry on after the restart.
  const server = await startRedis({ appendOnly: true });
  defer(() => server.stop());
  const storeOptions = { url: server.url, keyPrefix: uniqueKeyPrefix('redis-resume') };
  const { a, b } = await processesOnOneStore(defer, storeOptions);

  const stayA = new RecordingEventSource(`${a.url}/events/news`, TYPES);
  defer(() => stayA.close());
  const stayB = new RecordingEventSource(`${b.url}/events/news`, TYPES);
  defer(() => stayB.close());
  const leaver = new RecordingEventSource(`${a.url}/events/news`, TYPES);
  defer(() => leaver.close());
  await Promise.all([stayA.opened, stayB.opened, leaver.opened]);

  const published = await publishAlternating(a, b, 'news', 0, 10, true);
  await Promise.all([stayA.waitFor(10), stayB.waitFor(10), leaver.waitFor(10)]);
  leaver.close();
  await until(() => a.eventStream.stats().streams === 1, 5000, 'process A to notice the leaver left');
  const leaverLastId = leaver.of('message').at(-1)!.lastEventId;
  assert.equal(leaverLastId, 'news:10');
  // Missed by the leaver before the outage.
  published.push(...(await publishAlternating(a, b, 'news', 10, 5, true)));
  await Promise.all([stayA.waitFor(15), stayB.waitFor(15)]);

  await server.restart(async () => {
    // Let the stores notice their connections closed.
    await sleep(100);

    const started = Date.now();
    await assert.rejects(a.publish('news', { data: { from: 'A', n: -1 } }), (error: unknown) => {
      assert.ok(error instanceof EventStoreError, `expected EventStoreError, got ${String(error)}`);
      assert.equal(error.code, 'ERR_EVENTSTREAM_STORE');
      return true;
    });
    const tookA = Date.now() - started;
    assert.ok(tookA < 3000, `publishEvent rejected within 3 s (took ${tookA} ms)`);
    const startedB = Date.now();
    await assert.rejects(b.publish('news', { data: { from: 'B', n: -1 } }), /app process: EventStoreError: /);
    assert.ok(Date.now() - startedB < 3000, `process B's publishEvent rejected within 3 s (took ${Date.now() - startedB} ms)`);

    // A new stream on a channel neither process watches yet cannot be set up. An EventSource gives up for good on an
    // error status, so the answer is a 200 stream that only says when to reconnect, and ends. (A request for 'news',
    // which both already watch, is admitted from the live subscription instead; that is not checked here.)
    for (const [at, base] of [
      ['A', a.url],
      ['B', b.url],
    ] as const) {
      const startedGet = Date.now();
      const refused = await get(`${base}/events/fresh`, SSE);
      assert.equal(refused.status, 200, `process ${at}: ${refused.body}`);
      assert.match(String(refused.headers['content-type']), /^text\/event-stream/, `process ${at}`);
      assert.match(refused.body, /^retry: \d+\n: the event history is unavailable; reconnect later\n\n$/, `process ${at}`);
      assert.doesNotMatch(refused.body, /redis|ECONNREFUSED|127\.0\.0\.1/i, `process ${at}: no internals in the body`);
      assert.ok(Date.now() - startedGet < 3000, `process ${at}: answered within 3 s`);
    }
    // The refused requests left nothing behind.
    assert.equal(a.eventStream.stats().hubs, 1, 'only the hub of the connected subscriber');

    // The subscribers stay connected through the outage.
    assert.equal(a.eventStream.stats().streams, 1);
    assert.equal((await b.counts()).streams, 1);
  });

  // Redis is back. A process connecting right now publishes at once, while A's and B's connections still wait out
  // their reconnect backoff: pub/sub cannot bring these to the subscribers, only their watches catching up from the log.
  const newcomerStore = new RedisEventStore(storeOptions);
  const newcomer = new EventStream({ store: newcomerStore });
  defer(() => newcomerStore.close());
  defer(() => newcomer.close());
  const afterRestart: string[] = [];
  for (let n = 15; n < 19; n++) {
    await newcomer.publishEvent('news', { data: { from: 'C', n } });
    afterRestart.push(`C${n}`);
  }
  // Nothing else is published until the subscribers have them.
  await Promise.all([stayA.waitFor(19, 'message', 20_000), stayB.waitFor(19, 'message', 20_000)]);

  // Publishing works again in A and B once each has reconnected (within its backoff, at most a second).
  for (let n = 19; n < 25; n++) {
    const origin = n % 2 === 0 ? 'A' : 'B';
    const event = { data: { from: origin, n } };
    await publishWhenBack(() => (origin === 'A' ? a.publish('news', event) : b.publish('news', event)), `publish ${origin}${n}`);
    afterRestart.push(`${origin}${n}`);
  }
  published.push(...afterRestart);

  // The subscribers that stayed connected get everything published after the restart: none lost, none twice, in order.
  await Promise.all([stayA.waitFor(25, 'message', 20_000), stayB.waitFor(25, 'message', 20_000)]);
  await sleep(300);
  for (const [at, client] of [
    ['A', stayA],
    ['B', stayB],
  ] as const) {
    assert.deepEqual(
      client.of('message').map((event) => label(event.data)),
      published,
      `subscriber on ${at}`,
    );
    // No failed publish took a sequence number: ids run on across the outage.
    assertConsecutive(client.of('message'), 'news', 1, `subscriber on ${at}`);
    assert.equal(client.of('stream-open').length, 1, `subscriber on ${at} stayed connected (no reconnect)`);
    assert.equal(client.of('stream-reset').length, 0, `subscriber on ${at}`);
  }

  // The leaver comes back, to the other process, with its last id: it gets the 5 from before the outage and the 10 after.
  const back = new RecordingEventSource(`${b.url}/events/news?lastEventId=${encodeURIComponent(leaverLastId)}`, TYPES);
  defer(() => back.close());
  await back.waitFor(15);
  const oneMore = { data: { from: 'A', n: 25 } };
  await a.publish('news', oneMore);
  await back.waitFor(16);
  await sleep(200);
  assert.deepEqual(
    back.of('message').map((event) => label(event.data)),
    [...published.slice(10), 'A25'],
  );
  assertConsecutive(back.of('message'), 'news', 11, 'resumed leaver');
  assert.equal(back.of('stream-reset').length, 0);

  // New streams work again too.
  const fresh = new RecordingEventSource(`${a.url}/events/fresh`, TYPES);
  defer(() => fresh.close());
  await fresh.opened;
  assert.equal(fresh.of('stream-open')[0]!.lastEventId, 'fresh:0');
});

test('a stream on two channels drops and resumes on another instance with its composite id: exactly the missed events of both channels', {
  timeout: 90_000,
}, async (t) => {
  if (!requireRedis(t)) return;
  const defer = cleanups(t);
  const storeOptions = { url: sharedRedis.url, keyPrefix: uniqueKeyPrefix('redis-resume') };
  const a = await localApp(storeOptions);
  defer(() => a.close());
  // A second instance in this process with its own store and connections: it knows only what Redis knows.
  const a2 = await localApp(storeOptions);
  defer(() => a2.close());
  const b = await forkAppProcess();
  defer(() => b.close());
  await b.configure({ redisStore: storeOptions, clientRetry: 20 });

  // Witnesses stay connected on each channel: their orders are the orders everyone must see.
  const witnessA = new RecordingEventSource(`${b.url}/events/a`, TYPES);
  defer(() => witnessA.close());
  const witnessB = new RecordingEventSource(`${b.url}/events/b`, TYPES);
  defer(() => witnessB.close());
  const client = new RecordingEventSource(`${a.url}/events/a+b`, TYPES);
  defer(() => client.close());
  await Promise.all([witnessA.opened, witnessB.opened, client.opened]);
  assert.equal(client.of('stream-open')[0]!.lastEventId, 'a:0,b:0');

  // Channel of event n: every third goes to b. Publisher: A for even n, B for odd n.
  const channelOf = (n: number): 'a' | 'b' => (n % 3 === 0 ? 'b' : 'a');
  const publishRange = async (from: number, count: number, serial: boolean): Promise<void> => {
    const inFlight: Promise<unknown>[] = [];
    for (let n = from; n < from + count; n++) {
      const origin = n % 2 === 0 ? 'A' : 'B';
      const event = { data: { from: origin, n } };
      const done = origin === 'A' ? a.publish(channelOf(n), event) : b.publish(channelOf(n), event);
      if (serial) await done;
      else inFlight.push(done);
    }
    await Promise.all(inFlight);
  };
  const countOn = (channel: 'a' | 'b', from: number, to: number): number =>
    range(from, to - from).filter((n) => channelOf(n) === channel).length;

  await publishRange(0, 12, true);
  await client.waitFor(12);
  client.close();
  await until(() => a.eventStream.stats().streams === 0, 5000, 'process A to notice the client left');
  const lastId = client.of('message').at(-1)!.lastEventId;
  const [lastA, lastB] = compositeOf(lastId);
  assert.deepEqual([lastA, lastB], [countOn('a', 0, 12), countOn('b', 0, 12)]);

  // Missed: 150 over both channels, from both processes, half of them fired at once.
  await publishRange(12, 75, true);
  await publishRange(87, 75, false);
  await Promise.all([witnessA.waitFor(countOn('a', 0, 162)), witnessB.waitFor(countOn('b', 0, 162))]);

  // Resumes on the second instance, while 30 more are published (they wait behind the replay).
  const resumed = new RecordingEventSource(`${a2.url}/events/a+b?lastEventId=${encodeURIComponent(lastId)}`, TYPES);
  defer(() => resumed.close());
  await publishRange(162, 30, false);
  await resumed.waitFor(180, 'message', 20_000);
  await Promise.all([witnessA.waitFor(countOn('a', 0, 192)), witnessB.waitFor(countOn('b', 0, 192))]);
  await sleep(300);

  const got = resumed.of('message');
  assert.equal(got.length, 180, 'the 150 missed and the 30 live ones, nothing twice');
  assert.equal(resumed.of('stream-reset').length, 0);
  assert.equal(resumed.of('stream-open').length, 1);
  // Each channel's events arrive complete and in the order every process sent them.
  for (const [channel, witness, last] of [
    ['a', witnessA, lastA],
    ['b', witnessB, lastB],
  ] as const) {
    const expected = witness.of('message').filter((event) => seqOf(event.lastEventId, channel) > last);
    assert.equal(expected.length, countOn(channel, 12, 192));
    assert.deepEqual(
      got.filter((event) => channelOf(payloadOf(event.data).n) === channel).map((event) => label(event.data)),
      expected.map((event) => label(event.data)),
      `channel ${channel}: the missed and live events, in order`,
    );
  }
  // The first id continues from the client's composite id; each id then advances exactly one channel by one.
  let previous: [number, number] = [lastA, lastB];
  for (const [i, event] of got.entries()) {
    const next = compositeOf(event.lastEventId);
    const channel = channelOf(payloadOf(event.data).n);
    const expectedNext: [number, number] = channel === 'a' ? [previous[0] + 1, previous[1]] : [previous[0], previous[1] + 1];
    assert.deepEqual(next, expectedNext, `event ${i} (${label(event.data)}) moves only channel ${channel} on by one`);
    // The id names the same event the witness of that channel saw at that sequence number.
    const witness = channel === 'a' ? witnessA : witnessB;
    const seen = witness.of('message').find((w) => w.lastEventId === `${channel}:${channel === 'a' ? next[0] : next[1]}`);
    assert.equal(seen?.data, event.data, `event ${i}: same event as the witness at that id`);
    previous = next;
  }
  assert.deepEqual(previous, [countOn('a', 0, 192), countOn('b', 0, 192)], 'it ends at the head of both channels');
});
