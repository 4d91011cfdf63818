// Server child of the fan-out and publishing-idiom benchmarks: one SSE
// implementation on 127.0.0.1:<free port>, driven over IPC by bench/fanout.js
// and bench/idioms.js.
// Usage (forked): node --expose-gc bench/fanout/server.js <impl> [http|express]
//   http (default): every request is an SSE stream, straight from node:http.
//   express: an Express 5 app as the README shows it: GET /events is the
//   stream, POST /say (express.json()) awaits one publish and answers 204.
import http from 'node:http';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { listenOnLoopback, serve, wallNow } from '../lib/ipc.js';
import { percentile } from '../lib/report.js';
import { makePayload } from './payload.js';

/**
 * @typedef {ReturnType<typeof makePayload>} Payload
 * @typedef {http.IncomingMessage} Req
 * @typedef {http.ServerResponse} Res
 */

/**
 * An implementation: every one serves streams and publishes bursts; raw and
 * eventstream also have the publishing idioms.
 * @typedef {object} Impl
 * @property {(req: any, res: any) => unknown} handler a node:http or Express handler
 * @property {() => number} count
 * @property {(payloads: Payload[]) => void} publish
 * @property {(payload: Payload) => unknown} [publishOne]
 * @property {(payload: Payload) => unknown} [event]
 * @property {() => Writable} [createWritable]
 * @property {(body: unknown) => unknown} [say]
 */

/** @type {Record<string, () => Promise<Impl>>} */
const IMPLEMENTATIONS = {
  raw: createRaw,
  eventstream: () => createEventStream(false),
  'eventstream-observed': () => createEventStream(true),
  'better-sse': createBetterSse,
  'sse-channel': createSseChannel,
};

const implName = process.argv[2];
if (!(implName in IMPLEMENTATIONS)) {
  console.error(`unknown implementation ${implName}; expected one of ${Object.keys(IMPLEMENTATIONS).join(', ')}`);
  process.exit(2);
}
const mount = process.argv[3] ?? 'http';
if (mount !== 'http' && mount !== 'express') {
  console.error(`unknown mount ${mount}; expected http or express`);
  process.exit(2);
}
const gc = globalThis.gc;
if (typeof gc !== 'function') {
  console.error('the server child needs --expose-gc');
  process.exit(2);
}

// ---------------------------------------------------------------------------
// Implementations: { handler(req, res), count(), publish(payloads) }.
// publish() hands every payload to the implementation synchronously.
//
// raw and eventstream also answer the publishing idioms (bench/idioms.js),
// each in the same shape of user code for both, so that a ratio compares the
// implementations and not the idioms:
//   publishOne(payload)   what `await publishOne(p)` in a loop awaits;
//   event(payload)        what `Readable.from(events)` yields for the writable;
//   createWritable()      what that readable is piped into;
//   say(body)             what the POST /say route awaits with the parsed JSON body.

// Same response headers and opening bytes as EventStream's direct streams.
const RAW_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};
const RAW_OPEN = Buffer.from('event: stream-open\ndata: \n\n');

/** @returns {Promise<Impl>} */
async function createRaw() {
  /** @type {Set<Res>} */
  const clients = new Set();
  /** @param {string} json */
  const writeAll = (json) => {
    // encoded once, written to every client
    const frame = Buffer.from(`data: ${json}\n\n`);
    for (const res of clients) res.write(frame);
  };
  return {
    /**
     * @param {Req} _req
     * @param {Res} res
     */
    handler(_req, res) {
      res.writeHead(200, RAW_HEADERS);
      res.write(RAW_OPEN);
      clients.add(res);
      res.on('close', () => clients.delete(res));
    },
    count: () => clients.size,
    publish(payloads) {
      for (const payload of payloads) writeAll(payload.json);
    },
    // The raw idioms do what a hand-written SSE server does: write the event to
    // every response right away and have nothing to wait for. So publishOne
    // returns undefined and the caller's `await` costs one microtask (awaiting a
    // resolved promise); the Writable calls back at once. Neither looks at
    // res.write()'s return value: raw has no slow-client bound or backpressure,
    // which is work EventStream does and raw is spared (in its favour).
    publishOne(payload) {
      writeAll(payload.json);
    },
    event: (payload) => payload,
    createWritable: () =>
      new Writable({
        objectMode: true,
        write(/** @type {Payload} */ payload, _encoding, callback) {
          writeAll(payload.json);
          callback();
        },
      }),
    // The body was parsed from JSON; serializing it again is the one encode EventStream does too.
    say(body) {
      writeAll(JSON.stringify(body));
    },
  };
}

