import type { ChannelHub } from '../delivery/hub.js';
import { assertChannelName } from '../admission/channel-names.js';
import { HubRegistry } from '../delivery/hub-registry.js';
import { ChannelWritable, PublishRequest } from '../delivery/channel-writable.js';
import { EventStoreError, EventStreamClosedError, HttpRequestError } from '../errors.js';
import { GripBridge } from '../adapters/grip/grip-bridge.js';
import { startHeldStream } from '../adapters/grip/held-stream.js';
import type { HoldResponse } from '../adapters/grip/hold-instructions.js';
import { parseEventId, parseGripLast, type StreamPosition } from '../admission/resume-position.js';
import { MemoryEventStore } from '../stores/memory-store.js';
import type { EventStore } from '../stores/event-store.js';
import { acceptsEventStream } from '../admission/accept.js';
import { KeepAliveClock } from '../delivery/keep-alive.js';
import { checkRequestChannels } from '../admission/request-channels.js';
import { ResponseStream, type ResponseStreamHost } from '../delivery/response-stream.js';
import type { EventSink } from '../types.js';
import { resolveOptions, type EventStreamOptions, type ResolvedOptions } from './options.js';
import { encodeEvent, retryLaterText } from '../sse/encoder.js';
import type { ServerSentEvent } from '../event-types.js';
import type { EventStreamStats } from '../stats-types.js';

/** What to do with a request, whatever the HTTP API it came through. */
export type Admission =
  | { readonly kind: 'refuse'; readonly status: number; readonly message: string }
  | { readonly kind: 'hold'; readonly response: HoldResponse }
  /**
   * The stream cannot start now (the store is out of reach, or this instance
   * is shutting down): a 200 event stream that only tells the client when to
   * reconnect. EventSource gives up for good on any other status, which in a
   * rolling restart would strand every client.
   */
  | { readonly kind: 'retry-later'; readonly reason: RetryReason; readonly body: string }
  | { readonly kind: 'stream'; readonly channels: string[]; readonly resume: StreamPosition | null };

/** Why a stream is answered with only a reconnection delay. */
export type RetryReason = 'store-unavailable' | 'shutting-down';

const RETRY_REASON_TEXT: Readonly<Record<RetryReason, string>> = {
  'store-unavailable': 'the event history is unavailable',
  'shutting-down': 'this server is shutting down',
};

type HeaderValue = string | string[] | undefined | null;

/** The request facts admission needs, read from a Node request or a web Request. */
export interface RequestFacts {
  accept: HeaderValue;
  gripSig: HeaderValue;
  /** The Last-Event-ID header, or else the `lastEventId` query parameter (for clients that cannot set headers). */
  lastEventId: HeaderValue;
  /** Pushpin's `Grip-Last`, when it follows our `Grip-Link` to recover missed events. */
  gripLast: HeaderValue;
  /** Path and query of the request: the proxy fetches it again to recover missed events. */
  url: string;
  resolveChannels: () => unknown;
}

/** Reconnection delay a client is told when its stream cannot start now, unless `clientRetry` says otherwise. */
const RETRY_LATER_MS = 2000;

/**
 * The state and behaviour behind one EventStream: hubs, streams, writers and
 * GRIP, independent of the HTTP API a request arrives through.
 */
export class EventStreamCore implements ResponseStreamHost {
  readonly options: ResolvedOptions;
  readonly hubs: HubRegistry;
  readonly grip: GripBridge | null;
  readonly keepAliveClock: KeepAliveClock | null;
  readonly maxBufferBytes: number;
  readonly clientRetry: number | null;
  readonly store: EventStore;
  /** A store this instance made (the default) is closed with it; a store passed in belongs to the caller. */
  private readonly ownsStore: boolean;
  private readonly metrics = { eventsPublished: 0, slowClientsDropped: 0 };
  private readonly streams = new Set<ResponseStream>();
  /**
   * Writables behind publishEvent, one per channel while writes are in
   * flight (and, on a channel with subscribers, until a turn passes without
   * one), so publishes keep their order. Each publish learns its own
   * outcome (a PublishRequest), so one failure never errors the others.
   */
  private readonly publishWritables = new Map<string, PublishWritable>();
  /** Publishes not settled yet: close() settles them at once, whatever they still wait for. */
  private readonly pendingPublishes = new Set<PublishRequest>();
  private closed = false;

