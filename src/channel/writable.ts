import { Writable } from 'readable-stream';
import { EventStoreError } from '../errors.js';
import type { EventStore, StoredEvent } from '../history/store.js';
import { EncodedEvent, encodeEvent } from '../sse/encoder.js';
import type { DataSerializer } from '../sse/event.js';
import type { ChannelHub } from './hub.js';

/**
 * Where events go besides the local hub (a GRIP proxy). Called with every
 * batch the writable accepts, in order; the batch's write callbacks wait for
 * the returned promise, which is how backpressure reaches the proxy.
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
  metrics: { eventsPublished: number };
  /** Called once when the writable is finished or destroyed, to drop its hub reference. */
  onRelease: () => void;
  highWaterMark?: number;
}

type Callback = (error?: Error | null) => void;

/**
 * The publish primitive: an object-mode Writable for one channel. Each event
 * is validated and encoded once, numbered by the store, then handed to the
 * channel hub (local subscribers) and, when configured, to the remote
 * publisher. The write callback fires when all have taken it, so `write()`
 * returns false and `drain` follows whenever delivery is the slower side.
 */
export class ChannelWritable extends Writable {
  readonly channel: string;
  private readonly options: ChannelWritableOptions;
  private onRelease: (() => void) | null;

  constructor(options: ChannelWritableOptions) {
    // Behind a round trip (proxy, shared store) each batch costs one: let more queue per batch.
    const remoteBatches = options.remote !== null || options.hub === null;
    super({ objectMode: true, highWaterMark: options.highWaterMark ?? (remoteBatches ? 1024 : 64) });
    this.channel = options.channel;
    this.options = options;
    this.onRelease = options.onRelease;
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
    return super.write(chunk, encoding as string, callback);
  }

  override _write(chunk: unknown, _encoding: BufferEncoding, callback: Callback): void {
    let body: string;
    try {
      body = (chunk instanceof EncodedEvent ? chunk : encodeEvent(chunk, this.options.serializeData, this.options.maxEventBytes)).body;
    } catch (error) {
      callback(error as Error);
      return;
    }
    this.deliver([body], callback);
  }

  override _writev(chunks: Array<{ chunk: unknown }>, callback: Callback): void {
    const bodies: string[] = new Array(chunks.length);
    try {
      for (let i = 0; i < chunks.length; i++) {
        const { chunk } = chunks[i]!;
        bodies[i] = (chunk instanceof EncodedEvent ? chunk : encodeEvent(chunk, this.options.serializeData, this.options.maxEventBytes)).body;
      }
    } catch (error) {
      // Stream rules: one bad chunk errors the stream; none of this batch is sent.
      callback(error as Error);
      return;
    }
    this.deliver(bodies, callback);
  }

  override _final(callback: Callback): void {
    this.release();
    callback();
  }

  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    this.release();
    callback(error);
  }

  private deliver(bodies: string[], callback: Callback): void {
    let first: number | Promise<number>;
    try {
      first = this.options.store.append(this.channel, bodies);
    } catch (error) {
      callback(storeFailure(error));
      return;
    }
    // The memory store answers at once: its hub then gets events in the order they were numbered.
    if (typeof first === 'number') this.sequenced(first, bodies, callback);
    else first.then((seq) => this.sequenced(seq, bodies, callback), (error: unknown) => callback(storeFailure(error)));
  }

  private sequenced(first: number, bodies: readonly string[], callback: Callback): void {
    const events: StoredEvent[] = new Array(bodies.length);
    for (let i = 0; i < bodies.length; i++) events[i] = { seq: first + i, body: bodies[i]! };
    this.options.metrics.eventsPublished += events.length;
    const { hub, remote } = this.options;
    const local = hub !== null && !hub.destroyed;
    if (remote === null) {
      if (local) handToHub(hub, events, callback);
      else callback();
      return;
    }
    // Local delivery never waits for, nor depends on, the proxy.
    let pending = local ? 2 : 1;
    let failure: Error | null = null;
    const settle = (error?: Error | null): void => {
      if (error && failure === null) failure = error;
      if (--pending === 0) callback(failure);
    };
    if (local) hub.write(events, settle);
    remote.publish(this.channel, events).then(() => settle(), settle);
  }

  private release(): void {
    const release = this.onRelease;
    this.onRelease = null;
    release?.();
  }
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

function storeFailure(error: unknown): Error {
  if (error instanceof EventStoreError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new EventStoreError(`the event store did not take the events: ${reason}`, { cause: error });
}
