/**
 * GRIP against a real Pushpin: the app runs on real HTTP servers on
 * 127.0.0.1, clients are real `eventsource` clients connecting through
 * Pushpin's proxy port, and publishes go to Pushpin's control API.
 * Requires the `pushpin` binary (see test/helpers/pushpin.ts).
 */
import assert from 'node:assert/strict';
import type { RequestListener } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Readable, type Writable } from 'node:stream';
import { after, test } from 'node:test';
import { Publisher } from '@fanoutio/grip';
import express from 'express';
import { EventStream, GripPublishError, type ServerSentEvent } from '../../src/index.js';
import { forkAppProcess } from '../helpers/app-process.js';
import { gripSig } from '../helpers/grip-sig.js';
import { type RunningPushpin, requirePushpin, startPushpin } from '../helpers/pushpin.js';
import { cleanups } from '../helpers/requirements.js';
import { controlForwarder, listen, type RunningServer } from '../helpers/server.js';
import { get, openRaw, RecordingEventSource, until } from '../helpers/sse-client.js';

/** The opening event: its id gives the client its position in each channel. */
const OPENING = /^event: stream-open\ndata: \nid: ([^\n]+)\n\n/;
const SSE = { accept: 'text/event-stream' };
const BIG = 10_000;

// ---------------------------------------------------------------------------
// Shared fixtures

/** Runs registered cleanups after the test, last registered first, even when it or one of them fails. */

interface SharedPushpin {
  pushpin: RunningPushpin;
  /** The app server Pushpin routes every request to. */
  origin: RunningServer;
  /** Sets the request handler of `origin` (each test serves its own EventStream). */
  serve(handler: RequestListener): void;
}

/** One Pushpin for most tests; starting one costs about a second, so it is started once, on first use. */
let shared: Promise<SharedPushpin> | null = null;
function sharedPushpin(): Promise<SharedPushpin> {
  shared ??= (async () => {
    let handler: RequestListener = (_req, res) => {
      res.writeHead(404).end();
    };
    const origin = await listen((req, res) => handler(req, res));
    try {
      const pushpin = await startPushpin({ routes: origin.port });
      return {
        pushpin,
        origin,
        serve: (next) => {
          handler = next;
        },
      };
    } catch (error) {
      await origin.close();
      throw error;
    }
  })();
  return shared;
}

after(async () => {
  if (shared === null) return;
  const { pushpin, origin } = await shared.catch(() => ({ pushpin: null, origin: null }));
  await pushpin?.stop();
  await origin?.close();
});

/** An Express app serving `/events/:id` from `eventStream`. */
function eventsApp(eventStream: EventStream): express.Express {
  const app = express();
  app.get('/events/:id', eventStream('{id}'));
  return app;
}

function gripConfig(pushpin: RunningPushpin): { control_uri: string; verify_key: string } {
  return { control_uri: pushpin.controlUri, verify_key: pushpin.sigKey };
}

function numbered(count: number): ServerSentEvent[] {
  return Array.from({ length: count }, (_, i) => ({ data: i }));
}

function indices(count: number): string[] {
  return Array.from({ length: count }, (_, i) => String(i));
}

/** `Readable.from(events).pipe(writable)`, resolved on 'finish'. */
function pipeAll(events: ServerSentEvent[], writable: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    writable.once('error', reject);
    Readable.from(events).pipe(writable).once('finish', resolve);
  });
}

/** A RecordingEventSource closed when the test ends. */
function open(defer: ReturnType<typeof cleanups>, url: string, types?: string[]): RecordingEventSource {
  const client = new RecordingEventSource(url, types);
  defer(() => client.close());
  return client;
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Collects unhandled rejections while a test runs. */
function watchUnhandledRejections(defer: ReturnType<typeof cleanups>): unknown[] {
  const seen: unknown[] = [];
  const listener = (reason: unknown): void => {
    seen.push(reason);
  };
  process.on('unhandledRejection', listener);
  defer(() => process.off('unhandledRejection', listener));
  return seen;
}

/** Lets pending promise jobs and I/O callbacks run, so a stray rejection would have surfaced. */
async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 100));
}

