import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import express from 'express';
import { ChannelPublisher, EventStream, InvalidChannelError, InvalidEventError } from '../../src/index.js';
import { cleanups } from '../helpers/requirements.js';
import { listen } from '../helpers/server.js';
import { RecordingEventSource, until } from '../helpers/sse-client.js';

async function setup(channel: string) {
  const eventStream = new EventStream();
  const app = express();
  app.get('/events/:id', eventStream('{id}'));
  const server = await listen(app);
  const client = new RecordingEventSource(`${server.url}/events/${channel}`);
  await client.opened;
  return {
    eventStream,
    client,
    async teardown() {
      client.close();
      await server.close();
      await eventStream.close();
    },
  };
}

test('getChannelPublisher: publishEvent in order, as in the README', async () => {
  const { eventStream, client, teardown } = await setup('test');
  const publisher = eventStream.getChannelPublisher('test');
  assert.ok(publisher instanceof ChannelPublisher);
  assert.equal(publisher.channel, 'test');
  await publisher.publishEvent({ event: 'message', data: { name: 'Alice' } });
  await publisher.publishEvent({ event: 'message', data: { name: 'Bob' } });
  await client.waitFor(2);
  assert.deepEqual(
    client.events.map((e) => JSON.parse(e.data).name),
    ['Alice', 'Bob'],
  );
  await teardown();
});

test('createChannelWritable: write and end, as in the README, and publisher.createWritable()', async () => {
  const { eventStream, client, teardown } = await setup('test');
  const writable = eventStream.createChannelWritable('test');
  writable.write({ event: 'message', data: { baz: ['hi', 'ho', 'hello'] } });
  writable.end();
  const second = eventStream.getChannelPublisher('test').createWritable();
  second.end({ event: 'message', data: 'second' });
  await client.waitFor(2);
  assert.deepEqual(JSON.parse(client.events[0]!.data), { baz: ['hi', 'ho', 'hello'] });
  assert.equal(JSON.parse(client.events[1]!.data), 'second');
  await teardown();
});

test('Readable.pipe(writable): 10,000 events arrive complete and in order', async () => {
  const { eventStream, client, teardown } = await setup('bulk');
  const events = Array.from({ length: 10_000 }, (_, i) => ({ event: 'message', data: { i } }));
  await pipeline(Readable.from(events), eventStream.createChannelWritable('bulk'));
  await client.waitFor(10_000, 'message', 20_000);
  assert.equal(client.events.length, 10_000);
  for (const [i, event] of client.events.entries()) assert.equal(JSON.parse(event.data).i, i);
  await teardown();
});

test('unawaited publishEvent calls keep their order', async () => {
  const { eventStream, client, teardown } = await setup('order');
  const pending = Array.from({ length: 500 }, (_, i) => eventStream.publishEvent('order', { data: i }));
  await Promise.all(pending);
  await client.waitFor(500);
  assert.deepEqual(
    client.events.map((e) => JSON.parse(e.data)),
    Array.from({ length: 500 }, (_, i) => i),
  );
  await teardown();
});

test("the writable has real backpressure: while a subscriber's socket is backed up, write() returns false and drain follows", async (t) => {
  const { eventStream, client, teardown } = await setup('bp');
  cleanups(t)(teardown);
  const writable = eventStream.createChannelWritable('bp');
  const TOTAL = 1100;

  // Nothing is backed up: the hub takes a small burst as it is written, so nothing waits.
  const small = Array.from({ length: 100 }, (_, i) => writable.write({ data: i }));
  assert.ok(small.every(Boolean), 'a small burst to healthy subscribers is taken at once');
  await client.waitFor(100);

  // 16 MiB written in one go backs up the client's socket (loopback buffers alone take a few MiB): the writable must hold the rest back.
  const padding = 'x'.repeat(16 * 1024);
  let refused = 0;
  for (let i = 100; i < TOTAL; i++) if (!writable.write({ data: { i, padding } })) refused++;
  assert.ok(refused > 0, 'write() returns false while a subscriber is backed up');
  await new Promise((resolve) => writable.once('drain', resolve));
  await new Promise<void>((resolve) => writable.end(resolve));
  await client.waitFor(TOTAL);
  const received = client.events.map((e) => JSON.parse(e.data) as number | { i: number; padding: string });
  assert.deepEqual(
    received.map((value) => (typeof value === 'number' ? value : value.i)),
    Array.from({ length: TOTAL }, (_, i) => i),
  );
  assert.ok(received.slice(100).every((value) => typeof value === 'object' && value.padding === padding));
  assert.equal(eventStream.stats().slowClientsDropped, 0, 'pacing kept the client within its buffer bound');
});

test('bad publish arguments are TypeErrors and send nothing', async () => {
  const { eventStream, client, teardown } = await setup('strict');
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  await assert.rejects(eventStream.publishEvent('strict', { data: undefined }), InvalidEventError);
  await assert.rejects(eventStream.publishEvent('strict', { data: circular }), TypeError);
  await assert.rejects(eventStream.publishEvent('strict', { data: 1n }), TypeError);
  await assert.rejects(eventStream.publishEvent('strict', { event: 'x\ndata: injected', data: 1 }), TypeError);
  await assert.rejects(eventStream.publishEvent('strict', { id: 'a\rb', data: 1 } as never), TypeError);
  await assert.rejects(eventStream.publishEvent('strict', null as never), TypeError);
  await assert.rejects(eventStream.publishEvent('bad,channel', { data: 1 }), InvalidChannelError);
  await assert.rejects(eventStream.publishEvent('', { data: 1 }), InvalidChannelError);
  assert.throws(() => eventStream.createChannelWritable('a b'), InvalidChannelError);
  assert.throws(() => eventStream.getChannelPublisher('a;b'), InvalidChannelError);

  // A bad chunk errors the writable per stream rules, with the same TypeError; nothing of it is sent.
  const writable = eventStream.createChannelWritable('strict');
  const failed = new Promise<Error>((resolve) => writable.on('error', resolve));
  writable.write({ data: undefined });
  const error = await failed;
  assert.ok(error instanceof InvalidEventError);

  await eventStream.publishEvent('strict', { data: 'after' });
  await client.waitFor(1);
  assert.deepEqual(
    client.events.map((e) => JSON.parse(e.data)),
    ['after'],
  );
  await teardown();
});

test('100,000 one-off channels leave no hub behind', async () => {
  const eventStream = new EventStream();
  const count = 100_000;
  for (let start = 0; start < count; start += 5_000) {
    await Promise.all(Array.from({ length: 5_000 }, (_, i) => eventStream.publishEvent(`one-off-${start + i}`, { data: i })));
  }
  const stats = eventStream.stats();
  assert.equal(stats.hubs, 0);
  assert.equal(stats.eventsPublished, count);
  const writable = eventStream.createChannelWritable('held');
  assert.equal(eventStream.stats().hubs, 1);
  writable.end();
  await new Promise((resolve) => writable.on('finish', resolve));
  await until(() => eventStream.stats().hubs === 0);
  await eventStream.close();
});
