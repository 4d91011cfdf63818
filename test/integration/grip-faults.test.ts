/**
 * Proxy fault injection: the GRIP control API is a fake (a real node:http
 * server on 127.0.0.1, see helpers/fake-control-api.ts) that is slow,
 * failing, hanging or cut off, and the local subscriber is a real
 * `eventsource` client connected directly. Whatever the proxy does, local
 * subscribers and the store get every event, in order, at once; each failed
 * proxy publish is reported to its own caller; backpressure from the proxy
 * still reaches a writer; close() stops every proxy call and leaves nothing
 * running.
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Publisher } from '@fanoutio/grip';
import {
  EventStream,
  EventStreamClosedError,
  type EventStreamOptions,
  GripPublishError,
  MemoryEventStore,
  type ServerSentEvent,
} from '../../src/index.js';
import { accept, cutMidAnswer, type FakeControlApi, failWith, hold, startControlApi } from '../helpers/fake-control-api.js';
import { cleanups } from '../helpers/requirements.js';
import { freePort, listen } from '../helpers/server.js';
import { openRaw, RecordingEventSource, until } from '../helpers/sse-client.js';

const COUNT = 20;
/** Publishes are spread out like an app's (the runs used one every 100 ms), so each goes out in its own batch. */
const GAP_MS = 15;

type Defer = ReturnType<typeof cleanups>;

interface Setup {
  defer: Defer;
  /** The app's base URL; it serves `/<channel>`. */
  url: string;
  eventStream: EventStream;
  /** A direct (not proxied) subscriber of `channel`; from `lastEventId` when given, so it replays the store. */
  direct(channel: string, lastEventId?: string): Promise<RecordingEventSource>;
}

/** An EventStream publishing to `grip`, serving `/<channel>` directly on a real server. */
async function setup(t: TestContext, grip: EventStreamOptions['grip'], options: EventStreamOptions = {}): Promise<Setup> {
  const defer = cleanups(t);
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  defer(() => {
    process.off('unhandledRejection', onUnhandled);
    assert.deepEqual(unhandled, [], 'no unhandled rejections');
  });
  const eventStream = new EventStream({ grip, ...options });
  defer(() => eventStream.close());
  const app = await listen((req, res) => {
    void eventStream.run(req, res, new URL(req.url ?? '/', 'http://app').pathname.slice(1));
  });
  defer(() => app.close());
  return {
    defer,
    url: app.url,
    eventStream,
    async direct(channel, lastEventId) {
      const query = lastEventId === undefined ? '' : `?lastEventId=${encodeURIComponent(lastEventId)}`;
      const client = new RecordingEventSource(`${app.url}/${channel}${query}`, ['message', 'stream-open']);
      defer(() => client.close());
      await client.opened;
      return client;
    },
  };
}

