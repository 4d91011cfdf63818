import { type Access, closingTime } from '../admission/access.js';
import { assertChannelName } from '../admission/channel-names.js';
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
import { StreamMetrics } from './metrics.js';
import type { ResolvedOptions } from './options.js';
import type { ProxyGateway } from './proxy-gateway.js';
import { PublishWritables } from './publish-writables.js';

function expire(stream: ResponseStream): void {
  stream.closeWith('expired');
}

/** Builds the proxy gateway once the store is known (the gateway reads it for held streams). */
export type ProxyGatewayFactory = (store: EventStore) => ProxyGateway;

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
  private readonly streams = new Set<ResponseStream>();
  private readonly publishWritables: PublishWritables;
  /** Only streams allowed until some time have one; most streams cost nothing here. */
  private readonly expiryTimers = new Map<ResponseStream, NodeJS.Timeout>();
  /** Stops the shared store's disconnect notices. */
  private readonly unwatchDisconnects: (() => void) | null;
  private isClosed = false;

  constructor(options: ResolvedOptions, createProxy: ProxyGatewayFactory | null) {
    this.options = options;
    this.maxBufferBytes = options.maxBufferBytes;
    this.clientRetry = options.clientRetry;
    this.ownsStore = options.store === null;
    this.store = options.store ?? new MemoryEventStore();
    this.hubs = new HubRegistry(this.store);
    this.proxy = createProxy === null ? null : createProxy(this.store);
    this.keepAliveClock = options.keepAliveInterval > 0 ? new KeepAliveClock(options.keepAliveInterval, this.streams) : null;
    this.unwatchDisconnects =
      this.store.shared && this.store.watchDisconnects !== undefined
        ? this.store.watchDisconnects((channel, reason) => this.disconnectHere(channel, reason))
        : null;
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
  openStream(sink: EventSink, hubs: readonly ChannelHub[], resume: StreamPosition | null, access: Access): void {
    const stream = new ResponseStream(sink, hubs, this, resume);
    this.streams.add(stream);
    this.keepAliveClock?.streamAdded();
    if (access.until !== null && !stream.closed) {
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
      if (stream.channels.includes(channel)) stream.closeWith(reason);
    }
  }

  streamClosed(stream: ResponseStream): void {
    const timer = this.expiryTimers.get(stream);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.expiryTimers.delete(stream);
    }
    this.streams.delete(stream);
    this.keepAliveClock?.streamRemoved();
    for (const hub of stream.hubs) this.hubs.release(hub);
  }

  slowClientDropped(): void {
    this.metrics.slowClientsDropped++;
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

  streamCounts(): { direct: number; held: number } {
    return { direct: this.streams.size, held: 0 };
  }

  stats(): EventStreamStats {
    return {
      channels: this.hubs.subscriberCounts(),
      hubs: this.hubs.size,
      streams: this.streams.size,
      eventsPublished: this.metrics.eventsPublished,
      slowClientsDropped: this.metrics.slowClientsDropped,
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
    if (this.ownsStore) void this.store.close?.();
  }
}
