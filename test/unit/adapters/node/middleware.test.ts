import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import compression from 'compression';
import connect from 'connect';
import express from 'express';
import { EventStream, type SseRequest } from '../../../../src/index.js';
import { listen, type RunningServer } from '../../../helpers/server.js';
import { get, openRaw, RecordingEventSource, until } from '../../../helpers/sse-client.js';

async function withServer(handler: Parameters<typeof listen>[0], body: (server: RunningServer) => Promise<void>): Promise<void> {
  const server = await listen(handler);
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

test('Express: literal channel and {id} route parameter, as in the README', async () => {
  const CHANNEL_NAME = 'test';
  const eventStream = new EventStream();
  const app = express();
  app.get('/api/events', eventStream(CHANNEL_NAME));
  app.get('/api/events/:id', eventStream('{id}'));
  await withServer(app, async ({ url }) => {
    const literal = new RecordingEventSource(`${url}/api/events`);
    const routed = new RecordingEventSource(`${url}/api/events/test`);
    const other = new RecordingEventSource(`${url}/api/events/other`);
    await Promise.all([literal.opened, routed.opened, other.opened]);
    await eventStream.publishEvent(CHANNEL_NAME, { event: 'message', data: { name: 'John' } });
    await eventStream.publishEvent('other', { event: 'message', data: { name: 'Eve' } });
    await Promise.all([literal.waitFor(1), routed.waitFor(1), other.waitFor(1)]);
    assert.deepEqual(
      literal.events.map((e) => JSON.parse(e.data)),
      [{ name: 'John' }],
    );
    assert.deepEqual(
      routed.events.map((e) => JSON.parse(e.data)),
      [{ name: 'John' }],
    );
    assert.deepEqual(
      other.events.map((e) => JSON.parse(e.data)),
      [{ name: 'Eve' }],
    );
    for (const client of [literal, routed, other]) client.close();
    await until(() => eventStream.stats().streams === 0, 5000, 'streams to close');
  });
  await eventStream.close();
});

test('Express: an array of channels and a function of the request', async () => {
  const eventStream = new EventStream();
  const app = express();
  app.get('/multi', eventStream(['a', 'b']));
  app.get(
    '/fn',
    eventStream(async (req: SseRequest) => [`user-${(req.headers['x-user'] as string | undefined) ?? 'anon'}`]),
  );
  await withServer(app, async ({ url }) => {
    const multi = new RecordingEventSource(`${url}/multi`, ['message', 'named']);
    const fn = new RecordingEventSource(`${url}/fn`);
    await Promise.all([multi.opened, fn.opened]);
    await eventStream.publishEvent('a', { data: 'from a' });
    await eventStream.publishEvent('b', { event: 'named', data: 'from b' });
    await eventStream.publishEvent('user-anon', { data: 'for anon' });
    await Promise.all([multi.waitFor(1), multi.waitFor(1, 'named'), fn.waitFor(1)]);
    assert.deepEqual(
      multi.events.map((e) => [e.type, JSON.parse(e.data)]),
      [
        ['message', 'from a'],
        ['named', 'from b'],
      ],
    );
    assert.deepEqual(
      fn.events.map((e) => JSON.parse(e.data)),
      ['for anon'],
    );
    multi.close();
    fn.close();
  });
  await eventStream.close();
});

test('connect: middleware works unchanged', async () => {
  const eventStream = new EventStream();
  const app = connect();
  app.use('/events', eventStream('news') as unknown as connect.NextHandleFunction);
  await withServer(app, async ({ url }) => {
    const client = new RecordingEventSource(`${url}/events`);
    await client.opened;
    await eventStream.publishEvent('news', { data: { headline: 'hi' } });
    await client.waitFor(1);
    assert.deepEqual(JSON.parse(client.events[0]!.data), { headline: 'hi' });
    client.close();
  });
  await eventStream.close();
});

test('Next.js pages-router style: default-exported handler called with req.query and no next', async () => {
  const eventStream = new EventStream();
  const handler = eventStream('{id}');
  // What Next.js does for /api/events/[id]: it parses the route into req.query and calls handler(req, res).
  await withServer(
    async (req, res) => {
      const id = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.split('/').pop() ?? '');
      Object.assign(req, { query: { id } });
      await handler(req, res);
      // Next.js warns "API resolved without sending a response" unless headers are out when the handler resolves.
      assert.ok(res.headersSent, 'headers must be sent when the handler resolves');
    },
    async ({ url }) => {
      const client = new RecordingEventSource(`${url}/api/events/room-1`);
      await client.opened;
      await eventStream.publishEvent('room-1', { event: 'message', data: 'next' });
      await client.waitFor(1);
      assert.equal(JSON.parse(client.events[0]!.data), 'next');
      client.close();
      const missing = await get(`${url}/api/events/`);
      assert.equal(missing.status, 400);
      assert.match(missing.body, /Missing route parameter "id"/);
    },
  );
  await eventStream.close();
});