  constructor(options: EventStreamOptions | null | undefined) {
    this.options = resolveOptions(options);
    this.maxBufferBytes = this.options.maxBufferBytes;
    this.clientRetry = this.options.clientRetry;
    this.ownsStore = this.options.store === null;
    this.store = this.options.store ?? new MemoryEventStore();
    this.hubs = new HubRegistry(this.store);
    this.grip = this.options.grip === null ? null : new GripBridge(this.options.grip, this.options);
    this.keepAliveClock =
      this.options.keepAliveInterval > 0 ? new KeepAliveClock(this.options.keepAliveInterval, this.streams) : null;
  }

  async admit(facts: RequestFacts): Promise<Admission> {
    if (this.closed) return this.retryLater('shutting-down');
    try {
      if (!acceptsEventStream(facts.accept ?? undefined)) {
        throw new HttpRequestError(406, 'Not Acceptable: this endpoint only serves text/event-stream.');
      }
      const channels = checkRequestChannels(await facts.resolveChannels(), this.options);
      const lastEventId = firstValue(facts.lastEventId);
      const resume = lastEventId ? parseEventId(lastEventId, this.options) : null;
      if (this.grip !== null && (await this.grip.isProxied(facts.gripSig ?? undefined))) {
        return { kind: 'hold', response: await this.hold(channels, resume, firstValue(facts.gripLast), facts.url) };
      }
      return { kind: 'stream', channels, resume };
    } catch (error) {
      if (error instanceof HttpRequestError) return { kind: 'refuse', status: error.status, message: error.message };
      if (error instanceof EventStoreError) return this.retryLater('store-unavailable');
      throw error;
    }
  }

  /** Hold instructions for a proxied request, with what a resuming client or the recovering proxy missed. */
  private async hold(
    channels: string[],
    resume: StreamPosition | null,
    gripLast: string | undefined,
    url: string,
  ): Promise<HoldResponse> {
    const grip = this.grip!;
    const recovering = gripLast !== undefined;
    const position = recovering ? parseGripLast(gripLast, grip.gripPrefix) : resume;
    try {
      const start = await startHeldStream(this.store, channels, position, recovering, this.maxBufferBytes, this.clientRetry);
      return grip.hold(channels, start.positions, start.body, url);
    } catch (error) {
      throw asStoreError(error);
    }
  }

  /**
   * Retains the hubs of a stream about to open and waits until each knows
   * its position. Rejects (with the hubs released) when the store cannot be
   * reached, before any header is sent.
   */
  async prepareStream(channels: readonly string[]): Promise<ChannelHub[]> {
    if (this.closed) throw new EventStreamClosedError();
    const hubs = channels.map((channel) => this.hubs.retain(channel));
    const waits = hubs.map((hub) => this.hubs.feed(hub)).filter((wait) => wait !== null);
    if (waits.length > 0) {
      try {
        await Promise.all(waits);
      } catch (error) {
        for (const hub of hubs) this.hubs.release(hub);
        throw asStoreError(error);
      }
      if (this.closed) throw new EventStreamClosedError();
    }
    return hubs;
  }

  /** Gives back the hubs of a prepared stream that did not open (the client left). */
  abandonStream(hubs: readonly ChannelHub[]): void {
    for (const hub of hubs) this.hubs.release(hub);
  }

  /** Subscribes a sink whose headers are already out to prepared hubs, replaying first when resuming. */
  openStream(sink: EventSink, hubs: readonly ChannelHub[], resume: StreamPosition | null): void {
    this.streams.add(new ResponseStream(sink, hubs, this, resume));
    this.keepAliveClock?.streamAdded();
  }

  streamClosed(stream: ResponseStream): void {
    this.streams.delete(stream);
    this.keepAliveClock?.streamRemoved();
    for (const hub of stream.hubs) this.hubs.release(hub);
  }

  slowClientDropped(): void {
    this.metrics.slowClientsDropped++;
  }

