/**
 * Fault injection on the Redis store, with real redis-servers and real
 * clients: Redis killed with SIGKILL without persistence (its data is gone)
 * while streams are connected and publishes go on, a counter rolled back,
 * and pub/sub connections killed over and over.
 *
 * What must hold whatever happens: an id never names two events; a client
 * whose history was lost gets a stream-reset (and then every new event),
 * never a wrong replay; where nothing was lost, nothing is missed and nobody
 * is reset; nothing throws where nobody can catch it.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import type { EventSourceMessage } from 'eventsource-parser';
import { Redis } from 'ioredis';
import { EventStoreError, EventStream } from '../../src/index.js';
import { RedisEventStore, type RedisEventStoreOptions } from '../../src/stores/redis/redis-store.js';
import { type RunningRedis, requireRedis, startRedis, uniqueKeyPrefix } from '../helpers/redis.js';
import { cleanups } from '../helpers/requirements.js';
import { listen } from '../helpers/server.js';
import { openRaw, parseAll, until } from '../helpers/sse-client.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Errors nobody could catch, collected for the test to assert on instead of crashing the run. */
function unhandledErrors(t: TestContext): unknown[] {
  const errors: unknown[] = [];
  const collect = (error: unknown): void => {
    errors.push(error);
  };
  process.on('unhandledRejection', collect);
  process.on('uncaughtException', collect);
  t.after(() => {
    process.off('unhandledRejection', collect);
    process.off('uncaughtException', collect);
  });
  return errors;
}

interface App {
  url: string;
  eventStream: EventStream;
  store: RedisEventStore;
}

/** An EventStream on its own RedisEventStore, serving `/<channel>`. */
async function app(defer: (fn: () => unknown) => void, storeOptions: RedisEventStoreOptions): Promise<App> {
  const store = new RedisEventStore(storeOptions);
  const eventStream = new EventStream({ clientRetry: 20, store });
  const server = await listen((req, res) => {
    void eventStream.run(req, res, new URL(req.url ?? '/', 'http://x').pathname.slice(1));
  });
  defer(async () => {
    await eventStream.close();
    await store.close();
    await server.close();
  });
  return { url: server.url, eventStream, store };
}

/** A raw SSE client: every event it got, parsed. */
async function client(defer: (fn: () => unknown) => void, url: string, headers: Record<string, string> = {}) {
  const stream = await openRaw(url, { accept: 'text/event-stream', ...headers });
  defer(() => stream.close());
  assert.equal(stream.status, 200);
  await until(() => parseAll(stream.text()).length > 0, 5000, `opening of ${url}`);
  const events = (): EventSourceMessage[] => parseAll(stream.text());
  return {
    events,
    messages: (): number[] =>
      events()
        .filter((event) => event.event === undefined)
        .map((event) => Number(event.data)),
    resets: (): EventSourceMessage[] => events().filter((event) => event.event === 'stream-reset'),
    openingSeq: (): number => seqOf(events()[0]!.id!),
  };
}

function seqOf(id: string): number {
  const match = /^[a-z]+:(\d+)$/.exec(id);
  assert.ok(match !== null, `id ${id}`);
  return Number(match[1]);
}

/** Every id any client saw, with the data it carried: one id, one event. */
function assertNoIdNamesTwoEvents(streams: Array<{ events(): EventSourceMessage[] }>): void {
  const byId = new Map<string, string>();
  for (const stream of streams) {
    for (const event of stream.events()) {
      if (event.event !== undefined) continue;
      const seen = byId.get(event.id!);
      assert.ok(seen === undefined || seen === event.data, `id ${event.id} named ${seen} and ${event.data}`);
      byId.set(event.id!, event.data);
    }
  }
}

/** Publishes until it goes through, as an application retrying after the store refused. */
async function publishWhenBack(eventStream: EventStream, channel: string, n: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await eventStream.publishEvent(channel, { data: n });
      return;
    } catch (error) {
      if (!(error instanceof EventStoreError) || Date.now() > deadline) throw error;
      await sleep(20);
    }
  }
}

