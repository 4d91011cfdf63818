import { randomUUID } from 'node:crypto';
import { type Access, closingTime } from '../admission/access.js';
import { assertChannelName } from '../admission/channel-names.js';
import { type StreamCloseMessage, type StreamOpenMessage, streamCloseChannel, streamOpenChannel } from '../common/diagnostics.js';
import { StreamMetrics } from '../common/metrics.js';
import { ChannelWritable } from '../delivery/channel-writable.js';
import type { EventSink } from '../delivery/event-sink.js';
import type { ChannelHub } from '../delivery/hub.js';
import { HubRegistry } from '../delivery/hub-registry.js';
import { KeepAliveClock } from '../delivery/keep-alive.js';
import { ResponseStream, type ResponseStreamHost } from '../delivery/response-stream.js';
import { EventStreamClosedError } from '../errors.js';
import { encodeEvent } from '../sse/encoder.js';
import type { StreamPosition } from '../sse/event-id.js';
import { MemoryEventStore } from '../stores/memory-store.js';
import { asStoreError } from '../stores/store-error.js';
import type { EventStore, EventStreamStats, ServerSentEvent } from '../types.js';
import type { ResolvedOptions } from './options.js';
import type { ProxyGateway } from './proxy-gateway.js';
import { PublishWritables } from './publish-writables.js';
import { NO_SLOT, StreamLimits, type StreamSlot } from './stream-limits.js';

/** How often a process tells a shared store how many streams it has, and how long that report counts. */
const PRESENCE_REPORT_MS = 5000;
const PRESENCE_TTL_MS = 15_000;

function expire(stream: ResponseStream): void {
  stream.closeWith('expired', 'expired');
}

/** Builds the proxy gateway once the store is known (the gateway reads it for held streams). */
export type ProxyGatewayFactory = (store: EventStore, metrics: StreamMetrics) => ProxyGateway;

/**
 * The state behind one EventStream: its store, hubs, open streams, the
 * publish writables and the proxy gateway, and their lifetimes. It knows no
 * transport: adapters reach it through the request pipeline
 * (request-pipeline.ts), which hands it an EventSink to stream to.
 */
export class EventStreamCore implements ResponseStreamHost {
  readonly options: ResolvedOptions;
  readonly store: EventStore;
  readonly hubs: HubRegistry;
  readonly proxy: ProxyGateway | null;
  readonly keepAliveClock: KeepAliveClock | null;
  readonly maxBufferBytes: number;
  readonly clientRetry: number | null;
  /** A store this instance made (the default) is closed with it; a store passed in belongs to the caller. */
  private readonly ownsStore: boolean;
  readonly metrics = new StreamMetrics();
  readonly limits: StreamLimits;
  private readonly streams = new Set<ResponseStream>();
  /** Only with a limit configured: the place each open stream holds. */
  private readonly slots = new Map<ResponseStream, StreamSlot>();
  private readonly publishWritables: PublishWritables;
  /** Only streams allowed until some time have one; most streams cost nothing here. */
  private readonly expiryTimers = new Map<ResponseStream, NodeJS.Timeout>();
  /** Stops the shared store's disconnect notices. */
  private readonly unwatchDisconnects: (() => void) | null;
  private isClosed = false;
  /** Names this process's presence reports in a shared store. */
  readonly processId = randomUUID();
  private readonly presenceTimer: NodeJS.Timeout | null;

