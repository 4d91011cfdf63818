/**
 * Mistakes are caught where they are made: a bad channel spec when the
 * route is created, a misspelt option when the instance is, and a request a
 * channel function refuses with HttpRequestError gets exactly that status
 * and message as plain text, in Express 5, connect and the web handler.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import connect from 'connect';
import express from 'express';
import {
  EventStream,
  GripConfigError,
  HttpRequestError,
  InvalidArgumentError,
  InvalidChannelError,
  InvalidOptionError,
  MemoryEventStore,
  type SseRequest,
} from '../../../src/index.js';
import { RedisEventStore } from '../../../src/redis.js';
import { cleanups } from '../../helpers/requirements.js';
import { listen } from '../../helpers/server.js';
import { get, openRaw } from '../../helpers/sse-client.js';

const SSE = { accept: 'text/event-stream' };

function isCoded(error: unknown, type: new (...args: never[]) => Error, code: string, message?: RegExp): boolean {
  return (
    error instanceof type && (error as { code?: unknown }).code === code && (message === undefined || message.test(error.message))
  );
}

test('a channel spec that can never name a valid channel is an InvalidChannelError when the route is created', (t) => {
  const eventStream = new EventStream({ maxChannelsPerRequest: 3, maxChannelNameLength: 20 });
  cleanups(t)(() => eventStream.close());
  const bad: Array<[unknown, RegExp]> = [
    ['my room', /outside/],
    ['', /empty/],
    ['a,b', /outside/],
    ['x'.repeat(21), /longer than 20/],
    ['{room', /malformed template/],
    ['room}', /malformed template/],
    ['{}', /malformed template/],
    ['{1st}', /malformed template/],
    ['{room-id}', /malformed template/],
    ['{{room}}', /malformed template/],
    ['chat room/{id}', /may only contain/],
    [`${'x'.repeat(20)}{id}`, /longer than 20/],
    [['ok', 'bad room'], /outside/],
    [['ok', '{room'], /malformed template/],
    [['a', 'b', 'c', 'd'], /at most 3/],
    [[], /at least one channel/],
    [['ok', 42], /as strings, got number/],
    [42, /got number/],
    [null, /got null/],
    [{ channel: 'x' }, /got object/],
  ];
  for (const [spec, reason] of bad) {
    const label = JSON.stringify(spec);
    assert.throws(
      () => eventStream(spec as never),
      (error) => isCoded(error, InvalidChannelError, 'ERR_EVENTSTREAM_INVALID_CHANNEL', reason),
      label,
    );
    assert.throws(() => eventStream.fetchHandler(spec as never), InvalidChannelError, `fetchHandler(${label})`);
  }
  for (const good of ['news', 'room-{id}', '{a}:{b}', 'chat/{room_1}', ['a', 'a', 'b', '{id}'], () => 'x']) {
    assert.equal(typeof eventStream(good as never), 'function', JSON.stringify(good));
  }
});

test('every error thrown at a caller has a code: a method called off its instance, a bad HttpRequestError status', async () => {
  const eventStream = new EventStream();
  const { publishEvent, stats } = eventStream;
  assert.throws(
    () => stats(),
    (error) => isCoded(error, InvalidArgumentError, 'ERR_EVENTSTREAM_INVALID_ARGUMENT', /bind it/),
  );
  await assert.rejects(publishEvent.call(undefined, 'c', { data: 1 }), InvalidArgumentError);
  for (const status of [200, 302, 500, 399, 600, 401.5, Number.NaN]) {
    assert.throws(
      () => new HttpRequestError(status, 'no'),
      (error) => isCoded(error, InvalidArgumentError, 'ERR_EVENTSTREAM_INVALID_ARGUMENT'),
      String(status),
    );
  }
  for (const highWaterMark of [-1, 1.5, Number.NaN, '8' as unknown as number]) {
    assert.throws(() => eventStream.createChannelWritable('w', { highWaterMark }), InvalidArgumentError, String(highWaterMark));
  }
  assert.equal(new HttpRequestError(400, 'x').code, 'ERR_EVENTSTREAM_BAD_REQUEST');
  assert.equal(new HttpRequestError(406, 'x').code, 'ERR_EVENTSTREAM_NOT_ACCEPTABLE');
  for (const status of [401, 403, 404, 429, 451, 503]) {
    const error = new HttpRequestError(status, 'x');
    assert.equal(error.code, 'ERR_EVENTSTREAM_REQUEST_REFUSED', String(status));
    assert.equal(error.status, status);
  }
  void eventStream.close();
});

test('an unknown option is an InvalidOptionError naming it and the option it was probably meant to be', () => {
  const cases: Array<[() => unknown, RegExp]> = [
    [() => new EventStream({ keepalive: 1000 } as never), /unknown option "keepalive"; did you mean "keepAliveInterval"\?/],
    [() => new EventStream({ maxBuferBytes: 1 } as never), /"maxBuferBytes"; did you mean "maxBufferBytes"\?/],
    [() => new EventStream({ retry: 1000 } as never), /"retry"; did you mean "clientRetry"\?/],
    [() => new EventStream({ prefix: 'x-' } as never), /"prefix"; did you mean "gripPrefix"\?/],
    [() => new EventStream({ zzz: 1 } as never), /"zzz"; known options: grip, gripPrefix, .*maxEventBytes/],
    [
      () => new MemoryEventStore({ maxEvent: 10 } as never),
      /MemoryEventStore: unknown option "maxEvent"; did you mean "maxEvents"\?/,
    ],
    [() => new MemoryEventStore({ ttl: 10 } as never), /MemoryEventStore: unknown option "ttl"/],
    [
      () => new RedisEventStore({ prefix: 'app:' } as never),
      /RedisEventStore: unknown option "prefix"; did you mean "keyPrefix"\?/,
    ],
  ];
  for (const [make, message] of cases) {
    assert.throws(
      make,
      (error) => isCoded(error, InvalidOptionError, 'ERR_EVENTSTREAM_INVALID_OPTION', message),
      String(message),
    );
  }
  // In a GRIP config a misspelt verify_key would trust any Grip-Sig, so it is refused like any bad GRIP config.
  assert.throws(
    () => new EventStream({ grip: { control_uri: 'http://127.0.0.1:5561', verifyKey: 'secret' } as never }),
    (error) =>
      isCoded(error, GripConfigError, 'ERR_EVENTSTREAM_GRIP_CONFIG', /unknown option "verifyKey"; did you mean "verify_key"\?/),
  );
  assert.throws(
    () => new EventStream({ maxBufferBytes: 4096, maxEventBytes: 2049 }),
    (error) =>
      isCoded(
        error,
        InvalidOptionError,
        'ERR_EVENTSTREAM_INVALID_OPTION',
        /maxEventBytes \(2049\) may be at most half of options.maxBufferBytes \(4096\)/,
      ),
  );
});

/** A channel function refusing anonymous requests; with `x-user` it names the user's channel. */
function authorized(req: SseRequest): string {
  const user = req.headers['x-user'];
  if (typeof user !== 'string') throw new HttpRequestError(401, 'Log in first');
  if (user === 'mallory') throw new HttpRequestError(403, 'Not for you');
  return `user-${user}`;
}

