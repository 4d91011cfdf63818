// Server child of the fan-out benchmark: one SSE implementation on
// 127.0.0.1:<free port>, driven over IPC by bench/fanout.js.
// Usage (forked): node --expose-gc bench/fanout/server.js <impl>
import http from 'node:http';
import { listenOnLoopback, serve, wallNow } from './ipc.js';

const IMPLEMENTATIONS = {
  raw: createRaw,
  eventstream: createEventStream,
  'better-sse': createBetterSse,
  'sse-channel': createSseChannel,
};

const implName = process.argv[2];
if (!(implName in IMPLEMENTATIONS)) {
  console.error(`unknown implementation ${implName}; expected one of ${Object.keys(IMPLEMENTATIONS).join(', ')}`);
  process.exit(2);
}
if (typeof globalThis.gc !== 'function') {
  console.error('the server child needs --expose-gc');
  process.exit(2);
}

// ---------------------------------------------------------------------------
// Payloads. Every implementation gets the same events: JSON data of exactly
// `bytes` bytes carrying the publish timestamp `t` (ms, wallNow()) and a
// sequence number `s`. `json` is that text; `obj` parses back to it, for
// libraries that serialize data themselves (JSON.stringify(obj) === json).

const PAD = 'x'.repeat(4096);
let sequence = 0;

function makePayload(bytes, at = wallNow()) {
  const t = Math.round(at * 1000) / 1000;
  const s = sequence++;
  const ts = String(t);
  const ss = String(s);
  // {"t":T,"s":S,"p":"P"} is 18 bytes of punctuation and keys
  const p = PAD.slice(0, Math.max(0, bytes - 18 - ts.length - ss.length));
  return { t, obj: { t, s, p }, json: `{"t":${ts},"s":${ss},"p":"${p}"}` };
}

// ---------------------------------------------------------------------------
// Implementations: { handler(req, res), count(), publish(payloads) }.
// publish() hands every payload to the implementation synchronously.

// Same response headers and opening bytes as EventStream's direct streams.
const RAW_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};
const RAW_OPEN = Buffer.from('event: stream-open\ndata: \n\n');

async function createRaw() {
  const clients = new Set();
  return {
    handler(req, res) {
      res.writeHead(200, RAW_HEADERS);
      res.write(RAW_OPEN);
      clients.add(res);
      res.on('close', () => clients.delete(res));
    },
    count: () => clients.size,
    publish(payloads) {
      for (const payload of payloads) {
        // encoded once, written to every client
        const frame = Buffer.from(`data: ${payload.json}\n\n`);
        for (const res of clients) res.write(frame);
      }
    },
  };
}

async function createEventStream() {
  const { EventStream } = await import('../../dist/index.js');
  const options = {};
  if (process.env.BENCH_ES_KEEPALIVE !== undefined && process.env.BENCH_ES_KEEPALIVE !== '') {
    options.keepAliveInterval = Number(process.env.BENCH_ES_KEEPALIVE);
  }
  const es = new EventStream(options);
  const handler = es('bench');
  const mode = process.env.BENCH_ES_PUBLISH === 'publishEvent' ? 'publishEvent' : 'writable';
  const writable = es.createChannelWritable('bench');
  writable.on('error', (error) => {
    console.error('eventstream writable error', error);
    process.exitCode = 1;
  });
  const failed = (error) => {
    console.error('eventstream publishEvent error', error);
    process.exitCode = 1;
  };
  return {
    handler: (req, res) => handler(req, res),
    count: () => es.stats().streams,
    publish(payloads) {
      if (mode === 'publishEvent') {
        for (const payload of payloads) es.publishEvent('bench', { data: payload.obj }).catch(failed);
      } else {
        // Synchronous writes, as an application pumping a burst would do; the writable buffers the rest.
        for (const payload of payloads) writable.write({ data: payload.obj });
      }
    },
  };
}