test('run(): direct invocation resolves once the stream is open, as in the README', async () => {
  const eventStream = new EventStream();
  const app = express();
  let resolvedWithHeadersSent: boolean | null = null;
  app.get('/', async (req, res, next) => {
    if (req.headers.foo === 'bar') {
      try {
        await eventStream.run(req, res, ['test']);
        resolvedWithHeadersSent = res.headersSent;
      } catch (ex) {
        next(ex instanceof Error ? ex : new Error(String(ex)));
      }
    } else {
      next();
    }
  });
  await withServer(app, async ({ url }) => {
    const notFound = await get(url);
    assert.equal(notFound.status, 404);
    const stream = await openRaw(url, { foo: 'bar' });
    assert.equal(stream.status, 200);
    await until(() => resolvedWithHeadersSent !== null);
    assert.equal(resolvedWithHeadersSent, true);
    await eventStream.publishEvent('test', { event: 'ping', data: 1 });
    await until(() => /event: ping\ndata: 1\nid: test:\d+\n\n/.test(stream.text()));
    stream.close();
  });
  await eventStream.close();
});

test('direct stream: headers, opening bytes first, nothing HTTP/2 forbids', async () => {
  const eventStream = new EventStream();
  let setByLibrary: string[] = [];
  await withServer(
    async (req, res) => {
      const writeHead = res.writeHead.bind(res) as (status: number, headers: Record<string, string>) => ServerResponse;
      res.writeHead = ((status: number, headers: Record<string, string>) => {
        setByLibrary = [...res.getHeaderNames(), ...Object.keys(headers ?? {}).map((name) => name.toLowerCase())];
        return writeHead(status, headers);
      }) as typeof res.writeHead;
      await eventStream.run(req, res, 'h');
    },
    async ({ url }) => {
      const stream = await openRaw(url);
      assert.equal(stream.status, 200);
      assert.equal(stream.headers['content-type'], 'text/event-stream; charset=utf-8');
      assert.equal(stream.headers['cache-control'], 'no-cache, no-transform');
      assert.equal(stream.headers['x-accel-buffering'], 'no');
      // Node adds HTTP/1.1 framing itself; the library must not set connection-specific headers HTTP/2 forbids.
      await until(() => setByLibrary.length > 0);
      for (const forbidden of ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']) {
        assert.ok(!setByLibrary.includes(forbidden), forbidden);
      }
      await until(() => stream.text().length > 0);
      // The opening event carries the client's position, so it can resume even before a first event.
      assert.match(stream.text(), /^event: stream-open\ndata: \nid: h:\d+\n\n$/);
      stream.close();
    },
  );
  await eventStream.close();
});

test('Accept excluding text/event-stream gets 406; event-stream, */* and text/* are accepted', async () => {
  const eventStream = new EventStream();
  await withServer(
    (req, res) => void eventStream.run(req, res, 'acc'),
    async ({ url }) => {
      for (const accept of ['application/json', 'text/html', 'text/event-stream;q=0, */*;q=0.5']) {
        const refused = await get(url, { accept });
        assert.equal(refused.status, 406, accept);
        assert.match(refused.body, /Not Acceptable/);
        assert.match(refused.headers['content-type'] ?? '', /^text\/plain/);
      }
      for (const accept of ['text/event-stream', '*/*', 'text/*', 'application/json, text/event-stream;q=0.1']) {
        const stream = await openRaw(url, { accept });
        assert.equal(stream.status, 200, accept);
        stream.close();
      }
    },
  );
  await eventStream.close();
});

