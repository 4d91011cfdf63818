import { Writable } from 'readable-stream';
import { type PublishMessage, publishChannel } from '../common/diagnostics.js';
import type { StreamMetrics } from '../common/metrics.js';
import { EventStreamClosedError } from '../errors.js';
import { EncodedEvent, encodeEvent } from '../sse/encoder.js';
import { asStoreError } from '../stores/store-error.js';
import type { DataSerializer, EventStore, StoredEvent } from '../types.js';
import type { ChannelHub } from './hub.js';
import type { PublishRequest } from './publish-request.js';

/**
 * Where events go besides the local hub (the GRIP proxies). Called with
 * every batch the writable sequenced, in order; the promise settles with the
 * proxies' answer for that batch. Local delivery never waits for it.
 */
export interface RemotePublisher {
  publish(channel: string, events: readonly StoredEvent[]): Promise<void>;
}

export interface ChannelWritableOptions {
  channel: string;
  store: EventStore;
  /** The local hub, or null when a shared store feeds the hubs (every process then sends the store's order). */
  hub: ChannelHub | null;
  remote: RemotePublisher | null;
  serializeData: DataSerializer;
  /** Largest encoded event accepted (options.maxEventBytes). */
  maxEventBytes: number;
  metrics: StreamMetrics;
  /** Called once when the writable is finished or destroyed, to drop its hub reference. */
  onRelease: () => void;
  /** True once the EventStream is closed: nothing more is stored or sent. */
  isClosed: () => boolean;
  /**
   * publishEvent's shared writable: its chunks are PublishRequests, each
   * learns its own outcome, and the stream itself never errors.
   */
  perRequest?: boolean;
  highWaterMark?: number;
}

type Callback = (error?: Error | null) => void;
type Outcome = (error: Error | null) => void;

/**
 * The publish primitive: an object-mode Writable for one channel. Each event
 * is validated and encoded once, numbered by the store, then handed to the
 * channel hub (local subscribers) and, when configured, to the proxies.
 *
 * The write callback fires once the store and the hub have the event: local
 * delivery runs at local speed whatever the proxies do. Proxy publishes are
 * tracked beside it, per batch. Their backpressure still reaches the
 * writer: `write()` returns false while `highWaterMark` or more events await
 * the proxies, and `drain` follows when they catch up. A failed proxy
 * publish errors the stream (stream rules); the events it had accepted were
 * stored and delivered locally all the same. `finish` waits for the proxies.
 */
export class ChannelWritable extends Writable {
  readonly channel: string;
  private readonly options: ChannelWritableOptions;
  private readonly perRequest: boolean;
  private onRelease: (() => void) | null;
  /** Events sequenced and handed to the proxies whose answer has not come yet. */
  private remotePending = 0;
  /** write() returned false because of the proxies: 'drain' is owed once they catch up. */
  private remoteNeedDrain = false;
  /** _final's callback, held until the proxies have answered for every event. */
  private onRemoteIdle: (() => void) | null = null;

  constructor(options: ChannelWritableOptions) {
    // Behind a round trip (proxy, shared store) each batch costs one: let more queue per batch.
    const remoteBatches = options.remote !== null || options.hub === null;
    super({ objectMode: true, highWaterMark: options.highWaterMark ?? (remoteBatches ? 1024 : 64) });
    this.channel = options.channel;
    this.options = options;
    this.perRequest = options.perRequest === true;
    this.onRelease = options.onRelease;
  }

  /** The local hub has subscribers: it stays whether or not this writable holds it. */
  get hasLocalSubscribers(): boolean {
    const { hub } = this.options;
    return hub !== null && !hub.destroyed && hub.subscriberCount > 0;
  }

  /**
   * With a remote publisher or a shared store, writes issued in one tick are
   * corked together so they reach `_writev` as one batch (one control-API
   * request, one store round trip) instead of the first going out alone.
   */
  override write(chunk: unknown, encoding?: string | Callback, callback?: Callback): boolean {
    if ((this.options.remote !== null || this.options.hub === null) && this.writableCorked === 0 && !this.destroyed) {
      this.cork();
      process.nextTick(uncork, this);
    }
    const accepted = super.write(chunk, encoding as string, callback);
    if (this.options.remote === null || this.perRequest || this.awaitingRemote() < this.writableHighWaterMark) {
      return accepted;
    }
    this.remoteNeedDrain = true;
    return false;
  }

