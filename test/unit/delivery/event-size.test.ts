/**
 * An event larger than a client's buffer is no poison pill: it is refused at
 * publish (InvalidEventError naming maxEventBytes), never stored nor sent,
 * and every event up to the limit reaches clients that read, over real
 * sockets, live, replayed to a resuming client, on single- and
 * multi-channel streams.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventStream, type EventStreamOptions, InvalidEventError } from '../../../src/index.js';
import { cleanups } from '../../helpers/requirements.js';
import { listen } from '../../helpers/server.js';
import { openRaw, RecordingEventSource, until } from '../../helpers/sse-client.js';

const SSE = { accept: 'text/event-stream' };
const OPENING_ID = /^event: stream-open\ndata: \nid: ([^\n]+)\n/;

/** A string whose event (`data: "<it>"\n`) takes exactly `bytes` bytes, made of `unit` (1 or 2 UTF-8 bytes) padded with x. */
function dataOfEventSize(bytes: number, unit: 'x' | 'é'): string {
  const room = bytes - 'data: ""\n'.length;
  const width = Buffer.byteLength(unit);
  return unit.repeat(Math.floor(room / width)) + 'x'.repeat(room % width);
}

function isSizeRefusal(limit: number): (error: unknown) => boolean {
  return (error) =>
    error instanceof InvalidEventError &&
    error.code === 'ERR_EVENTSTREAM_INVALID_EVENT' &&
    error.message.includes(`maxEventBytes (${limit})`);
}

async function setup(t: Parameters<typeof cleanups>[0], options: EventStreamOptions) {
  const defer = cleanups(t);
  const eventStream = new EventStream(options);
  defer(() => eventStream.close());
  const server = await listen((req, res) => {
    const channels = new URL(req.url ?? '/', 'http://x').searchParams.getAll('c');
    void eventStream.run(req, res, channels);
  });
  defer(() => server.close());
  const open = async (channels: string[], headers: Record<string, string> = {}) => {
    const stream = await openRaw(`${server.url}/?${channels.map((c) => `c=${c}`).join('&')}`, { ...SSE, ...headers });
    defer(() => stream.close());
    assert.equal(stream.status, 200);
    await until(() => stream.text().startsWith('event: stream-open\n'), 5000, 'the opening event');
    return stream;
  };
  return { eventStream, server, open, defer };
}

test('an event over maxEventBytes is refused at publish, neither stored nor sent: the subscriber stays, no reconnect loop, the next event arrives', async (t) => {
  const { eventStream, server, open, defer } = await setup(t, {});
  const limit = 512 * 1024;
  const client = new RecordingEventSource(`${server.url}/?c=big`);
  defer(() => client.close());
  let opens = 0;
  client.source.addEventListener('stream-open', () => opens++);
  await client.opened;
  const raw = await open(['big']);
  const openingId = OPENING_ID.exec(raw.text())![1]!;

  // What the issue published: 2 MB with the default 1 MiB maxBufferBytes.
  await assert.rejects(eventStream.publishEvent('big', { data: 'x'.repeat(2_000_000) }), isSizeRefusal(limit));
  await assert.rejects(eventStream.publishEvent('big', { data: dataOfEventSize(limit + 1, 'x') }), isSizeRefusal(limit));
  await eventStream.publishEvent('big', { data: 'small' });
  await client.waitFor(1);
  assert.deepEqual(
    client.events.map((event) => event.data),
    ['"small"'],
  );
  await until(() => raw.text().includes('data: "small"'), 5000, 'the small event on the raw stream');
  assert.doesNotMatch(raw.text(), /xxxx/, 'nothing of the refused events was sent');
  assert.equal(opens, 1, 'the client never reconnected');
  assert.equal(eventStream.stats().slowClientsDropped, 0);
  assert.equal(eventStream.stats().eventsPublished, 1, 'refused events are not counted as published');

  // Nor stored: a client resuming from before them is replayed the small event only.
  const resumed = await openRaw(`${server.url}/?c=big`, { ...SSE, 'last-event-id': openingId });
  defer(() => resumed.close());
  await until(() => resumed.text().includes('data: "small"'), 5000, 'the replayed small event');
  assert.doesNotMatch(resumed.text(), /xxxx|stream-reset/);
});