test('bad or missing channels get 400 with a plain-text reason, never 500', async () => {
  const eventStream = new EventStream({ maxChannelNameLength: 20, maxChannelsPerRequest: 3 });
  const app = express();
  app.get('/events/:id', eventStream('{id}'));
  app.get(
    '/list',
    eventStream((req) => String(new URL(req.url ?? '', 'http://x').searchParams.get('c') ?? '').split('|')),
  );
  app.get(
    '/empty',
    eventStream(() => []),
  );
  app.get(
    '/nonstring',
    eventStream(() => [42 as unknown as string]),
  );
  await withServer(app, async ({ url }) => {
    const cases: Array<[string, RegExp]> = [
      ['/events/foo,bar', /Invalid channel/],
      ['/events/foo%2Cbar', /Invalid channel/],
      ['/events/a%3Bb', /Invalid channel/],
      ['/events/a%22b', /Invalid channel/],
      ['/events/a%20b', /Invalid channel/],
      ['/events/a%0Ab', /Invalid channel/],
      ['/events/a%00b', /Invalid channel/],
      [`/events/${'x'.repeat(21)}`, /longer than 20/],
      ['/list?c=a|b|c|d', /Too many channels/],
      ['/list?c=', /channel name is empty/],
      ['/empty', /No channel specified/],
      ['/nonstring', /must be a string/],
    ];
    for (const [path, reason] of cases) {
      const response = await get(url + path);
      assert.equal(response.status, 400, path);
      assert.match(response.headers['content-type'] ?? '', /^text\/plain/, path);
      assert.match(response.body, reason, path);
    }
  });
  assert.deepEqual(eventStream.stats().channels, {});
  assert.equal(eventStream.stats().hubs, 0);
  await eventStream.close();
});

test('errors thrown by a channel function go to next(err) when there is one, else a 500', async () => {
  const eventStream = new EventStream();
  const failing = eventStream(() => {
    throw new Error('lookup failed');
  });
  const app = express();
  app.get('/with-next', failing);
  app.use((error: Error, _req: IncomingMessage, res: ServerResponse, _next: unknown) => {
    res.statusCode = 502;
    res.end(`handled: ${error.message}`);
  });
  await withServer(app, async ({ url }) => {
    const response = await get(`${url}/with-next`);
    assert.equal(response.status, 502);
    assert.equal(response.body, 'handled: lookup failed');
  });
  await withServer(
    (req, res) => void failing(req, res),
    async ({ url }) => {
      const response = await get(url);
      assert.equal(response.status, 500);
      assert.equal(response.body, 'Internal Server Error\n');
    },
  );
  await eventStream.close();
});

test('behind the compression middleware events still arrive at once', async () => {
  const eventStream = new EventStream();
  const app = express();
  app.use(compression({ threshold: 0 }));
  app.get('/events', eventStream('zip'));
  await withServer(app, async ({ url }) => {
    const stream = await openRaw(`${url}/events`, { 'accept-encoding': 'gzip' });
    assert.equal(stream.headers['content-encoding'], undefined);
    await until(() => stream.text().includes('stream-open'));
    await eventStream.publishEvent('zip', { data: 'now' });
    await until(() => /data: "now"\nid: zip:\d+\n\n/.test(stream.text()), 2000, 'event through compression');
    stream.close();
  });
  await eventStream.close();
});

test('keep-alive comments are sent after the idle interval, and only while the response lives', async () => {
  const eventStream = new EventStream({ keepAliveInterval: 100 });
  await withServer(
    (req, res) => void eventStream.run(req, res, 'idle'),
    async ({ url }) => {
      const stream = await openRaw(url);
      await until(() => (stream.text().match(/: keep-alive\n\n/g) ?? []).length >= 2, 3000, 'two keep-alives');
      stream.close();
      await until(() => eventStream.stats().streams === 0);
    },
  );
  await eventStream.close();
});

test('close() ends every stream; later requests are told to reconnect later and publishes reject', async () => {
  const eventStream = new EventStream();
  await withServer(
    (req, res) => void eventStream.run(req, res, 'bye'),
    async ({ url }) => {
      const stream = await openRaw(url);
      const ended = new Promise<void>((resolve) => stream.res.on('end', resolve));
      await until(() => eventStream.stats().streams === 1);
      await eventStream.close();
      await ended;
      assert.deepEqual(eventStream.stats(), {
        channels: {},
        hubs: 0,
        streams: 0,
        heldStreams: 0,
        eventsPublished: 0,
        eventsReceived: 0,
        deliveries: 0,
        slowClientsDropped: 0,
      });
      const after = await get(url);
      // Not a 503: EventSource gives up for good on any status but 200.
      assert.equal(after.status, 200);
      assert.equal(after.headers['content-type'], 'text/event-stream; charset=utf-8');
      assert.equal(after.headers.connection, 'close');
      assert.equal(after.body, 'retry: 2000\n: this server is shutting down; reconnect later\n\n');
      await assert.rejects(eventStream.publishEvent('bye', { data: 1 }), { code: 'ERR_EVENTSTREAM_CLOSED' });
    },
  );
});