// ---------------------------------------------------------------------------
// Delivery through Pushpin

test('through Pushpin: publishEvent, a ChannelPublisher and a piped Readable of 10,000 events arrive complete and in order', {
  timeout: 90_000,
}, async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  const { pushpin, serve } = await sharedPushpin();
  const eventStream = new EventStream({ grip: gripConfig(pushpin) });
  defer(() => eventStream.close());
  serve(eventsApp(eventStream));

  const client = open(defer, `${pushpin.proxyUrl}/events/flow`, ['single', 'bound', 'message']);
  await client.opened;
  // Pushpin holds the stream; this process serves none directly.
  assert.equal(eventStream.stats().streams, 0);

  await eventStream.publishEvent('flow', { event: 'single', data: { via: 'publishEvent' } });
  await eventStream.getChannelPublisher('flow').publishEvent({ event: 'bound', data: { via: 'ChannelPublisher' } });
  await pipeAll(numbered(BIG), eventStream.createChannelWritable('flow'));
  await client.waitFor(BIG, 'message', 60_000);

  assert.deepEqual(
    client.events.slice(0, 2).map(({ type, data }) => ({ type, data })),
    [
      { type: 'single', data: '{"via":"publishEvent"}' },
      { type: 'bound', data: '{"via":"ChannelPublisher"}' },
    ],
  );
  assert.equal(client.events.length, BIG + 2);
  // Every event carries its channel's next sequence number.
  const first = Number(/^flow:(\d+)$/.exec(client.events[0]!.lastEventId)![1]);
  assert.deepEqual(
    client.events.map((event) => event.lastEventId),
    client.events.map((_, i) => `flow:${first + i}`),
  );
  assert.deepEqual(
    client.of('message').map((event) => event.data),
    indices(BIG),
  );
});

test('a request carrying a valid Grip-Sig gets hold instructions and the opening bytes, and the response ends', async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  const { pushpin, origin, serve } = await sharedPushpin();
  const eventStream = new EventStream({ grip: gripConfig(pushpin) });
  const quiet = new EventStream({ grip: gripConfig(pushpin), keepAliveInterval: 0 });
  defer(() => eventStream.close());
  defer(() => quiet.close());
  const app = express();
  app.get('/pair', eventStream(['alpha', 'beta']));
  app.get('/quiet', quiet('alpha'));
  serve(app);

  // Straight to the app, as Pushpin would forward it; `get` resolves only once the response has ended.
  const held = await get(`${origin.url}/pair`, { ...SSE, 'grip-sig': gripSig(pushpin.sigKey) });
  assert.equal(held.status, 200);
  assert.equal(held.headers['grip-hold'], 'stream');
  assert.equal(held.headers['grip-channel'], 'events-alpha, events-beta, events-alpha#close, events-beta#close');
  assert.equal(held.headers['grip-keep-alive'], ': keep-alive\\n\\n; format=cstring; timeout=15');
  assert.match(String(held.headers['content-type']), /^text\/event-stream/);
  assert.match(held.body, /^event: stream-open\ndata: \nid: alpha:\d+,beta:\d+\n\n$/);
  assert.equal(held.headers['content-length'], String(Buffer.byteLength(held.body)));
  // Without a shared store the proxy is not in reliable mode: no prev-id; the link is the proxy's check on the stream.
  assert.match(String(held.headers['grip-link']), /^<\/pair\?eventstream_link=[\w-]+\.[\w-]+>; rel=next; timeout=30$/);
  assert.equal(eventStream.stats().streams, 0);

  const noKeepAlive = await get(`${origin.url}/quiet`, { ...SSE, 'grip-sig': gripSig(pushpin.sigKey) });
  assert.equal(noKeepAlive.headers['grip-hold'], 'stream');
  assert.equal(noKeepAlive.headers['grip-channel'], 'events-alpha, events-alpha#close');
  assert.equal(noKeepAlive.headers['grip-keep-alive'], undefined);
});

