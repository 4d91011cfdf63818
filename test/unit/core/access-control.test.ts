// authorize, expiry and disconnect for direct streams (Node and web), over real loopback HTTP with the
// `eventsource` client: who may listen is decided before any header, access ends with a stream-close
// event, and a client that reconnects meets authorize again.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import express from 'express';
import { closingTime } from '../../../src/admission/access.js';
import {
  type AuthorizeFunction,
  EventStream,
  HttpRequestError,
  InvalidOptionError,
  type NodeRequest,
} from '../../../src/index.js';
import { listen, type RunningServer } from '../../helpers/server.js';
import { get, openRaw, parseAll, RecordingEventSource, until } from '../../helpers/sse-client.js';

const SSE = { accept: 'text/event-stream' };

async function serve(t: { after: (fn: () => Promise<void>) => void }, app: Parameters<typeof listen>[0]): Promise<RunningServer> {
  const server = await listen(app);
  t.after(() => server.close());
  return server;
}

function closeEvents(text: string): unknown[] {
  return parseAll(text)
    .filter((event) => event.event === 'stream-close')
    .map((event) => JSON.parse(event.data));
}

test('authorize: false is a plain-text 403 before any header; true streams; it gets the request and the resolved channels', async (t) => {
  const calls: Array<{ url: string | undefined; channels: readonly string[] }> = [];
  const authorize: AuthorizeFunction = (request, channels) => {
    calls.push({ url: (request as IncomingMessage).url, channels });
    return (request as IncomingMessage).headers['x-user'] === 'alice';
  };
  const eventStream = new EventStream({ authorize });
  t.after(() => eventStream.close());
  const app = express();
  app.get('/rooms/:room', eventStream(['{room}', 'lobby']));
  const server = await serve(t, app);

  const refused = await get(`${server.url}/rooms/secret`, SSE);
  assert.equal(refused.status, 403);
  assert.match(refused.headers['content-type'] ?? '', /^text\/plain/);
  assert.match(refused.body, /Forbidden/);
  assert.deepEqual(eventStream.stats().streams, 0);

  const allowed = await openRaw(`${server.url}/rooms/secret?x=1`, { ...SSE, 'x-user': 'alice' });
  t.after(() => allowed.close());
  assert.equal(allowed.status, 200);
  assert.deepEqual(calls, [
    { url: '/rooms/secret', channels: ['secret', 'lobby'] },
    { url: '/rooms/secret?x=1', channels: ['secret', 'lobby'] },
  ]);
  await until(() => eventStream.stats().streams === 1);
});

test('authorize: a thrown HttpRequestError is its status and message; another throw goes to next(err), else a 500', async (t) => {
  const eventStream = new EventStream();
  t.after(() => eventStream.close());
  const app = express();
  app.get('/login', eventStream('a', { authorize: () => Promise.reject(new HttpRequestError(401, 'Log in first')) }));
  const broken: AuthorizeFunction = () => {
    throw new Error('session store down');
  };
  app.get('/broken', eventStream('a', { authorize: broken }));
  app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(502).type('text/plain').send(`handled: ${error.message}`);
  });
  const server = await serve(t, app);
  const login = await get(`${server.url}/login`, SSE);
  assert.equal(login.status, 401);
  assert.equal(login.body, 'Log in first\n');
  const next = await get(`${server.url}/broken`, SSE);
  assert.equal(next.status, 502);
  assert.equal(next.body, 'handled: session store down');

  const bare = eventStream('a', { authorize: broken });
  const bareServer = await serve(t, (req, res) => void bare(req, res));
  const plain = await get(bareServer.url, SSE);
  assert.equal(plain.status, 500);
  assert.equal(plain.body, 'Internal Server Error\n');
});

test('authorize: a bad answer is the app’s error (500), an until already past is a 401, and a bad option is refused when the route is made', async (t) => {
  const eventStream = new EventStream();
  t.after(() => eventStream.close());
  const odd = eventStream('a', { authorize: (() => 'yes') as unknown as AuthorizeFunction });
  const past = eventStream('a', { authorize: () => ({ until: Date.now() - 1 }) });
  const server = await serve(t, (req, res) => void (req.url === '/past' ? past(req, res) : odd(req, res)));
  assert.equal((await get(`${server.url}/odd`, SSE)).status, 500);
  const expired = await get(`${server.url}/past`, SSE);
  assert.equal(expired.status, 401);
  assert.match(expired.body, /expired/);
  assert.throws(() => eventStream('a', { authorize: 'yes' as unknown as AuthorizeFunction }), InvalidOptionError);
  assert.throws(() => eventStream('a', { authorise: () => true } as never), /did you mean "authorize"/);
  assert.throws(() => new EventStream({ authorize: 1 as unknown as AuthorizeFunction }), InvalidOptionError);
});