async function assertRefusals(url: string): Promise<void> {
  for (const [headers, status, body] of [
    [{}, 401, 'Log in first\n'],
    [{ 'x-user': 'mallory' }, 403, 'Not for you\n'],
  ] as const) {
    const response = await get(url, { ...SSE, ...headers });
    assert.equal(response.status, status);
    assert.equal(response.body, body, 'the message as plain text, no error page, no stack');
    assert.match(String(response.headers['content-type']), /^text\/plain/);
  }
}

test('a channel function throwing HttpRequestError(401) gets 401 and its message as plain text: Express 5, connect, no next, web', async (t) => {
  const defer = cleanups(t);
  const eventStream = new EventStream();
  defer(() => eventStream.close());
  const errorsSeen: unknown[] = [];

  const app = express();
  app.get('/sync', eventStream(authorized));
  app.get(
    '/async',
    eventStream(async (req: SseRequest) => authorized(req)),
  );
  app.use((error: unknown, _req: IncomingMessage, res: ServerResponse, _next: unknown) => {
    errorsSeen.push(error);
    res.writeHead(500).end('error handler');
  });
  const expressServer = await listen(app);
  defer(() => expressServer.close());
  await assertRefusals(`${expressServer.url}/sync`);
  await assertRefusals(`${expressServer.url}/async`);
  assert.deepEqual(errorsSeen, [], 'a refusal never reaches the error handler');

  const connectApp = connect();
  connectApp.use('/events', eventStream(authorized) as unknown as connect.NextHandleFunction);
  const connectServer = await listen(connectApp);
  defer(() => connectServer.close());
  await assertRefusals(`${connectServer.url}/events`);

  const bare = eventStream(authorized);
  const bareServer = await listen((req, res) => void bare(req, res));
  defer(() => bareServer.close());
  await assertRefusals(bareServer.url);

  const web = eventStream.fetchHandler((request: Request) =>
    authorized({ headers: Object.fromEntries(request.headers) } as SseRequest),
  );
  const webServer = await listen(async (req, res) => {
    const response = await web(new Request(`http://127.0.0.1${req.url}`, { headers: req.headers as Record<string, string> }));
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  });
  defer(() => webServer.close());
  await assertRefusals(webServer.url);

  // An authorized request gets its stream.
  const stream = await openRaw(`${expressServer.url}/sync`, { ...SSE, 'x-user': 'alice' });
  defer(() => stream.close());
  assert.equal(stream.status, 200);
  assert.deepEqual(eventStream.stats().channels, { 'user-alice': 1 });
});