/**
 * @param {boolean} observed With Prometheus metrics registered and a subscriber on every diagnostics
 *   channel, as an instrumented application runs it.
 * @returns {Promise<Impl>}
 */
async function createEventStream(observed) {
  const { EventStream } = await import('../../dist/index.js');
  /** @type {import('../../dist/index.js').EventStreamOptions} */
  const options = {};
  if (process.env.BENCH_ES_KEEPALIVE !== undefined && process.env.BENCH_ES_KEEPALIVE !== '') {
    options.keepAliveInterval = Number(process.env.BENCH_ES_KEEPALIVE);
  }
  const es = new EventStream(options);
  if (observed) await observe(es);
  const handler = es('bench');
  const mode = process.env.BENCH_ES_PUBLISH === 'publishEvent' ? 'publishEvent' : 'writable';
  // Made on the first synchronous burst, so the idioms' runs, which never use
  // it, have no extra writable on the channel.
  /** @type {Writable | null} */
  let writable = null;
  /** @returns {Writable} */
  const burstWritable = () => {
    if (writable === null) {
      writable = es.createChannelWritable('bench');
      writable.on('error', (/** @type {Error} */ error) => {
        console.error('eventstream writable error', error);
        process.exitCode = 1;
      });
    }
    return writable;
  };
  /** @param {unknown} error */
  const failed = (error) => {
    console.error('eventstream publishEvent error', error);
    process.exitCode = 1;
  };
  return {
    // Under Express the middleware itself is the route, as the README mounts it.
    handler: mount === 'express' ? handler : (/** @type {Req} */ req, /** @type {Res} */ res) => handler(req, res),
    count: () => es.stats().streams,
    // The idioms exactly as the README shows them, only through the public API.
    publishOne: (payload) => es.publishEvent('bench', { data: payload.obj }),
    event: (payload) => ({ data: payload.obj }),
    createWritable: () => es.createChannelWritable('bench'),
    say: (body) => es.publishEvent('bench', { data: body }),
    publish(payloads) {
      if (mode === 'publishEvent') {
        for (const payload of payloads) es.publishEvent('bench', { data: payload.obj }).catch(failed);
      } else {
        // Synchronous writes, as an application pumping a burst would do; the writable buffers the rest.
        const w = burstWritable();
        for (const payload of payloads) w.write({ data: payload.obj });
      }
    },
  };
}

