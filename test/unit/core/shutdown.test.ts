/**
 * A rolling restart as a browser lives through it: the instance serving a
 * client closes, and the client must come back by itself to whatever serves
 * the endpoint next. A real EventSource (the `eventsource` package) against
 * a real HTTP server whose handler switches from the closing instance to a
 * new one only after the client has already been answered by the closed one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventSource } from 'eventsource';
import { EventStream } from '../../../src/index.js';
import { listen } from '../../helpers/server.js';
import { RecordingEventSource, until } from '../../helpers/sse-client.js';

test('after close() a client keeps reconnecting until a new instance serves it, and never gives up', async () => {
  let current = new EventStream({ clientRetry: 50 });
  const closed = current;
  let closing = false;
  let answeredWhileClosed = 0;
  const server = await listen((req, res) => {
    if (closing && current === closed) answeredWhileClosed++;
    void current.run(req, res, 'restart');
  });
  const client = new RecordingEventSource(`${server.url}/events`, ['message', 'stream-open']);
  let gaveUp = false;
  client.source.addEventListener('error', () => {
    if (client.source.readyState === EventSource.CLOSED) gaveUp = true;
  });
  try {
    await client.opened;
    await current.publishEvent('restart', { data: 'before' });
    await client.waitFor(1);
    closing = true;
    await closed.close();
    // Its stream ended; each reconnect is answered by the closed instance until the new one takes over.
    await until(() => answeredWhileClosed >= 2, 5000, 'the client to retry against the closed instance');
    assert.equal(gaveUp, false, 'EventSource gave up after close()');
    current = new EventStream({ clientRetry: 50 });
    await until(() => current.stats().streams === 1, 5000, 'the client to reach the new instance');
    await current.publishEvent('restart', { data: 'after' });
    await client.waitFor(2);
    assert.deepEqual(
      client.of().map((event) => event.data),
      ['"before"', '"after"'],
    );
    assert.equal(gaveUp, false);
  } finally {
    client.close();
    await current.close();
    await server.close();
  }
});

test('a web request after close() gets a stream that only says when to reconnect', async () => {
  const eventStream = new EventStream({ clientRetry: 1500 });
  await eventStream.close();
  const response = await eventStream.fetchHandler('{id}')(new Request('http://x/events?id=a'));
  assert.equal(response.status, 200);
  assert.equal(await response.text(), 'retry: 1500\n: this server is shutting down; reconnect later\n\n');
});
