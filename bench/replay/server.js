// Server child of the replay benchmark: an EventStream with a
// MemoryEventStore serving GET /events/<channel> on 127.0.0.1:<free port>
// (`eventStream.run(req, res, channel)`, so `Last-Event-ID` and
// `?lastEventId=` resume), driven over IPC by bench/replay.js.
// Usage (forked): node --expose-gc bench/replay/server.js
import http from 'node:http';
import { Readable } from 'node:stream';
import { listenOnLoopback, serve, wallNow } from '../lib/ipc.js';

const { EventStream, MemoryEventStore } = await import('../../dist/index.js');

/** The current EventStream; each measurement gets a fresh one (and a fresh store). */
/** @type {import('../../dist/index.js').EventStream | null} */
let es = null;
/** @type {import('../../dist/index.js').MemoryEventStore | null} */
let store = null;

/** The current EventStream and store; the parent resets before anything else. */
function current() {
  if (es === null || store === null) throw new Error('reset first');
  return { es, store };
}

const server = http.createServer((req, res) => {
  const match = /^\/events\/([A-Za-z0-9_-]+)(?:\?.*)?$/.exec(req.url ?? '');
  if (es === null || match === null) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('no such stream\n');
    return;
  }
  es.run(req, res, match[1]).catch((/** @type {unknown} */ error) => {
    console.error('replay server: run() failed', error);
    res.destroy();
  });
});

/**
 * Events whose JSON data is exactly `bytes` long: {"i":N,"p":"xxx..."}.
 * @param {number} count
 * @param {number} bytes
 */
function buildEvents(count, bytes) {
  const events = new Array(count);
  for (let i = 0; i < count; i++) {
    const bare = JSON.stringify({ i, p: '' }).length;
    events[i] = { data: { i, p: 'x'.repeat(Math.max(0, bytes - bare)) } };
  }
  return events;
}

/** @type {() => Promise<void>} */
const tick = () => new Promise((resolve) => setImmediate(resolve));

serve({
  start: () => listenOnLoopback(server),

  /** A fresh EventStream and MemoryEventStore; the previous ones are closed. */
  async reset({ storeEvents }) {
    if (es !== null) await es.close();
    store = new MemoryEventStore({ maxEvents: storeEvents });
    es = new EventStream({ store });
    return null;
  },

  streams: () => current().es.stats().streams,

  head: ({ channel }) => current().store.head(channel),

  /**
   * Builds `count` events (untimed), then pipes them into the channel:
   * `Readable.from(events).pipe(eventStream.createChannelWritable(channel))`.
   * Resolves when the writable has finished, with the wall time the pipe
   * started (the timed part's start) and finished.
   */
  async publish({ channel, count, bytes }) {
    const events = buildEvents(count, bytes);
    const writable = current().es.createChannelWritable(channel);
    const finished = new Promise((resolve, reject) => {
      writable.once('finish', resolve);
      writable.once('error', reject);
    });
    const startedAt = wallNow();
    Readable.from(events).pipe(writable);
    await finished;
    return { startedAt, finishedAt: wallNow() };
  },

  async gc() {
    for (let i = 0; i < 3; i++) {
      globalThis.gc?.();
      await tick();
    }
  },
});