  /**
   * Writable emits 'drain' once its own buffer is empty; while the proxies
   * are still behind, that drain would invite writes it is not ready for,
   * so it is held back until they catch up (see remoteAnswered).
   */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'drain' && this.remoteNeedDrain) {
      if (this.awaitingRemote() >= this.writableHighWaterMark) return false;
      this.remoteNeedDrain = false;
    }
    return super.emit(event, ...args);
  }

  override _write(chunk: unknown, _encoding: BufferEncoding, callback: Callback): void {
    this._writev([{ chunk }], callback);
  }

  override _writev(chunks: Array<{ chunk: unknown }>, callback: Callback): void {
    const bodies: string[] = new Array(chunks.length);
    const requests: PublishRequest[] | null = this.perRequest ? new Array(chunks.length) : null;
    try {
      for (let i = 0; i < chunks.length; i++) {
        let chunk = chunks[i]!.chunk;
        if (requests !== null) {
          requests[i] = chunk as PublishRequest;
          chunk = (chunk as PublishRequest).event;
        }
        bodies[i] = (
          chunk instanceof EncodedEvent ? chunk : encodeEvent(chunk, this.options.serializeData, this.options.maxEventBytes)
        ).body;
      }
    } catch (error) {
      // Stream rules: one bad chunk errors the stream; none of this batch is sent.
      callback(error as Error);
      return;
    }
    this.deliver(bodies, requests, callback);
  }

  override _final(callback: Callback): void {
    const finish = (): void => {
      this.release();
      callback();
    };
    if (this.remotePending === 0 || this.perRequest) finish();
    else this.onRemoteIdle = finish;
  }

  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    this.onRemoteIdle = null;
    this.release();
    callback(error);
  }

  /** Events written and not yet answered for by the proxies: buffered here, or sent and unanswered. */
  private awaitingRemote(): number {
    return this.remotePending + this.writableLength;
  }

  private deliver(bodies: string[], requests: PublishRequest[] | null, callback: Callback): void {
    const fail = (error: Error): void => {
      if (requests === null) {
        callback(error);
        return;
      }
      for (const request of requests) request.settle(error);
      callback();
    };
    if (this.options.isClosed()) {
      fail(new EventStreamClosedError());
      return;
    }
    let first: number | Promise<number>;
    try {
      first = this.options.store.append(this.channel, bodies);
    } catch (error) {
      fail(this.storeFailure(error));
      return;
    }
    // The memory store answers at once: its hub then gets events in the order they were numbered.
    if (typeof first === 'number') this.sequenced(first, bodies, requests, callback);
    else
      first.then(
        (seq) => this.sequenced(seq, bodies, requests, callback),
        (error: unknown) => fail(this.storeFailure(error)),
      );
  }

  private storeFailure(error: unknown): Error {
    this.options.metrics.storeErrors++;
    return asStoreError(error, 'appending to the event store');
  }

  private sequenced(first: number, bodies: readonly string[], requests: PublishRequest[] | null, callback: Callback): void {
    const events: StoredEvent[] = new Array(bodies.length);
    for (let i = 0; i < bodies.length; i++) events[i] = { seq: first + i, body: bodies[i]! };
    this.options.metrics.eventsPublished += events.length;
    if (publishChannel.hasSubscribers) publishChannel.publish({ channel: this.channel, events } satisfies PublishMessage);
    const { hub, remote } = this.options;
    const outcome = requests === null ? null : joinOutcomes(requests, remote === null ? 1 : 2);
    if (remote !== null) {
      this.remotePending += events.length;
      remote.publish(this.channel, events).then(
        () => this.remoteAnswered(events.length, null, outcome),
        (error: unknown) => this.remoteAnswered(events.length, error as Error, outcome),
      );
    }
    if (hub === null || hub.destroyed) {
      outcome?.(null);
      callback();
      return;
    }
    handToHub(hub, events, (error?: Error | null) => {
      const failure = error ? this.localFailure(error) : null;
      if (outcome !== null) {
        outcome(failure);
        callback();
      } else {
        callback(failure);
      }
    });
  }

  private remoteAnswered(count: number, error: Error | null, outcome: Outcome | null): void {
    this.remotePending -= count;
    if (outcome !== null) outcome(error);
    else if (error !== null) this.destroy(error);
    if (this.remoteNeedDrain && this.awaitingRemote() < this.writableHighWaterMark) {
      this.remoteNeedDrain = false;
      // While its own buffer is still full, Writable emits 'drain' itself once it empties.
      if (!this.destroyed && !this.writableNeedDrain) this.emit('drain');
    }
    if (this.remotePending === 0 && this.onRemoteIdle !== null) {
      const finish = this.onRemoteIdle;
      this.onRemoteIdle = null;
      finish();
    }
  }

  /** A hub fails only when it was destroyed under the writer, which close() does. */
  private localFailure(error: Error): Error {
    return this.options.isClosed() ? new EventStreamClosedError() : error;
  }

  private release(): void {
    const release = this.onRelease;
    this.onRelease = null;
    release?.();
  }
}

/** Settles every request once `count` parts (local, remote) have reported, with the first failure. */
function joinOutcomes(requests: readonly PublishRequest[], count: number): Outcome {
  let waiting = count;
  let failure: Error | null = null;
  return (error) => {
    if (error !== null && failure === null) failure = error;
    if (--waiting > 0) return;
    for (const request of requests) request.settle(failure);
  };
}

/**
 * Writes to the hub and calls back as soon as the hub has taken the events.
 * A hub that is not pacing takes them synchronously, but Writable defers its
 * write callback to a nextTick, and until it fires this writable holds back
 * the next write: events written in one turn would reach the hub's batch in
 * two parts (the first alone), costing every client two socket writes.
 */
function handToHub(hub: ChannelHub, events: readonly StoredEvent[], callback: Callback): void {
  let settled = false;
  hub.write(events, (error?: Error | null) => {
    if (settled) return;
    settled = true;
    callback(error);
  });
  if (!settled && hub.writableLength === 0 && !hub.destroyed && !hub.writableEnded) {
    settled = true;
    callback();
  }
}

function uncork(writable: Writable): void {
  writable.uncork();
}
