// Event ids and resuming with Last-Event-ID in direct mode, on the default memory store.
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { EventStream, type EventStreamOptions, MemoryEventStore } from '../../../src/index.js';
import { listen, type RunningServer } from '../../helpers/server.js';
import { get, openRaw, parseAll, RecordingEventSource, until } from '../../helpers/sse-client.js';

interface ResumeServer extends RunningServer {
  eventStream: EventStream;
  /** Responses currently streaming, so a test can drop them from the server side. */
  live: Set<ServerResponse>;
  /** The Last-Event-ID each request came with ('' for none). */
  lastEventIds: string[];
  dropAll(): void;
}

async function resumeServer(options: EventStreamOptions = {}): Promise<ResumeServer> {
  const eventStream = new EventStream({ clientRetry: 20, ...options });
  const live = new Set<ServerResponse>();
  const lastEventIds: string[] = [];
  const server = await listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const channels = (url.pathname.split('/')[1] ?? '').split('+');
    lastEventIds.push(String(req.headers['last-event-id'] ?? ''));
    live.add(res);
    res.on('close', () => live.delete(res));
    void eventStream.run(req, res, channels);
  });
  return {
    ...server,
    eventStream,
    live,
    lastEventIds,
    dropAll: () => {
      for (const res of live) res.destroy();
    },
    close: async () => {
      await eventStream.close();
      await server.close();
    },
  };
}

/** Reads a finite or open SSE response into parsed events. */
const numbered = (from: number, count: number) => Array.from({ length: count }, (_, i) => ({ data: { i: from + i } }));
const indexOf = (data: string): number => (JSON.parse(data) as { i: number }).i;
const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