test('Pushpin sends the keep-alive comment that Grip-Keep-Alive asked for on an idle held stream', async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  const { pushpin, serve } = await sharedPushpin();
  const eventStream = new EventStream({ grip: gripConfig(pushpin), keepAliveInterval: 1000 });
  defer(() => eventStream.close());
  serve(eventsApp(eventStream));

  const stream = await openRaw(`${pushpin.proxyUrl}/events/idle`, SSE);
  defer(() => stream.close());
  assert.equal(stream.status, 200);
  assert.equal(stream.headers['grip-hold'], undefined, 'Pushpin strips Grip-* headers before the client');
  await until(() => stream.text().includes(': keep-alive\n\n'), 5000, 'a keep-alive comment from Pushpin');
  // The cstring escapes were decoded: the comment is a real SSE comment block right after the opening bytes.
  assert.match(stream.text(), new RegExp(`${OPENING.source}: keep-alive\n\n`), JSON.stringify(stream.text()));
  assert.equal(eventStream.stats().streams, 0);
});

test('two app processes behind one Pushpin: a publish from either reaches every client', { timeout: 60_000 }, async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);

  // Process A is this one; process B is forked. Pushpin routes /a/ to A and /b/ to B.
  let requestsA = 0;
  let appA: express.Express | null = null;
  const serverA = await listen((req, res) => {
    requestsA++;
    appA!(req, res);
  });
  defer(() => serverA.close());
  const processB = await forkAppProcess('/b/');
  defer(() => processB.close());
  const pushpin = await startPushpin({
    routes: [
      { pathPrefix: '/a/', targets: [serverA.port] },
      { pathPrefix: '/b/', targets: [processB.port] },
    ],
  });
  defer(() => pushpin.stop());
  // Both processes need Pushpin's control port, known only now.
  const eventStreamA = new EventStream({ grip: gripConfig(pushpin) });
  defer(() => eventStreamA.close());
  appA = express();
  appA.get('/a/events/:id', eventStreamA('{id}'));
  await processB.configure({ grip: gripConfig(pushpin) });

  const clients = ['a', 'a', 'b', 'b'].map((side) => open(defer, `${pushpin.proxyUrl}/${side}/events/shared`));
  await Promise.all(clients.map((client) => client.opened));
  assert.equal(requestsA, 2, 'process A answered the two /a/ requests');
  assert.deepEqual(await processB.counts(), { requests: 2, streams: 0 }, 'process B answered the two /b/ requests, with holds');

  await eventStreamA.publishEvent('shared', { data: 'from A, 1' });
  await processB.publish('shared', { data: 'from B, 1' });
  await eventStreamA.publishEvent('shared', { data: 'from A, 2' });
  await processB.publish('shared', { data: 'from B, 2' });
  await Promise.all(clients.map((client) => client.waitFor(4)));
  for (const client of clients) {
    assert.deepEqual(
      client.events.map((event) => event.data),
      ['"from A, 1"', '"from B, 1"', '"from A, 2"', '"from B, 2"'],
    );
  }
  assert.equal(eventStreamA.stats().streams, 0);
});

// ---------------------------------------------------------------------------
// Forms of the grip option

test('grip as an array publishes to two Pushpins, and streams held by either are served', { timeout: 30_000 }, async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  const { pushpin: first, origin, serve } = await sharedPushpin();
  const second = await startPushpin({ routes: origin.port });
  defer(() => second.stop());
  assert.notEqual(first.sigKey, second.sigKey);
  const eventStream = new EventStream({
    grip: [gripConfig(first), { control_uri: second.controlUri, verify_key: second.sigKey }],
  });
  defer(() => eventStream.close());
  serve(eventsApp(eventStream));

  const viaFirst = open(defer, `${first.proxyUrl}/events/fan`);
  const viaSecond = open(defer, `${second.proxyUrl}/events/fan`);
  await Promise.all([viaFirst.opened, viaSecond.opened]);
  // Each proxy signs with its own key; both were recognized, so neither stream is served directly.
  assert.equal(eventStream.stats().streams, 0);

  for (let i = 0; i < 3; i++) await eventStream.publishEvent('fan', { data: i });
  await Promise.all([viaFirst.waitFor(3), viaSecond.waitFor(3)]);
  assert.deepEqual(
    viaFirst.events.map((event) => event.data),
    ['0', '1', '2'],
  );
  assert.deepEqual(
    viaSecond.events.map((event) => event.data),
    ['0', '1', '2'],
  );
});