  constructor(options: ResolvedOptions, createProxy: ProxyGatewayFactory | null) {
    this.options = options;
    this.maxBufferBytes = options.maxBufferBytes;
    this.clientRetry = options.clientRetry;
    this.ownsStore = options.store === null;
    this.store = options.store ?? new MemoryEventStore();
    this.hubs = new HubRegistry(this.store, this.metrics);
    this.limits = new StreamLimits(options.maxStreams, options.maxStreamsPerClient);
    this.proxy = createProxy === null ? null : createProxy(this.store, this.metrics);
    this.keepAliveClock = options.keepAliveInterval > 0 ? new KeepAliveClock(options.keepAliveInterval, this.streams) : null;
    this.unwatchDisconnects =
      this.store.shared && this.store.watchDisconnects !== undefined
        ? this.store.watchDisconnects((channel, reason) => this.disconnectHere(channel, reason))
        : null;
    if (this.store.shared && this.store.reportPresence !== undefined) {
      this.presenceTimer = setInterval(() => this.reportPresence(), PRESENCE_REPORT_MS);
      this.presenceTimer.unref();
    } else {
      this.presenceTimer = null;
    }
    this.publishWritables = new PublishWritables(
      (channel) => this.openWritable(channel, undefined, true),
      () => this.isClosed,
    );
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * Retains the hubs of a stream about to open and waits until each knows
   * its position. Rejects (with the hubs released) when the store cannot be
   * reached, before any header is sent.
   */
  async prepareStream(channels: readonly string[]): Promise<ChannelHub[]> {
    if (this.isClosed) throw new EventStreamClosedError();
    const hubs = channels.map((channel) => this.hubs.retain(channel));
    const waits = hubs.map((hub) => this.hubs.watchStore(hub)).filter((wait) => wait !== null);
    if (waits.length > 0) {
      try {
        await Promise.all(waits);
      } catch (error) {
        for (const hub of hubs) this.hubs.release(hub);
        this.metrics.storeErrors++;
        throw asStoreError(error, 'reading the event store');
      }
      if (this.isClosed) throw new EventStreamClosedError();
    }
    return hubs;
  }

  /** Gives back the hubs of a prepared stream that did not open (the client left). */
  abandonStream(hubs: readonly ChannelHub[]): void {
    for (const hub of hubs) this.hubs.release(hub);
  }

  /**
   * Subscribes a sink whose headers are already out to prepared hubs,
   * replaying first when resuming. A stream allowed only until some time is
   * closed (`stream-close`, reason `expired`) at its closing time.
   */
  openStream(
    sink: EventSink,
    hubs: readonly ChannelHub[],
    resume: StreamPosition | null,
    access: Access,
    slot: StreamSlot,
    transport: 'node' | 'web',
  ): void {
    this.metrics.streamsOpened++;
    if (streamOpenChannel.hasSubscribers) {
      streamOpenChannel.publish({ channels: hubs.map((hub) => hub.channel), transport, held: false } satisfies StreamOpenMessage);
    }
    const stream = new ResponseStream(sink, hubs, this, resume);
    if (stream.closed) {
      // Closed while opening (the client was already gone): streamClosed ran before it was counted.
      slot.release();
      return;
    }
    this.streams.add(stream);
    this.keepAliveClock?.streamAdded();
    if (slot !== NO_SLOT) this.slots.set(stream, slot);
    if (access.until !== null) {
      const now = Date.now();
      const timer = setTimeout(expire, closingTime(access.until, now) - now, stream);
      timer.unref();
      this.expiryTimers.set(stream, timer);
    }
  }

  /**
   * Ends every stream on `channel` after telling it why: in this process,
   * through a shared store in every process that shares it (this one
   * included), and through the proxies for the streams they hold.
   */
  async disconnect(channel: string, reason: string): Promise<void> {
    if (this.isClosed) throw new EventStreamClosedError();
    const done: Array<Promise<void>> = [];
    if (this.store.shared && this.store.disconnect !== undefined) done.push(this.store.disconnect(channel, reason));
    else this.disconnectHere(channel, reason);
    if (this.proxy !== null) done.push(this.proxy.disconnect(channel, reason));
    await Promise.all(done);
  }

  /** Ends this process's streams on `channel`; the shared store calls it for a disconnect asked anywhere. */
  disconnectHere(channel: string, reason: string): void {
    for (const stream of [...this.streams]) {
      if (stream.channels.includes(channel)) stream.closeWith(reason, 'disconnected');
    }
  }

  streamClosed(stream: ResponseStream): void {
    const timer = this.expiryTimers.get(stream);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.expiryTimers.delete(stream);
    }
    const slot = this.slots.get(stream);
    if (slot !== undefined) {
      slot.release();
      this.slots.delete(stream);
    }
    if (this.streams.delete(stream)) this.keepAliveClock?.streamRemoved();
    for (const hub of stream.hubs) this.hubs.release(hub);
    this.metrics.streamsClosed[stream.closeReason]++;
    if (streamCloseChannel.hasSubscribers) {
      streamCloseChannel.publish({
        channels: stream.channels,
        reason: stream.closeReason,
        durationMs: Date.now() - stream.openedAt,
        bytesSent: stream.bytesSent,
      } satisfies StreamCloseMessage);
    }
  }

