import { transform } from 'through2';
import type { Transform } from 'readable-stream';
import type { ChannelHub } from '../channel/hub.js';
import { KEEP_ALIVE_TEXT, STREAM_OPEN_TEXT } from '../sse/encoder.js';
import type { SseResponse } from './types.js';

const STREAM_OPEN = Buffer.from(STREAM_OPEN_TEXT);
const KEEP_ALIVE = Buffer.from(KEEP_ALIVE_TEXT);

export interface ResponseStreamOptions {
  keepAliveMs: number;
  maxBufferBytes: number;
  /** Called once when the response is gone (closed by the client, dropped as slow, or ended by close()). */
  onClose: (stream: ResponseStream) => void;
  onSlowClient: () => void;
}

type FlushableResponse = SseResponse & { flush?: () => void };

/**
 * One SSE response: a Transform (through2) piped from each of its channel
 * hubs and piped into `res`.
 *
 * - The opening bytes are queued first, so the client sees the stream start.
 * - Unsent bytes (queued here plus queued in `res`) are bounded by
 *   `maxBufferBytes`; a client that falls further behind is destroyed instead
 *   of growing the server's memory or stalling its channels.
 * - Frames from several hubs arriving in one tick leave as one write.
 * - A keep-alive comment goes out after `keepAliveMs` without traffic.
 */
export class ResponseStream {
  readonly res: FlushableResponse;
  readonly hubs: readonly ChannelHub[];
  private readonly transform: Transform;
  private readonly options: ResponseStreamOptions;
  private keepAlive: NodeJS.Timeout | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  private congested = false;
  private closed = false;
  private readonly resFlush: (() => void) | null;

  constructor(res: SseResponse, hubs: readonly ChannelHub[], options: ResponseStreamOptions) {
    this.res = res as FlushableResponse;
    this.hubs = hubs;
    this.options = options;
    // Behind `compression`, data sits in zlib until flushed.
    this.resFlush = typeof this.res.flush === 'function' ? this.res.flush.bind(this.res) : null;

    const self = this;
    const coalesce = hubs.length > 1;
    this.transform = transform(
      {
        writableObjectMode: true,
        writableHighWaterMark: 1024,
        // Never let the Transform hold back the hub: the byte bound below drops the client first.
        readableHighWaterMark: options.maxBufferBytes * 2 + KEEP_ALIVE.length,
      },
      function onFrame(frame: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void) {
        self.accept(frame, coalesce);
        callback();
      },
    );
    this.transform.on('error', () => this.close());

    this.onResClose = this.onResClose.bind(this);
    this.onResDrain = this.onResDrain.bind(this);
    res.on('close', this.onResClose);

    this.transform.push(STREAM_OPEN);
    this.transform.pipe(res as unknown as NodeJS.WritableStream);
    for (const hub of hubs) hub.subscribe(this.transform);

    if (options.keepAliveMs > 0) {
      this.keepAlive = setTimeout(sendKeepAlive, options.keepAliveMs, this);
      this.keepAlive.unref();
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Ends the response cleanly (graceful shutdown). */
  end(): void {
    if (this.closed) return;
    this.flushPending();
    this.close();
    this.res.end();
  }

  /** @internal */
  sendKeepAlive(): void {
    if (this.closed) return;
    this.emit(KEEP_ALIVE);
  }

  private accept(frame: Buffer, coalesce: boolean): void {
    if (this.closed) return;
    const unsent = this.transform.readableLength + this.res.writableLength + this.pendingBytes + frame.length;
    if (unsent > this.options.maxBufferBytes) {
      this.dropAsSlow();
      return;
    }
    if (!coalesce) {
      this.emit(frame);
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
    this.emit(chunk);
  }

  private emit(chunk: Buffer): void {
    // While flowing, push() hands the chunk straight to res.write().
    this.transform.push(chunk);
    this.resFlush?.();
    this.keepAlive?.refresh();
    if (!this.congested && this.res.writableNeedDrain) {
      this.congested = true;
      for (const hub of this.hubs) hub.congestedSubscribers++;
      this.res.once('drain', this.onResDrain);
    }
  }

  private onResDrain(): void {
    this.clearCongestion();
  }

  private clearCongestion(): void {
    if (!this.congested) return;
    this.congested = false;
    for (const hub of this.hubs) hub.congestedSubscribers--;
  }

  private dropAsSlow(): void {
    this.options.onSlowClient();
    this.close();
    // The client is not reading: end() would wait forever for the buffer to drain.
    this.res.destroy();
  }

  private onResClose(): void {
    this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.keepAlive !== null) {
      clearTimeout(this.keepAlive);
      this.keepAlive = null;
    }
    this.clearCongestion();
    this.res.removeListener('close', this.onResClose);
    this.res.removeListener('drain', this.onResDrain);
    for (const hub of this.hubs) hub.unsubscribe(this.transform);
    this.transform.unpipe();
    this.transform.destroy();
    this.pending = [];
    this.options.onClose(this);
  }
}

function sendKeepAlive(stream: ResponseStream): void {
  stream.sendKeepAlive();
}

function flushResponsePending(stream: ResponseStream): void {
  stream.flushPending();
}