async function redisWithoutPersistence(t: TestContext): Promise<RunningRedis | null> {
  if (!requireRedis(t)) return null;
  const server = await startRedis();
  t.after(() => server.stop());
  return server;
}

test('Redis killed without persistence while a stream is connected and publishes go on: a reset, then every new event; no id reused', {
  timeout: 90_000,
}, async (t) => {
  const server = await redisWithoutPersistence(t);
  if (server === null) return;
  const defer = cleanups(t);
  const errors = unhandledErrors(t);
  const a = await app(defer, { url: server.url, keyPrefix: 'faults:' });
  const live = await client(defer, `${a.url}/news`);

  // 250 publishes, one after another; Redis is killed after the 100th and comes back empty.
  const before: number[] = [];
  const after: number[] = [];
  let crash: Promise<void> | null = null;
  for (let n = 0; n < 250; n++) {
    if (n === 100) crash = server.crash(() => sleep(200));
    try {
      await a.eventStream.publishEvent('news', { data: n });
      (crash === null ? before : after).push(n);
    } catch (error) {
      assert.ok(error instanceof EventStoreError, String(error));
    }
    await sleep(4);
  }
  await crash;
  for (let n = 250; n < 260; n++) {
    await publishWhenBack(a.eventStream, 'news', n);
    after.push(n);
  }
  assert.equal(before.length, 100);
  await until(() => live.messages().includes(259), 15_000, 'the connected client to get the last event');

  const events = live.events();
  const resetAt = events.findIndex((event) => event.event === 'stream-reset');
  assert.ok(resetAt > 0, 'the connected client was told its history was lost');
  assert.equal(live.resets().length, 1);
  const received = live.messages();
  const beforeReset = events.slice(1, resetAt).map((event) => Number(event.data));
  const afterReset = events
    .slice(resetAt + 1)
    .filter((event) => event.event === undefined)
    .map((event) => Number(event.data));
  assert.deepEqual(beforeReset, before.slice(0, beforeReset.length), 'before the loss: in order, none twice');
  assert.deepEqual(afterReset, after, 'after the loss: every event that was published, in order');
  assert.equal(received.length, beforeReset.length + afterReset.length);
  // The new generation's ids are above every id of the lost one, and the reset's id is where the client now stands.
  const lastOld = seqOf(events[resetAt - 1]!.id!);
  const reset = events[resetAt]!;
  assert.ok(seqOf(reset.id!) > lastOld);
  assert.equal(seqOf(events[resetAt + 1]!.id!), seqOf(reset.id!) + 1);

  // A client resuming from the lost generation is reset, and is not replayed anything.
  const resumed = await client(defer, `${a.url}/news`, { 'last-event-id': events[resetAt - 1]!.id! });
  await until(() => resumed.resets().length === 1, 5000, 'a reset for the resuming client');
  const fresh = await client(defer, `${a.url}/news`);
  assert.equal(fresh.openingSeq(), seqOf(events.at(-1)!.id!), 'a new client is told the current position');
  await a.eventStream.publishEvent('news', { data: 260 });
  await until(() => resumed.messages().includes(260) && fresh.messages().includes(260) && live.messages().includes(260));
  assert.deepEqual(resumed.messages(), [260], 'nothing replayed from a lost generation');
  assert.deepEqual(fresh.messages(), [260]);
  assert.equal(fresh.resets().length, 0);
  assert.equal(live.resets().length, 1);

  assertNoIdNamesTwoEvents([live, resumed, fresh]);
  assert.deepEqual(errors, []);
});

