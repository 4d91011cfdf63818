// Client child of the fan-out and publishing-idiom benchmarks: holds N raw
// HTTP/1.1 connections (plain net sockets, no http client) to one server and
// parses just enough SSE to count events and read their publish timestamps;
// for the chat scenario it is also the K publishers POSTing events.
import net from 'node:net';
import { serve, wallNow } from '../lib/ipc.js';
import { makePayload } from './payload.js';
import { SseCounter } from './sse-counter.js';

const CONNECT_CONCURRENCY = 64;
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

/** @type {Set<Conn>} */
const conns = new Set();
let failures = 0;
/** Socket reads ('data' events) over all connections: how finely the server's writes arrive. */
let reads = 0;
let lastFailure = '';

// Burst bookkeeping: every connection must reach `target` events.
let reached = 0;
/** @type {((error: Error | null) => void)[]} */
let targetWaiters = [];

// Latency bookkeeping.
let recording = false;
let recordFrom = Infinity;
let samples = new Float64Array(1 << 16);
let sampleCount = 0;

/** @param {number} latencyMs */
function record(latencyMs) {
  if (sampleCount === samples.length) {
    const bigger = new Float64Array(samples.length * 2);
    bigger.set(samples);
    samples = bigger;
  }
  samples[sampleCount++] = latencyMs;
}

class Conn {
  /** @param {number} port */
  constructor(port) {
    this.target = Infinity;
    this.closedByUs = false;
    /** @type {(() => void) | null} */
    this.openedResolve = null;
    /** @type {Promise<void>} */
    this.opened = new Promise((resolve, reject) => {
      this.openedResolve = resolve;
      this.openedReject = reject;
    });
    this.counter = new SseCounter({
      onHead: (status) => {
        if (status !== 200) this.fail(new Error(`HTTP status ${status}`));
      },
      onBlock: () => {
        // the first block is the implementation's opening bytes
        if (this.openedResolve !== null) {
          const resolve = this.openedResolve;
          this.openedResolve = null;
          resolve();
        }
      },
      onEvent: (t, now) => {
        if (recording && t >= recordFrom) record(now - t);
        if (this.counter.events === this.target) {
          reached++;
          if (reached === conns.size) releaseTargetWaiters(null);
        }
      },
      wantTimestamps: () => recording,
    });
    // Every connection reads into one shared buffer (the counter copies out
    // what it keeps): no Buffer per read, so the client process, which
    // receives N times what the server sends, stays cheaper than the server.
    this.socket = net.connect({
      host: '127.0.0.1',
      port,
      onread: {
        buffer: READ_BUFFER,
        callback: (n, buf) => {
          reads++;
          try {
            // buf is READ_BUFFER, a Buffer
            this.counter.feed(/** @type {Buffer} */ (buf.subarray(0, n)), wallNow());
          } catch (error) {
            this.fail(/** @type {Error} */ (error));
          }
          // false would pause the socket
          return true;
        },
      },
    });
    this.socket.setNoDelay(true);
    this.socket.on('connect', () => {
      this.socket.write('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n');
    });
    this.socket.on('error', (error) => this.fail(error));
    this.socket.on('close', () => {
      if (!this.closedByUs) this.fail(new Error('server closed the connection'));
    });
  }

  /** @param {Error} error */
  fail(error) {
    if (this.closedByUs) return;
    this.closedByUs = true;
    failures++;
    lastFailure = error.message;
    this.socket.destroy();
    if (conns.delete(this)) releaseTargetWaiters(new Error(`a connection failed: ${error.message}`));
    this.openedReject?.(error);
  }

  close() {
    this.closedByUs = true;
    this.socket.destroy();
  }
}

/** @param {Error | null} error */
function releaseTargetWaiters(error) {
  const waiters = targetWaiters;
  targetWaiters = [];
  for (const waiter of waiters) waiter(error);
}

/**
 * @param {number} port
 * @param {number} n
 */
async function connectMany(port, n) {
  let started = 0;
  const worker = async () => {
    while (started < n) {
      started++;
      const conn = new Conn(port);
      conns.add(conn);
      await conn.opened;
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, n) }, worker));
}

/**
 * One publisher of the chat scenario: a keep-alive connection that POSTs an
 * event to /say and waits for the answer before it sends the next. The
 * connections are opened (and each has had one request answered) before a
 * measurement: a connection's first request waits behind the server's busy
 * loop for as long as the others keep it busy, which would measure
 * connection setup, not publishing.
 */