  slowClientDropped(): void {
    this.metrics.slowClientsDropped++;
  }

  /**
   * Streams on `channel`: this process's direct ones (exact) and held ones
   * (see HeldStreams), plus, with a shared store, what every other live
   * process last reported (at most PRESENCE_REPORT_MS old; a crashed
   * process stops counting within PRESENCE_TTL_MS).
   */
  async subscribers(channel: string): Promise<number> {
    const here = this.hubs.subscriberCount(channel) + (this.proxy?.heldStreams(channel) ?? 0);
    if (!this.store.shared || this.store.presence === undefined) return here;
    try {
      return here + (await this.store.presence(channel, this.processId));
    } catch (error) {
      this.metrics.storeErrors++;
      throw asStoreError(error, 'reading presence');
    }
  }

  /** What this process reports to the shared store: per channel, its direct and held streams. */
  private presenceCounts(): Record<string, number> {
    const counts = this.hubs.subscriberCounts();
    const held = this.proxy?.heldStreamCounts() ?? {};
    for (const channel in held) counts[channel] = (counts[channel] ?? 0) + held[channel]!;
    return counts;
  }

  private reportPresence(): void {
    this.store.reportPresence!(this.processId, this.presenceCounts(), PRESENCE_TTL_MS).catch(() => {
      // Redis away: the next report tries again; counts of this process expire meanwhile.
      this.metrics.storeErrors++;
    });
  }

  /** Open streams here, and the streams proxies hold for this process (as far as it can tell, see HeldStreams). */
  streamCounts(): { direct: number; held: number } {
    return { direct: this.streams.size, held: this.proxy?.heldStreams() ?? 0 };
  }

  openWritable(channel: string, highWaterMark?: number, perRequest = false): ChannelWritable {
    if (this.isClosed) throw new EventStreamClosedError();
    assertChannelName(channel, this.options);
    // With a shared store, local subscribers are fed by the store, not by the writer.
    const hub = this.store.shared ? null : this.hubs.retain(channel);
    return new ChannelWritable({
      channel,
      store: this.store,
      hub,
      remote: this.proxy,
      serializeData: this.options.serializeData,
      maxEventBytes: this.options.maxEventBytes,
      metrics: this.metrics,
      onRelease: () => {
        if (hub !== null) this.hubs.release(hub);
      },
      isClosed: () => this.isClosed,
      perRequest,
      highWaterMark,
    });
  }

  /**
   * Resolves once the store, the hub and every proxy have the event; rejects
   * with the first failure (the store's, else a proxy's GripPublishError).
   * Local delivery never waits for the proxies, nor depends on them.
   */
  publish(channel: string, event: ServerSentEvent): Promise<void> {
    if (this.isClosed) throw new EventStreamClosedError();
    assertChannelName(channel, this.options);
    const encoded = encodeEvent(event, this.options.serializeData, this.options.maxEventBytes);
    return this.publishWritables.publish(channel, encoded);
  }

  stats(): EventStreamStats {
    const { metrics } = this;
    return {
      channels: this.hubs.subscriberCounts(),
      hubs: this.hubs.size,
      streams: this.streams.size,
      heldStreams: this.proxy?.heldStreams() ?? 0,
      eventsPublished: metrics.eventsPublished,
      eventsReceived: metrics.eventsReceived,
      deliveries: metrics.deliveries,
      slowClientsDropped: metrics.slowClientsDropped,
    };
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    // Proxy calls in flight are aborted, not left to their timeout: nothing outlives close().
    this.proxy?.close();
    this.publishWritables.settleAll(new EventStreamClosedError());
    // Events whose publishes resolved may still wait in a hub for the end of the turn: they go out before the streams end.
    this.hubs.flushAll();
    for (const stream of [...this.streams]) stream.end();
    this.publishWritables.destroyAll();
    this.hubs.destroyAll();
    this.keepAliveClock?.stop();
    this.unwatchDisconnects?.();
    if (this.presenceTimer !== null) {
      clearInterval(this.presenceTimer);
      // Gone now, rather than once the last report expires.
      this.store.removePresence?.(this.processId).catch(() => {});
    }
    if (this.ownsStore) void this.store.close?.();
  }
}