test('grip as a @fanoutio/grip Publisher: publishes reach Pushpin clients and its verify key is enforced', async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  const { pushpin, origin, serve } = await sharedPushpin();
  const eventStream = new EventStream({ grip: new Publisher(gripConfig(pushpin)) });
  defer(() => eventStream.close());
  serve(eventsApp(eventStream));

  const client = open(defer, `${pushpin.proxyUrl}/events/pub`);
  await client.opened;
  assert.equal(eventStream.stats().streams, 0, "Pushpin's signature was verified with the Publisher's key");
  await eventStream.publishEvent('pub', { event: 'message', data: 'via Publisher' });
  await client.waitFor(1);
  assert.deepEqual(
    client.events.map((event) => event.data),
    ['"via Publisher"'],
  );

  const forged = await openRaw(`${origin.url}/events/pub`, { ...SSE, 'grip-sig': gripSig('not-the-key') });
  defer(() => forged.close());
  assert.equal(forged.status, 200);
  assert.equal(forged.headers['grip-hold'], undefined);
});

test('a custom gripPrefix names the held channels and the published ones', async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  const { pushpin, origin, serve } = await sharedPushpin();
  const eventStream = new EventStream({ grip: gripConfig(pushpin), gripPrefix: 'tenant7.' });
  defer(() => eventStream.close());
  serve(eventsApp(eventStream));

  const held = await get(`${origin.url}/events/news`, { ...SSE, 'grip-sig': gripSig(pushpin.sigKey) });
  assert.equal(held.headers['grip-channel'], 'tenant7.news, tenant7.news#close');

  const client = open(defer, `${pushpin.proxyUrl}/events/news`, ['message', 'wrong']);
  await client.opened;
  // An item on the default-prefixed channel must not reach this client; the library's publish must.
  const raw = await fetch(`${pushpin.controlUri}/publish/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      items: [{ channel: 'events-news', formats: { 'http-stream': { content: 'event: wrong\ndata: x\n\n' } } }],
    }),
  });
  assert.equal(raw.status, 200);
  await eventStream.publishEvent('news', { data: 'prefixed' });
  await client.waitFor(1);
  assert.deepEqual(
    client.events.map(({ type, data }) => ({ type, data })),
    [{ type: 'message', data: '"prefixed"' }],
  );
  assert.match(client.events[0]!.lastEventId, /^news:\d+$/);
});

test('grip as a GRIP_URL string: verify-key and verify-iss are read from the URL and enforced', async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  const { pushpin, origin, serve } = await sharedPushpin();
  const eventStream = new EventStream({
    grip: `${pushpin.controlUri}/?verify-key=${encodeURIComponent(pushpin.sigKey)}&verify-iss=pushpin`,
  });
  defer(() => eventStream.close());
  serve(eventsApp(eventStream));

  const client = open(defer, `${pushpin.proxyUrl}/events/url`);
  await client.opened;
  assert.equal(eventStream.stats().streams, 0, 'the request Pushpin signed was recognized');
  await eventStream.publishEvent('url', { data: 'via GRIP_URL' });
  await client.waitFor(1);
  assert.deepEqual(
    client.events.map((event) => event.data),
    ['"via GRIP_URL"'],
  );

  const forged = await openRaw(`${origin.url}/events/url`, { ...SSE, 'grip-sig': gripSig('guessed') });
  defer(() => forged.close());
  assert.equal(forged.headers['grip-hold'], undefined, 'a signature with another key is not trusted');
  const otherIssuer = await openRaw(`${origin.url}/events/url`, {
    ...SSE,
    'grip-sig': gripSig(pushpin.sigKey, { iss: 'someone-else' }),
  });
  defer(() => otherIssuer.close());
  assert.equal(otherIssuer.headers['grip-hold'], undefined, 'a signature from another issuer is not trusted (verify-iss)');
  assert.equal(eventStream.stats().streams, 2);
});

// ---------------------------------------------------------------------------
// Signatures and channel names

test('a forged, expired or malformed Grip-Sig is served directly: no hold headers, the stream stays open', async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  const { pushpin, origin, serve } = await sharedPushpin();
  const eventStream = new EventStream({ grip: gripConfig(pushpin) });
  defer(() => eventStream.close());
  serve(eventsApp(eventStream));

  const signatures = {
    'wrong key': gripSig('wrong-key'),
    expired: gripSig(pushpin.sigKey, { exp: Math.floor(Date.now() / 1000) - 60 }),
    malformed: 'not.a.jwt',
  };
  const streams = [];
  for (const [label, sig] of Object.entries(signatures)) {
    const stream = await openRaw(`${origin.url}/events/direct`, { ...SSE, 'grip-sig': sig });
    defer(() => stream.close());
    assert.equal(stream.status, 200, label);
    assert.equal(stream.headers['grip-hold'], undefined, label);
    assert.equal(stream.headers['grip-channel'], undefined, label);
    assert.match(String(stream.headers['content-type']), /^text\/event-stream/, label);
    streams.push({ label, stream });
  }
  assert.equal(eventStream.stats().streams, streams.length);

  await eventStream.publishEvent('direct', { data: 'served here' });
  for (const { label, stream } of streams) {
    await until(() => stream.text().includes('data: "served here"'), 5000, `the event on the '${label}' stream`);
    assert.match(stream.text(), /^event: stream-open\ndata: \nid: direct:\d+\n\ndata: "served here"\nid: direct:\d+\n\n$/, label);
    assert.equal(stream.res.complete, false, `${label}: the stream is still open`);
  }
});

test('channel injection: /events/foo,bar and /events/foo%2Cbar get 400 and subscribe to nothing', async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  const { pushpin, origin, serve } = await sharedPushpin();
  const eventStream = new EventStream({ grip: gripConfig(pushpin) });
  defer(() => eventStream.close());
  serve(eventsApp(eventStream));

  const attempts = ['foo,bar', 'foo%2Cbar', 'foo%2cbar', 'foo;bar', 'foo%3Bprev-id=x', 'foo%20bar'];
  for (const attempt of attempts) {
    // Through Pushpin: the 400 reaches the client and the response ends.
    const proxied = await get(`${pushpin.proxyUrl}/events/${attempt}`, SSE);
    assert.equal(proxied.status, 400, attempt);
    assert.match(proxied.body, /Invalid channel/, attempt);
    // Straight to the app with a valid signature: no hold instruction, so Pushpin would subscribe to nothing.
    const signed = await get(`${origin.url}/events/${attempt}`, { ...SSE, 'grip-sig': gripSig(pushpin.sigKey) });
    assert.equal(signed.status, 400, attempt);
    assert.equal(signed.headers['grip-hold'], undefined, attempt);
    assert.equal(signed.headers['grip-channel'], undefined, attempt);
  }

  // A connection that asked for foo,bar sees nothing published to bar, while a real bar client does.
  const injected = await openRaw(`${pushpin.proxyUrl}/events/foo%2Cbar`, SSE);
  defer(() => injected.close());
  const barClient = open(defer, `${pushpin.proxyUrl}/events/bar`);
  await barClient.opened;
  await eventStream.publishEvent('bar', { data: 'for bar only' });
  await eventStream.publishEvent('foo', { data: 'for foo only' });
  await barClient.waitFor(1);
  await until(() => injected.res.complete, 5000, 'the refused response to end');
  assert.equal(injected.status, 400);
  assert.doesNotMatch(injected.text(), /only/);
});

// ---------------------------------------------------------------------------
// Publish failures

// Needs no Pushpin: the proxy here is a closed port or a server that never answers.
test('a proxy that is down: publishEvent rejects with GripPublishError (status -1) and direct clients still get the event', async (t) => {
  const defer = cleanups(t);
  const unhandled = watchUnhandledRejections(defer);
  const port = await closedPort();
  const eventStream = new EventStream({
    grip: { control_uri: `http://127.0.0.1:${port}`, verify_key: 'k' },
    gripPublishTimeout: 5000,
  });
  defer(() => eventStream.close());
  const app = await listen(eventsApp(eventStream));
  defer(() => app.close());

  const direct = open(defer, `${app.url}/events/down`);
  await direct.opened;
  const error = await eventStream.publishEvent('down', { data: 'still local' }).then(
    () => assert.fail('publishEvent resolved although the proxy is down'),
    (reason: unknown) => reason,
  );
  assert.ok(error instanceof GripPublishError);
  assert.ok(error instanceof Error);
  assert.equal(error.code, 'ERR_EVENTSTREAM_GRIP_PUBLISH');
  assert.equal(error.status, -1);
  assert.equal(error.proxy, `http://127.0.0.1:${port}/publish/`);
  assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
  await direct.waitFor(1);
  assert.deepEqual(
    direct.events.map((event) => event.data),
    ['"still local"'],
  );

  // A writable reports the same failure as an 'error' event.
  const writable = eventStream.createChannelWritable('down');
  const streamError = await new Promise<unknown>((resolve) => {
    writable.once('error', resolve);
    writable.write({ data: 'via writable' });
  });
  assert.ok(streamError instanceof GripPublishError);
  assert.equal(streamError.status, -1);
  await direct.waitFor(2);

  // A proxy that accepts the connection but never answers fails after gripPublishTimeout.
  const silent = await listen((req) => req.resume());
  defer(() => silent.close());
  const patient = new EventStream({ grip: { control_uri: silent.url, verify_key: 'k' }, gripPublishTimeout: 300 });
  defer(() => patient.close());
  const timeout = await patient.publishEvent('down', { data: 'never answered' }).catch((reason: unknown) => reason);
  assert.ok(timeout instanceof GripPublishError);
  assert.equal(timeout.status, -1);
  assert.equal(timeout.proxy, `${silent.url}/publish/`);
  assert.match(timeout.message, /no answer within 300 ms/);

  await settle();
  assert.deepEqual(unhandled, []);
});