/** @returns {Promise<Impl>} */
async function createBetterSse() {
  const { createChannel, createSession } = await import('better-sse');
  const channel = createChannel();
  return {
    /**
     * @param {Req} req
     * @param {Res} res
     */
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

/** @returns {Promise<Impl>} */
async function createSseChannel() {
  const { default: SseChannel } = await import('sse-channel');
  const channel = new SseChannel();
  return {
    handler: (/** @type {Req} */ req, /** @type {Res} */ res) => channel.addClient(req, res),
    count: () => channel.getConnectionCount(),
    publish(payloads) {
      for (const payload of payloads) channel.send({ data: payload.json });
    },
  };
}

// ---------------------------------------------------------------------------

const impl = await IMPLEMENTATIONS[implName]();
/** How long each POST /say route's awaited publish took (ms), since the last sayStats. */
/** @type {number[]} */
let sayCalls = [];
const server = http.createServer(mount === 'express' ? await expressApp() : handleStream);

/**
 * @param {Req} req
 * @param {Res} res
 */
function handleStream(req, res) {
  const result = /** @type {any} */ (impl.handler(req, res));
  if (result && typeof result.catch === 'function') {
    result.catch((/** @type {unknown} */ error) => {
      console.error(`${implName} handler error`, error);
      res.destroy();
    });
  }
}

async function expressApp() {
  const { default: express } = await import('express');
  const app = express();
  app.get('/events', impl.handler);
  // A chat's publish route, the same shape for every implementation.
  app.post('/say', express.json(), async (req, res) => {
    const start = performance.now();
    await idiom('say')(req.body);
    sayCalls.push(performance.now() - start);
    res.sendStatus(204);
  });
  return app;
}

/**
 * An idiom's method of this implementation; only raw and eventstream have them.
 * @template {'publishOne' | 'event' | 'createWritable' | 'say'} K
 * @param {K} name
 * @returns {NonNullable<Impl[K]>}
 */
function idiom(name) {
  const method = impl[name];
  if (typeof method !== 'function') throw new Error(`${implName} does not implement the publishing idioms`);
  return /** @type {NonNullable<Impl[K]>} */ (method.bind(impl));
}

/** @type {() => Promise<void>} */
const tick = () => new Promise((resolve) => setImmediate(resolve));
/** @type {(ms: number) => Promise<void>} */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * @param {number} events
 * @param {number} bytes
 * @returns {Payload[]}
 */
function makePayloads(events, bytes) {
  const payloads = new Array(events);
  for (let i = 0; i < events; i++) payloads[i] = makePayload(bytes);
  return payloads;
}

/** @param {ArrayLike<number> & Iterable<number>} calls */
function callStats(calls) {
  return { publishP50: percentile(calls, 0.5), publishP99: percentile(calls, 0.99) };
}

serve({
  start: () => listenOnLoopback(server),

  count: () => impl.count(),

  async mem() {
    for (let i = 0; i < 4; i++) {
      gc();
      await tick();
    }
    const { heapUsed, rss, external, arrayBuffers } = process.memoryUsage();
    return { heapUsed, rss, external, arrayBuffers };
  },

  burst({ events, bytes }) {
    impl.publish(makePayloads(events, bytes));
  },

  /** `for (const e of events) await publishOne(e)`, each call timed. */
  async awaitedBurst({ events, bytes }) {
    const publishOne = idiom('publishOne');
    const calls = new Float64Array(events);
    let i = 0;
    for (const payload of makePayloads(events, bytes)) {
      const start = performance.now();
      await publishOne(payload);
      calls[i++] = performance.now() - start;
    }
    return callStats(calls);
  },

  /** `await pipeline(Readable.from(events), createWritable())`. */
  async pipedBurst({ events: count, bytes }) {
    const events = makePayloads(count, bytes).map(idiom('event'));
    await pipeline(Readable.from(events), idiom('createWritable')());
  },

  /**
   * A steady awaited stream, open loop: event k is due at wallStart + k *
   * intervalMs and stamped with that due time; each is awaited before the
   * next, and the next waits for its due time only if it is not late
   * already. A publisher that falls behind keeps publishing overdue events
   * back to back, and their latency (from the due time) shows it.
   * The first `warmupEvents` are not counted. Returns the time from the first
   * counted event's due time until the last publish resolved, and how long
   * each counted publish call took and how late it started.
   */
  async steadyAwaited({ intervalMs, events, warmupEvents, bytes, wallStart }) {
    const publishOne = idiom('publishOne');
    const monoStart = performance.now() + (wallStart - wallNow());
    const elu = performance.eventLoopUtilization();
    /** @type {number[]} */
    const calls = [];
    /** @type {number[]} */
    const lags = [];
    const total = warmupEvents + events;
    for (let k = 0; k < total; k++) {
      const due = monoStart + k * intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await sleep(Math.ceil(wait));
      const payload = makePayload(bytes, wallStart + k * intervalMs);
      const start = performance.now();
      await publishOne(payload);
      if (k >= warmupEvents) {
        calls.push(performance.now() - start);
        lags.push(start - due);
      }
    }
    const end = performance.now();
    return {
      published: total,
      counted: events,
      elapsedMs: end - (monoStart + warmupEvents * intervalMs),
      ...callStats(calls),
      startLagP50: percentile(lags, 0.5),
      startLagMax: Math.max(...lags),
      eventLoopUtilization: performance.eventLoopUtilization(elu).utilization,
    };
  },

  /** POST /say calls since the last sayStats, and how long their awaited publish took. */
  sayStats() {
    const calls = sayCalls;
    sayCalls = [];
    return { count: calls.length, ...callStats(calls) };
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
      /** @type {number[]} */
      const lags = [];
      let published = 0;
      let counted = 0;
      let turns = 0;
      /** @param {number} now */
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
      /** @param {number} at */
      const publishOne = (at) => {
        const payload = makePayload(bytes, at);
        impl.publish([payload]);
        published++;
        if (payload.t >= from) {
          counted++;
          lags.push(wallNow() - at);
        }
      };
      /** @type {(step: () => void, due: number, now: number) => NodeJS.Timeout} */
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

/**
 * Instruments an EventStream the way the README shows: a prom-client registry with its metrics, scraped
 * once a second, and a listener on each diagnostics channel that counts what it is told.
 * @param {import('../../dist/index.js').EventStream} es
 */
async function observe(es) {
  const diagnostics = await import('node:diagnostics_channel');
  const { Registry } = await import('prom-client');
  const { registerMetrics } = await import('../../dist/prometheus.js');
  const registry = new Registry();
  registerMetrics(es, registry);
  setInterval(() => void registry.metrics(), 1000).unref();
  let seen = 0;
  const count = () => {
    seen++;
  };
  for (const name of ['eventstream:stream:open', 'eventstream:stream:close', 'eventstream:publish', 'eventstream:grip:publish']) {
    diagnostics.subscribe(name, count);
  }
  return () => seen;
}
