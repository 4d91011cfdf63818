// The memory store's bounds (channels, age, bytes) hold without ever telling a client that missed nothing to reset.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { EventSourceMessage } from 'eventsource-parser';
import { EventStream, MemoryEventStore } from '../../src/index.js';
import { cleanups } from '../helpers/requirements.js';
import { listen, type RunningServer } from '../helpers/server.js';
import { openRaw, parseAll, until } from '../helpers/sse-client.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A server streaming `/<channel>` from the given EventStream. */
async function serve(eventStream: EventStream): Promise<RunningServer> {
  return listen((req, res) => {
    const channel = new URL(req.url ?? '/', 'http://x').pathname.slice(1);
    void eventStream.run(req, res, channel);
  });
}

/** Opens a stream and waits for its opening event; returns its reader and the id it was told. */
async function openStream(url: string, headers: Record<string, string> = {}) {
  const stream = await openRaw(url, headers);
  assert.equal(stream.status, 200);
  await until(() => parseAll(stream.text()).length > 0, 5000, `opening of ${url}`);
  return { ...stream, events: () => parseAll(stream.text()) };
}

/** One subscription that opens, is told its position, and goes away. */
function subscribeOnce(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream' } }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', (error) => (req.destroyed ? resolve() : reject(error)));
  });
}

const dataOf = (events: EventSourceMessage[]): unknown[] =>
  events.filter((event) => event.event === undefined).map((event) => JSON.parse(event.data) as unknown);
const resets = (events: EventSourceMessage[]): EventSourceMessage[] => events.filter((event) => event.event === 'stream-reset');

test('subscribing alone creates no store record: 1,000 one-off room subscriptions leave a busy channel its history and its subscriber', {
  timeout: 60_000,
}, async (t) => {
  const defer = cleanups(t);
  const store = new MemoryEventStore({ maxChannels: 1000 });
  const eventStream = new EventStream({ store });
  defer(() => eventStream.close());
  const server = await serve(eventStream);
  defer(() => server.close());

  const live = await openStream(`${server.url}/busy`);
  defer(() => live.close());
  for (let i = 0; i < 10; i++) await eventStream.publishEvent('busy', { data: `before ${i}` });
  await until(() => dataOf(live.events()).length === 10);
  const resumeFrom = live.events().at(-1)!.id!;

  for (let i = 0; i < 1000; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, j) => subscribeOnce(`${server.url}/room-${i + j}`)));
  }
  await until(() => eventStream.stats().streams === 1, 5000, 'the one-off subscriptions to go away');

  for (let i = 0; i < 5; i++) await eventStream.publishEvent('busy', { data: `after ${i}` });
  await until(() => dataOf(live.events()).length === 15, 5000, 'the connected subscriber to get every event');
  assert.deepEqual(resets(live.events()), [], 'the connected subscriber missed nothing: no reset');

  const resumed = await openStream(`${server.url}/busy`, { 'last-event-id': resumeFrom });
  defer(() => resumed.close());
  await until(() => dataOf(resumed.events()).length === 5, 5000, 'the replay');
  assert.deepEqual(
    dataOf(resumed.events()),
    Array.from({ length: 5 }, (_, i) => `after ${i}`),
  );
  assert.deepEqual(resets(resumed.events()), []);
  assert.equal(store.channelCount, 1, 'only the channel published to has a record');
});

test('a quiet channel outliving maxAge keeps its numbering: a connected client and a resuming one that missed nothing get no reset', {
  timeout: 30_000,
}, async (t) => {
  const defer = cleanups(t);
  const store = new MemoryEventStore({ maxAge: 1000 });
  const eventStream = new EventStream({ store });
  defer(() => eventStream.close());
  const server = await serve(eventStream);
  defer(() => server.close());

  const live = await openStream(`${server.url}/quiet`);
  defer(() => live.close());
  await eventStream.publishEvent('quiet', { data: 'one' });
  await until(() => dataOf(live.events()).length === 1);
  const lastId = live.events().at(-1)!.id!;

  // Quiet for longer than maxAge; another channel's publishes run the store's housekeeping meanwhile.
  await sleep(1300);
  await eventStream.publishEvent('elsewhere', { data: 'x' });
  const resumed = await openStream(`${server.url}/quiet`, { 'last-event-id': lastId });
  defer(() => resumed.close());

  await eventStream.publishEvent('quiet', { data: 'two' });
  for (const [label, stream] of [
    ['connected', live],
    ['resumed', resumed],
  ] as const) {
    await until(() => dataOf(stream.events()).includes('two'), 5000, label);
    assert.deepEqual(resets(stream.events()), [], `${label}: a client that missed nothing gets no reset`);
  }
  const [, seq] = /^quiet:(\d+)$/.exec(lastId)!;
  assert.equal(live.events().at(-1)!.id, `quiet:${Number(seq) + 1}`, 'numbering continues where it was');
  assert.equal(resumed.events().at(-1)!.id, `quiet:${Number(seq) + 1}`);

  // A client that did miss events, now expired, is told so.
  await sleep(1300);
  const late = await openStream(`${server.url}/quiet`, { 'last-event-id': `quiet:${Number(seq) - 1}` });
  defer(() => late.close());
  await until(() => resets(late.events()).length === 1, 5000, 'a reset for the client that missed an expired event');
  assert.deepEqual(dataOf(late.events()), []);
});