test('a proxy answering 500 or 404: the error carries its status and body; other proxies still deliver', async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  const unhandled = watchUnhandledRejections(defer);
  const { pushpin, serve } = await sharedPushpin();
  const failing = await listen((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(500, { 'content-type': 'text/plain' }).end('publish exploded\n'));
  });
  defer(() => failing.close());

  const to500 = new EventStream({ grip: { control_uri: failing.url } });
  defer(() => to500.close());
  const error500 = await to500.publishEvent('x', { data: 1 }).catch((reason: unknown) => reason);
  assert.ok(error500 instanceof GripPublishError);
  assert.equal(error500.status, 500);
  assert.equal(error500.body, 'publish exploded\n');
  assert.equal(error500.proxy, `${failing.url}/publish/`);
  assert.match(error500.message, /HTTP 500: publish exploded/);

  // Pushpin itself answers 404 under a path it does not serve.
  const to404 = new EventStream({ grip: { control_uri: `${pushpin.controlUri}/no-such-prefix` } });
  defer(() => to404.close());
  const error404 = await to404.publishEvent('x', { data: 1 }).catch((reason: unknown) => reason);
  assert.ok(error404 instanceof GripPublishError);
  assert.equal(error404.status, 404);
  assert.match(error404.body, /Not Found/);

  // One proxy failing does not stop the others: the publish rejects, the healthy Pushpin's client still gets it.
  const mixed = new EventStream({ grip: [gripConfig(pushpin), { control_uri: failing.url }] });
  defer(() => mixed.close());
  serve(eventsApp(mixed));
  const client = open(defer, `${pushpin.proxyUrl}/events/mixed`);
  await client.opened;
  const mixedError = await mixed.publishEvent('mixed', { data: 'half delivered' }).catch((reason: unknown) => reason);
  assert.ok(mixedError instanceof GripPublishError);
  assert.equal(mixedError.status, 500);
  await client.waitFor(1);
  assert.deepEqual(
    client.events.map((event) => event.data),
    ['"half delivered"'],
  );

  await settle();
  assert.deepEqual(unhandled, []);
});

