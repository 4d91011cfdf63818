import type { Transform } from 'readable-stream';
import { transform } from 'through2';
import type { CloseReason, StreamMetrics } from '../common/metrics.js';
import { KEEP_ALIVE_TEXT, streamCloseText, streamOpenText } from '../sse/encoder.js';
import { formatEventId, type StreamPosition } from '../sse/event-id.js';
import type { EventStore } from '../types.js';
import { clientBytes } from './client-ids.js';
import type { EventSink } from './event-sink.js';
import type { ChannelHub } from './hub.js';
import { HubFrame } from './hub-frame.js';
import type { KeepAliveTarget } from './keep-alive.js';
import { type ReplayTarget, replayMissed } from './stream-replay.js';

const KEEP_ALIVE = Buffer.from(KEEP_ALIVE_TEXT);

/** What every response stream of one EventStream shares, so a connection carries no per-stream callbacks. */
export interface ResponseStreamHost {
  readonly maxBufferBytes: number;
  readonly store: EventStore;
  /** Reconnection delay sent to clients in the opening event, or null to leave it to the client. */
  readonly clientRetry: number | null;
  /** Current keep-alive tick, or null when keep-alives are off. */
  readonly keepAliveClock: { readonly tick: number } | null;
  readonly metrics: StreamMetrics;
  streamClosed(stream: ResponseStream): void;
  slowClientDropped(stream: ResponseStream): void;
}

/**
 * One SSE response: a Transform (through2) fed with frames by each of its
 * channel hubs, whose output is written to `res` (an EventSink: the response
 * itself, or for HTTP/1.1 its socket with shared chunk framing, see
 * chunked-socket-sink.ts).
 *
 * - It knows where the client stands in each channel and sends each event
 *   once: frames it has already sent (replayed, or overlapping the hub's
 *   pending batch when it joined) are dropped, and a stream on several
 *   channels gives each event an id naming its position in all of them.
 * - A resuming client first gets what it missed from the store, page by
 *   page at the pace of its socket, while live frames wait; then the live ones.
 * - The opening bytes are queued first, so the client sees the stream start.
 * - Unsent bytes (here and in `res`) are bounded by `maxBufferBytes`; a client
 *   that falls further behind is destroyed instead of growing the server's
 *   memory or stalling its channels. That bound replaces pipe()'s pause on
 *   `res` backpressure, which would let one stuck socket pause the hub.
 * - Frames from several hubs arriving in one tick leave as one write (a hub
 *   already turns a burst on one channel into one frame).
 */
export class ResponseStream implements KeepAliveTarget, ReplayTarget {
  readonly res: EventSink;
  readonly hubs: readonly ChannelHub[];
  readonly channels: readonly string[];
  activityTick = 0;
  /** When the stream opened (epoch ms) and what it sent: for `eventstream:stream:close`. */
  readonly openedAt = Date.now();
  bytesSent = 0;
  /** Why it ended, once it did. */
  closeReason: CloseReason = 'client';
  /** @internal Sequence number of the last event the client has (or skipped past) in each channel. */
  readonly positions: number[];
  private readonly transform: Transform;
  private readonly host: ResponseStreamHost;
  /** Frames from several hubs waiting for the end of the tick; null while there are none (most streams never have any). */
  private pending: Buffer[] | null = null;
  private pendingBytes = 0;
  private flushScheduled = false;
  private congested = false;
  /** @internal */
  closed = false;
  /** Live frames that arrive while a resuming client is replayed, sent after the replay; null once live. */
  private deferred: HubFrame[] | null = null;
  private deferredBytes = 0;
  /** Ends the stream: the response's close listener and the Transform's error listener. */
  private readonly onResClose: () => void;
  /** One listener for all of this response's hubs. */
  private readonly onFrame: (frame: HubFrame) => void;
  private onResDrain: (() => void) | null = null;
  private drainWaiter: (() => void) | null = null;
  /** The listener that wakes drainWaiter, made when a replay first waits for 'drain'. */
  private onReplayDrain: (() => void) | null = null;
  /** Behind `compression`, data sits in zlib until flushed; decided once, not per write. */
  private readonly flushesResponse: boolean;

  /** Subscribes at once; with `resume`, replays what the client missed before going live. */
  constructor(res: EventSink, hubs: readonly ChannelHub[], host: ResponseStreamHost, resume: StreamPosition | null) {
    this.res = res;
    this.flushesResponse = typeof res.flush === 'function';
    this.hubs = hubs;
    this.channels = hubs.map((hub) => hub.channel);
    this.positions = hubs.map((hub) => hub.position);
    this.host = host;

    // The Transform's function and 'data' listener are shared by every response (they find this one through
    // `owner`) rather than closures of each: an idle connection costs what it holds, and there may be many.
    const owned = transform(
      {
        writableObjectMode: true,
        writableHighWaterMark: 1024,
        // Never let the Transform hold back the hub: the byte bound drops the client first.
        readableHighWaterMark: host.maxBufferBytes * 2 + KEEP_ALIVE.length,
      },
      transformFrame,
    ) as OwnedTransform;
    owned.owner = this;
    this.transform = owned;
    this.onResClose = () => this.close('client');
    this.transform.on('error', failTransform);
    // Flowing mode: each pushed chunk reaches the sink's write() synchronously.
    this.transform.on('data', writeTransformed);
    res.on('close', this.onResClose);

    this.onFrame = (frame) => {
      if (this.deferred === null) this.transform.write(frame);
      else this.defer(frame);
    };
    if (resume === null) {
      this.transform.push(Buffer.from(streamOpenText(formatEventId(this.channels, this.positions), host.clientRetry)));
    } else {
      // The client keeps the id it sent until the replay moves it on.
      this.transform.push(Buffer.from(streamOpenText(null, host.clientRetry)));
      this.deferred = [];
    }
    for (const hub of hubs) hub.subscribe(this.onFrame);
    this.activityTick = host.keepAliveClock?.tick ?? 0;
    if (resume !== null) void replayMissed(this, host.store, host.maxBufferBytes, host.metrics, resume);
  }