test('authorize: a route’s own overrides the instance’s, for middleware, run, fetchHandler and respond', async (t) => {
  const eventStream = new EventStream({ authorize: () => false });
  t.after(() => eventStream.close());
  const allow = (): boolean => true;
  const app = express();
  app.get('/instance', eventStream('a'));
  app.get('/route', eventStream('a', { authorize: allow }));
  app.get('/run', (req, res) => void eventStream.run(req, res, 'a', { authorize: allow }));
  app.get('/run-instance', (req, res) => void eventStream.run(req, res, 'a'));
  const server = await serve(t, app);
  assert.equal((await get(`${server.url}/instance`, SSE)).status, 403);
  assert.equal((await get(`${server.url}/run-instance`, SSE)).status, 403);
  for (const path of ['/route', '/run']) {
    const stream = await openRaw(`${server.url}${path}`, SSE);
    assert.equal(stream.status, 200, path);
    stream.close();
  }

  const seen: unknown[] = [];
  const webAllow: AuthorizeFunction<Request> = (request, channels) => {
    seen.push([request instanceof Request, new URL(request.url).pathname, channels]);
    return true;
  };
  const handler = eventStream.fetchHandler('{room}', { authorize: webAllow });
  const denied = await eventStream.fetchHandler('{room}')(new Request('http://x/r?room=x', { headers: SSE }));
  assert.equal(denied.status, 403);
  assert.match(await denied.text(), /Forbidden/);
  const open = await handler(new Request('http://x/r?room=web', { headers: SSE }));
  assert.equal(open.status, 200);
  await open.body?.cancel();
  const responded = await eventStream.respond(new Request('http://x/s', { headers: SSE }), ['web', 'other'], {
    authorize: webAllow,
  });
  assert.equal(responded.status, 200);
  await responded.body?.cancel();
  assert.deepEqual(seen, [
    [true, '/r', ['web']],
    [true, '/s', ['web', 'other']],
  ]);
});

test('expiry: a stream allowed { until } is told stream-close "expired" and ended no later than until; EventSource reconnects and is authorized afresh', async (t) => {
  let calls = 0;
  const lifetime = 1200;
  const deadlines: number[] = [];
  const eventStream = new EventStream({
    authorize: () => {
      calls++;
      const until = Date.now() + lifetime;
      deadlines.push(until);
      return { until };
    },
    clientRetry: 50,
  });
  t.after(() => eventStream.close());
  const server = await serve(t, (req, res) => void eventStream.run(req, res, 'ticks'));

  const raw = await openRaw(server.url, SSE);
  const ended = new Promise<number>((resolve) => raw.res.on('end', () => resolve(Date.now())));
  const endedAt = await ended;
  assert.deepEqual(closeEvents(raw.text()), [{ reason: 'expired' }]);
  assert.ok(endedAt <= deadlines[0]! + 50, `ended ${endedAt - deadlines[0]!} ms after until`);
  assert.ok(endedAt >= deadlines[0]! - lifetime / 5 - 50, 'not earlier than the last fifth of the lifetime');
  assert.match(raw.text(), /event: stream-close\ndata: \{"reason":"expired"\}\n\n$/, 'the close is the last thing sent');
  await until(() => eventStream.stats().streams === 0);

  const client = new RecordingEventSource(server.url, ['stream-close']);
  t.after(() => client.close());
  await client.waitFor(2, 'stream-close', 10_000);
  assert.ok(calls >= 3, `authorize ran on every (re)connection: ${calls}`);
});

test('expiry: closing times spread over the last fifth of the access, at most a minute, never after until', () => {
  const now = 1_000_000;
  assert.equal(
    closingTime(now + 10_000, now, () => 0),
    now + 10_000,
  );
  assert.equal(
    closingTime(now + 10_000, now, () => 1),
    now + 8000,
  );
  assert.equal(
    closingTime(now + 3_600_000, now, () => 1),
    now + 3_600_000 - 60_000,
  );
  const times = Array.from({ length: 1000 }, () => closingTime(now + 600_000, now));
  assert.ok(times.every((time) => time <= now + 600_000 && time >= now + 540_000));
  assert.ok(new Set(times).size > 900, 'spread, not one instant');
});

