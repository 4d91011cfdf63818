// Observability and limits for direct and web streams, over real loopback HTTP: lifecycle events on
// node:diagnostics_channel with the right close reasons, stats() that says what it counts,
// subscribers(), and maxStreams / maxStreamsPerClient as the `eventsource` client meets them.
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { EventSource } from 'eventsource';
import { EventStream, type EventStreamOptions } from '../../../src/index.js';
import { listen, type RunningServer } from '../../helpers/server.js';
import { get, openRaw, until } from '../../helpers/sse-client.js';

const SSE = { accept: 'text/event-stream' };

interface Recorded {
  open: Array<{ channels: readonly string[]; transport: string; held: boolean }>;
  close: Array<{ channels: readonly string[]; reason: string; durationMs: number; bytesSent: number }>;
  publish: Array<{ channel: string; events: ReadonlyArray<{ seq: number; body: string }> }>;
}

/** Subscribes to the library's diagnostics channels for one test. */
function record(t: { after: (fn: () => void) => void }): Recorded {
  const recorded: Recorded = { open: [], close: [], publish: [] };
  const subscriptions: Array<[string, (message: unknown) => void]> = [
    ['eventstream:stream:open', (message) => recorded.open.push(message as Recorded['open'][number])],
    ['eventstream:stream:close', (message) => recorded.close.push(message as Recorded['close'][number])],
    ['eventstream:publish', (message) => recorded.publish.push(message as Recorded['publish'][number])],
  ];
  for (const [name, listener] of subscriptions) diagnostics.subscribe(name, listener);
  t.after(() => {
    for (const [name, listener] of subscriptions) diagnostics.unsubscribe(name, listener);
  });
  return recorded;
}

async function serve(
  t: { after: (fn: () => Promise<void>) => void },
  options: EventStreamOptions = {},
): Promise<{ eventStream: EventStream; server: RunningServer }> {
  const eventStream = new EventStream(options);
  const server = await listen((req, res) => void eventStream.run(req, res, (req.url ?? '/').slice(1).split('+')));
  t.after(async () => {
    await eventStream.close();
    await server.close();
  });
  return { eventStream, server };
}

test('diagnostics: open and close of direct streams, with the reason each ended for, how long it lasted and what it sent', async (t) => {
  const recorded = record(t);
  const { eventStream, server } = await serve(t, {
    authorize: (_req, channels) => (channels[0] === 'brief' ? { until: Date.now() + 400 } : true),
  });
  const client = await openRaw(`${server.url}/leaving+other`, SSE);
  const revoked = await openRaw(`${server.url}/revoked`, SSE);
  const brief = await openRaw(`${server.url}/brief`, SSE);
  await until(() => recorded.open.length === 3);
  assert.deepEqual(recorded.open[0], { channels: ['leaving', 'other'], transport: 'node', held: false });

  await eventStream.publishEvent('leaving', { data: 'x'.repeat(100) });
  await until(() => client.text().includes('xxx'));
  client.close();
  await eventStream.disconnect('revoked', { reason: 'gone' });
  await until(() => recorded.close.length === 3, 5000, 'the three streams to close');
  const byChannel = new Map(recorded.close.map((message) => [message.channels[0], message]));
  assert.equal(byChannel.get('leaving')!.reason, 'client');
  assert.deepEqual(byChannel.get('leaving')!.channels, ['leaving', 'other']);
  assert.ok(byChannel.get('leaving')!.bytesSent > 100, 'the event and the opening were sent');
  assert.equal(byChannel.get('revoked')!.reason, 'disconnected');
  assert.equal(byChannel.get('brief')!.reason, 'expired');
  assert.ok(
    byChannel.get('brief')!.durationMs >= 300 && byChannel.get('brief')!.durationMs < 2000,
    `${byChannel.get('brief')!.durationMs} ms`,
  );
  revoked.close();
  brief.close();

  const last = await openRaw(`${server.url}/last`, SSE);
  await until(() => recorded.open.length === 4);
  await eventStream.close();
  await until(() => recorded.close.length === 4);
  assert.equal(recorded.close[3]!.reason, 'shutdown');
  last.close();
});