test('Redis loses its data while nothing is published: new clients start in the new generation; old positions are reset', {
  timeout: 60_000,
}, async (t) => {
  const server = await redisWithoutPersistence(t);
  if (server === null) return;
  const defer = cleanups(t);
  const errors = unhandledErrors(t);
  const a = await app(defer, { url: server.url, keyPrefix: 'faults:' });
  // A second process, publishing only.
  const b = await app(defer, { url: server.url, keyPrefix: 'faults:' });
  const live = await client(defer, `${a.url}/news`);
  for (let n = 0; n < 5; n++) await b.eventStream.publishEvent('news', { data: n });
  await until(() => live.messages().length === 5);
  const oldHead = seqOf(live.events().at(-1)!.id!);

  await server.crash(() => sleep(100));
  // Once A's watch is back, it knows its position is lost: a new client is told a position of the new generation.
  let fresh = await client(defer, `${a.url}/news`);
  const deadline = Date.now() + 10_000;
  while (fresh.openingSeq() <= oldHead) {
    assert.ok(Date.now() < deadline, `new clients are still told ${fresh.openingSeq()}, a position Redis no longer has`);
    await sleep(100);
    fresh = await client(defer, `${a.url}/news`);
  }
  const resumed = await client(defer, `${a.url}/news`, { 'last-event-id': `news:${oldHead}` });
  await until(() => resumed.resets().length === 1, 5000, 'a reset for a position of the lost generation');

  await publishWhenBack(b.eventStream, 'news', 5);
  await until(
    () => [live, fresh, resumed].every((stream) => stream.messages().includes(5)),
    10_000,
    'everyone to get the new event',
  );
  assert.equal(fresh.resets().length, 0, 'a client that joined after the loss missed nothing');
  assert.equal(seqOf(fresh.events().at(-1)!.id!), fresh.openingSeq() + 1);
  assert.equal(live.resets().length, 1, 'the client connected through the loss is reset');
  assert.deepEqual(live.messages(), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(resumed.messages(), [5]);
  assertNoIdNamesTwoEvents([live, fresh, resumed]);
  assert.deepEqual(errors, []);
});

test('a counter rolled back below what was handed out (older snapshot, evicted key) is moved past it: no id reused', {
  timeout: 60_000,
}, async (t) => {
  if (!requireRedis(t)) return;
  const server = await startRedis({ appendOnly: true });
  t.after(() => server.stop());
  const defer = cleanups(t);
  const errors = unhandledErrors(t);
  const keyPrefix = uniqueKeyPrefix('faults');
  const a = await app(defer, { url: server.url, keyPrefix });
  const live = await client(defer, `${a.url}/news`);
  const raw = new Redis(server.url);
  defer(() => raw.quit());
  const keys = [`${keyPrefix}{news}:seq`, `${keyPrefix}{news}:log`];
  for (let n = 0; n < 10; n++) await a.eventStream.publishEvent('news', { data: n });
  // A snapshot of the channel's keys after 10 events...
  const snapshot = await Promise.all(keys.map((key) => raw.dumpBuffer(key)));
  for (let n = 10; n < 20; n++) await a.eventStream.publishEvent('news', { data: n });
  await until(() => live.messages().length === 20);
  const head = seqOf(live.events().at(-1)!.id!);

  // ...restored: the counter and the log are back where they were 10 events ago, behind what clients have.
  for (const [i, key] of keys.entries()) await raw.restore(key, 0, snapshot[i]!, 'REPLACE');
  await a.eventStream.publishEvent('news', { data: 20 });
  await until(() => live.messages().includes(20));
  const newSeq = seqOf(live.events().at(-1)!.id!);
  assert.ok(newSeq > head, `the event published after the rollback got ${newSeq}, an id already handed out (head was ${head})`);
  assert.equal(live.resets().length, 1, 'a jump in numbering is announced');
  // A client resuming from an id of the rolled-back part is reset, not replayed the wrong events.
  const resumed = await client(defer, `${a.url}/news`, { 'last-event-id': `news:${head - 5}` });
  await until(() => resumed.resets().length === 1, 5000, 'a reset for an id the store no longer has');
  assert.deepEqual(resumed.messages(), []);
  assertNoIdNamesTwoEvents([live, resumed]);
  assert.deepEqual(errors, []);
});

test('pub/sub connections killed over and over while publishing: nothing lost, nothing twice, nobody reset', {
  timeout: 60_000,
}, async (t) => {
  if (!requireRedis(t)) return;
  const server = await startRedis();
  t.after(() => server.stop());
  const defer = cleanups(t);
  const errors = unhandledErrors(t);
  const keyPrefix = uniqueKeyPrefix('faults');
  const a = await app(defer, { url: server.url, keyPrefix });
  const b = await app(defer, { url: server.url, keyPrefix });
  const streams = [
    await client(defer, `${a.url}/news`),
    await client(defer, `${b.url}/news`),
    await client(defer, `${a.url}/news`),
  ];
  const raw = new Redis(server.url);
  defer(() => raw.quit());

  let killing = true;
  let kills = 0;
  const killer = (async () => {
    while (killing) {
      kills += Number(await raw.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
      await sleep(30);
    }
  })();
  const published: number[] = [];
  for (let n = 0; n < 300; n++) {
    await (n % 2 === 0 ? a : b).eventStream.publishEvent('news', { data: n });
    published.push(n);
    if (n % 10 === 0) await sleep(5);
  }
  killing = false;
  await killer;
  assert.ok(kills >= 4, `pub/sub connections killed ${kills} times`);

  for (const stream of streams) {
    await until(() => stream.messages().length >= published.length, 15_000, 'every event');
  }
  await sleep(200);
  const ids = streams[0]!
    .events()
    .filter((event) => event.event === undefined)
    .map((event) => event.id);
  for (const stream of streams) {
    assert.deepEqual(stream.messages(), published);
    assert.equal(stream.resets().length, 0);
    assert.deepEqual(
      stream
        .events()
        .filter((event) => event.event === undefined)
        .map((event) => event.id),
      ids,
      'same ids everywhere',
    );
  }
  assertNoIdNamesTwoEvents(streams);
  assert.deepEqual(errors, []);
});

test('Redis with AOF (fsync always) killed while publishes go on: nothing that was published is lost, nobody is reset', {
  timeout: 90_000,
}, async (t) => {
  if (!requireRedis(t)) return;
  const server = await startRedis({ appendOnly: true });
  t.after(() => server.stop());
  const defer = cleanups(t);
  const errors = unhandledErrors(t);
  const a = await app(defer, { url: server.url, keyPrefix: 'faults:' });
  const b = await app(defer, { url: server.url, keyPrefix: 'faults:' });
  const onA = await client(defer, `${a.url}/news`);
  const onB = await client(defer, `${b.url}/news`);

  const published: number[] = [];
  let crash: Promise<void> | null = null;
  for (let n = 0; n < 150; n++) {
    if (n === 50) crash = server.crash(() => sleep(200));
    try {
      await (n % 2 === 0 ? a : b).eventStream.publishEvent('news', { data: n });
      published.push(n);
    } catch (error) {
      // Refused while Redis is down; with fsync always, a refused append was not stored.
      assert.ok(error instanceof EventStoreError, String(error));
    }
    await sleep(4);
  }
  await crash;
  for (let n = 150; n < 160; n++) {
    await publishWhenBack(n % 2 === 0 ? a.eventStream : b.eventStream, 'news', n);
    published.push(n);
  }
  for (const stream of [onA, onB]) {
    await until(() => stream.messages().includes(159), 15_000, 'the last event');
  }
  await sleep(200);
  const first = onA.openingSeq() + 1;
  for (const stream of [onA, onB]) {
    assert.deepEqual(stream.messages(), published, 'every published event, once, in order');
    assert.equal(stream.resets().length, 0);
    const seqs = stream
      .events()
      .filter((event) => event.event === undefined)
      .map((event) => seqOf(event.id!));
    assert.deepEqual(
      seqs,
      published.map((_, i) => first + i),
      'ids run on across the restart',
    );
  }
  // A client resuming from before the crash gets exactly what it missed.
  const resumeFrom = onA.events().find((event) => event.data === '10')!.id!;
  const resumed = await client(defer, `${b.url}/news`, { 'last-event-id': resumeFrom });
  await until(() => resumed.messages().includes(159), 10_000, 'the replay');
  assert.deepEqual(resumed.messages(), published.slice(published.indexOf(10) + 1));
  assert.equal(resumed.resets().length, 0);
  assertNoIdNamesTwoEvents([onA, onB, resumed]);
  assert.deepEqual(errors, []);
});
