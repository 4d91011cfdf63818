import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type TestContext, test } from 'node:test';
import { EventStream, type EventStreamOptions } from '../../../src/index.js';
import { RawConnection } from '../../helpers/raw-http.js';
import { cleanups } from '../../helpers/requirements.js';
import { listen } from '../../helpers/server.js';
import { until } from '../../helpers/sse-client.js';

/**
 * How the publishing idioms the README shows reach the wire: each chunk a
 * client receives is one socket write, so counting chunks per client counts
 * what a fan-out costs. Events published in one turn of the caller, however
 * they were published (awaited one by one, or piped), must leave together.
 */

const REQUEST = 'GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n';

/** An EventStream serving `channel` on a real server; `/stuck` is a stream whose response the test can inspect. */
async function serve(t: TestContext, channel: string, options: EventStreamOptions = {}) {
  const defer = cleanups(t);
  const eventStream = new EventStream({ keepAliveInterval: 0, ...options });
  defer(() => eventStream.close());
  let stuck: ServerResponse | null = null;
  const server = await listen((req, res) => {
    if (req.url === '/stuck') stuck = res;
    void eventStream.run(req, res, channel);
  });
  defer(() => server.close());
  const connect = async (count: number, request = REQUEST): Promise<RawConnection[]> => {
    const clients = Array.from({ length: count }, () => {
      const client = new RawConnection(server.port);
      client.send(request);
      return client;
    });
    for (const client of clients) defer(() => client.close());
    await Promise.all(clients.map((client) => client.waitFor('stream-open', () => client.body().includes('stream-open'))));
    return clients;
  };
  return { eventStream, connect, stuckResponse: () => stuck };
}

