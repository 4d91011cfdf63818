import { Duplex } from 'readable-stream';

/** Above this many pending bytes a batch is handed on at once instead of at the end of the tick. */
const MAX_BATCH_BYTES = 64 * 1024;

/** Counters the hubs of one EventStream share. */
export interface HubMetrics {
  eventsPublished: number;
}

/**
 * One channel: an object-mode Duplex whose writable side takes encoded event
 * frames (Buffers) and whose readable side emits them to every subscriber's
 * response stream.
 *
 * Frames written in the same tick leave as ONE Buffer, so a burst costs each
 * subscriber one write instead of one per event, and the concatenation is done
 * once per channel rather than once per client.
 *
 * Subscribers never return `false` from `write()` (they buffer up to their own
 * bound and are dropped past it), so a stuck socket cannot pause the hub.
 * Backpressure to writers comes from `congestedSubscribers`: while any socket
 * has more queued than its high-water mark, the write callback waits for the
 * next turn of the event loop, letting sockets flush before more is accepted.
 */
export class ChannelHub extends Duplex {
  readonly channel: string;
  /** Subscribers plus open writers; the registry releases the hub when this reaches zero. */
  refs = 0;
  subscriberCount = 0;
  congestedSubscribers = 0;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private flushScheduled = false;
  private readonly metrics: HubMetrics;

  constructor(channel: string, metrics: HubMetrics) {
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
  subscribe(onFrame: (frame: Buffer) => void): void {
    this.subscriberCount++;
    this.on('data', onFrame);
  }

  unsubscribe(onFrame: (frame: Buffer) => void): void {
    this.subscriberCount--;
    this.removeListener('data', onFrame);
  }

  override _read(): void {
    // Frames are pushed as they are written; there is nothing to pull.
  }

  override _write(frame: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.enqueue(frame);
    this.pace(callback);
  }

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void,
  ): void {
    this.enqueueFrom(chunks, 0, callback);
  }

  /**
   * Enqueues a batch, but stops as soon as a subscriber's socket backs up and
   * resumes on the next turn of the event loop: a large batch must not land
   * on a healthy socket in one go and trip its slow-client bound.
   */
  private enqueueFrom(
    chunks: Array<{ chunk: Buffer }>,
    start: number,
    callback: (error?: Error | null) => void,
  ): void {
    for (let i = start; i < chunks.length; i++) {
      this.enqueue(chunks[i]!.chunk);
      if (this.congestedSubscribers > 0 && i + 1 < chunks.length) {
        this.flushBatch();
        setImmediate(() => this.enqueueFrom(chunks, i + 1, callback));
        return;
      }
    }
    this.pace(callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.flushBatch();
    callback();
  }

  private enqueue(frame: Buffer): void {
    this.metrics.eventsPublished++;
    // Nobody listens here: an SSE channel does not keep events for later subscribers.
    if (this.subscriberCount === 0) return;
    this.batch.push(frame);
    this.batchBytes += frame.length;
    if (this.batchBytes >= MAX_BATCH_BYTES) {
      this.flushBatch();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(flushScheduledBatch, this);
    }
  }

  private pace(callback: (error?: Error | null) => void): void {
    if (this.congestedSubscribers > 0) setImmediate(callback);
    else callback();
  }

  /** @internal */
  flushBatch(): void {
    const { batch } = this;
    if (batch.length === 0) return;
    const chunk = batch.length === 1 ? batch[0]! : Buffer.concat(batch, this.batchBytes);
    this.batch = [];
    this.batchBytes = 0;
    if (this.subscriberCount > 0 && !this.destroyed) this.push(chunk);
  }

  /** @internal */
  flushScheduledBatch(): void {
    this.flushScheduled = false;
    this.flushBatch();
  }
}

function flushScheduledBatch(hub: ChannelHub): void {
  hub.flushScheduledBatch();
}