  openWritable(channel: string, highWaterMark?: number, perRequest = false): ChannelWritable {
    if (this.closed) throw new EventStreamClosedError();
    assertChannelName(channel, this.options);
    // With a shared store, local subscribers are fed by the store, not by the writer.
    const hub = this.store.shared ? null : this.hubs.retain(channel);
    return new ChannelWritable({
      channel,
      store: this.store,
      hub,
      remote: this.grip,
      serializeData: this.options.serializeData,
      maxEventBytes: this.options.maxEventBytes,
      metrics: this.metrics,
      onRelease: () => {
        if (hub !== null) this.hubs.release(hub);
      },
      isClosed: () => this.closed,
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
    if (this.closed) throw new EventStreamClosedError();
    assertChannelName(channel, this.options);
    const frame = encodeEvent(event, this.options.serializeData, this.options.maxEventBytes);

    let entry = this.publishWritables.get(channel);
    if (entry === undefined || entry.writable.destroyed) {
      const writable = this.openWritable(channel, undefined, true);
      // Outcomes go to each PublishRequest; the listener keeps anything unforeseen from crashing the process.
      writable.on('error', () => {});
      entry = { writable, inFlight: 0, idleCheck: false };
      this.publishWritables.set(channel, entry);
    }
    const current = entry;
    current.inFlight++;
    return new Promise<void>((resolve, reject) => {
      const request = new PublishRequest(frame, (error) => {
        this.pendingPublishes.delete(request);
        if (error === null) resolve();
        else reject(error);
      });
      this.pendingPublishes.add(request);
      current.writable.write(request, (error) => {
        // Called once the hub has the event; the proxies may still be working on it.
        if (--current.inFlight === 0) this.publishIdle(channel, current);
        request.written(error ? (this.closed ? new EventStreamClosedError() : error) : null);
      });
    });
  }

  /**
   * publishEvent's writable has nothing in flight. An awaited publish gets
   * here before its caller publishes the next event, so ending the writable
   * now would build a new one (and retain the hub again) for every event of
   * an awaited loop. On a channel with subscribers, whose hub stays anyway,
   * it is kept until a turn of the event loop passes without a publish; a
   * channel nobody listens on lets its hub go at once.
   */
  private publishIdle(channel: string, entry: PublishWritable): void {
    if (this.publishWritables.get(channel) !== entry) return;
    if (!entry.writable.hasLocalSubscribers) {
      this.retirePublishWritable(channel, entry);
    } else if (!entry.idleCheck) {
      entry.idleCheck = true;
      setImmediate(() => {
        entry.idleCheck = false;
        // Busy again: the next time nothing is in flight checks anew.
        if (entry.inFlight === 0) this.retirePublishWritable(channel, entry);
      });
    }
  }

  private retirePublishWritable(channel: string, entry: PublishWritable): void {
    if (this.publishWritables.get(channel) !== entry) return;
    this.publishWritables.delete(channel);
    entry.writable.end();
  }

  /** The answer for a stream that cannot start now; see Admission. */
  retryLater(reason: RetryReason): Admission & { kind: 'retry-later' } {
    return { kind: 'retry-later', reason, body: retryLaterText(this.clientRetry ?? RETRY_LATER_MS, RETRY_REASON_TEXT[reason]) };
  }

  /** Why a stream that was admitted could not be prepared, as the answer the client gets; other errors are rethrown. */
  retryLaterFor(error: unknown): Admission & { kind: 'retry-later' } {
    if (error instanceof EventStreamClosedError) return this.retryLater('shutting-down');
    if (error instanceof EventStoreError) return this.retryLater('store-unavailable');
    throw error;
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
    if (this.closed) return;
    this.closed = true;
    // Proxy calls in flight are aborted, not left to their timeout: nothing outlives close().
    this.grip?.close();
    for (const request of [...this.pendingPublishes]) request.abandon(new EventStreamClosedError());
    // Events whose publishes resolved may still wait in a hub for the end of the turn: they go out before the streams end.
    this.hubs.flushAll();
    for (const stream of [...this.streams]) stream.end();
    for (const { writable } of this.publishWritables.values()) writable.destroy();
    this.publishWritables.clear();
    this.hubs.destroyAll();
    this.keepAliveClock?.stop();
    if (this.ownsStore) void this.store.close?.();
  }
}

/** publishEvent's writable for one channel, with the publishes it has not called back for yet. */
interface PublishWritable {
  readonly writable: ChannelWritable;
  inFlight: number;
  /** An end-of-turn check for idleness is scheduled. */
  idleCheck: boolean;
}

function firstValue(value: HeaderValue): string | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  return first === null || first === undefined || first === '' ? undefined : first;
}

function asStoreError(error: unknown): Error {
  if (error instanceof EventStoreError || error instanceof HttpRequestError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new EventStoreError(`the event store could not be read: ${reason}`, { cause: error });
}
