/**
 * HTTP/2 through Node's compatibility API (`http2.createSecureServer(handler)`,
 * where `req`/`res` are Http2ServerRequest/Http2ServerResponse), over real TLS
 * with a self-signed certificate made for this run.
 *
 * HTTP/2 forbids connection-specific headers; Node throws
 * ERR_HTTP2_INVALID_CONNECTION_HEADERS when one is set, so every test also
 * checks that the server side raised nothing.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import http2, {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type IncomingHttpHeaders,
} from 'node:http2';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { EventStream } from '../../src/index.js';
import { until } from '../helpers/sse-client.js';

const CONNECTION_SPECIFIC_HEADERS = ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection'];

let certDir = '';
let key: Buffer;
let cert: Buffer;

before(() => {
  certDir = mkdtempSync(join(tmpdir(), 'eventstream-h2-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      join(certDir, 'key.pem'),
      '-out',
      join(certDir, 'cert.pem'),
    ],
    { stdio: 'pipe' },
  );
  key = readFileSync(join(certDir, 'key.pem'));
  cert = readFileSync(join(certDir, 'cert.pem'));
});

after(() => {
  if (certDir !== '') rmSync(certDir, { recursive: true, force: true });
});

type Handler = (req: Http2ServerRequest, res: Http2ServerResponse) => Promise<void>;

interface H2Server {
  server: Http2SecureServer;
  url: string;
  /** Everything that went wrong on the server side: handler rejections, session and stream errors. */
  errors: unknown[];
  connect(): Promise<ClientHttp2Session>;
  close(): Promise<void>;
}

