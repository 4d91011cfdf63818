import { transform } from 'through2';
import type { Transform } from 'readable-stream';
import type { ChannelHub } from '../channel/hub.js';
import { KEEP_ALIVE_TEXT, STREAM_OPEN_TEXT } from '../sse/encoder.js';
import type { KeepAliveTarget } from './keep-alive.js';
import type { EventSink } from './types.js';

const STREAM_OPEN = Buffer.from(STREAM_OPEN_TEXT);
const KEEP_ALIVE = Buffer.from(KEEP_ALIVE_TEXT);

/** What every response stream of one EventStream shares, so a connection carries no per-stream callbacks. */
export interface ResponseStreamHost {
  readonly maxBufferBytes: number;
  /** Current keep-alive tick, or null when keep-alives are off. */
  readonly keepAliveClock: { readonly tick: number } | null;
  streamClosed(stream: ResponseStream): void;
  slowClientDropped(stream: ResponseStream): void;
}

/**
 * One SSE response: a Transform (through2) fed by each of its channel hubs,
 * whose output is written to `res`.
 *
 * - The opening bytes are queued first, so the client sees the stream start.
 * - Unsent bytes (here and in `res`) are bounded by `maxBufferBytes`; a client
 *   that falls further behind is destroyed instead of growing the server's
 *   memory or stalling its channels. That bound replaces pipe()'s pause on
 *   `res` backpressure, which would let one stuck socket pause the hub.
 * - Frames from several hubs arriving in one tick leave as one write (a hub
 *   already turns a burst on one channel into one frame).
 */
export class ResponseStream implements KeepAliveTarget {
  readonly res: EventSink;
  readonly hubs: readonly ChannelHub[];
  activityTick = 0;
  private readonly transform: Transform;
  private readonly host: ResponseStreamHost;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  private congested = false;
  private closed = false;
  private readonly onResClose: () => void;
  /** One listener for all of this response's hubs. */
  private readonly onFrame: (frame: Buffer) => void;
  private onResDrain: (() => void) | null = null;
  /** Behind `compression`, data sits in zlib until flushed; decided once, not per write. */
  private readonly flushesResponse: boolean;

  constructor(res: EventSink, hubs: readonly ChannelHub[], host: ResponseStreamHost) {
    this.res = res;
    this.flushesResponse = typeof res.flush === 'function';
    this.hubs = hubs;
    this.host = host;

    const coalesce = hubs.length > 1;
    this.transform = transform(
      {
        writableObjectMode: true,
        writableHighWaterMark: 1024,
        // Never let the Transform hold back the hub: the byte bound drops the client first.
        readableHighWaterMark: host.maxBufferBytes * 2 + KEEP_ALIVE.length,
      },
      (frame: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void) => {
        this.accept(frame, coalesce);
        callback();
      },
    );
    this.transform.on('error', () => this.close());
    // Flowing mode: each pushed chunk reaches res.write() synchronously.
    this.transform.on('data', (chunk: Buffer) => this.write(chunk));

    this.onResClose = () => this.close();
    res.on('close', this.onResClose);

    this.transform.push(STREAM_OPEN);
    this.onFrame = (frame) => {
      this.transform.write(frame);
    };
    for (const hub of hubs) hub.subscribe(this.onFrame);
    this.activityTick = host.keepAliveClock?.tick ?? 0;
  }

  /** Ends the response cleanly (graceful shutdown). */
  end(): void {
    if (this.closed) return;
    this.flushPending();
    this.close();
    this.res.end();
  }

  sendKeepAlive(): void {
    if (!this.closed) this.transform.push(KEEP_ALIVE);
  }

  private accept(frame: Buffer, coalesce: boolean): void {
    if (this.closed) return;
    const unsent = this.transform.readableLength + this.res.writableLength + this.pendingBytes + frame.length;
    if (unsent > this.host.maxBufferBytes) {
      this.dropAsSlow();
      return;
    }
    if (!coalesce) {
      this.transform.push(frame);
      return;
    }
    this.pending.push(frame);
    this.pendingBytes += frame.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(flushResponsePending, this);
    }
  }

  /** @internal */
  flushPending(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0 || this.closed) return;
    const chunk = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.transform.push(chunk);
  }

  private write(chunk: Buffer): void {
    const { res } = this;
    const accepted = res.write(chunk);
    if (this.flushesResponse) res.flush!();
    const clock = this.host.keepAliveClock;
    if (clock !== null) this.activityTick = clock.tick;
    // HTTP/2 compatibility responses have no writableNeedDrain; write() returning false says the same.
    if (!this.congested && (accepted === false || res.writableNeedDrain)) this.markCongested();
  }

  /** The hub paces its writers while any subscriber's socket is backed up. */
  private markCongested(): void {
    this.congested = true;
    for (const hub of this.hubs) hub.congestedSubscribers++;
    this.onResDrain ??= () => this.clearCongestion();
    this.res.once('drain', this.onResDrain);
  }

  private clearCongestion(): void {
    if (!this.congested) return;
    this.congested = false;
    for (const hub of this.hubs) hub.congestedSubscribers--;
  }

  private dropAsSlow(): void {
    this.host.slowClientDropped(this);
    this.close();
    // The client is not reading: end() would wait forever for the buffer to drain.
    this.res.destroy();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearCongestion();
    this.res.removeListener('close', this.onResClose);
    if (this.onResDrain !== null) this.res.removeListener('drain', this.onResDrain);
    for (const hub of this.hubs) hub.unsubscribe(this.onFrame);
    this.transform.destroy();
    this.pending = [];
    this.host.streamClosed(this);
  }
}

function flushResponsePending(stream: ResponseStream): void {
  stream.flushPending();
}