  /** Ends the response cleanly: the EventStream is closing (`shutdown`), or the stream was told why (closeWith). */
  end(reason: CloseReason = 'shutdown'): void {
    if (this.closed) return;
    this.flushPending();
    this.close(reason);
    this.res.end();
  }

  /**
   * Tells the client why its stream ends (`stream-close` with `reason`),
   * then ends it: its access expired, or it was disconnected (revoked).
   */
  closeWith(reason: string, kind: 'expired' | 'disconnected'): void {
    if (this.closed) return;
    this.flushPending();
    this.transform.push(Buffer.from(streamCloseText(reason)));
    this.end(kind);
  }

  sendKeepAlive(): void {
    if (!this.closed) this.transform.push(KEEP_ALIVE);
  }

  /** @internal The Transform's work: a frame becomes this client's bytes (a Buffer passes as it is). */
  take(chunk: HubFrame | Buffer): void {
    const bytes =
      chunk instanceof HubFrame
        ? clientBytes(this.channels, this.positions, chunk, this.deferred === null, this.host.metrics)
        : chunk;
    if (bytes !== null) this.accept(bytes);
  }

  /** @internal */
  send(chunk: HubFrame | Buffer): void {
    this.transform.write(chunk);
  }

  /** @internal */
  goLive(): void {
    const deferred = this.deferred!;
    this.deferred = null;
    this.deferredBytes = 0;
    for (const frame of deferred) this.transform.write(frame);
  }

  private defer(frame: HubFrame): void {
    // As in accept(): the first frame deferred is kept whatever its size.
    if (this.deferredBytes > 0 && this.deferredBytes + frame.wire.length > this.host.maxBufferBytes) {
      this.dropAsSlow();
      return;
    }
    this.deferred!.push(frame);
    this.deferredBytes += frame.wire.length;
  }

  /**
   * Resolves once `res` has room again (or the stream closed). Bytes still in
   * the Transform flow to `res` on their own; only a full `res` is waited for.
   */
  drained(): Promise<void> {
    // `congested` also covers HTTP/2 compatibility responses, which have no writableNeedDrain.
    if (!this.congested && !this.res.writableNeedDrain) return new Promise((resolve) => setImmediate(resolve));
    return new Promise((resolve) => {
      this.drainWaiter = resolve;
      this.onReplayDrain ??= () => this.wakeDrainWaiter();
      this.res.once('drain', this.onReplayDrain);
    });
  }

  private wakeDrainWaiter(): void {
    const waiter = this.drainWaiter;
    if (waiter === null) return;
    this.drainWaiter = null;
    this.res.removeListener('drain', this.onReplayDrain!);
    waiter();
  }

  private accept(frame: Buffer): void {
    if (this.closed) return;
    const behind = this.transform.readableLength + this.res.writableLength + this.pendingBytes;
    // A client that has taken everything is not slow, whatever the size of the frame: one frame (a batch, or
    // an event with a long multi-channel id) may exceed a small bound on its own and must still get through.
    if (behind > 0 && behind + frame.length > this.host.maxBufferBytes) {
      this.dropAsSlow();
      return;
    }
    if (this.hubs.length === 1) {
      this.transform.push(frame);
      return;
    }
    this.pending ??= [];
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
    const { pending } = this;
    if (pending === null || this.closed) return;
    const chunk = pending.length === 1 ? pending[0]! : Buffer.concat(pending, this.pendingBytes);
    this.pending = null;
    this.pendingBytes = 0;
    this.transform.push(chunk);
  }

  /** @internal The Transform's output, to the sink. */
  write(chunk: Buffer): void {
    const { res } = this;
    const accepted = res.write(chunk);
    if (this.flushesResponse) res.flush!();
    this.bytesSent += chunk.length;
    this.host.metrics.bytesSent += chunk.length;
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
    this.destroy('slow');
  }

  /** The client is not reading, or cannot be served: end() would wait forever for the buffer to drain. */
  destroy(reason: CloseReason = 'error'): void {
    this.close(reason);
    this.res.destroy();
  }

  private close(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.clearCongestion();
    this.res.removeListener('close', this.onResClose);
    if (this.onResDrain !== null) this.res.removeListener('drain', this.onResDrain);
    this.wakeDrainWaiter();
    for (const hub of this.hubs) hub.unsubscribe(this.onFrame);
    this.transform.destroy();
    this.pending = null;
    this.deferred = null;
    this.host.streamClosed(this);
  }
}

/** The Transform failed (it never should): the stream cannot go on. Shared by every stream, as the listeners below are. */
function failTransform(this: OwnedTransform): void {
  this.owner.destroy('error');
}

function flushResponsePending(stream: ResponseStream): void {
  stream.flushPending();
}

type OwnedTransform = Transform & { owner: ResponseStream };

function transformFrame(
  this: OwnedTransform,
  chunk: HubFrame | Buffer,
  _encoding: BufferEncoding,
  callback: (error?: Error | null) => void,
): void {
  this.owner.take(chunk);
  callback();
}

function writeTransformed(this: OwnedTransform, chunk: Buffer): void {
  this.owner.write(chunk);
}