async function startH2(handler: Handler): Promise<H2Server> {
  const errors: unknown[] = [];
  const sessions = new Set<http2.ServerHttp2Session>();
  const clients = new Set<ClientHttp2Session>();
  const server = http2.createSecureServer({ key, cert }, (req, res) => {
    handler(req, res).catch((error: unknown) => errors.push(error));
  });
  server.on('sessionError', (error) => errors.push(error));
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  server.on('stream', (stream) => {
    stream.on('error', (error) => errors.push(error));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `https://127.0.0.1:${port}`;
  return {
    server,
    url,
    errors,
    connect: () =>
      new Promise((resolve, reject) => {
        const client = http2.connect(url, { ca: cert });
        clients.add(client);
        client.once('connect', () => resolve(client));
        client.once('error', reject);
      }),
    close: async () => {
      for (const client of clients) client.destroy();
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface OpenedStream {
  stream: ClientHttp2Stream;
  headers: IncomingHttpHeaders;
  status: number;
  /** Parsed SSE messages so far (the parser reports no type for unnamed events; 'message' is filled in). */
  events: Array<{ type: string; data: string; id: string | undefined }>;
  text(): string;
  ended: Promise<void>;
}

/** Opens a request on `client` and resolves when the response headers arrive; the body keeps being parsed as SSE. */
function request(client: ClientHttp2Session, path: string, accept = 'text/event-stream'): Promise<OpenedStream> {
  return new Promise((resolve, reject) => {
    const stream = client.request({ ':path': path, accept });
    const events: OpenedStream['events'] = [];
    let text = '';
    const parser = createParser({
      onEvent: (message: EventSourceMessage) =>
        events.push({ type: message.event ?? 'message', data: message.data, id: message.id }),
    });
    const ended = new Promise<void>((resolveEnd) => stream.once('close', () => resolveEnd()));
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      text += chunk;
      parser.feed(chunk);
    });
    stream.on('error', () => {});
    stream.once('response', (headers) => {
      resolve({ stream, headers, status: Number(headers[':status']), events, text: () => text, ended });
    });
    stream.once('error', reject);
  });
}

function assertEventStreamHeaders(opened: OpenedStream): void {
  assert.equal(opened.status, 200);
  assert.equal(opened.headers['content-type'], 'text/event-stream; charset=utf-8');
  assert.equal(opened.headers['cache-control'], 'no-cache, no-transform');
  for (const name of CONNECTION_SPECIFIC_HEADERS) {
    assert.equal(opened.headers[name], undefined, `HTTP/2 response must not carry ${name}`);
  }
}

function messages(opened: OpenedStream, type = 'message'): unknown[] {
  return opened.events.filter((event) => event.type === type).map((event) => JSON.parse(event.data));
}

async function withH2(handler: Handler, body: (h2: H2Server) => Promise<void>): Promise<void> {
  const h2 = await startH2(handler);
  try {
    await body(h2);
  } finally {
    await h2.close();
  }
}

test('HTTP/2: eventStream.run(req, res, channels) streams events; closing the client stream cleans up', async () => {
  const eventStream = new EventStream();
  await withH2(
    async (req, res) => {
      const channel = decodeURIComponent((req.url ?? '/').slice('/run/'.length));
      await eventStream.run(req, res, [channel, 'all']);
    },
    async (h2) => {
      const client = await h2.connect();
      // Two streams multiplexed on one session.
      const one = await request(client, '/run/one');
      const two = await request(client, '/run/two');
      assertEventStreamHeaders(one);
      assertEventStreamHeaders(two);
      await until(() => one.events.length === 1 && two.events.length === 1, 5000, 'stream-open');
      assert.deepEqual(
        one.events.map(({ type, data }) => ({ type, data })),
        [{ type: 'stream-open', data: '' }],
      );
      const [, oneAt, allAt] = /^one:(\d+),all:(\d+)$/.exec(one.events[0]!.id ?? '')!.map(Number);
      assert.deepEqual(eventStream.stats().channels, { one: 1, two: 1, all: 2 });

      await eventStream.publishEvent('one', { data: { to: 'one' } });
      await eventStream.publishEvent('all', { event: 'news', data: 'to all' });
      await eventStream.publishEvent('two', { data: 'line 1\nline 2' });
      await until(() => one.events.length === 3 && two.events.length === 3, 5000, 'events over HTTP/2');
      assert.deepEqual(one.events.slice(1), [
        { type: 'message', data: '{"to":"one"}', id: `one:${oneAt! + 1},all:${allAt}` },
        { type: 'news', data: '"to all"', id: `one:${oneAt! + 1},all:${allAt! + 1}` },
      ]);
      assert.deepEqual(messages(two, 'news'), ['to all']);
      assert.deepEqual(messages(two), ['line 1\nline 2']);

      one.stream.close();
      await until(() => eventStream.stats().streams === 1, 5000, 'the closed stream to be released');
      assert.deepEqual(eventStream.stats().channels, { two: 1, all: 1 });
      // The session and the other stream live on.
      await eventStream.publishEvent('all', { data: 'still here' });
      await until(() => messages(two).length === 2, 5000, 'event after a sibling stream closed');
      assert.equal(client.closed, false);

      two.stream.close();
      await until(() => eventStream.stats().streams === 0 && eventStream.stats().hubs === 0, 5000, 'all streams released');
      assert.deepEqual(eventStream.stats().channels, {});
      assert.deepEqual(h2.errors, []);
    },
  );
  await eventStream.close();
});

test('HTTP/2: eventStream(spec) as a handler; 400 and 406 answered with plain text', async () => {
  const eventStream = new EventStream();
  const middleware = eventStream(['a', 'b']);
  const nextErrors: unknown[] = [];
  await withH2(
    async (req, res) => {
      if (req.url === '/mw') {
        await middleware(req, res, (error) => nextErrors.push(error ?? 'next() without error'));
      } else {
        await eventStream.run(req, res, decodeURIComponent((req.url ?? '/').slice(1)));
      }
    },
    async (h2) => {
      const client = await h2.connect();
      const sub = await request(client, '/mw');
      assertEventStreamHeaders(sub);
      await eventStream.publishEvent('a', { data: 1 });
      await eventStream.publishEvent('b', { data: 2 });
      await until(() => messages(sub).length === 2, 5000, 'events through the middleware');
      assert.deepEqual(messages(sub), [1, 2]);

      const bad = await request(client, `/${encodeURIComponent('a,b')}`);
      await bad.ended;
      assert.equal(bad.status, 400);
      assert.match(String(bad.headers['content-type']), /^text\/plain/);
      assert.match(bad.text(), /Invalid channel/);
      for (const name of CONNECTION_SPECIFIC_HEADERS) assert.equal(bad.headers[name], undefined);

      const refused = await request(client, '/mw', 'application/json');
      await refused.ended;
      assert.equal(refused.status, 406);

      sub.stream.close();
      await until(() => eventStream.stats().streams === 0 && eventStream.stats().hubs === 0, 5000, 'streams released');
      assert.deepEqual(nextErrors, []);
      assert.deepEqual(h2.errors, []);
    },
  );
  await eventStream.close();
});

test('HTTP/2: a stream reset while the channel function is pending leaves nothing behind', async () => {
  const eventStream = new EventStream();
  let releaseResolver!: () => void;
  const resolverGate = new Promise<void>((resolve) => (releaseResolver = resolve));
  let resolverCalled = false;
  let handlerDone = false;
  let serverSawClose = false;
  const handler = eventStream(async () => {
    resolverCalled = true;
    await resolverGate;
    return 'late';
  });
  await withH2(
    async (req, res) => {
      res.once('close', () => (serverSawClose = true));
      await handler(req, res);
      handlerDone = true;
    },
    async (h2) => {
      const client = await h2.connect();
      const stream = client.request({ ':path': '/late', accept: 'text/event-stream' });
      stream.on('error', () => {});
      stream.resume();
      await until(() => resolverCalled, 5000, 'the channel function to be called');
      stream.close();
      // The server sees the reset before the channel function returns.
      await until(() => serverSawClose, 5000, 'the server to see the stream close');
      releaseResolver();
      await until(() => handlerDone, 5000, 'the handler to finish');
      await until(
        () => eventStream.stats().streams === 0 && eventStream.stats().hubs === 0,
        5000,
        'no stream kept for a reset request',
      );
      assert.deepEqual(h2.errors, []);
    },
  );
  await eventStream.close();
});

test('HTTP/2: a client that stops reading is dropped without taking its session down', async () => {
  const maxBufferBytes = 64 * 1024;
  const eventStream = new EventStream({ maxBufferBytes, keepAliveInterval: 0 });
  await withH2(
    async (req, res) => {
      await eventStream.run(req, res, decodeURIComponent((req.url ?? '/').slice(1)));
    },
    async (h2) => {
      const slowClient = await h2.connect();
      const slow = await request(slowClient, '/flood');
      assertEventStreamHeaders(slow);
      slow.stream.pause();
      const healthyClient = await h2.connect();
      const healthy = await request(healthyClient, '/flood');
      await until(() => eventStream.stats().channels.flood === 2, 5000, 'both subscribed');

      const payload = 'x'.repeat(4096);
      // Far more than the HTTP/2 flow-control windows plus maxBufferBytes.
      for (let i = 0; i < 200 && eventStream.stats().slowClientsDropped === 0; i++) {
        await eventStream.publishEvent('flood', { data: payload });
        // Give the healthy client a turn of the event loop to read.
        if (i % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await until(() => eventStream.stats().slowClientsDropped === 1, 5000, 'the slow client to be dropped');
      await until(() => eventStream.stats().streams === 1, 5000, 'the slow stream to be released');
      // A paused client stream reports its reset only once it reads what it had buffered.
      slow.stream.resume();
      await until(() => slow.stream.closed, 5000, 'the slow client stream to close');

      // The healthy subscriber keeps receiving everything.
      const before = messages(healthy).length;
      await eventStream.publishEvent('flood', { data: 'after the drop' });
      await until(() => messages(healthy).length === before + 1, 5000, 'event after the drop');
      assert.equal(messages(healthy).at(-1), 'after the drop');
      assert.equal(healthyClient.closed, false);
      // Only the stream was reset; its session can still open new streams.
      assert.equal(slowClient.destroyed, false);
      const again = await request(slowClient, '/flood');
      assertEventStreamHeaders(again);
      again.stream.close();
      healthy.stream.close();
      await until(() => eventStream.stats().streams === 0 && eventStream.stats().hubs === 0, 5000, 'all streams released');
      assert.deepEqual(
        h2.errors.filter((error) => (error as { code?: string }).code !== 'ERR_HTTP2_STREAM_ERROR'),
        [],
      );
    },
  );
  await eventStream.close();
});

test('HTTP/2: eventStream.close() ends open streams cleanly', async () => {
  const eventStream = new EventStream();
  await withH2(
    (req, res) => eventStream.run(req, res, 'shutdown'),
    async (h2) => {
      const client = await h2.connect();
      const sub = await request(client, '/');
      assertEventStreamHeaders(sub);
      await eventStream.publishEvent('shutdown', { data: 'last' });
      await until(() => messages(sub).length === 1, 5000, 'event before close');
      let endedCleanly = false;
      sub.stream.once('end', () => (endedCleanly = true));
      await eventStream.close();
      await sub.ended;
      assert.equal(endedCleanly, true, 'the client saw the end of the stream, not a reset');
      assert.equal(sub.stream.rstCode, http2.constants.NGHTTP2_NO_ERROR);
      assert.equal(eventStream.stats().streams, 0);
      assert.deepEqual(h2.errors, []);
    },
  );
});

test('HTTP/1.1 over TLS on the same server (allowHTTP1): events arrive intact, then the stream ends cleanly', async () => {
  const eventStream = new EventStream({ keepAliveInterval: 0 });
  const handler = eventStream('tls1');
  const server = http2.createSecureServer({ key, cert, allowHTTP1: true }, (req, res) => {
    void handler(req, res);
  });
  const sockets = new Set<Socket>();
  server.on('secureConnection', (socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const events: EventSourceMessage[] = [];
    const parser = createParser({ onEvent: (event) => events.push(event) });
    let ended = false;
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = https.get(
        { host: '127.0.0.1', port, path: '/', ca: cert, agent: false, headers: { accept: 'text/event-stream' } },
        resolve,
      );
      req.on('error', reject);
    });
    assert.equal(response.httpVersion, '1.1');
    assert.equal(response.headers['transfer-encoding'], 'chunked');
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => parser.feed(chunk));
    response.on('end', () => (ended = true));
    await until(() => events.some((event) => event.event === 'stream-open'), 5000, 'stream-open');
    for (const n of [1, 2, 3]) await eventStream.publishEvent('tls1', { event: 'n', data: { n } });
    await until(() => events.filter((event) => event.event === 'n').length === 3, 5000, 'three events');
    assert.deepEqual(
      events.filter((event) => event.event === 'n').map((event) => JSON.parse(event.data).n),
      [1, 2, 3],
    );
    await eventStream.close();
    // The HTTP client checks the chunked framing to the last chunk.
    await until(() => ended, 5000, 'the response to end');
  } finally {
    await eventStream.close();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
  }
});
