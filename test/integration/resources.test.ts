import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { EventStream } from '../../src/index.js';
import { cleanups } from '../helpers/requirements.js';
import { listen } from '../helpers/server.js';
import { RecordingEventSource, until } from '../helpers/sse-client.js';
import { liveTimers, liveTimersOf, trackTimers } from '../helpers/timers.js';

trackTimers();

test('a client that never reads is dropped while five others receive everything', async (t) => {
  const defer = cleanups(t);
  const maxBufferBytes = 256 * 1024;
  const eventStream = new EventStream({ maxBufferBytes });
  defer(() => eventStream.close());
  const server = await listen((req, res) => void eventStream.run(req, res, 'firehose'));
  defer(() => server.close());

  // A raw socket that sends a request and then never reads a byte.
  const stuck = net.connect(server.port, '127.0.0.1');
  stuck.pause();
  const stuckClosed = new Promise<void>((resolve) => stuck.on('close', () => resolve()));
  stuck.on('error', () => {});
  defer(() => stuck.destroy());
  stuck.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n');

  const readers = Array.from({ length: 5 }, () => new RecordingEventSource(server.url));
  defer(() => {
    for (const reader of readers) reader.close();
  });
  await Promise.all(readers.map((reader) => reader.opened));
  await until(() => eventStream.stats().channels.firehose === 6, 5000, 'six subscribers');

  // ~24 MB: far beyond what the kernel's socket buffers and the 256 KiB bound can hold for the stuck client.
  const payload = 'x'.repeat(8 * 1024);
  const total = 3000;
  await pipeline(
    Readable.from(Array.from({ length: total }, (_, i) => ({ data: { i, payload } }))),
    eventStream.createChannelWritable('firehose'),
  );
  await Promise.all(readers.map((reader) => reader.waitFor(total, 'message', 60_000)));
  for (const reader of readers) {
    assert.equal(reader.events.length, total);
    assert.deepEqual(
      reader.events.map((event) => JSON.parse(event.data).i),
      Array.from({ length: total }, (_, i) => i),
    );
  }
  const stats = eventStream.stats();
  assert.equal(stats.slowClientsDropped, 1);
  assert.equal(stats.channels.firehose, 5);
  // The server destroyed the stuck connection instead of buffering for it.
  stuck.resume();
  await stuckClosed;

  for (const reader of readers) reader.close();
  await until(() => eventStream.stats().streams === 0);
});

test('thousands of connect/disconnect cycles return hubs, streams, listeners and timers to baseline', async (t) => {
  const defer = cleanups(t);
  const eventStream = new EventStream({ keepAliveInterval: 60_000 });
  defer(() => eventStream.close());
  const server = await listen((req, res) => {
    const channel = new URL(req.url ?? '/', 'http://x').searchParams.get('c') ?? 'x';
    void eventStream.run(req, res, [channel, 'shared']);
  });
  defer(() => server.close());
  const agent = new http.Agent({ keepAlive: false, maxSockets: 50 });
  defer(() => agent.destroy());

  const openAndDrop = (i: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = http.get(`${server.url}/?c=cycle-${i % 37}`, { agent }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (error) => ((error as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(error)));
    });

  // Warm up once so lazily created internals are not counted as leaks.
  await openAndDrop(0);
  await until(() => eventStream.stats().streams === 0);
  const timersBefore = liveTimers();
  const listenersBefore = server.server.listenerCount('request') + server.server.listenerCount('connection');

  // The keep-alive clock ticks four times per interval: 60 s / 4.
  const keepAlivePeriod = 15_000;
  assert.equal(liveTimersOf(keepAlivePeriod), 0, 'no keep-alive timer without streams');
  const cycles = 3000;
  let peakStreams = 0;
  let peakKeepAliveTimers = 0;
  const publisher = setInterval(() => {
    const { streams } = eventStream.stats();
    peakStreams = Math.max(peakStreams, streams);
    if (streams > 0) peakKeepAliveTimers = Math.max(peakKeepAliveTimers, liveTimersOf(keepAlivePeriod));
    void eventStream.publishEvent('shared', { data: 'tick' });
  }, 2);
  defer(() => clearInterval(publisher));
  for (let start = 0; start < cycles; start += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, i) => openAndDrop(start + i)));
  }
  clearInterval(publisher);
  assert.ok(peakStreams > 0, 'streams were open during the cycles');
  // The hook sees the keep-alive clock's timer while streams live (so the checks below can fail on a leak), and there is one per instance, not one per stream.
  assert.equal(peakKeepAliveTimers, 1, 'one keep-alive timer while streams were open');

  await until(() => eventStream.stats().streams === 0, 10_000, 'streams back to 0');
  const stats = eventStream.stats();
  assert.equal(stats.hubs, 0);
  assert.deepEqual(stats.channels, {});
  assert.equal(liveTimersOf(keepAlivePeriod), 0, 'the keep-alive timer stopped with the last stream');
  // Unrelated timers (the test's own polling, Node's sockets) may come and go, but none accumulate.
  assert.ok(liveTimers() <= timersBefore, `live timers ${liveTimers()} > baseline ${timersBefore}`);
  assert.equal(server.server.listenerCount('request') + server.server.listenerCount('connection'), listenersBefore);
});