async function createBetterSse() {
  const { createChannel, createSession } = await import('better-sse');
  const channel = createChannel();
  return {
    async handler(req, res) {
      const session = await createSession(req, res);
      channel.register(session);
    },
    count: () => channel.sessionCount,
    publish(payloads) {
      for (const payload of payloads) channel.broadcast(payload.obj);
    },
  };
}

async function createSseChannel() {
  const { default: SseChannel } = await import('sse-channel');
  const channel = new SseChannel();
  return {
    handler: (req, res) => channel.addClient(req, res),
    count: () => channel.getConnectionCount(),
    publish(payloads) {
      for (const payload of payloads) channel.send({ data: payload.json });
    },
  };
}

// ---------------------------------------------------------------------------

const impl = await IMPLEMENTATIONS[implName]();
const server = http.createServer((req, res) => {
  const result = impl.handler(req, res);
  if (result && typeof result.catch === 'function') {
    result.catch((error) => {
      console.error(`${implName} handler error`, error);
      res.destroy();
    });
  }
});

function percentile(values, q) {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

serve({
  start: () => listenOnLoopback(server),

  count: () => impl.count(),

  async mem() {
    for (let i = 0; i < 4; i++) {
      globalThis.gc();
      await tick();
    }
    const { heapUsed, rss, external, arrayBuffers } = process.memoryUsage();
    return { heapUsed, rss, external, arrayBuffers };
  },

  burst({ events, bytes }) {
    const payloads = new Array(events);
    for (let i = 0; i < events; i++) payloads[i] = makePayload(bytes);
    impl.publish(payloads);
  },

  /**
   * One event every `intervalMs` for `durationMs` of wall time, in one of two modes.
   *
   * 'open' (the one the bars use): event k is due at start + k * intervalMs
   * and is stamped with that due time, whenever the server gets round to
   * publishing it. A server that falls behind publishes every overdue event,
   * one publish call each, as soon as its loop is free, and each event's
   * latency includes that wait. Every implementation gets the same offered load.
   *
   * 'closed': each event is stamped when it is published; a server that falls
   * more than an interval behind skips ahead instead of catching up, so its
   * achieved rate drops (and is reported) and the waiting is not measured
   * (coordinated omission).
   *
   * Returns how many events were published, how many had t >= from, how
   * late the counted ones were handed to the implementation, and how many
   * were published per timer turn.
   */
  steady({ intervalMs, durationMs, bytes, from, mode }) {
    return new Promise((resolve) => {
      const start = performance.now();
      const wallStart = wallNow();
      const elu = performance.eventLoopUtilization();
      const lags = [];
      let published = 0;
      let counted = 0;
      let turns = 0;
      const finish = (now) =>
        resolve({
          published,
          counted,
          eventsPerTurn: published / turns,
          publishLagP50: percentile(lags, 0.5),
          publishLagP99: percentile(lags, 0.99),
          elapsedMs: now - start,
          eventLoopUtilization: performance.eventLoopUtilization(elu).utilization,
        });
      const publishOne = (at) => {
        const payload = makePayload(bytes, at);
        impl.publish([payload]);
        published++;
        if (payload.t >= from) {
          counted++;
          lags.push(wallNow() - at);
        }
      };
      const later = (step, due, now) => setTimeout(step, Math.max(0, Math.ceil(due - now)));

      if (mode === 'open') {
        const total = Math.floor(durationMs / intervalMs);
        const step = () => {
          const elapsed = performance.now() - start;
          if (published * intervalMs <= elapsed) turns++;
          while (published < total && published * intervalMs <= elapsed) publishOne(wallStart + published * intervalMs);
          const now = performance.now();
          if (published >= total) finish(now);
          else later(step, start + published * intervalMs, now);
        };
        step();
        return;
      }

      let next = start;
      const step = () => {
        turns++;
        publishOne(wallNow());
        const now = performance.now();
        next += intervalMs;
        if (next < now - intervalMs) next = now;
        if (next - start >= durationMs) finish(now);
        else later(step, next, now);
      };
      step();
    });
  },
});