async function control(defer: Defer, behaviour = accept): Promise<FakeControlApi> {
  const api = await startControlApi(behaviour);
  defer(() => api.close());
  return api;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function indices(count: number, from = 0): string[] {
  return Array.from({ length: count }, (_, i) => String(from + i));
}

function numbered(count: number, from = 0): ServerSentEvent[] {
  return Array.from({ length: count }, (_, i) => ({ data: from + i }));
}

interface EventPublisher {
  publishEvent(channel: string, event: ServerSentEvent): Promise<void>;
}

/**
 * One publishEvent every GAP_MS, not awaited (as an app publishing as
 * things happen), through `via`; each outcome is null or the error.
 */
async function publishSeries(
  eventStream: EventStream,
  channel: string,
  count = COUNT,
  via: 'publishEvent' | 'getChannelPublisher' = 'publishEvent',
): Promise<Array<Promise<unknown>>> {
  const publisher = eventStream.getChannelPublisher(channel);
  const target: EventPublisher =
    via === 'publishEvent' ? eventStream : { publishEvent: (_channel, event) => publisher.publishEvent(event) };
  const outcomes: Array<Promise<unknown>> = [];
  for (let i = 0; i < count; i++) {
    outcomes.push(
      target.publishEvent(channel, { data: i }).then(
        () => null,
        (error: unknown) => error,
      ),
    );
    await sleep(GAP_MS);
  }
  return outcomes;
}

/** How many of `outcomes` have settled, once pending callbacks have run. */
async function settledCount(outcomes: ReadonlyArray<Promise<unknown>>): Promise<number> {
  let settled = 0;
  for (const outcome of outcomes) void outcome.then(() => settled++);
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

/** The local client got every event, in order, and the store has them: a client resuming from before the first replays them all. */
async function assertDeliveredLocally(
  s: Setup,
  client: RecordingEventSource,
  channel: string,
  expected: string[],
): Promise<void> {
  await client.waitFor(expected.length);
  assert.deepEqual(
    client.of().map((event) => event.data),
    expected,
    'the direct client got every event, in order',
  );
  const opening = client.of('stream-open')[0]!.lastEventId;
  const resumed = await s.direct(channel, opening);
  await resumed.waitFor(expected.length);
  assert.deepEqual(
    resumed.of().map((event) => event.data),
    expected,
    'the store kept every event',
  );
}

function assertGripError(error: unknown, proxy: FakeControlApi | string, status: number): asserts error is GripPublishError {
  assert.ok(error instanceof GripPublishError, `expected a GripPublishError, got ${String(error)}`);
  assert.equal(error.code, 'ERR_EVENTSTREAM_GRIP_PUBLISH');
  assert.equal(error.status, status);
  assert.equal(error.proxy, `${typeof proxy === 'string' ? proxy : proxy.url}/publish/`);
}

// ---------------------------------------------------------------------------
// Local delivery whatever the proxy does

test('a slow proxy: every publishEvent reaches the direct client and the store before the proxy answered any, and each resolves once it accepted', async (t) => {
  const defer = cleanups(t);
  const api = await control(defer, hold);
  const s = await setup(t, api.url);
  const client = await s.direct('slow');

  const outcomes = await publishSeries(s.eventStream, 'slow');
  await assertDeliveredLocally(s, client, 'slow', indices(COUNT));
  assert.equal(api.held().length, 1, 'the proxy holds the first request; the rest wait for it');
  assert.equal(await settledCount(outcomes), 0, 'no publishEvent settled before the proxy answered');

  api.release();
  assert.deepEqual(await Promise.all(outcomes), new Array(COUNT).fill(null));
  assert.deepEqual(api.published(), indices(COUNT), 'the proxy got every event, in order');
  // Publishes queued behind the slow request travel together in the next one.
  assert.equal(api.requests.length, 2);
});

test("a proxy that never answers: the direct client gets all 20 events; each publish (a ChannelPublisher's here) rejects with its own timeout", async (t) => {
  const defer = cleanups(t);
  const api = await control(defer, hold);
  const s = await setup(t, api.url, { gripPublishTimeout: 300 });
  const client = await s.direct('hang');

  const outcomes = await publishSeries(s.eventStream, 'hang', COUNT, 'getChannelPublisher');
  await assertDeliveredLocally(s, client, 'hang', indices(COUNT));
  for (const error of await Promise.all(outcomes)) {
    assertGripError(error, api, -1);
    assert.match(error.message, /timed out: no answer within 300 ms/);
    assert.ok(error.cause instanceof Error);
    assert.equal(error.cause.name, 'TimeoutError');
  }
  await until(() => api.requests.every((request) => request.aborted), 5000, 'timed-out calls to be aborted');
});

test('a proxy answering 500: all 20 events are delivered and stored; each publishEvent rejects with the status and body', async (t) => {
  const defer = cleanups(t);
  const api = await control(defer, failWith(500, 'publish exploded\n', 40));
  const s = await setup(t, api.url);
  const client = await s.direct('fail');

  const outcomes = await publishSeries(s.eventStream, 'fail');
  await assertDeliveredLocally(s, client, 'fail', indices(COUNT));
  for (const error of await Promise.all(outcomes)) {
    assertGripError(error, api, 500);
    assert.equal(error.body, 'publish exploded\n');
    assert.match(error.message, /HTTP 500: publish exploded/);
  }
  // A publish after the failures is delivered and accepted like any other.
  api.behave(accept);
  await s.eventStream.publishEvent('fail', { data: 'after' });
  await client.waitFor(COUNT + 1);
  assert.equal(client.of().at(-1)!.data, '"after"');
});

test('a proxy refusing connections: events are delivered; the error says ECONNREFUSED and keeps it as its cause', async (t) => {
  const port = await freePort();
  const s = await setup(t, `http://127.0.0.1:${port}`);
  const client = await s.direct('refused');

  const outcomes = await publishSeries(s.eventStream, 'refused');
  await assertDeliveredLocally(s, client, 'refused', indices(COUNT));
  for (const error of await Promise.all(outcomes)) {
    assertGripError(error, `http://127.0.0.1:${port}`, -1);
    assert.match(error.message, /ECONNREFUSED/);
    assert.equal((error.cause as { code?: string }).code, 'ECONNREFUSED');
  }
});

test('a proxy resetting the connection, before or in the middle of its answer: events are delivered; the error keeps the cause', async (t) => {
  const defer = cleanups(t);
  const cut = await control(defer, cutMidAnswer);
  const s = await setup(t, cut.url);
  const client = await s.direct('cut');
  const outcomes = await publishSeries(s.eventStream, 'cut', 5);
  await client.waitFor(5);
  assert.deepEqual(
    client.of().map((event) => event.data),
    indices(5),
  );
  for (const error of await Promise.all(outcomes)) {
    assertGripError(error, cut, 200);
    assert.match(error.message, /connection closed while reading the answer/);
    const code = (error.cause as { code?: string }).code;
    assert.equal(code, 'UND_ERR_SOCKET');
    assert.ok(error.message.includes(code), error.message);
  }

  // A TCP reset as soon as the request arrives, before any answer.
  const resetter = net.createServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
  await new Promise<void>((resolve) => resetter.listen(0, '127.0.0.1', resolve));
  defer(() => new Promise((resolve) => resetter.close(resolve)));
  const resetUrl = `http://127.0.0.1:${(resetter.address() as AddressInfo).port}`;
  const r = await setup(t, resetUrl);
  const resetClient = await r.direct('reset');
  const resets = await publishSeries(r.eventStream, 'reset', 5);
  await resetClient.waitFor(5);
  assert.deepEqual(
    resetClient.of().map((event) => event.data),
    indices(5),
  );
  for (const error of await Promise.all(resets)) {
    assertGripError(error, resetUrl, -1);
    assert.match(error.message, /ECONNRESET/);
    assert.equal((error.cause as { code?: string }).code, 'ECONNRESET');
  }
});

// ---------------------------------------------------------------------------
// Several proxies

test("two proxies, one failing: the healthy one and the direct client get every event in order; each publish rejects with the failing proxy's error", async (t) => {
  const defer = cleanups(t);
  const healthy = await control(defer);
  const failing = await control(defer, failWith(503, 'overloaded\n'));
  for (const order of [
    [healthy, failing],
    [failing, healthy],
  ]) {
    const s = await setup(
      t,
      order.map((api) => api.url),
    );
    const channel = order[0] === healthy ? 'healthy-first' : 'failing-first';
    const client = await s.direct(channel);
    const before = healthy.published().length;
    const outcomes = await publishSeries(s.eventStream, channel);
    await assertDeliveredLocally(s, client, channel, indices(COUNT));
    for (const error of await Promise.all(outcomes)) {
      assertGripError(error, failing, 503);
      assert.equal(error.body, 'overloaded\n');
    }
    assert.deepEqual(healthy.published().slice(before), indices(COUNT));
  }

  // When both fail, the error is the first failing proxy's, in the order of `grip`.
  const other = await control(defer, failWith(500, 'other\n'));
  const both = await setup(t, [other.url, failing.url]);
  const error = await both.eventStream.publishEvent('both', { data: 1 }).catch((reason: unknown) => reason);
  assertGripError(error, other, 500);
});

test('two proxies, one hanging: the other gets every event while the first request still hangs', async (t) => {
  const defer = cleanups(t);
  const hanging = await control(defer, hold);
  const healthy = await control(defer);
  const s = await setup(t, [hanging.url, healthy.url]);
  const client = await s.direct('half');
  const outcomes = await publishSeries(s.eventStream, 'half');
  await assertDeliveredLocally(s, client, 'half', indices(COUNT));
  await until(() => healthy.published().length === COUNT, 5000, 'the healthy proxy to get every event');
  assert.deepEqual(healthy.published(), indices(COUNT));
  assert.equal(hanging.requests.length, 1, 'the hanging proxy still holds the first request');
  assert.equal(await settledCount(outcomes), 0, 'a publish resolves only once every proxy accepted it');
  hanging.release();
  assert.deepEqual(await Promise.all(outcomes), new Array(COUNT).fill(null));
  assert.deepEqual(hanging.published(), indices(COUNT));
});

test('a slow proxy and many channels at once: one call in flight per channel, all settle, and no listener-leak warning', async (t) => {
  const defer = cleanups(t);
  const api = await control(defer, hold);
  const s = await setup(t, api.url);
  const warnings: Error[] = [];
  const onWarning = (warning: Error): void => void warnings.push(warning);
  process.on('warning', onWarning);
  defer(() => process.off('warning', onWarning));
  const channels = Array.from({ length: 40 }, (_, i) => `many-${i}`);
  const outcomes = channels.map((channel) => s.eventStream.publishEvent(channel, { data: channel }));
  await until(() => api.requests.length === channels.length, 5000, 'one request per channel');
  api.release();
  await Promise.all(outcomes);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(
    warnings.map((warning) => warning.name),
    [],
  );
});

test('reliable mode behind a slow proxy: publishes that waited travel together, but an item never spans events another publisher numbered in between', async (t) => {
  const defer = cleanups(t);
  const api = await control(defer, hold);
  // Two EventStreams numbering one channel in one store, as two processes sharing Redis would.
  const store = new MemoryEventStore();
  const s = await setup(t, api.url, { store, gripReliable: true });
  const other = new EventStream({ store });
  defer(() => other.close());

  const outcomes = [s.eventStream.publishEvent('gaps', { data: 'first' })];
  await until(() => api.requests.length === 1, 5000, 'the first request to reach the proxy');
  outcomes.push(s.eventStream.publishEvent('gaps', { data: 'second' }));
  await new Promise((resolve) => setImmediate(resolve));
  await other.publishEvent('gaps', { data: 'not ours' });
  outcomes.push(s.eventStream.publishEvent('gaps', { data: 'third' }));
  await new Promise((resolve) => setImmediate(resolve));
  api.release();
  await Promise.all(outcomes);

  assert.equal(api.requests.length, 2, 'the two publishes that waited went out in one request');
  const [first, later] = api.requests.map((request) => request.items);
  const ids = [...first!, ...later!].map((item) => ({ id: Number(item.id), prevId: Number(item.prevId), data: item.data }));
  assert.deepEqual(
    ids.map((item) => item.data),
    [['"first"'], ['"second"'], ['"third"']],
  );
  assert.equal(ids[1]!.prevId, ids[0]!.id, 'second follows first');
  assert.equal(ids[2]!.prevId, ids[1]!.id + 1, 'third says the event between was not in this item');
});

// ---------------------------------------------------------------------------
// Writables: local speed, backpressure from the proxy, errors per stream rules

test('a writable behind a slow proxy: events are delivered at once, write() returns false while highWaterMark events await the proxy, drain follows its answer', async (t) => {
  const defer = cleanups(t);
  const api = await control(defer, hold);
  const s = await setup(t, api.url);
  const client = await s.direct('bp');
  const writable = s.eventStream.createChannelWritable('bp', { highWaterMark: 8 });
  let drains = 0;
  writable.on('drain', () => drains++);

  const returned = numbered(8).map((event) => writable.write(event));
  assert.deepEqual(returned, [true, true, true, true, true, true, true, false]);
  await client.waitFor(8);
  // A writer may write on regardless: those events are delivered at once too, and write() keeps saying false.
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(
    numbered(4, 8).map((event) => writable.write(event)),
    [false, false, false, false],
  );
  await client.waitFor(12);
  assert.deepEqual(
    client.of().map((event) => event.data),
    indices(12),
  );
  await until(() => api.requests.length === 1, 5000, 'the first batch to reach the proxy');
  assert.equal(api.held().length, 1);
  assert.equal(drains, 0, 'no drain while the proxy holds the events');

  const drained = once(writable, 'drain');
  api.release();
  await drained;
  assert.equal(writable.write({ data: 12 }), true, 'the proxy caught up: writes are welcome again');
  writable.end();
  await once(writable, 'finish');
  assert.deepEqual(api.published(), indices(13));
  await client.waitFor(13);
});

test('a writable whose proxy answers while a backed-up subscriber still holds the hub: drain comes once both caught up', {
  timeout: 30_000,
}, async (t) => {
  const defer = cleanups(t);
  const api = await control(defer, hold);
  const s = await setup(t, api.url, { maxBufferBytes: 256 * 1024 * 1024 });
  // A subscriber that does not read: once its socket backs up, the hub takes one event per turn of the event loop.
  const stuck = await openRaw(`${s.url}/both`, { accept: 'text/event-stream' });
  defer(() => stuck.close());
  stuck.res.pause();
  const writable = s.eventStream.createChannelWritable('both', { highWaterMark: 16 });
  const padding = 'x'.repeat(1024);
  const total = 12_000;
  const returned = Array.from({ length: total }, (_, i) => writable.write({ data: { i, padding } }));
  assert.equal(returned.indexOf(false), 15);
  // The proxy answers everything while the hub is still pacing through the batch.
  await until(() => api.requests.length > 0, 5000, 'the batch to reach the proxy');
  assert.ok(writable.writableLength > 0, 'the hub is still working through the batch');
  api.release();
  await until(() => api.published().length === total, 10_000, 'the proxy to have every event');
  assert.ok(writable.writableLength > 0, 'the proxy answered before the hub was done');
  stuck.res.resume();
  await once(writable, 'drain');
  writable.end();
  await once(writable, 'finish');
});

test('Readable.pipe(writable) behind a slow proxy: every event the source wrote is delivered at once, the source pauses once highWaterMark events await the proxy, and all arrive when it answers', async (t) => {
  const defer = cleanups(t);
  const api = await control(defer, hold);
  const s = await setup(t, api.url);
  const client = await s.direct('pipe');
  // The default highWaterMark behind a proxy (1,024), and a source producing a few events a turn (a cursor, a feed).
  const writable = s.eventStream.createChannelWritable('pipe');
  const returned = recordWrites(writable);
  let finished = false;
  const total = 3000;
  async function* source(): AsyncGenerator<ServerSentEvent> {
    for (let i = 0; i < total; i++) {
      if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
      yield { data: i };
    }
  }
  const piped = pipeline(Readable.from(source()), writable).then(() => {
    finished = true;
  });

  await until(() => returned.includes(false), 5000, 'write() to return false');
  const written = returned.length;
  assert.equal(written, 1024, 'write() returns false once highWaterMark events await the proxy');
  await client.waitFor(written);
  assert.deepEqual(
    client.of().map((event) => event.data),
    indices(written),
    'all it wrote was delivered at once',
  );
  await sleep(100);
  assert.equal(returned.length, written, 'the source stays paused while the proxy holds its events');
  assert.equal(finished, false);

  api.release();
  await piped;
  await client.waitFor(total);
  assert.deepEqual(
    client.of().map((event) => event.data),
    indices(total),
  );
  assert.deepEqual(api.published(), indices(total));
});

/** Records what each write() call on `writable` returns. */
function recordWrites(writable: Writable): boolean[] {
  const returned: boolean[] = [];
  const write = writable.write.bind(writable) as (...args: unknown[]) => boolean;
  writable.write = ((...args: unknown[]) => {
    const accepted = write(...args);
    returned.push(accepted);
    return accepted;
  }) as Writable['write'];
  return returned;
}

test('a writable whose proxy fails: it emits the GripPublishError; what it had taken was delivered and stored', async (t) => {
  const defer = cleanups(t);
  const api = await control(defer, failWith(500, 'nope\n', 20));
  const s = await setup(t, api.url);
  const client = await s.direct('werr');
  const writable: Writable = s.eventStream.createChannelWritable('werr');
  const callbacks: Array<Error | null | undefined> = [];
  const errored = once(writable, 'error');
  for (const event of numbered(5)) writable.write(event, (error) => callbacks.push(error));
  const [error] = (await errored) as [unknown];
  assertGripError(error, api, 500);
  assert.equal(callbacks.length, 5);
  assert.ok(
    callbacks.every((outcome) => outcome === null || outcome === undefined),
    'each write was handled locally',
  );
  await assertDeliveredLocally(s, client, 'werr', indices(5));

  // Piped: pipeline rejects with the proxy's error, and everything the source wrote before it was delivered.
  const piped = s.eventStream.createChannelWritable('werr');
  const failure = await pipeline(Readable.from(numbered(50, 5)), piped).catch((reason: unknown) => reason);
  assertGripError(failure, api, 500);
  const delivered = client.of().map((event) => event.data);
  assert.deepEqual(delivered, indices(delivered.length));
  assert.ok(delivered.length > 5);
});

// ---------------------------------------------------------------------------
// close()

test('close() aborts proxy calls in flight: every pending publish and writable fails at once with EventStreamClosedError', {
  timeout: 20_000,
}, async (t) => {
  const defer = cleanups(t);
  const api = await control(defer, hold);
  const s = await setup(t, api.url, { gripPublishTimeout: 60_000 });
  const inFlight = s.eventStream.publishEvent('closing', { data: 'in flight' }).catch((error: unknown) => error);
  await until(() => api.requests.length === 1, 5000, 'the first request to reach the proxy');
  const queued = s.eventStream.publishEvent('closing', { data: 'queued' }).catch((error: unknown) => error);
  const writable = s.eventStream.createChannelWritable('closing');
  const writableError = once(writable, 'error');
  writable.write({ data: 'written' });
  await new Promise((resolve) => setImmediate(resolve));
  const lastMinute = s.eventStream.publishEvent('closing', { data: 'just before close' }).catch((error: unknown) => error);
  const idle = s.eventStream.createChannelWritable('closing');
  await s.eventStream.close();

  for (const error of await Promise.all([inFlight, queued, lastMinute])) {
    assert.ok(error instanceof EventStreamClosedError, `expected EventStreamClosedError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_EVENTSTREAM_CLOSED');
  }
  const [streamError] = (await writableError) as [unknown];
  assert.ok(streamError instanceof EventStreamClosedError);
  await until(() => api.requests[0]!.aborted, 5000, 'the proxy to see its call aborted');
  assert.equal(api.requests.length, 1, 'nothing more was sent after close()');
  await assert.rejects(s.eventStream.publishEvent('closing', { data: 'after' }), EventStreamClosedError);
  // A writable idle at close() fails its next write with our error too (stream rules: 'error').
  const idleError = once(idle, 'error');
  idle.write({ data: 'after close' });
  const [lateError] = (await idleError) as [unknown];
  assert.ok(lateError instanceof EventStreamClosedError);
});

test('close() with a @fanoutio/grip Publisher whose call hangs: pending publishes settle at once with EventStreamClosedError', {
  timeout: 20_000,
}, async (t) => {
  const defer = cleanups(t);
  const api = await control(defer, hold);
  const s = await setup(t, new Publisher({ control_uri: api.url }));
  const client = await s.direct('custom');
  const pending = s.eventStream.publishEvent('custom', { data: 1 }).catch((error: unknown) => error);
  await client.waitFor(1);
  await until(() => api.requests.length === 1, 5000, 'the publisher call to reach the proxy');
  await s.eventStream.close();
  assert.ok((await pending) instanceof EventStreamClosedError);
});

test('a process that closes its EventStream while a proxy call hangs exits on its own, its publishes rejected with EventStreamClosedError', {
  timeout: 60_000,
}, async (t) => {
  const defer = cleanups(t);
  const api = await control(defer, hold);
  const child = fork(fileURLToPath(new URL('../helpers/grip-close-process.ts', import.meta.url)), [api.url], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  defer(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const messages: unknown[] = [];
  child.on('message', (message) => messages.push(message));

  await until(
    () => messages.includes('ready') && api.requests.length === 1,
    30_000,
    "the child's first publish to reach the proxy",
  );
  child.send('queue');
  await until(() => messages.includes('queued'), 5000, 'the second publish');
  child.send('close');
  await until(() => messages.length === 3, 5000, 'the publishes to settle');
  assert.deepEqual(messages[2], { settled: ['ERR_EVENTSTREAM_CLOSED', 'ERR_EVENTSTREAM_CLOSED', 'ERR_EVENTSTREAM_CLOSED'] });

  // Its control-API call would hang for 120 s; with nothing left running the process exits well before.
  const deadline = sleep(5000).then(() => 'still running');
  const result = await Promise.race([exited.then(([code]) => `exited with ${code}`), deadline]);
  assert.equal(result, 'exited with 0', 'the process exits on its own once closed: no handle outlives close()');
  assert.ok(api.requests[0]!.aborted, 'its call was aborted, not left to time out');
});

test('after the proxy faults above, nothing is left running in this process', async () => {
  const leftovers = (): string[] =>
    process.getActiveResourcesInfo().filter((kind) => kind === 'TCPSocketWrap' || kind === 'TCPServerWrap' || kind === 'Timeout');
  await until(() => leftovers().length === 0, 5000, `sockets, servers and timers to be gone: ${leftovers().join(', ')}`);
});
