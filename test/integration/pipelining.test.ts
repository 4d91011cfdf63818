import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { EventStream } from '../../src/index.js';
import { parseResponse, RawConnection } from '../helpers/raw-http.js';
import { cleanups } from '../helpers/requirements.js';
import { listen } from '../helpers/server.js';
import { until } from '../helpers/sse-client.js';
import { forkStreamServer, type StreamServer, untilAsync } from '../helpers/stream-server.js';

/**
 * Pipelined HTTP/1.1 requests over raw sockets. Node answers them in order
 * and keeps a response whose request came behind another in the
 * connection's outgoing queue; it never emits 'close' on such a response
 * when the connection goes away. A stream must not outlive its connection
 * whichever response is in flight, nor hold a subscription or buffer events
 * while it waits for its turn.
 */

const STREAM_REQUEST = 'GET /events/piped HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n';

type Leaving = 'destroy' | 'half-close' | 'reset';

/** One connection that pipelines two stream requests and goes away as `how` says. */
function pipelineAndLeave(port: number, how: Leaving): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.on('close', () => resolve());
    socket.on('connect', () => {
      socket.write(STREAM_REQUEST + STREAM_REQUEST);
      // Half-closed: the requests are all the client will ever send; it reads on until the server closes too.
      if (how === 'half-close') socket.end();
    });
    // The first stream is open: its client leaves while the second response waits behind it.
    socket.once('data', () => {
      if (how === 'destroy') socket.destroy();
      else if (how === 'reset') socket.resetAndDestroy();
    });
    socket.resume();
  });
}

/** Publishes small events until `stop` resolves: streams that leaked would buffer every one of them. */
async function publishUntil(server: StreamServer, stop: Promise<unknown>): Promise<number> {
  let stopped = false;
  void stop.then(() => (stopped = true));
  let published = 0;
  while (!stopped) {
    await server.publish('piped', 'p'.repeat(150), { count: 20 });
    published += 20;
  }
  return published;
}

const MB = 1024 * 1024;

for (const how of ['destroy', 'half-close', 'reset'] as const) {
  test(`1,000 connections that pipeline two stream requests and leave (${how}) leave no stream behind, and the heap stays at its baseline while publishing goes on`, async (t) => {
    const defer = cleanups(t);
    const server = await forkStreamServer({ keepAliveInterval: 60_000, historyEvents: 100 });
    defer(() => server.close());
    const connectInBatches = async (total: number): Promise<void> => {
      for (let start = 0; start < total; start += 100) {
        await Promise.all(Array.from({ length: Math.min(100, total - start) }, () => pipelineAndLeave(server.port, how)));
      }
    };

    // Warm up (lazily built internals, a full history), so the baseline is the steady state.
    await publishUntil(server, connectInBatches(100));
    await server.publish('piped', 'p'.repeat(150), { count: 200 });
    await untilAsync(async () => (await server.snapshot()).stats!.streams === 0, 5000, 'the warm-up streams to close');
    const baseline = await server.snapshot();

    const published = await publishUntil(server, connectInBatches(1000));
    assert.ok(published > 0);
    // Every connection has closed on the client's side: the server follows within a second.
    await untilAsync(
      async () => {
        const { stats, connections } = await server.snapshot();
        return connections === 0 && stats!.streams === 0;
      },
      1000,
      'every stream to be released',
    );
    await server.publish('piped', 'p'.repeat(150), { count: 500 });
    const after = await server.snapshot();
    assert.equal(after.stats!.streams, 0);
    assert.equal(after.stats!.hubs, 0);
    assert.deepEqual(after.stats!.channels, {});
    assert.equal(after.keepAliveTimers, 0, 'the keep-alive clock stopped with the last stream');
    assert.ok(
      after.heapUsed - baseline.heapUsed < 3 * MB,
      `heap after GC ${(after.heapUsed / MB).toFixed(1)} MB, baseline ${(baseline.heapUsed / MB).toFixed(1)} MB`,
    );
  });
}