/** 15 more channels of 120 characters: an id naming 16 positions is over 2 KB. */
const LONG_NAMES = Array.from({ length: 15 }, (_, i) => `${String(i).padStart(2, '0')}-${'n'.repeat(117)}`);

for (const [label, options, limit, others] of [
  ['default bounds (maxEventBytes = maxBufferBytes / 2)', {}, 512 * 1024, ['other-channel']],
  [
    'a 4 KiB maxBufferBytes, and 16 channels whose id makes an event plus id larger than the whole buffer',
    { maxBufferBytes: 4096 },
    2048,
    LONG_NAMES,
  ],
] as const) {
  test(`${label}: events of exactly the limit reach reading clients, live and replayed, single- and multi-channel; one byte more is refused`, async (t) => {
    const { eventStream, open } = await setup(t, options);
    const single = await open(['c']);
    const multi = await open(['c', ...others]);
    const singleStart = OPENING_ID.exec(single.text())![1]!;
    const multiStart = OPENING_ID.exec(multi.text())![1]!;

    const events = [dataOfEventSize(limit, 'x'), dataOfEventSize(limit, 'é')];
    for (const data of events) assert.equal(Buffer.byteLength(`data: ${JSON.stringify(data)}\n`), limit);
    for (const data of events) await eventStream.publishEvent('c', { data });
    await assert.rejects(eventStream.publishEvent('c', { data: dataOfEventSize(limit + 1, 'x') }), isSizeRefusal(limit));
    await assert.rejects(eventStream.publishEvent('c', { data: dataOfEventSize(limit + 1, 'é') }), isSizeRefusal(limit));

    const resumedSingle = await open(['c'], { 'last-event-id': singleStart });
    const resumedMulti = await open(['c', ...others], { 'last-event-id': multiStart });

    for (const [name, stream] of [
      ['live single-channel', single],
      ['live multi-channel', multi],
      ['replayed single-channel', resumedSingle],
      ['replayed multi-channel', resumedMulti],
    ] as const) {
      const second = `data: ${JSON.stringify(events[1])}\nid: `;
      await until(
        () => stream.text().includes(second) && stream.text().endsWith('\n\n'),
        10_000,
        `both events on the ${name} stream`,
      );
      const text = stream.text();
      assert.ok(text.includes(`data: ${JSON.stringify(events[0])}\nid: `), `${name}: the ASCII event whole`);
      assert.equal(stream.res.complete, false, `${name}: still open`);
    }
    assert.equal(eventStream.stats().slowClientsDropped, 0);
    assert.equal(eventStream.stats().streams, 4);
  });
}

test('a burst of events at the limit, published without waiting, all reach a reading client', async (t) => {
  const { eventStream, open } = await setup(t, {});
  const stream = await open(['burst']);
  const limit = 512 * 1024;
  const events = Array.from({ length: 6 }, (_, i) => `${i}`.repeat(1) + dataOfEventSize(limit, 'x').slice(1));
  await Promise.all(events.map((data) => eventStream.publishEvent('burst', { data })));
  await until(() => stream.text().includes(`data: ${JSON.stringify(events[5])}\nid: `), 10_000, 'the last event of the burst');
  for (const data of events) assert.ok(stream.text().includes(`data: ${JSON.stringify(data)}\nid: `));
  assert.equal(eventStream.stats().slowClientsDropped, 0);
});

test('a chunk over maxEventBytes errors a channel writable (stream rules) and nothing of it is sent', async (t) => {
  const { eventStream, open } = await setup(t, { maxBufferBytes: 64 * 1024 });
  const stream = await open(['w']);
  const writable = eventStream.createChannelWritable('w');
  const failed = new Promise<unknown>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the writable did not error')), 5000);
    writable.once('error', (error) => {
      clearTimeout(timer);
      resolve(error);
    });
  });
  writable.write({ data: 'before' });
  writable.write({ data: dataOfEventSize(32 * 1024 + 1, 'x') });
  assert.ok(isSizeRefusal(32 * 1024)(await failed));
  await eventStream.publishEvent('w', { data: 'after' });
  await until(() => stream.text().includes('data: "after"'), 5000, 'the event after');
  assert.match(stream.text(), /data: "before"/);
  assert.doesNotMatch(stream.text(), /xxxx/);
  assert.equal(eventStream.stats().slowClientsDropped, 0);
});
