// Client child of the replay benchmark: one SSE subscription at a time over a
// plain node:http request (fresh connection, no agent), parsed with
// eventsource-parser. It counts the benchmark's events and checks them as they
// arrive: JSON data `{"i":N,...}` must run firstIndex, firstIndex+1, ... and
// ids `channel:seq` must be consecutive from the position the stream starts
// at (the stream-open id, or the Last-Event-ID sent when resuming).
// Driven over IPC by bench/replay.js (request/response, bench/lib/ipc.js).
// Times are `performance.timeOrigin + performance.now()`, as on the server.
import http from 'node:http';
import { createParser } from 'eventsource-parser';
import { serve, wallNow } from '../lib/ipc.js';

/** @type {Subscription | null} */
let current = null;

class Subscription {
  /**
   * @param {{ port: number, channel: string, lastEventId: string | null, via: string, expected: number, firstIndex: number }} options
   */
  constructor({ port, channel, lastEventId, via, expected, firstIndex }) {
    this.channel = channel;
    this.expected = expected;
    this.nextIndex = firstIndex;
    this.received = 0;
    this.extra = 0;
    /** @type {string[]} */
    this.otherEvents = [];
    /** @type {string[]} */
    this.problems = [];
    this.problemCount = 0;
    this.reads = 0;
    this.bytes = 0;
    this.openId = null;
    this.firstId = null;
    this.lastId = null;
    this.firstAt = null;
    this.doneAt = null;
    this.lastProgressAt = 0;
    this.closedByUs = false;
    this.error = null;
    /** Sequence number of the last event the client has; set from Last-Event-ID or the stream-open id. */
    this.seq = null;
    if (lastEventId !== null) this.seq = this.seqOf(lastEventId, 'Last-Event-ID');

    /** @type {(() => void)[]} */
    this.doneWaiters = [];
    this.opened = new Promise((resolve, reject) => {
      this.resolveOpened = resolve;
      this.rejectOpened = reject;
    });
    this.opened.catch(() => {});

    const parser = createParser({
      onEvent: (event) => this.onEvent(event),
      onError: (error) => this.problem(`parse error: ${error.message}`),
    });
    let path = `/events/${encodeURIComponent(channel)}`;
    /** @type {Record<string, string>} */
    const headers = { accept: 'text/event-stream', 'cache-control': 'no-cache' };
    if (lastEventId !== null) {
      if (via === 'query') path += `?lastEventId=${encodeURIComponent(lastEventId)}`;
      else headers['last-event-id'] = lastEventId;
    }
    // The timed part of a resume starts here: connection, request, admission, replay.
    this.startedAt = wallNow();
    this.req = http.request({ host: '127.0.0.1', port, path, method: 'GET', headers, agent: false });
    this.req.on('response', (res) => {
      this.res = res;
      if (res.statusCode !== 200) {
        this.fail(new Error(`HTTP status ${res.statusCode}`));
        res.resume();
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (text) => {
        this.reads++;
        this.bytes += Buffer.byteLength(text);
        parser.feed(text);
      });
      res.on('end', () => this.fail(new Error('the server ended the stream')));
      res.on('error', (error) => this.fail(error));
    });
    this.req.on('error', (error) => this.fail(error));
    this.req.end();
  }

  /**
   * @param {string} id
   * @param {string} what
   */
  seqOf(id, what) {
    const colon = id.lastIndexOf(':');
    const channel = id.slice(0, colon);
    const seq = Number(id.slice(colon + 1));
    if (colon <= 0 || channel !== this.channel || !Number.isSafeInteger(seq)) {
      this.problem(`${what} ${JSON.stringify(id)} is not ${this.channel}:<seq>`);
      return null;
    }
    return seq;
  }

  /** @param {string} text */
  problem(text) {
    this.problemCount++;
    if (this.problems.length < 5) this.problems.push(text);
  }

