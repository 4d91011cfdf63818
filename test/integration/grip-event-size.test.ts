/**
 * With a GRIP proxy, an event must also fit the proxy's publish request:
 * Pushpin refuses bodies of 1,000,000 bytes or more, and an event's text is
 * JSON-escaped into one, which can double it (every `"` and `\` of the
 * event's JSON data is escaped again). Against a real Pushpin, the worst-case
 * event at the limit reaches a client through the proxy.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import express from 'express';
import { EventStream, InvalidEventError, InvalidOptionError } from '../../src/index.js';
import { requirePushpin, startPushpin } from '../helpers/pushpin.js';
import { cleanups } from '../helpers/requirements.js';
import { listen } from '../helpers/server.js';
import { openRaw, until } from '../helpers/sse-client.js';

const GRIP_EVENT_LIMIT = 480 * 1024;

/** Data whose event (`data: "<escaped>"\n`) is exactly `bytes` long and made of `"`, each escaped as `\"`: the most a publish body can grow. */
function escapeHeavyData(bytes: number): string {
  const room = bytes - 'data: ""\n'.length;
  return '"'.repeat(Math.floor(room / 2)) + 'x'.repeat(room % 2);
}

test('with GRIP the event limit defaults to what the proxy takes; the worst-case event at it arrives through Pushpin, one byte more is refused', {
  timeout: 60_000,
}, async (t) => {
  if (!requirePushpin(t)) return;
  const defer = cleanups(t);
  let app: express.Express = express();
  const origin = await listen((req, res) => app(req, res));
  defer(() => origin.close());
  const pushpin = await startPushpin({ routes: origin.port });
  defer(() => pushpin.stop());
  const grip = { control_uri: pushpin.controlUri, verify_key: pushpin.sigKey };

  assert.throws(
    () => new EventStream({ grip, maxEventBytes: GRIP_EVENT_LIMIT + 1 }),
    (error: unknown) => error instanceof InvalidOptionError && /GRIP proxy/.test(error.message),
  );
  const eventStream = new EventStream({ grip });
  defer(() => eventStream.close());
  app = express();
  app.get('/events/:id', eventStream('{id}'));

  const client = await openRaw(`${pushpin.proxyUrl}/events/big`, { accept: 'text/event-stream' });
  defer(() => client.close());
  await until(() => client.text().startsWith('event: stream-open\n'), 10_000, 'the stream through Pushpin');
  assert.equal(eventStream.stats().streams, 0, 'the stream is held by Pushpin');

  const data = escapeHeavyData(GRIP_EVENT_LIMIT);
  assert.equal(Buffer.byteLength(`data: ${JSON.stringify(data)}\n`), GRIP_EVENT_LIMIT);
  await eventStream.publishEvent('big', { data });
  await assert.rejects(
    eventStream.publishEvent('big', { data: escapeHeavyData(GRIP_EVENT_LIMIT + 1) }),
    (error: unknown) => error instanceof InvalidEventError && error.message.includes(`maxEventBytes (${GRIP_EVENT_LIMIT})`),
  );
  await eventStream.publishEvent('big', { data: 'after' });
  const expected = `data: ${JSON.stringify(data)}\nid: big:`;
  await until(() => client.text().includes('data: "after"'), 20_000, 'the events through Pushpin');
  assert.ok(client.text().includes(expected), 'the event at the limit, whole');
});
