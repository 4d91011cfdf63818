// subscribers(channel) across processes sharing a real Redis (one of them killed with SIGKILL) and
// through a real Pushpin; held streams in the diagnostics and stats.
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { test } from 'node:test';
import express from 'express';
import { EventStream } from '../../src/index.js';
import { RedisEventStore } from '../../src/redis.js';
import { forkAppProcess } from '../helpers/app-process.js';
import { requirePushpin, startPushpin } from '../helpers/pushpin.js';
import { redisForFile, requireRedis, uniqueKeyPrefix } from '../helpers/redis.js';
import { cleanups } from '../helpers/requirements.js';
import { listen } from '../helpers/server.js';
import { openRaw, until } from '../helpers/sse-client.js';

const SSE = { accept: 'text/event-stream' };
const sharedRedis = redisForFile();

test('subscribers() counts the streams of every process sharing the Redis store; a SIGKILLed process stops counting within 15 s', {
  timeout: 60_000,
}, async (t) => {
  if (!requireRedis(t)) return;
  const defer = cleanups(t);
  const storeOptions = { url: sharedRedis.url, keyPrefix: uniqueKeyPrefix('presence') };
  const store = new RedisEventStore(storeOptions);
  const eventStream = new EventStream({ store });
  const server = await listen((req, res) => void eventStream.run(req, res, (req.url ?? '/').slice('/events/'.length)));
  defer(async () => {
    await eventStream.close();
    await store.close();
    await server.close();
  });
  const b = await forkAppProcess();
  defer(() => b.close());
  await b.configure({ redisStore: storeOptions });

  const here = await openRaw(`${server.url}/events/room`, SSE);
  defer(() => here.close());
  const there = await Promise.all([1, 2, 3].map(() => openRaw(`${b.url}/events/room`, SSE)));
  defer(() => {
    for (const stream of there) stream.close();
  });
  await until(() => eventStream.stats().streams === 1);
  assert.equal((await b.counts()).streams, 3);
  // This process's own count is exact at once; the other process's arrives with its next report (every 5 s).
  assert.ok((await eventStream.subscribers('room')) >= 1);
  const reported = Date.now();
  while ((await eventStream.subscribers('room')) !== 4) {
    assert.ok(Date.now() - reported < 7000, 'the other process reported within 5 s (and a little)');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(await eventStream.subscribers('elsewhere'), 0);

  // stats() in a process fed by the store: the other process publishes, this one delivers.
  for (let i = 0; i < 3; i++) await b.publish('room', { data: i });
  await until(() => here.text().includes('data: 2\n'), 5000, 'the events to reach this process');
  const stats = eventStream.stats();
  assert.equal(stats.eventsPublished, 0, 'published by the other process');
  assert.equal(stats.eventsReceived, 3, 'received through the store');
  assert.equal(stats.deliveries, 3, 'three events to the one stream here');

  await b.kill('SIGKILL');
  const killed = Date.now();
  while ((await eventStream.subscribers('room')) !== 1) {
    assert.ok(Date.now() - killed < 16_000, 'a crashed process stops counting within its report TTL (15 s)');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
});

test('behind Pushpin: held streams count in subscribers() and stats() from their hold, and stop counting once the proxy stops checking on them', {
  timeout: 60_000,
}, async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  let eventStream: EventStream | null = null;
  const app = express();
  app.get('/events/:channel', (req, res, next) => void eventStream!('{channel}')(req, res, next));
  const origin = await listen(app);
  defer(() => origin.close());
  const pushpin = await startPushpin({ routes: origin.port });
  defer(() => pushpin.stop());
  eventStream = new EventStream({
    grip: { control_uri: pushpin.controlUri, verify_key: pushpin.sigKey },
    gripCheckInterval: 1000,
  });
  defer(() => eventStream!.close());
  const opened: unknown[] = [];
  const onOpen = (message: unknown): void => {
    opened.push(message);
  };
  diagnostics.subscribe('eventstream:stream:open', onOpen);
  defer(() => diagnostics.unsubscribe('eventstream:stream:open', onOpen));

  const clients = await Promise.all([1, 2].map(() => openRaw(`${pushpin.proxyUrl}/events/lobby`, SSE)));
  for (const client of clients) await until(() => client.text().includes('stream-open'));
  assert.equal(await eventStream.subscribers('lobby'), 2);
  assert.equal(eventStream.stats().heldStreams, 2);
  assert.equal(eventStream.stats().streams, 0, 'no direct stream: the proxy holds them');
  assert.deepEqual(opened[0], { channels: ['lobby'], transport: 'node', held: true });

  // Still there after several checks.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  assert.equal(await eventStream.subscribers('lobby'), 2);

  clients[0]!.close();
  const left = Date.now();
  while ((await eventStream.subscribers('lobby')) !== 1) {
    assert.ok(Date.now() - left < 9000, 'a held stream that left stops counting within the check interval plus 5 s');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  clients[1]!.close();
});