  /** @param {import('eventsource-parser').EventSourceMessage} event */
  onEvent(event) {
    const now = wallNow();
    if (event.event === 'stream-open') {
      if (this.openId !== null) this.problem('a second stream-open');
      this.openId = event.id ?? '';
      if (event.id !== undefined) {
        if (this.seq !== null) this.problem(`stream-open carried id ${event.id} on a resumed stream`);
        else this.seq = this.seqOf(event.id, 'stream-open id');
      }
      this.resolveOpened({ startedAt: this.startedAt, openedAt: now, openId: this.openId });
      return;
    }
    if (event.event !== undefined) {
      // stream-reset (history lost) or anything else unexpected
      if (this.otherEvents.length < 5) this.otherEvents.push(`${event.event}: ${event.data}`);
      this.problem(`unexpected event type ${event.event}`);
      // A stream-reset means events were skipped: no point waiting for them.
      this.fail(new Error(`unexpected ${event.event} event (data ${event.data}, id ${event.id})`));
      return;
    }
    if (this.received === this.expected) {
      this.extra++;
      this.problem(`an event beyond the ${this.expected} expected (id ${event.id})`);
      return;
    }
    let index;
    try {
      index = JSON.parse(event.data).i;
    } catch {
      index = undefined;
    }
    if (index !== this.nextIndex) this.problem(`event #${this.received} has index ${index}, expected ${this.nextIndex}`);
    this.nextIndex = (Number.isSafeInteger(index) ? index : this.nextIndex) + 1;
    const seq = event.id === undefined ? null : this.seqOf(event.id, 'event id');
    if (seq === null) this.problem(`event #${this.received} has no usable id`);
    else if (this.seq !== null && seq !== this.seq + 1)
      this.problem(`event #${this.received} has id ${event.id} after seq ${this.seq}`);
    if (seq !== null) this.seq = seq;
    if (this.received === 0) {
      this.firstAt = now;
      this.firstId = event.id;
    }
    this.lastId = event.id;
    this.received++;
    this.lastProgressAt = now;
    if (this.received === this.expected) {
      this.doneAt = now;
      this.wake();
    }
  }

  /** @param {Error} error */
  fail(error) {
    if (this.closedByUs || this.error !== null) return;
    this.error = error.message;
    this.rejectOpened(error);
    this.wake();
  }

  wake() {
    const waiters = this.doneWaiters;
    this.doneWaiters = [];
    for (const waiter of waiters) waiter();
  }

  /** Resolves when `expected` events arrived; rejects on a failure or when nothing new came for `stallMs`. */
  /** @param {number} stallMs */
  done(stallMs) {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.doneAt !== null) {
          clearInterval(timer);
          resolve(this.summary());
        } else if (this.error !== null) {
          clearInterval(timer);
          reject(new Error(`${this.error} after ${this.received}/${this.expected} events`));
        } else if (wallNow() - Math.max(this.startedAt, this.lastProgressAt) > stallMs) {
          clearInterval(timer);
          reject(new Error(`stalled at ${this.received}/${this.expected} events for ${stallMs} ms`));
        }
      };
      const timer = setInterval(check, 100);
      this.doneWaiters.push(check);
      check();
    });
  }

  summary() {
    return {
      startedAt: this.startedAt,
      firstAt: this.firstAt,
      doneAt: this.doneAt,
      received: this.received,
      expected: this.expected,
      extra: this.extra,
      problemCount: this.problemCount,
      problems: this.problems,
      otherEvents: this.otherEvents,
      openId: this.openId,
      firstId: this.firstId,
      lastId: this.lastId,
      reads: this.reads,
      bytes: this.bytes,
      error: this.error,
    };
  }

  close() {
    this.closedByUs = true;
    this.req.destroy();
  }
}

serve({
  /**
   * Starts a request; resolves once its stream-open event arrived, with
   * { startedAt, openedAt, openId }. `lastEventId` null opens a fresh stream.
   */
  open({ port, channel, lastEventId = null, via = 'header', expected, firstIndex = 0 }) {
    current?.close();
    current = new Subscription({ port, channel, lastEventId, via, expected, firstIndex });
    return current.opened;
  },

  done({ stallMs = 20_000 }) {
    if (current === null) throw new Error('no subscription');
    return current.done(stallMs);
  },

  /** Closes the subscription; returns its final summary (events that came after the expected ones count as extra). */
  close() {
    if (current === null) return null;
    const sub = current;
    current = null;
    sub.close();
    return sub.summary();
  },

  async gc() {
    for (let i = 0; i < 3; i++) {
      globalThis.gc?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
  },
});