test('a stream queued behind a slow response holds no subscription and buffers no event until its turn, then starts there', async (t) => {
  const defer = cleanups(t);
  const eventStream = new EventStream({ keepAliveInterval: 0 });
  defer(() => eventStream.close());
  let finishSlow = (): void => {};
  let queued: ServerResponse | null = null;
  const server = await listen((req, res) => {
    if (req.url === '/slow') {
      finishSlow = () => res.end('slow answer');
      return;
    }
    queued = res;
    void eventStream.run(req, res, 'waiting');
  });
  defer(() => server.close());
  const client = new RawConnection(server.port);
  defer(() => client.close());

  client.send('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
  await until(() => queued !== null, 5000, 'the stream request');
  const held = queued!;
  assert.equal(held.socket, null, 'the response is queued behind the slow one');
  for (let i = 0; i < 100; i++) await eventStream.publishEvent('waiting', { data: 'x'.repeat(1000) });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(eventStream.stats().streams, 0, 'no stream while queued');
  assert.equal(eventStream.stats().hubs, 0, 'no hub retained while queued');
  // Only its head waits in Node's queue (which is what makes Node stop reading a connection flooding it with requests).
  assert.ok(held.writableLength < 512, `${held.writableLength} bytes queued for the response`);

  finishSlow();
  await until(() => eventStream.stats().streams === 1, 5000, 'the stream to open at its turn');
  await eventStream.publishEvent('waiting', { data: 'after' });
  await client.waitFor('the event published after the stream opened', (text) => text.includes('data: "after"'));
  const slow = parseResponse(client.text());
  assert.equal(slow.body, 'slow answer');
  const stream = /\r\n\r\n([0-9a-f]+)\r\nevent: stream-open\ndata: \nid: waiting:(\d+)\n\n\r\n([0-9a-f]+)\r\n(.*)\r\n$/s.exec(
    slow.rest,
  );
  assert.ok(stream, JSON.stringify(slow.rest));
  assert.equal(
    stream[4],
    `data: "after"\nid: waiting:${Number(stream[2]) + 1}\n\n`,
    'it starts where the channel stood at its turn',
  );
});

test('a connection piling up pipelined stream requests behind a stream stops being read, and leaves nothing once gone', async (t) => {
  const defer = cleanups(t);
  // A connection Node has stopped reading sees its client leave only when it next writes: here, a keep-alive.
  const eventStream = new EventStream({ keepAliveInterval: 200 });
  defer(() => eventStream.close());
  let requests = 0;
  let connection: net.Socket | null = null;
  const server = await listen((req, res) => {
    requests++;
    connection = req.socket;
    void eventStream.run(req, res, 'flood');
  });
  defer(() => server.close());
  const client = new RawConnection(server.port);
  defer(() => client.close());

  // 2.6 MB of requests, all but the first waiting behind a stream that never ends.
  const sent = 40_000;
  client.send(STREAM_REQUEST.repeat(sent));
  // Node stops reading a connection once the responses queued on it hold more than a socket's worth of
  // bytes; each queued stream's head counts, so the flood is paused after a small part of it.
  await until(() => connection?.isPaused() === true, 10_000, 'Node to stop reading the connection');
  assert.ok(requests < sent / 4, `${requests} of ${sent} pipelined requests were read`);
  assert.equal(eventStream.stats().streams, 1, 'only the stream at the head of the connection is open');

  client.close();
  await until(() => eventStream.stats().streams === 0 && eventStream.stats().hubs === 0, 5000, 'everything released');
});

test('connections reset right after writing a stream request leave no stream (the reset can come before the opening write)', async (t) => {
  const defer = cleanups(t);
  const eventStream = new EventStream({ keepAliveInterval: 0 });
  defer(() => eventStream.close());
  const server = await listen((req, res) => void eventStream.run(req, res, 'reset'));
  defer(() => server.close());

  for (let start = 0; start < 300; start += 50) {
    await Promise.all(
      Array.from(
        { length: 50 },
        () =>
          new Promise<void>((resolve) => {
            const socket = net.connect(server.port, '127.0.0.1');
            socket.on('error', () => {});
            socket.on('close', () => resolve());
            socket.write(STREAM_REQUEST.replace('piped', 'reset'));
            socket.resetAndDestroy();
          }),
      ),
    );
  }
  await until(() => eventStream.stats().streams === 0, 1000, 'every stream released');
  assert.equal(eventStream.stats().hubs, 0);
});

test('a pipelined stream request whose client leaves while its channels are being resolved opens nothing', async (t) => {
  const defer = cleanups(t);
  const eventStream = new EventStream({ keepAliveInterval: 0 });
  defer(() => eventStream.close());
  // A channel function that takes its time, as an authorization lookup would.
  let resolved = 0;
  const events = eventStream(
    () =>
      new Promise<string>((resolve) =>
        setTimeout(() => {
          resolved++;
          resolve('lookup');
        }, 20),
      ),
  );
  let requests = 0;
  const server = await listen((req, res) => {
    requests++;
    void events(req, res);
  });
  defer(() => server.close());

  for (let i = 0; i < 20; i++) {
    const client = new RawConnection(server.port);
    client.send(STREAM_REQUEST + STREAM_REQUEST);
    await until(() => requests === 2 * (i + 1), 5000, 'both requests to arrive');
    client.close();
    await client.closedPromise;
  }
  await until(() => resolved === 40, 5000, 'every channel function to resolve, after its connection was gone');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(eventStream.stats().streams, 0, 'no stream left');
  assert.equal(eventStream.stats().hubs, 0);
});