class Publisher {
  /** @param {number} port */
  constructor(port) {
    this.socket = net.connect({ host: '127.0.0.1', port });
    this.socket.setNoDelay(true);
    this.socket.setEncoding('latin1');
    this.pending = '';
    /** @type {((error: Error | null) => void) | null} */
    this.answer = null;
    /** @type {Error | null} */
    this.error = null;
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
    this.socket.on('data', (text) => {
      // The route answers 204: a head without a body.
      this.pending += text;
      const end = this.pending.indexOf('\r\n\r\n');
      if (end === -1) return;
      const status = Number(this.pending.slice(9, 12));
      this.pending = this.pending.slice(end + 4);
      this.settle(status === 204 ? null : new Error(`POST /say answered ${status}`));
    });
    this.socket.on('error', (error) => this.settle(error));
    this.socket.on('close', () => this.settle(new Error('a publisher connection closed')));
  }

  /** @param {Error | null} error */
  settle(error) {
    if (error !== null) this.error ??= error;
    const answer = this.answer;
    this.answer = null;
    answer?.(this.error);
  }

  /** POSTs one event, stamped now; resolves with the 204. */
  /** @param {number} bytes */
  post(bytes) {
    if (this.error !== null) return Promise.reject(this.error);
    const body = makePayload(bytes).json;
    return new Promise((resolve, reject) => {
      this.answer = (error) => (error ? reject(error) : resolve(undefined));
      this.socket.write(
        'POST /say HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    });
  }
}

/** @type {Publisher[]} */
let publishers = [];

serve({
  /** Opens `k` publisher connections; each POSTs one event (so k events go to the subscribers). */
  async openPublishers({ port, k, bytes }) {
    publishers = Array.from({ length: k }, () => new Publisher(port));
    await Promise.all(publishers.map((p) => p.connected));
    await Promise.all(publishers.map((p) => p.post(bytes)));
  },

  /** Every publisher POSTs events back to back for `durationMs`; how many were answered, in all. */
  async post({ durationMs, bytes }) {
    let posts = 0;
    const start = performance.now();
    const endAt = start + durationMs;
    await Promise.all(
      publishers.map(async (p) => {
        while (performance.now() < endAt) {
          await p.post(bytes);
          posts++;
        }
      }),
    );
    return { posts, ms: performance.now() - start };
  },

  closePublishers() {
    for (const p of publishers) p.socket.destroy();
    publishers = [];
  },

  async connect({ port, n }) {
    await connectMany(port, n);
    return { connections: conns.size };
  },

  /** Closes connections until `keep` remain. */
  close({ keep = 0 }) {
    for (const conn of conns) {
      if (conns.size <= keep) break;
      conn.close();
      conns.delete(conn);
    }
    return { connections: conns.size };
  },

  /** Every connection is now expected to receive `events` more events. */
  expect({ events }) {
    if (failures > 0) throw new Error(`${failures} connection(s) failed; last: ${lastFailure}`);
    reached = 0;
    for (const conn of conns) conn.target = conn.counter.events + events;
  },

  /** Resolves once every connection reached its target. */
  awaitTarget() {
    if (reached === conns.size) return null;
    return new Promise((resolve, reject) => {
      targetWaiters.push((/** @type {Error | null} */ error) => (error ? reject(error) : resolve(null)));
    });
  },

  counts() {
    let events = 0;
    let blocks = 0;
    let min = Infinity;
    let max = 0;
    for (const conn of conns) {
      events += conn.counter.events;
      blocks += conn.counter.blocks;
      min = Math.min(min, conn.counter.events);
      max = Math.max(max, conn.counter.events);
    }
    return { connections: conns.size, events, blocks, reads, min, max, failures, lastFailure };
  },

  latStart({ from }) {
    samples = new Float64Array(Math.max(1 << 16, samples.length));
    sampleCount = 0;
    recordFrom = from;
    recording = true;
  },

  /** How many latency samples have been recorded so far. */
  latCount: () => sampleCount,

  latStop() {
    recording = false;
    const sorted = samples.slice(0, sampleCount).sort();
    /** @param {number} q */
    const at = (q) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
    return {
      count: sorted.length,
      p50: at(0.5),
      p90: at(0.9),
      p99: at(0.99),
      max: sorted.length ? sorted[sorted.length - 1] : NaN,
    };
  },
});
