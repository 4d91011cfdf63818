import { assertChannelName } from './channel/names.js';
import { HubRegistry } from './channel/registry.js';
import { ChannelWritable } from './channel/writable.js';
import { EventStreamClosedError, HttpRequestError } from './errors.js';
import { GripBridge } from './grip/bridge.js';
import { acceptsEventStream } from './http/accept.js';
import { KeepAliveClock } from './http/keep-alive.js';
import { checkRequestChannels } from './http/request-channels.js';
import { ResponseStream, type ResponseStreamHost } from './http/response-stream.js';
import type { EventSink } from './http/types.js';
import { resolveOptions, type EventStreamOptions, type ResolvedOptions } from './options.js';
import { encodeEvent } from './sse/encoder.js';
import type { ServerSentEvent } from './sse/event.js';
import type { EventStreamStats } from './stats.js';

/** What to do with a request, whatever the HTTP API it came through. */
export type Admission =
  | { readonly kind: 'refuse'; readonly status: number; readonly message: string }
  | { readonly kind: 'hold'; readonly channels: string[] }
  | { readonly kind: 'stream'; readonly channels: string[] };

/** The request facts admission needs, read from a Node request or a web Request. */
export interface RequestFacts {
  accept: string | string[] | undefined | null;
  gripSig: string | string[] | undefined | null;
  resolveChannels: () => unknown;
}

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
  private readonly metrics = { eventsPublished: 0, slowClientsDropped: 0 };
  private readonly streams = new Set<ResponseStream>();
  /** Writables behind publishEvent, one per channel while writes are in flight, so publishes keep their order. */
  private readonly publishWritables = new Map<string, { writable: ChannelWritable; inFlight: number }>();
  private closed = false;

  constructor(options: EventStreamOptions | null | undefined) {
    this.options = resolveOptions(options);
    this.maxBufferBytes = this.options.maxBufferBytes;
    this.hubs = new HubRegistry(this.metrics);
    this.grip = this.options.grip === null ? null : new GripBridge(this.options.grip, this.options);
    this.keepAliveClock =
      this.options.keepAliveInterval > 0 ? new KeepAliveClock(this.options.keepAliveInterval, this.streams) : null;
  }

  async admit(facts: RequestFacts): Promise<Admission> {
    if (this.closed) {
      return { kind: 'refuse', status: 503, message: 'Service Unavailable: the event stream is shutting down.' };
    }
    try {
      if (!acceptsEventStream(facts.accept ?? undefined)) {
        throw new HttpRequestError(406, 'Not Acceptable: this endpoint only serves text/event-stream.');
      }
      const channels = checkRequestChannels(await facts.resolveChannels(), this.options);
      if (this.grip !== null && (await this.grip.isProxied(facts.gripSig ?? undefined))) {
        return { kind: 'hold', channels };
      }
      return { kind: 'stream', channels };
    } catch (error) {
      if (error instanceof HttpRequestError) return { kind: 'refuse', status: error.status, message: error.message };
      throw error;
    }
  }

  /** Subscribes a sink whose headers are already out to `channels`. */
  openStream(sink: EventSink, channels: readonly string[]): void {
    const hubs = channels.map((channel) => this.hubs.retain(channel));
    this.streams.add(new ResponseStream(sink, hubs, this));
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

  openWritable(channel: string, highWaterMark?: number): ChannelWritable {
    if (this.closed) throw new EventStreamClosedError();
    assertChannelName(channel, this.options);
    const hub = this.hubs.retain(channel);
    return new ChannelWritable({
      channel,
      hub,
      remote: this.grip,
      serializeData: this.options.serializeData,
      onRelease: () => this.hubs.release(hub),
      highWaterMark,
    });
  }

  publish(channel: string, event: ServerSentEvent): Promise<void> {
    if (this.closed) throw new EventStreamClosedError();
    assertChannelName(channel, this.options);
    const frame = encodeEvent(event, this.options.serializeData);

    let entry = this.publishWritables.get(channel);
    if (entry === undefined || entry.writable.destroyed) {
      const writable = this.openWritable(channel);
      // Failures reach the caller through the write callback; the listener keeps them from crashing the process.
      writable.on('error', () => {});
      entry = { writable, inFlight: 0 };
      this.publishWritables.set(channel, entry);
    }
    const current = entry;
    current.inFlight++;
    return new Promise<void>((resolve, reject) => {
      current.writable.write(frame, (error) => {
        if (--current.inFlight === 0 && this.publishWritables.get(channel) === current) {
          this.publishWritables.delete(channel);
          current.writable.end();
        }
        if (error) reject(error);
        else resolve();
      });
    });
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
    for (const stream of [...this.streams]) stream.end();
    for (const { writable } of this.publishWritables.values()) writable.destroy();
    this.publishWritables.clear();
    this.hubs.destroyAll();
    this.keepAliveClock?.stop();
  }
}
