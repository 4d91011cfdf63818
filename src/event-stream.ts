import type { Writable } from 'node:stream';
import { assertChannelName } from './channel/names.js';
import { ChannelPublisher } from './channel/publisher.js';
import { HubRegistry } from './channel/registry.js';
import { ChannelWritable, type RemotePublisher } from './channel/writable.js';
import { EventStreamClosedError, HttpRequestError } from './errors.js';
import { GripBridge } from './grip/bridge.js';
import { acceptsEventStream } from './http/accept.js';
import { compileChannelSpec, type ChannelResolver, type ChannelSpec } from './http/channel-spec.js';
import { EVENT_STREAM_HEADERS } from './http/headers.js';
import { checkRequestChannels } from './http/request-channels.js';
import { respondPlainText } from './http/respond.js';
import { KeepAliveClock } from './http/keep-alive.js';
import { ResponseStream, type ResponseStreamHost } from './http/response-stream.js';
import type { EventStreamHandler, NextFunction, SseRequest, SseResponse } from './http/types.js';
import { resolveOptions, type EventStreamOptions, type ResolvedOptions } from './options.js';
import { encodeEvent } from './sse/encoder.js';
import type { ServerSentEvent } from './sse/event.js';

/** A snapshot of what an EventStream holds, for monitoring and leak checks. */
export interface EventStreamStats {
  /** Local subscribers per channel (channels without subscribers are omitted). */
  channels: Record<string, number>;
  /** Live channel hubs (channels with a subscriber or an open writer). */
  hubs: number;
  /** Open direct event-stream responses. */
  streams: number;
  /** Events handed to hubs since construction. */
  eventsPublished: number;
  /** Clients disconnected for falling more than `maxBufferBytes` behind. */
  slowClientsDropped: number;
}

interface EventStreamState {
  readonly options: ResolvedOptions;
  readonly metrics: { eventsPublished: number; slowClientsDropped: number };
  readonly hubs: HubRegistry;
  readonly streams: Set<ResponseStream>;
  /** Writables behind publishEvent, one per channel while writes are in flight, so publishes keep their order. */
  readonly publishWritables: Map<string, { writable: ChannelWritable; inFlight: number }>;
  readonly grip: GripBridge | null;
  readonly keepAliveClock: KeepAliveClock | null;
  readonly streamHost: ResponseStreamHost;
  closed: boolean;
}

const states = new WeakMap<EventStream, EventStreamState>();

function stateOf(instance: EventStream): EventStreamState {
  const state = states.get(instance);
  if (state === undefined) throw new TypeError('not an EventStream instance');
  return state;
}

export interface EventStream {
  /** Builds middleware serving the channels `spec` names; same as `eventStream.route(spec)`. */
  (spec: ChannelSpec): EventStreamHandler;
}

/**
 * Server-sent events over named channels. The instance is callable:
 * `eventStream('chan')` returns connect/Express/Next.js middleware.
 */
export class EventStream {
  constructor(options?: EventStreamOptions | null) {
    const resolved = resolveOptions(options);
    const metrics = { eventsPublished: 0, slowClientsDropped: 0 };
    // The instance is a function so `eventStream('chan')` works; its prototype makes it an EventStream too.
    const instance = function eventStream(spec: ChannelSpec): EventStreamHandler {
      return instance.route(spec);
    } as unknown as EventStream;
    Object.setPrototypeOf(instance, new.target.prototype);
    const hubs = new HubRegistry(metrics);
    const streams = new Set<ResponseStream>();
    const keepAliveClock = resolved.keepAliveInterval > 0 ? new KeepAliveClock(resolved.keepAliveInterval, streams) : null;
    states.set(instance, {
      options: resolved,
      metrics,
      hubs,
      streams,
      publishWritables: new Map(),
      grip: resolved.grip === null ? null : new GripBridge(resolved.grip, resolved),
      keepAliveClock,
      streamHost: {
        maxBufferBytes: resolved.maxBufferBytes,
        keepAliveClock,
        slowClientDropped: () => {
          metrics.slowClientsDropped++;
        },
        streamClosed: (stream) => {
          streams.delete(stream);
          keepAliveClock?.streamRemoved();
          for (const hub of stream.hubs) hubs.release(hub);
        },
      },
      closed: false,
    });
    return instance;
  }

  /** Middleware serving the channels `spec` names. Request errors (400, 406) are answered here; others go to `next`. */
  route(spec: ChannelSpec): EventStreamHandler {
    const resolve = compileChannelSpec(spec);
    return (req: SseRequest, res: SseResponse, next?: NextFunction): Promise<void> =>
      serve(this, req, res, resolve).catch((error: unknown) => {
        if (typeof next === 'function') next(error);
        else respondPlainText(res, 500, 'Internal Server Error');
      });
  }

