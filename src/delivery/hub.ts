import { Duplex } from 'readable-stream';
import type { StreamMetrics } from '../common/metrics.js';
import { eventText } from '../sse/event-text.js';
import type { StoredEvent } from '../types.js';
import { flushAtEndOfTurn } from './flush-turn.js';
import { HubFrame } from './hub-frame.js';

/** Above this many pending bytes a batch is handed on at once instead of at the end of the turn. */
const MAX_BATCH_BYTES = 64 * 1024;
/**
 * While a subscriber's socket is backed up, the bytes a hub takes per turn of
 * the event loop (at least one event); its writer waits for the next turn
 * past that. One socket high-water mark (net.Socket's default, 16 KiB) per
 * turn: a client that reads every turn keeps up, small events published
 * one by one still coalesce, and a client that does not read falls behind
 * until its own bound drops it. (Four times this outran EventSource
 * readers in the same process, test/resources.test.ts.)
 */
const CONGESTED_TURN_BYTES = 16 * 1024;

type Callback = (error?: Error | null) => void;

/**
 * One channel: an object-mode Duplex whose writable side takes batches of
 * sequenced events (arrays of StoredEvent, in sequence order) and whose
 * readable side emits HubFrames to every subscriber's response stream.
 *
 * Events written in the same turn of the event loop leave as ONE frame
 * (at the end of the turn, see flush-turn.ts) whose bytes are built once, so
 * a burst costs each subscriber one write instead of one per event, however
 * it was published, and the encoding is done once per channel rather than
 * once per client.
 *
 * Subscribers never return `false` from `write()` (they buffer up to their own
 * bound and are dropped past it), so a stuck socket cannot pause the hub.
 * Backpressure to writers comes from `congestedSubscribers`: while any socket
 * has more queued than its high-water mark, the hub takes CONGESTED_TURN_BYTES
 * per turn of the event loop and then makes its writer wait for the next
 * turn, letting sockets flush before more is accepted. It paces by bytes,
 * not by writes: small events keep being taken (and their publishes keep
 * resolving) at once, and coalesce, while a client is backed up.
 */
export class ChannelHub extends Duplex {
  readonly channel: string;
  /** Subscribers plus open writers; the registry releases the hub when this reaches zero. */
  refs = 0;
  subscriberCount = 0;
  congestedSubscribers = 0;
  /**
   * Sequence number of the last event this hub accepted. Every later event
   * still reaches a subscriber that joins now, so this is where its stream starts.
   */
  position = 0;
  /** Settles once `position` is known (at once for the memory store; after the shared store's watch is live). */
  ready: Promise<void> | null = null;
  /** Stops the shared store's delivery into this hub. */
  unwatch: (() => void) | null = null;
  private batch: StoredEvent[] = [];
  private batchText = '';
  private flushScheduled = false;
  /** Bytes taken since the last turn of the event loop began, for pacing while congested. */
  private turnBytes = 0;

  private readonly metrics: StreamMetrics;

  constructor(channel: string, metrics: StreamMetrics) {
    super({
      readableObjectMode: true,
      writableObjectMode: true,
      readableHighWaterMark: 16,
      writableHighWaterMark: 16,
      allowHalfOpen: false,
    });
    this.channel = channel;
    this.metrics = metrics;
    // one 'data' listener per subscriber
    this.setMaxListeners(0);
  }

  /**
   * Subscribes a listener to the hub's readable side. A plain 'data' listener
   * rather than pipe(): pipe() pauses the source whenever one destination is
   * full, which is exactly what one stuck client must not do to a channel,
   * and it costs a dozen closures per subscriber.
   */
  subscribe(onFrame: (frame: HubFrame) => void): void {
    this.subscriberCount++;
    this.on('data', onFrame);
  }

  unsubscribe(onFrame: (frame: HubFrame) => void): void {
    this.subscriberCount--;
    this.removeListener('data', onFrame);
  }

  override _read(): void {
    // Frames are pushed as they are written; there is nothing to pull.
  }

  override _write(events: readonly StoredEvent[], _encoding: BufferEncoding, callback: Callback): void {
    this.enqueueFrom([{ chunk: events }], 0, 0, callback);
  }

  override _writev(chunks: Array<{ chunk: readonly StoredEvent[] }>, callback: Callback): void {
    this.enqueueFrom(chunks, 0, 0, callback);
  }

  /**
   * Enqueues batches event by event, but stops once a subscriber's socket is
   * backed up and this turn's share is taken, and resumes on the next turn
   * of the event loop: a large backlog must not land on a healthy socket in
   * one go and trip its slow-client bound.
   */
  private enqueueFrom(
    chunks: Array<{ chunk: readonly StoredEvent[] }>,
    chunkIndex: number,
    eventIndex: number,
    callback: Callback,
  ): void {
    for (let c = chunkIndex; c < chunks.length; c++) {
      const events = chunks[c]!.chunk;
      if (c !== chunkIndex || eventIndex === 0) this.metrics.eventsReceived += events.length;
      for (let e = c === chunkIndex ? eventIndex : 0; e < events.length; e++) {
        this.enqueue(events[e]!);
        const more = e + 1 < events.length || c + 1 < chunks.length;
        if (more && this.turnTaken()) {
          this.flushBatch();
          setImmediate(() => {
            this.turnBytes = 0;
            this.enqueueFrom(chunks, c, e + 1, callback);
          });
          return;
        }
      }
    }
    this.pace(callback);
  }

  override _final(callback: Callback): void {
    this.flushBatch();
    callback();
  }

  private enqueue(event: StoredEvent): void {
    this.position = event.seq;
    // Nobody listens here; the store keeps the history for later subscribers.
    if (this.subscriberCount === 0) return;
    const text = eventText(this.channel, event);
    this.batch.push(event);
    this.batchText += text;
    this.turnBytes += text.length;
    if (this.batchText.length >= MAX_BATCH_BYTES) {
      this.flushBatch();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      flushAtEndOfTurn(this);
    }
  }

  /** A subscriber is backed up and this turn's share of bytes is taken: the rest waits for the next turn. */
  private turnTaken(): boolean {
    return this.congestedSubscribers > 0 && this.turnBytes >= CONGESTED_TURN_BYTES;
  }

  private pace(callback: Callback): void {
    if (!this.turnTaken()) {
      callback();
      return;
    }
    setImmediate(() => {
      this.turnBytes = 0;
      callback();
    });
  }

  /** @internal */
  flushBatch(): void {
    const { batch } = this;
    if (batch.length === 0) return;
    const frame = new HubFrame(this.channel, batch, Buffer.from(this.batchText, 'utf8'));
    this.batch = [];
    this.batchText = '';
    if (this.subscriberCount > 0 && !this.destroyed) {
      // Per frame, not per client: what every subscriber is handed (those already past some events skip them).
      this.metrics.deliveries += batch.length * this.subscriberCount;
      this.push(frame);
    }
  }

  /** @internal Called at the end of the turn that wrote the batch (flush-turn.ts); a new turn's share begins. */
  flushScheduledBatch(): void {
    this.flushScheduled = false;
    this.turnBytes = 0;
    this.flushBatch();
  }
}