test('disconnect(channel): streams on it are told stream-close with the reason and ended, others stay; reconnecting clients meet authorize again', async (t) => {
  const revoked = new Set<string>();
  const authorize: AuthorizeFunction<NodeRequest> = (_request, channels) => !channels.some((channel) => revoked.has(channel));
  const eventStream = new EventStream({ authorize: authorize as AuthorizeFunction, clientRetry: 50 });
  t.after(() => eventStream.close());
  const app = express();
  app.get('/events/:channel', eventStream('{channel}'));
  const server = await serve(t, app);

  const alice = await openRaw(`${server.url}/events/user-alice`, SSE);
  const alice2 = await openRaw(`${server.url}/events/user-alice`, SSE);
  const bob = await openRaw(`${server.url}/events/user-bob`, SSE);
  t.after(() => bob.close());
  await until(() => eventStream.stats().streams === 3);

  revoked.add('user-alice');
  await eventStream.disconnect('user-alice', { reason: 'revoked' });
  // Resolved: both of alice's streams were told and ended, bob's was not touched.
  assert.equal(eventStream.stats().streams, 1);
  for (const stream of [alice, alice2]) {
    await new Promise((resolve) => (stream.res.complete ? resolve(null) : stream.res.on('end', resolve)));
    assert.deepEqual(closeEvents(stream.text()), [{ reason: 'revoked' }]);
  }
  await eventStream.publishEvent('user-bob', { data: 'still here' });
  await until(() => bob.text().includes('still here'));
  assert.deepEqual(closeEvents(bob.text()), []);

  const again = await get(`${server.url}/events/user-alice`, SSE);
  assert.equal(again.status, 403, 'the reconnect meets authorize, which now refuses');

  const carol = await openRaw(`${server.url}/events/carol`, SSE);
  await until(() => eventStream.stats().streams === 2);
  await eventStream.disconnect('carol');
  await new Promise((resolve) => (carol.res.complete ? resolve(null) : carol.res.on('end', resolve)));
  assert.deepEqual(closeEvents(carol.text()), [{ reason: 'disconnected' }], 'the default reason');
  await assert.rejects(() => eventStream.disconnect('bad name!'), { code: 'ERR_EVENTSTREAM_INVALID_CHANNEL' });
  await assert.rejects(() => eventStream.disconnect('carol', { reason: '' }), { code: 'ERR_EVENTSTREAM_INVALID_ARGUMENT' });
});

test('disconnect and expiry for web streams: the body gets stream-close, then ends', async (t) => {
  const eventStream = new EventStream();
  t.after(() => eventStream.close());
  // Expiry timers do not keep a process alive (a server does); here nothing else would.
  const alive = setInterval(() => {}, 1000);
  t.after(() => clearInterval(alive));
  const response = await eventStream.respond(new Request('http://x/', { headers: SSE }), 'web-room');
  const expiring = await eventStream.respond(new Request('http://x/', { headers: SSE }), 'web-other', {
    authorize: () => ({ until: Date.now() + 300 }),
  });
  await eventStream.disconnect('web-room');
  const text = await new Response(response.body).text();
  assert.deepEqual(closeEvents(text), [{ reason: 'disconnected' }]);
  const expiredText = await new Response(expiring.body).text();
  assert.deepEqual(closeEvents(expiredText), [{ reason: 'expired' }]);
  assert.equal(eventStream.stats().streams, 0);
});

test('authorize runs for a resume too, with the channels the id names', async (t) => {
  const seen: Array<readonly string[]> = [];
  const eventStream = new EventStream({
    authorize: (request, channels) => {
      seen.push(channels);
      return (request as IncomingMessage).headers['last-event-id'] === undefined;
    },
  });
  t.after(() => eventStream.close());
  const server = await serve(t, (req, res) => void eventStream.run(req, res, ['a', 'b']));
  const first = await openRaw(server.url, SSE);
  await until(() => first.text().includes('stream-open'));
  first.close();
  const id = parseAll(first.text())[0]!.id!;
  const resumed = await get(server.url, { ...SSE, 'last-event-id': id });
  assert.equal(resumed.status, 403);
  assert.deepEqual(seen, [
    ['a', 'b'],
    ['a', 'b'],
  ]);
});
