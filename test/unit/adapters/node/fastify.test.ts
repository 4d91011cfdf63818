/**
 * Fastify 5, two ways:
 *
 * 1. As connect-style middleware through `@fastify/middie`:
 *
 *      await app.register(middie);
 *      app.use('/events', eventStream('{room}'));   // {room} from the query string (middie sets req.raw.query)
 *
 * 2. From a route handler, on the raw Node request and response. `reply.hijack()`
 *    tells Fastify the handler owns the raw response, so Fastify runs none of its
 *    reply machinery (serializers, onSend hooks, its own send) for it:
 *
 *      app.get('/rooms/:room', async (request, reply) => {
 *        reply.hijack();
 *        await eventStream.run(request.raw, reply.raw, request.params.room);
 *      });
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import middie from '@fastify/middie';
import Fastify, { type FastifyInstance } from 'fastify';
import { EventStream } from '../../../../src/index.js';
import { get, RecordingEventSource, until } from '../../../helpers/sse-client.js';

async function start(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

/** Fastify with a logger that keeps what it logs at warn level or above. */
function fastifyRecordingWarnings(): { app: FastifyInstance; warnings: string[] } {
  const warnings: string[] = [];
  const app = Fastify({
    forceCloseConnections: true,
    logger: { level: 'warn', stream: { write: (line: string) => void warnings.push(line) } },
  });
  return { app, warnings };
}

async function noStreamsLeft(eventStream: EventStream): Promise<void> {
  await until(() => eventStream.stats().streams === 0 && eventStream.stats().hubs === 0, 5000, 'streams and hubs to be released');
  assert.deepEqual(eventStream.stats().channels, {});
}

test('Fastify 5 + @fastify/middie: eventStream(spec) as middleware', async () => {
  const eventStream = new EventStream();
  const { app, warnings } = fastifyRecordingWarnings();
  await app.register(middie);
  app.use('/events', eventStream('{room}'));
  app.use('/fixed', eventStream(['news', 'alerts']));
  // A Fastify route next to the middleware still works.
  app.get('/health', async () => ({ ok: true }));
  const url = await start(app);
  try {
    const room = new RecordingEventSource(`${url}/events?room=lobby`);
    const fixed = new RecordingEventSource(`${url}/fixed`, ['message', 'alert']);
    await Promise.all([room.opened, fixed.opened]);
    assert.deepEqual(eventStream.stats().channels, { lobby: 1, news: 1, alerts: 1 });

    await eventStream.publishEvent('lobby', { data: { text: 'hello lobby' } });
    await eventStream.publishEvent('news', { data: 'headline' });
    await eventStream.publishEvent('alerts', { event: 'alert', data: 'fire drill' });
    await eventStream.publishEvent('elsewhere', { data: 'nobody listens' });
    await Promise.all([room.waitFor(1), fixed.waitFor(1), fixed.waitFor(1, 'alert')]);
    assert.deepEqual(
      room.events.map(({ type, data }) => ({ type, data })),
      [{ type: 'message', data: '{"text":"hello lobby"}' }],
    );
    assert.match(room.events[0]!.lastEventId, /^lobby:\d+$/);
    assert.deepEqual(
      fixed.events.map((e) => [e.type, JSON.parse(e.data)]),
      [
        ['message', 'headline'],
        ['alert', 'fire drill'],
      ],
    );

    // Request errors are answered by the middleware, with a reason, never a 500.
    const bad = await get(`${url}/events?room=a,b`, { accept: 'text/event-stream' });
    assert.equal(bad.status, 400);
    assert.match(bad.headers['content-type'] ?? '', /^text\/plain/);
    assert.match(bad.body, /Invalid channel/);
    const missing = await get(`${url}/events`, { accept: 'text/event-stream' });
    assert.equal(missing.status, 400);
    assert.match(missing.body, /Missing route parameter "room"/);
    const notAcceptable = await get(`${url}/fixed`, { accept: 'application/json' });
    assert.equal(notAcceptable.status, 406);

    const health = await get(`${url}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body), { ok: true });

    room.close();
    fixed.close();
    await noStreamsLeft(eventStream);
    assert.deepEqual(warnings, []);
  } finally {
    await eventStream.close();
    await app.close();
  }
});

test('Fastify 5 route handler: reply.hijack() then eventStream.run(request.raw, reply.raw, channels)', async () => {
  const eventStream = new EventStream();
  const { app, warnings } = fastifyRecordingWarnings();
  const handlerErrors: unknown[] = [];
  app.get<{ Params: { room: string } }>('/rooms/:room', async (request, reply) => {
    reply.hijack();
    try {
      await eventStream.run(request.raw, reply.raw, [request.params.room, 'everyone']);
    } catch (error) {
      handlerErrors.push(error);
      throw error;
    }
  });
  const url = await start(app);
  try {
    const first = new RecordingEventSource(`${url}/rooms/r1`);
    const second = new RecordingEventSource(`${url}/rooms/r2`);
    await Promise.all([first.opened, second.opened]);
    assert.deepEqual(eventStream.stats().channels, { r1: 1, r2: 1, everyone: 2 });

    // Headers as the library sets them, through Fastify.
    const raw = await fetch(`${url}/rooms/r3`, { headers: { accept: 'text/event-stream' } });
    assert.equal(raw.status, 200);
    assert.equal(raw.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    assert.equal(raw.headers.get('cache-control'), 'no-cache, no-transform');
    await raw.body?.cancel();

    await eventStream.publishEvent('r1', { data: 'only r1' });
    await eventStream.publishEvent('everyone', { data: 'all' });
    await Promise.all([first.waitFor(2), second.waitFor(1)]);
    assert.deepEqual(
      first.events.map((e) => JSON.parse(e.data)),
      ['only r1', 'all'],
    );
    assert.deepEqual(
      second.events.map((e) => JSON.parse(e.data)),
      ['all'],
    );

    const bad = await get(`${url}/rooms/${encodeURIComponent('bad room')}`, { accept: 'text/event-stream' });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /Invalid channel/);

    first.close();
    second.close();
    await noStreamsLeft(eventStream);
    assert.deepEqual(handlerErrors, []);
    assert.deepEqual(warnings, []);
  } finally {
    await eventStream.close();
    await app.close();
  }
});