/** Loop turns (check phases) that pass until stop(). */
function turnCounter(): { stop: () => number } {
  let turns = 0;
  let running = true;
  const tick = (): void => {
    if (!running) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  return {
    stop: () => {
      running = false;
      return turns;
    },
  };
}

/** The values of `event: n` events in a body, in the order received, after checking that their ids are consecutive. */
function receivedValues(body: string, channel: string): number[] {
  const values: number[] = [];
  let lastSeq: number | null = null;
  for (const match of body.matchAll(new RegExp(`data: (\\{"i":(\\d+)[^\\n]*\\}|\\d+)\\nid: ${channel}:(\\d+)\\n\\n`, 'g'))) {
    const seq = Number(match[3]);
    if (lastSeq !== null) assert.equal(seq, lastSeq + 1, 'ids follow each other');
    lastSeq = seq;
    values.push(Number(match[2] ?? match[1]));
  }
  return values;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

test('an awaited publishEvent loop in one turn reaches each client as one chunk, not one per event', async (t) => {
  const { eventStream, connect } = await serve(t, 'loop');
  const clients = await connect(5);

  for (let i = 0; i < 200; i++) await eventStream.publishEvent('loop', { event: 'n', data: i });

  for (const client of clients) {
    await client.waitFor('200 events', () => client.body().includes('data: 199\n'));
    const [opening, ...frames] = client.chunks();
    assert.match(opening!, /^event: stream-open\n/);
    assert.deepEqual(receivedValues(frames.join(''), 'loop'), range(0, 200));
    assert.equal(frames.length, 1, `the loop's events left in ${frames.length} chunks`);
  }
});

test('independent publishers awaiting their own publishEvent in one turn (callbacks of one loop phase, like requests read in one poll) share a chunk', async (t) => {
  const { eventStream, connect } = await serve(t, 'many');
  const clients = await connect(3);

  // Immediates queued in one tick run in the same check phase, Node running each one's ticks and microtasks before
  // the next: independent callbacks of one turn. (Timers of one delay would do the same only when they were all
  // created within the same millisecond, since each setTimeout reads the clock; on a loaded machine some are not.)
  const published = range(0, 20).map(
    (i) =>
      new Promise<void>((resolve, reject) =>
        setImmediate(() => eventStream.publishEvent('many', { event: 'n', data: i }).then(resolve, reject)),
      ),
  );
  await Promise.all(published);

  for (const client of clients) {
    await client.waitFor('20 events', () => client.body().includes('data: 19\n'));
    const frames = client.chunks().slice(1);
    assert.deepEqual(receivedValues(frames.join(''), 'many'), range(0, 20));
    assert.equal(frames.length, 1, `20 publishers' events left in ${frames.length} chunks`);
  }
});

test('an event whose publishEvent resolved reaches the client before close() ends its stream', async (t) => {
  const { eventStream, connect } = await serve(t, 'last');
  const [client] = await connect(1);

  await eventStream.publishEvent('last', { event: 'n', data: 1 });
  // The hub hands its batch on at the end of the turn; close() in the same turn must not leave it behind.
  await eventStream.close();

  await client!.waitFor('the last chunk', () => client!.text().endsWith('\r\n0\r\n\r\n'));
  assert.deepEqual(receivedValues(client!.body(), 'last'), [1]);
});

/** process.nextTick callbacks scheduled while `run` runs and until `done()` holds: the deferred work it cost. */
async function ticksDuring(run: () => Promise<void>, done: () => boolean): Promise<number> {
  let ticks = 0;
  const hook = createHook({
    init(_asyncId, type) {
      if (type === 'TickObject') ticks++;
    },
  });
  hook.enable();
  try {
    await run();
    await until(done, 5000, 'every client to get the events');
  } finally {
    hook.disable();
  }
  return ticks;
}

test('an awaited publishEvent loop costs each event no more deferred work than a burst: it reuses one writable', async (t) => {
  const { eventStream, connect } = await serve(t, 'reuse');
  const clients = await connect(3);
  const count = 200;
  let sent = 0;
  const allArrived = (): boolean => clients.every((client) => client.body().includes(`data: ${sent - 1}\n`));

  const burst = await ticksDuring(async () => {
    await Promise.all(range(0, count).map(() => eventStream.publishEvent('reuse', { event: 'n', data: sent++ })));
  }, allArrived);
  // Let the burst's writable go, so the loop starts as a first publish does.
  await new Promise((resolve) => setImmediate(resolve));
  const awaited = await ticksDuring(async () => {
    for (let i = 0; i < count; i++) await eventStream.publishEvent('reuse', { event: 'n', data: sent++ });
  }, allArrived);

  // A writable built and ended per publish costs several ticks each (end, prefinish, finish).
  assert.ok(awaited <= burst + count / 2, `an awaited loop scheduled ${awaited} ticks for ${count} events, a burst ${burst}`);
});

test('pipeline(Readable.from(events), createChannelWritable()) reaches each client as one chunk', async (t) => {
  const { eventStream, connect } = await serve(t, 'piped');
  const clients = await connect(5);

  await pipeline(Readable.from(range(0, 200).map((i) => ({ event: 'n', data: i }))), eventStream.createChannelWritable('piped'));

  for (const client of clients) {
    await client.waitFor('200 events', () => client.body().includes('data: 199\n'));
    const frames = client.chunks().slice(1);
    assert.deepEqual(receivedValues(frames.join(''), 'piped'), range(0, 200));
    assert.equal(frames.length, 1, `the piped events left in ${frames.length} chunks`);
  }
});

test('while a socket is backed up, awaited and piped publishes resolve without a loop turn each; the never-reading client is still dropped at its bound and the others get everything in order', async (t) => {
  const maxBufferBytes = 1024 * 1024;
  const { eventStream, connect, stuckResponse } = await serve(t, 'jam', { maxBufferBytes });
  const readers = await connect(3);
  const [stuck] = await connect(1, REQUEST.replace('/events', '/stuck'));
  stuck!.socket.pause();
  const stuckSocket = stuckResponse()!.socket!;
  const pad = 'p'.repeat(16 * 1024);
  let next = 0;

  // Phase 1: fill the stuck client's kernel buffers until its server-side socket backs up (the hub now sees congestion).
  while (!stuckSocket.writableNeedDrain) {
    assert.ok(next < 2000, 'the stuck socket backs up within 32 MiB');
    await eventStream.publishEvent('jam', { event: 'n', data: { i: next++, pad } });
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(eventStream.stats().slowClientsDropped, 0, 'the stuck client is still within its bound');

  // Phase 2: 200 small awaited publishes while it stays backed up. Pacing one event per loop turn would take 200 turns.
  const readerChunksBefore = readers.map((reader) => reader.chunks().length);
  const turns = turnCounter();
  const smallFrom = next;
  for (let i = 0; i < 200; i++) await eventStream.publishEvent('jam', { event: 'n', data: { i: next++ } });
  const elapsed = turns.stop();
  assert.ok(stuckSocket.writableNeedDrain, 'the stuck socket was backed up throughout');
  assert.ok(elapsed <= 2, `200 awaited publishes took ${elapsed} loop turns`);
  for (const reader of readers) {
    await reader.waitFor('the small events', () => reader.body().includes(`{"i":${next - 1}}`));
  }
  readers.forEach((reader, r) => {
    const chunks = reader.chunks().slice(readerChunksBefore[r]!);
    assert.ok(chunks.length <= 2, `the 200 small events reached a reader in ${chunks.length} chunks`);
    assert.deepEqual(receivedValues(chunks.join(''), 'jam').slice(-200), range(smallFrom, next));
  });

  // Phase 3: the same through a pipe from Readable.from.
  const pipedChunksBefore = readers.map((reader) => reader.chunks().length);
  const pipeTurns = turnCounter();
  const pipedFrom = next;
  await pipeline(
    Readable.from(range(0, 200).map(() => ({ event: 'n', data: { i: next++ } }))),
    eventStream.createChannelWritable('jam'),
  );
  const pipeElapsed = pipeTurns.stop();
  assert.ok(stuckSocket.writableNeedDrain, 'the stuck socket was backed up throughout');
  assert.ok(pipeElapsed <= 2, `piping 200 events took ${pipeElapsed} loop turns`);
  for (const reader of readers) {
    await reader.waitFor('the piped events', () => reader.body().includes(`{"i":${next - 1}}`));
  }
  readers.forEach((reader, r) => {
    const chunks = reader.chunks().slice(pipedChunksBefore[r]!);
    assert.ok(chunks.length <= 2, `the 200 piped events reached a reader in ${chunks.length} chunks`);
    assert.deepEqual(receivedValues(chunks.join(''), 'jam').slice(-200), range(pipedFrom, next));
  });

  // Phase 4: keep publishing until the stuck client passes its bound: it is dropped, the readers are not.
  while (eventStream.stats().slowClientsDropped === 0) {
    assert.ok(next < 4000, 'the stuck client is dropped within 32 MiB more');
    await eventStream.publishEvent('jam', { event: 'n', data: { i: next++, pad } });
  }
  // The server destroyed the stuck connection instead of buffering for it (seen once the client reads again).
  stuck!.socket.resume();
  await until(() => stuck!.closed, 5000, 'the server to close the stuck connection');
  for (const reader of readers) {
    await reader.waitFor('every event', () => reader.body().includes(`{"i":${next - 1},`), 30_000);
    assert.deepEqual(receivedValues(reader.body(), 'jam'), range(0, next));
  }
  assert.equal(eventStream.stats().slowClientsDropped, 1);
  assert.equal(eventStream.stats().channels.jam, 3);
});