// ---------------------------------------------------------------------------
// Batching

test('batching: piping 10,000 events makes far fewer control-API requests, and the client gets all of them in order', {
  timeout: 90_000,
}, async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  const { pushpin, serve } = await sharedPushpin();

  // A real HTTP forwarder in front of Pushpin's control port, counting what the library sends.
  const seen = { requests: 0, items: 0, events: 0, paths: new Set<string>() };
  const forwarder = await controlForwarder(pushpin.controlUri, (req, body) => {
    seen.requests++;
    seen.paths.add(`${req.method} ${req.url}`);
    const { items } = JSON.parse(body.toString('utf8')) as { items: Array<{ formats: { 'http-stream': { content: string } } }> };
    seen.items += items.length;
    for (const item of items) seen.events += item.formats['http-stream'].content.split('\n\n').length - 1;
    return 'forward';
  });
  defer(() => forwarder.close());

  const eventStream = new EventStream({ grip: { control_uri: forwarder.url, verify_key: pushpin.sigKey } });
  defer(() => eventStream.close());
  serve(eventsApp(eventStream));
  const client = open(defer, `${pushpin.proxyUrl}/events/batch`);
  await client.opened;

  await pipeAll(numbered(BIG), eventStream.createChannelWritable('batch'));
  await client.waitFor(BIG, 'message', 60_000);
  assert.deepEqual(
    client.events.map((event) => event.data),
    indices(BIG),
  );
  assert.deepEqual([...seen.paths], ['POST /publish/']);
  assert.equal(seen.events, BIG);
  assert.ok(seen.requests < 1000, `${seen.requests} control-API requests for ${BIG} piped events`);
  // Consecutive events of a batch travel as one item: the proxy's cost is per item.
  assert.ok(seen.items <= seen.requests * 2, `${seen.items} items in ${seen.requests} requests`);
  console.log(`batching: ${seen.requests} control-API requests, ${seen.items} items for ${BIG} piped events`);

  // Concurrent publishEvent calls are batched too.
  const before = seen.requests;
  await Promise.all(numbered(2000).map((event) => eventStream.publishEvent('batch', event)));
  await client.waitFor(BIG + 2000, 'message', 30_000);
  assert.deepEqual(
    client.events.slice(BIG).map((event) => event.data),
    indices(2000),
  );
  assert.ok(
    seen.requests - before <= 40,
    `${seen.requests - before} control-API requests for 2000 concurrent publishEvent calls`,
  );

  // A burst written in one tick goes out in requests Pushpin does not overflow (it drops items past 100 queued).
  // 100-byte events, so a 1 MB body would carry thousands of them.
  const pad = 'x'.repeat(90);
  const writable = eventStream.createChannelWritable('batch');
  for (let i = 0; i < BIG; i++) writable.write({ data: { i, pad } });
  await new Promise<void>((resolve, reject) => writable.end((error?: Error | null) => (error ? reject(error) : resolve())));
  await client.waitFor(2 * BIG + 2000, 'message', 60_000);
  assert.deepEqual(
    client.events.slice(BIG + 2000).map((event) => JSON.parse(event.data).i),
    Array.from({ length: BIG }, (_, i) => i),
  );
});

// ---------------------------------------------------------------------------
// The helper's rule for a missing binary

test('requirePushpin fails instead of skipping in CI when the pushpin binary is missing', (t) => {
  const saved = { PATH: process.env.PATH, CI: process.env.CI };
  try {
    process.env.PATH = '';
    process.env.CI = 'true';
    assert.throws(() => requirePushpin(t), /pushpin binary not found.*CI=true/);
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
});