test('diagnostics: a client more than maxBufferBytes behind is closed as slow; web streams say transport web', async (t) => {
  const recorded = record(t);
  const { eventStream, server } = await serve(t, { maxBufferBytes: 64 * 1024 });
  // A raw client that sends its request and never reads.
  const socket = net.connect(server.port, '127.0.0.1');
  t.after(() => socket.destroy());
  socket.write('GET /flood HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
  socket.pause();
  await until(() => recorded.open.length === 1);
  // Enough that the socket buffers of the loopback (several MB) fill and the server's own queue grows.
  for (let i = 0; i < 4000 && recorded.close.length === 0; i++) {
    await eventStream.publishEvent('flood', { data: 'y'.repeat(30_000) });
    await new Promise((resolve) => setImmediate(resolve));
  }
  await until(() => recorded.close.length === 1, 10_000, 'the slow client to be dropped');
  assert.equal(recorded.close[0]!.reason, 'slow');
  assert.equal(eventStream.stats().slowClientsDropped, 1);

  const response = await eventStream.respond(new Request('http://x/', { headers: SSE }), 'web');
  assert.deepEqual(recorded.open[1], { channels: ['web'], transport: 'web', held: false });
  await response.body!.cancel();
  await until(() => recorded.close.length === 2);
  assert.equal(recorded.close[1]!.reason, 'client');
});

test('diagnostics: eventstream:publish carries the channel and the numbered events; nothing is published with no subscriber', async (t) => {
  const { eventStream } = await serve(t);
  let published = 0;
  const count = (): void => {
    published++;
  };
  await eventStream.publishEvent('quiet', { data: 1 });
  const recorded = record(t);
  diagnostics.subscribe('eventstream:publish', count);
  t.after(() => diagnostics.unsubscribe('eventstream:publish', count));
  await eventStream.publishEvent('news', { event: 'headline', data: 'hello' });
  assert.equal(recorded.publish.length, 1);
  const [message] = recorded.publish;
  assert.equal(message!.channel, 'news');
  assert.equal(message!.events.length, 1);
  assert.equal(message!.events[0]!.body, 'event: headline\ndata: "hello"\n');
  assert.ok(Number.isSafeInteger(message!.events[0]!.seq));
  assert.equal(published, 1, 'the publish before anyone subscribed was not seen');
});

test('stats() and subscribers(): direct streams, events received, deliveries per frame', async (t) => {
  const { eventStream, server } = await serve(t);
  const a = await openRaw(`${server.url}/room`, SSE);
  const b = await openRaw(`${server.url}/room+lobby`, SSE);
  t.after(() => {
    a.close();
    b.close();
  });
  await until(() => eventStream.stats().streams === 2);
  assert.equal(await eventStream.subscribers('room'), 2);
  assert.equal(await eventStream.subscribers('lobby'), 1);
  assert.equal(await eventStream.subscribers('nobody'), 0);
  for (let i = 0; i < 5; i++) await eventStream.publishEvent('room', { data: i });
  await until(() => b.text().split('\ndata: ').length >= 6);
  const stats = eventStream.stats();
  assert.equal(stats.eventsPublished, 5);
  assert.equal(stats.eventsReceived, 5);
  assert.equal(stats.deliveries, 10, '5 events to 2 streams');
  assert.equal(stats.heldStreams, 0);
  assert.deepEqual(stats.channels, { room: 2, lobby: 1 });
  await assert.rejects(() => eventStream.subscribers('bad name'), { code: 'ERR_EVENTSTREAM_INVALID_CHANNEL' });
});

test('maxStreams: past it a stream is told to come back later (200, retry:), and EventSource gets in once a place is free', async (t) => {
  const { eventStream, server } = await serve(t, { maxStreams: 1, clientRetry: 50 });
  const first = await openRaw(`${server.url}/full`, SSE);
  await until(() => eventStream.stats().streams === 1);
  const turnedAway = await get(`${server.url}/full`, SSE);
  assert.equal(turnedAway.status, 200);
  assert.match(turnedAway.body, /^retry: 50\n/m);
  assert.match(turnedAway.body, /maxStreams/);
  assert.equal(turnedAway.headers.connection, 'close');

  const second = new EventSource(`${server.url}/full`);
  t.after(() => second.close());
  let opened = false;
  second.addEventListener('stream-open', () => {
    opened = true;
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(opened, false, 'still turned away while the first holds the only place');
  assert.notEqual(second.readyState, EventSource.CLOSED, 'EventSource keeps trying');
  first.close();
  await until(() => opened, 5000, 'the second client to get in');
  assert.equal(eventStream.stats().streams, 1);
});

test('maxStreamsPerClient: the second stream of one client is a 429 with Retry-After; clientKey decides who a client is', async (t) => {
  const { eventStream, server } = await serve(t, {
    maxStreamsPerClient: 1,
    clientKey: (request) => ((request as IncomingMessage).headers?.['x-user'] as string | undefined) ?? null,
  });
  const alice = await openRaw(`${server.url}/a`, { ...SSE, 'x-user': 'alice' });
  t.after(() => alice.close());
  await until(() => eventStream.stats().streams === 1);
  const again = await get(`${server.url}/b`, { ...SSE, 'x-user': 'alice' });
  assert.equal(again.status, 429);
  assert.equal(again.headers['retry-after'], '5');
  assert.match(again.body, /Too Many Requests/);
  const bob = await openRaw(`${server.url}/a`, { ...SSE, 'x-user': 'bob' });
  assert.equal(bob.status, 200);
  bob.close();
  const anonymous = await openRaw(`${server.url}/a`, SSE);
  assert.equal(anonymous.status, 200, 'a null key is not counted');
  anonymous.close();

  // The real client: it gives up on a 429 (any non-200), as it should.
  const source = new EventSource(`${server.url}/c`, {
    fetch: (url, init) => fetch(url, { ...init, headers: { ...init?.headers, 'x-user': 'alice' } }),
  });
  t.after(() => source.close());
  await until(() => source.readyState === EventSource.CLOSED, 5000, 'EventSource to give up');

  alice.close();
  await until(() => eventStream.stats().streams === 0);
  const freed = await openRaw(`${server.url}/b`, { ...SSE, 'x-user': 'alice' });
  assert.equal(freed.status, 200, 'the place is given back when the stream closes');
  freed.close();
});

test('maxStreamsPerClient by remote address by default; web requests need a clientKey', async (t) => {
  const { eventStream, server } = await serve(t, { maxStreamsPerClient: 1 });
  const first = await openRaw(`${server.url}/x`, SSE);
  t.after(() => first.close());
  await until(() => eventStream.stats().streams === 1);
  assert.equal((await get(`${server.url}/y`, SSE)).status, 429);
  const web1 = await eventStream.respond(new Request('http://x/', { headers: SSE }), 'w');
  const web2 = await eventStream.respond(new Request('http://x/', { headers: SSE }), 'w');
  assert.equal(web1.status, 200);
  assert.equal(web2.status, 200, 'a web Request has no remote address: not counted by default');
  await web1.body!.cancel();
  await web2.body!.cancel();

  const keyed = new EventStream({ maxStreamsPerClient: 1, clientKey: (request) => (request as Request).headers.get('x-user') });
  t.after(() => keyed.close());
  const kept = await keyed.respond(new Request('http://x/', { headers: { ...SSE, 'x-user': 'carol' } }), 'w');
  const refused = await keyed.respond(new Request('http://x/', { headers: { ...SSE, 'x-user': 'carol' } }), 'w');
  assert.equal(kept.status, 200);
  assert.equal(refused.status, 429);
  assert.equal(refused.headers.get('retry-after'), '5');
  await kept.body!.cancel();
});