test('a client dropped mid-stream resumes with exactly what it missed, while publishing goes on', {
  timeout: 60_000,
}, async () => {
  const server = await resumeServer();
  try {
    const client = new RecordingEventSource(`${server.url}/live`);
    await client.opened;
    const total = 3000;
    const writable = server.eventStream.createChannelWritable('live');
    for (let sent = 0; sent < total; sent += 100) {
      for (const event of numbered(sent, 100)) writable.write(event);
      await new Promise((resolve) => setTimeout(resolve, 2));
      // Three times, drop the client while events keep coming.
      if (sent === 600 || sent === 1500 || sent === 2400) {
        await until(() => server.live.size > 0, 5000, 'the client to be connected');
        server.dropAll();
      }
    }
    await new Promise<void>((resolve, reject) => writable.end((error?: Error | null) => (error ? reject(error) : resolve())));
    await client.waitFor(total, 'message', 30_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(
      client.events.map((event) => indexOf(event.data)),
      range(0, total),
      'every event once, in order',
    );
    const first = Number(client.events[0]!.lastEventId.split(':')[1]);
    assert.deepEqual(
      client.events.map((event) => event.lastEventId),
      range(first, total).map((seq) => `live:${seq}`),
    );
    // The client did reconnect, each time from where it was.
    assert.ok(server.lastEventIds.length >= 4, `${server.lastEventIds.length} requests`);
    assert.equal(server.lastEventIds[0], '');
    for (const id of server.lastEventIds.slice(1)) assert.match(id, /^live:\d+$/);
    client.close();
  } finally {
    await server.close();
  }
});

test('events published before a client reconnects are replayed in order, then live ones follow; ?lastEventId= works too', async () => {
  const server = await resumeServer();
  try {
    const first = await openRaw(`${server.url}/q`);
    await until(() => first.text().includes('\n\n'));
    const [opening] = parseAll(first.text());
    assert.equal(opening!.event, 'stream-open');
    assert.match(opening!.id!, /^q:\d+$/);
    first.close();
    await until(() => server.eventStream.stats().streams === 0);

    // Nobody listens while these are published; the store keeps them.
    for (const event of numbered(0, 5)) await server.eventStream.publishEvent('q', event);
    for (const [label, url, headers] of [
      ['header', `${server.url}/q`, { 'last-event-id': opening!.id! }],
      ['query', `${server.url}/q?lastEventId=${encodeURIComponent(opening!.id!)}`, {}],
    ] as const) {
      // The header case publishes one live event, which the query case then replays as well.
      const missed = label === 'header' ? 5 : 6;
      const resumed = await openRaw(url, headers);
      await until(() => parseAll(resumed.text()).length === 1 + missed, 5000, `${label}: replay`);
      await server.eventStream.publishEvent('q', { data: { i: missed } });
      await until(() => parseAll(resumed.text()).length === 2 + missed, 5000, `${label}: live event`);
      const events = parseAll(resumed.text());
      assert.equal(events[0]!.event, 'stream-open', label);
      // Resuming keeps the client's own position until an event moves it on.
      assert.equal(events[0]!.id, undefined, label);
      assert.deepEqual(
        events.slice(1).map((event) => indexOf(event.data)),
        range(0, missed + 1),
        label,
      );
      const seq0 = Number(opening!.id!.split(':')[1]);
      assert.deepEqual(
        events.slice(1).map((event) => event.id),
        range(seq0 + 1, missed + 1).map((seq) => `q:${seq}`),
        label,
      );
      resumed.close();
    }
  } finally {
    await server.close();
  }
});

test('a malformed Last-Event-ID gets 400 with a plain reason and opens nothing', async () => {
  const server = await resumeServer();
  try {
    const bad = ['garbage', 'q:', ':5', 'q:-1', 'q:01', 'q:1.5', 'q:1,q:2', 'q:99999999999999999', 'q r:1', 'q:1,', 'q:1;x'];
    for (const id of bad) {
      const answer = await get(`${server.url}/q`, { accept: 'text/event-stream', 'last-event-id': id });
      assert.equal(answer.status, 400, id);
      assert.match(String(answer.headers['content-type']), /^text\/plain/, id);
      assert.match(answer.body, /Last-Event-ID/, id);
    }
    const query = await get(`${server.url}/q?lastEventId=nope`, { accept: 'text/event-stream' });
    assert.equal(query.status, 400);
    assert.equal(server.eventStream.stats().streams, 0);
    assert.equal(server.eventStream.stats().hubs, 0);
  } finally {
    await server.close();
  }
});

test('a position older than the history kept, or unknown, gets a stream-reset event instead of a silent gap', async () => {
  const server = await resumeServer({ store: new MemoryEventStore({ maxEvents: 10 }) });
  try {
    const first = await openRaw(`${server.url}/old+other`);
    await until(() => first.text().includes('\n\n'));
    const openingId = parseAll(first.text())[0]!.id!;
    first.close();
    for (const event of numbered(0, 50)) await server.eventStream.publishEvent('old', event);
    await server.eventStream.publishEvent('other', { data: { i: 1000 } });

    const cases: Array<[string, string, string[]]> = [
      // 50 events published, 10 kept: the first 40 are gone for 'old'; 'other' replays fine.
      ['too old', openingId, ['old']],
      // From the future (another server's numbering): the position means nothing here.
      ['ahead', openingId.replace(/old:(\d+)/, (_, seq: string) => `old:${Number(seq) + 1_000_000}`), ['old']],
      // No position at all for one of the stream's channels.
      ['missing', openingId.replace(/,?old:\d+,?/, ''), ['old']],
    ];
    for (const [k, [label, id, resetChannels]] of cases.entries()) {
      const resumed = await openRaw(`${server.url}/old+other`, { 'last-event-id': id });
      await until(() => parseAll(resumed.text()).some((event) => event.event === 'stream-reset'), 5000, label);
      const events = parseAll(resumed.text());
      const reset = events.find((event) => event.event === 'stream-reset')!;
      assert.deepEqual(JSON.parse(reset.data), { channels: resetChannels }, label);
      // 'other' still replays exactly what was missed.
      const replayed = events.filter((event) => event.event === undefined).map((event) => indexOf(event.data));
      assert.deepEqual(replayed, new Array(k + 1).fill(1000), label);
      // Resets come first, so no id the client sees claims a position it does not have.
      assert.equal(events[1]!.event, 'stream-reset', label);
      // The reset's id is a full position the client can resume from later.
      assert.match(reset.id!, /^old:\d+,other:\d+$/, label);
      await server.eventStream.publishEvent('old', { data: { i: 50 } });
      await until(() => parseAll(resumed.text()).some((event) => event.data === '{"i":50}'), 5000, `${label}: live`);
      resumed.close();
      await until(() => server.eventStream.stats().streams === 0);
      // One more for 'other': the next case replays it too.
      await server.eventStream.publishEvent('other', { data: { i: 1000 } });
    }
  } finally {
    await server.close();
  }
});

test('a stream on several channels: one id names the position in each, and it round-trips', async () => {
  const server = await resumeServer();
  try {
    const client = new RecordingEventSource(`${server.url}/a+b`, ['message']);
    await client.opened;
    await server.eventStream.publishEvent('a', { data: { i: 0 } });
    await server.eventStream.publishEvent('b', { data: { i: 1 } });
    await client.waitFor(2);
    const [ida, idb] = client.events.map((event) => /^a:(\d+),b:(\d+)$/.exec(event.lastEventId)!.slice(1).map(Number));
    assert.deepEqual(idb, [ida![0], ida![1]! + 1]);

    server.dropAll();
    await until(() => server.lastEventIds.length === 2, 5000, 'reconnect');
    // Published in between, interleaved over both channels.
    const writableA = server.eventStream.createChannelWritable('a');
    const writableB = server.eventStream.createChannelWritable('b');
    for (let i = 2; i < 400; i++) (i % 3 === 0 ? writableB : writableA).write({ data: { i } });
    writableA.end();
    writableB.end();
    await client.waitFor(400);
    // Each channel's events arrive complete and in order (a replay sends one channel after the other).
    const received = client.events.map((event) => indexOf(event.data));
    assert.deepEqual(
      received.filter((i) => i % 3 !== 0 || i < 2),
      range(0, 400).filter((i) => i % 3 !== 0 || i < 2),
    );
    assert.deepEqual(
      received.filter((i) => i % 3 === 0 && i >= 2),
      range(0, 400).filter((i) => i % 3 === 0 && i >= 2),
    );
    assert.equal(received.length, 400);
    assert.equal(server.lastEventIds[1], client.events[1]!.lastEventId);
    // Each id advances exactly one channel by one.
    for (let i = 1; i < client.events.length; i++) {
      const [pa, pb] = /^a:(\d+),b:(\d+)$/
        .exec(client.events[i - 1]!.lastEventId)!
        .slice(1)
        .map(Number);
      const [na, nb] = /^a:(\d+),b:(\d+)$/.exec(client.events[i]!.lastEventId)!.slice(1).map(Number);
      assert.equal(na! - pa! + (nb! - pb!), 1, `event ${i}`);
    }
    client.close();
  } finally {
    await server.close();
  }
});

test('a replay far larger than the slow-client bound is paced to the socket instead of dropping the client', {
  timeout: 60_000,
}, async () => {
  const server = await resumeServer({ maxBufferBytes: 64 * 1024, store: new MemoryEventStore({ maxEvents: 10_000 }) });
  try {
    const first = await openRaw(`${server.url}/big`);
    await until(() => first.text().includes('\n\n'));
    const openingId = parseAll(first.text())[0]!.id!;
    first.close();
    await until(() => server.eventStream.stats().streams === 0);
    const payload = 'z'.repeat(1000);
    // About 5 MB behind: 80 times the bound.
    await pipeline(
      Readable.from(Array.from({ length: 5000 }, (_, i) => ({ data: { i, payload } }))),
      server.eventStream.createChannelWritable('big'),
    );
    const resumed = new RecordingEventSource(`${server.url}/big?lastEventId=${openingId}`);
    await resumed.waitFor(5000, 'message', 30_000);
    assert.deepEqual(
      resumed.events.map((event) => indexOf(event.data)),
      range(0, 5000),
    );
    assert.equal(server.eventStream.stats().slowClientsDropped, 0);
    assert.equal(server.lastEventIds.length, 2, 'one replay, no reconnect');
    resumed.close();
  } finally {
    await server.close();
  }
});

test("the memory store frees one-off channels' events once expired, keeping only their numbering", async () => {
  const store = new MemoryEventStore({ maxAge: 200 });
  const eventStream = new EventStream({ store });
  try {
    const payload = 'x'.repeat(1000);
    for (let i = 0; i < 1000; i++) await eventStream.publishEvent(`once-${i}`, { data: payload });
    assert.ok(store.bytes > 1000 * 1000);
    await new Promise((resolve) => setTimeout(resolve, 250));
    await eventStream.publishEvent('later', { data: 0 });
    // A channel's numbering is a couple of hundred bytes; keeping it is what lets a client that has its last event resume without a reset.
    assert.equal(store.channelCount, 1001);
    assert.ok(store.bytes < 1001 * 256, `${store.bytes} bytes left`);
    assert.equal(store.readSince('once-0', store.head('once-0'), 10).gap, false);
    assert.equal(eventStream.stats().hubs, 0);
  } finally {
    await eventStream.close();
  }
});

test('the memory store keeps at most maxChannels channels, dropping the least recently used', async () => {
  const store = new MemoryEventStore({ maxChannels: 10 });
  for (let i = 0; i < 20; i++) store.append(`c${i}`, ['data: 1\n']);
  // c10 is used again, so c11 is now the oldest.
  store.append('c10', ['data: 2\n']);
  store.append('new', ['data: 3\n']);
  assert.equal(store.channelCount, 10);
  assert.equal(store.readSince('c10', 0, 10).events.length, 2);
  // c11's history is gone: a position in it is now a gap.
  const page = store.readSince('c11', 5, 10);
  assert.equal(page.events.length, 0);
  assert.equal(page.gap, true);
});
