// The EventStream demo as an Express 5 app, without a listening socket:
// demo/server.js listens with it, and the browser test starts it on a free port.
import { fileURLToPath } from 'node:url';
import express from 'express';
import { Registry } from 'prom-client';
import { EventStream, EventStreamClosedError, InvalidChannelError, InvalidEventError } from '../dist/index.js';
import { registerMetrics } from '../dist/prometheus.js';

const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));
export const DEFAULT_ROOM = 'demo';
export const MAX_TEXT_LENGTH = 500;

/**
 * @param {{ tickMs?: number, eventStreamOptions?: import('../dist/index.js').EventStreamOptions }} [options]
 */
export function createDemo({ tickMs = 1000, eventStreamOptions } = {}) {
  if (!Number.isFinite(tickMs) || tickMs <= 0) throw new TypeError('tickMs must be a positive number of milliseconds');

  const eventStream = new EventStream(eventStreamOptions);
  // A registry of the demo's own, so several demos in one process (the tests) do not clash.
  const registry = new Registry();
  const unregisterMetrics = registerMetrics(eventStream, registry);
  const app = express();
  app.disable('x-powered-by');

  // Prometheus scrapes this.
  app.get('/metrics', async (_req, res, next) => {
    try {
      res.type(registry.contentType).send(await registry.metrics());
    } catch (error) {
      next(error);
    }
  });

  app.use(express.static(PUBLIC_DIR));

  // The browser's EventSource connects here; the room in the path is the channel.
  app.get('/events/:room', eventStream('{room}'));

  app.post('/publish/:room', express.json({ limit: '8kb' }), async (req, res, next) => {
    const { room } = req.params;
    const body = req.body;
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
      sendText(res, 400, 'Send a JSON object like {"text": "hello"} with content-type application/json.');
      return;
    }
    const text = typeof body.text === 'string' ? body.text.trim() : undefined;
    if (text === undefined) {
      sendText(res, 400, 'The "text" field must be a string.');
      return;
    }
    if (text === '') {
      sendText(res, 400, 'The message is empty.');
      return;
    }
    if (text.length > MAX_TEXT_LENGTH) {
      sendText(res, 400, `The message is longer than ${MAX_TEXT_LENGTH} characters.`);
      return;
    }
    try {
      await eventStream.publishEvent(room, { event: 'chat', data: { text, room, time: new Date().toISOString() } });
      res.status(204).end();
    } catch (error) {
      if (error instanceof InvalidChannelError || error instanceof InvalidEventError) {
        sendText(res, 400, `Bad request: ${error.message}`);
      } else if (error instanceof EventStreamClosedError) {
        sendText(res, 503, 'The server is shutting down.');
      } else {
        next(error);
      }
    }
  });

  // Errors from express.json (bad JSON, too large, bad charset) and anything unexpected, as plain text.
  app.use((error, _req, res, _next) => {
    const status = Number.isInteger(error?.status) && error.status >= 400 && error.status < 500 ? error.status : 500;
    if (status === 500) console.error('demo: unexpected error', error);
    const message =
      error?.type === 'entity.parse.failed'
        ? 'The body is not valid JSON.'
        : status === 500
          ? 'Internal Server Error'
          : String(error?.message ?? 'Bad request');
    if (res.headersSent) res.end();
    else sendText(res, status, message);
  });

  // Every room with a listener (and always the default room) gets a tick each interval, with how many listen.
  let count = 0;
  const timer = setInterval(() => {
    count++;
    const rooms = new Set([DEFAULT_ROOM, ...Object.keys(eventStream.stats().channels)]);
    const time = new Date().toISOString();
    for (const room of rooms) {
      eventStream
        .subscribers(room)
        .then((listening) => eventStream.publishEvent(room, { event: 'tick', data: { count, time, listening } }))
        .catch((error) => {
          if (!(error instanceof EventStreamClosedError)) console.error(`demo: tick to ${room} failed`, error);
        });
    }
  }, tickMs);
  timer.unref();

  let stopped = null;
  /** Stops the ticker and ends every event stream (the HTTP server is the caller's to close). */
  function stop() {
    stopped ??= (async () => {
      clearInterval(timer);
      unregisterMetrics();
      await eventStream.close();
    })();
    return stopped;
  }

  return { app, eventStream, stop };
}

function sendText(res, status, message) {
  res.status(status).type('text/plain; charset=utf-8').set('cache-control', 'no-store').send(`${message}\n`);
}