test('a channel never published to has no record, and its first event follows the position its subscriber was told', async (t) => {
  const defer = cleanups(t);
  const store = new MemoryEventStore();
  const eventStream = new EventStream({ store });
  defer(() => eventStream.close());
  const server = await serve(eventStream);
  defer(() => server.close());

  const early = await openStream(`${server.url}/fresh`);
  defer(() => early.close());
  const [, told] = /^fresh:(\d+)$/.exec(early.events()[0]!.id!)!;
  assert.equal(store.channelCount, 0);
  await sleep(20); // the clock moves on before the first publish
  const later = await openStream(`${server.url}/fresh`);
  defer(() => later.close());
  assert.equal(later.events()[0]!.id, `fresh:${told}`, 'every subscriber of an unpublished channel is told the same point');
  early.close();

  await eventStream.publishEvent('fresh', { data: 'first' });
  await until(() => dataOf(later.events()).length === 1);
  assert.equal(later.events().at(-1)!.id, `fresh:${Number(told) + 1}`);
  const resumed = await openStream(`${server.url}/fresh`, { 'last-event-id': `fresh:${told}` });
  defer(() => resumed.close());
  await until(() => dataOf(resumed.events()).length === 1);
  assert.deepEqual(resets([...later.events(), ...resumed.events()]), []);
});

test('ids are never reused by a new store (a restarted process): its numbering starts above the old one', () => {
  const before = new MemoryEventStore();
  const first = before.append('ch', ['data: old 1\n', 'data: old 2\n']);
  const oldHead = before.head('ch');
  const after = new MemoryEventStore();
  assert.ok(after.head('ch') >= oldHead, `new head ${after.head('ch')} is not below the old one ${oldHead}`);
  assert.ok(after.append('ch', ['data: new\n']) > oldHead);
  // A position from the old store is recognised as lost history.
  assert.equal(after.readSince('ch', first, 10).gap, true);
});

test('maxBytes bounds the history: the oldest events go first, across channels, and the heap stays within the bound', {
  timeout: 60_000,
}, () => {
  assert.equal(new MemoryEventStore().maxBytes, 64 * 1024 * 1024, 'the documented default');
  const maxBytes = 16 * 1024 * 1024;
  const store = new MemoryEventStore({ maxBytes });
  gc();
  const baseline = process.memoryUsage().heapUsed;

  const quiet = store.append('quiet', ['data: published first\n']);
  const firsts: number[] = [];
  const size = 10 * 1024;
  // 100 channels x 100 events x 10 KB = 100 MB, round-robin, each body a distinct string.
  for (let round = 0; round < 100; round++) {
    for (let c = 0; c < 100; c++) {
      const body = `data: ${Buffer.alloc(size, 97 + (round % 26)).toString('latin1')}\n`;
      const seq = store.append(`room-${c}`, [body]);
      if (round === 0) firsts.push(seq);
    }
  }
  gc();
  const grown = process.memoryUsage().heapUsed - baseline;
  assert.ok(
    grown < maxBytes + 4 * 1024 * 1024,
    `the heap grew by ${(grown / 1048576).toFixed(1)} MiB for a ${maxBytes / 1048576} MiB bound`,
  );
  assert.ok(store.bytes <= maxBytes, `${store.bytes} bytes accounted`);

  // The oldest went first: the quiet channel's single event (published first) is gone, although that channel was never trimmed by count.
  assert.equal(store.readSince('quiet', quiet - 1, 10).gap, true);
  assert.equal(store.head('quiet'), quiet, 'its numbering is kept');
  // Each room keeps the same newest part of its history (round-robin: equal shares), with a gap before it.
  const kept = firsts.map((first, c) => store.readSince(`room-${c}`, first - 1, 1000));
  const counts = kept.map((page) => page.events.length);
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `kept per room: ${counts.join(',')}`);
  assert.ok(counts[0]! > 5 && counts[0]! < 100, `kept per room: ${counts[0]}`);
  for (const [c, page] of kept.entries()) {
    assert.equal(page.gap, true);
    assert.equal(page.events.at(-1)!.seq, firsts[c]! + 99, 'the newest event is kept');
  }
});

test('bad maxBytes is refused with InvalidOptionError', () => {
  for (const maxBytes of [0, -1, 1.5, '1000']) {
    assert.throws(() => new MemoryEventStore({ maxBytes: maxBytes as number }), { name: 'InvalidOptionError' }, String(maxBytes));
  }
});