  /**
   * Serves `channels` on this request directly. Resolves once the stream is
   * established (headers and opening bytes sent, subscribed) or the request
   * was refused with a 4xx; the stream then lives until the client leaves or
   * `close()` is called. Rejects only on unexpected errors.
   */
  run(req: SseRequest, res: SseResponse, channels: string | readonly string[]): Promise<void> {
    return serve(this, req, res, () => channels);
  }

  /** Publishes one event; resolves when it has been handed to local subscribers and every GRIP proxy. */
  async publishEvent(channel: string, event: ServerSentEvent): Promise<void> {
    const state = stateOf(this);
    if (state.closed) throw new EventStreamClosedError();
    assertChannelName(channel, state.options);
    const frame = encodeEvent(event, state.options.serializeData);

    let entry = state.publishWritables.get(channel);
    if (entry === undefined || entry.writable.destroyed) {
      const writable = openWritable(state, channel);
      // Failures reach the caller through the write callback; the listener keeps them from crashing the process.
      writable.on('error', () => {});
      entry = { writable, inFlight: 0 };
      state.publishWritables.set(channel, entry);
    }
    const current = entry;
    current.inFlight++;
    return new Promise<void>((resolve, reject) => {
      current.writable.write(frame, (error) => {
        if (--current.inFlight === 0 && state.publishWritables.get(channel) === current) {
          state.publishWritables.delete(channel);
          current.writable.end();
        }
        if (error) reject(error);
        else resolve();
      });
    });
  }

  getChannelPublisher(channel: string): ChannelPublisher {
    assertChannelName(channel, stateOf(this).options);
    return new ChannelPublisher(this, channel);
  }

  /** An object-mode Writable of events for `channel`, with backpressure from delivery (and GRIP publishing). */
  createChannelWritable(channel: string, options?: { highWaterMark?: number }): Writable {
    const state = stateOf(this);
    if (state.closed) throw new EventStreamClosedError();
    assertChannelName(channel, state.options);
    return openWritable(state, channel, options?.highWaterMark) as unknown as Writable;
  }

  stats(): EventStreamStats {
    const state = stateOf(this);
    return {
      channels: state.hubs.subscriberCounts(),
      hubs: state.hubs.size,
      streams: state.streams.size,
      eventsPublished: state.metrics.eventsPublished,
      slowClientsDropped: state.metrics.slowClientsDropped,
    };
  }

  /** Ends every stream, timer and writer for a graceful shutdown. Later publishes reject and requests get 503. */
  async close(): Promise<void> {
    const state = stateOf(this);
    if (state.closed) return;
    state.closed = true;
    for (const stream of [...state.streams]) stream.end();
    for (const { writable } of state.publishWritables.values()) writable.destroy();
    state.publishWritables.clear();
    state.hubs.destroyAll();
    state.keepAliveClock?.stop();
  }
}

function openWritable(state: EventStreamState, channel: string, highWaterMark?: number): ChannelWritable {
  const hub = state.hubs.retain(channel);
  const remote: RemotePublisher | null = state.grip;
  return new ChannelWritable({
    channel,
    hub,
    remote,
    serializeData: state.options.serializeData,
    onRelease: () => state.hubs.release(hub),
    highWaterMark,
  });
}

async function serve(
  instance: EventStream,
  req: SseRequest,
  res: SseResponse,
  resolve: ChannelResolver,
): Promise<void> {
  const state = stateOf(instance);
  try {
    if (state.closed) {
      respondPlainText(res, 503, 'Service Unavailable: the event stream is shutting down.');
      return;
    }
    if (!acceptsEventStream(req.headers.accept)) {
      throw new HttpRequestError(406, 'Not Acceptable: this endpoint only serves text/event-stream.');
    }
    const channels = checkRequestChannels(await resolve(req), state.options);
    if (res.destroyed || res.writableEnded) return;

    if (state.grip !== null && (await state.grip.isProxied(req))) {
      state.grip.respondHold(res, channels);
      return;
    }
    openDirectStream(state, res, channels);
  } catch (error) {
    if (error instanceof HttpRequestError) {
      respondPlainText(res, error.status, error.message);
      return;
    }
    throw error;
  }
}

function openDirectStream(state: EventStreamState, res: SseResponse, channels: readonly string[]): void {
  res.writeHead(200, EVENT_STREAM_HEADERS);
  // Proxies and browsers learn at once that the stream started. (HTTP/2 responses send headers on writeHead.)
  (res as { flushHeaders?: () => void }).flushHeaders?.();
  const hubs = channels.map((channel) => state.hubs.retain(channel));
  state.streams.add(new ResponseStream(res, hubs, state.streamHost));
  state.keepAliveClock?.streamAdded();
}
