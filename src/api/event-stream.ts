import type { Writable } from 'node:stream';
import { assertChannelName } from '../admission/channel-names.js';
import { ChannelPublisher } from './channel-publisher.js';
import { EventStreamCore } from '../core/event-stream-core.js';
import { HttpRequestError, InvalidArgumentError } from '../errors.js';
import type { EventStreamStats } from '../stats-types.js';
import { compileChannelSpec, type ChannelSpec, type RouteValues } from '../admission/channel-spec.js';
import { serveNodeRequest } from '../adapters/node/node-handler.js';
import { respondPlainText } from '../adapters/node/plain-text.js';
import type { EventStreamHandler, NextFunction, SseRequest, SseResponse } from '../types.js';
import type { EventStreamOptions } from '../core/options.js';
import type { ServerSentEvent } from '../event-types.js';
import { serveWebRequest } from '../adapters/web/web-handler.js';

/** The second argument web frameworks pass to route handlers (Next.js App Router: `{ params }`, possibly a promise). */
export interface WebRouteContext {
  params?: Record<string, string | string[] | undefined> | Promise<Record<string, string | string[] | undefined>>;
}

/** What `eventStream.fetchHandler(spec)` returns: a web-standard route handler (Next.js App Router `GET`, Hono, ...). */
export type WebEventStreamHandler = (request: Request, context?: WebRouteContext) => Promise<Response>;

const cores = new WeakMap<EventStream, EventStreamCore>();

function coreOf(instance: EventStream): EventStreamCore {
  const core = cores.get(instance);
  // A method taken off its instance (`const { publishEvent } = eventStream`) lands here with another `this`.
  if (core === undefined) {
    throw new InvalidArgumentError('EventStream method called on something that is not an EventStream; call it as eventStream.method(...) or bind it');
  }
  return core;
}

const nodeRouteValues = (req: SseRequest): RouteValues => req;

async function webRouteValues(request: Request, context: WebRouteContext | undefined): Promise<RouteValues> {
  return { params: await context?.params, query: new URL(request.url).searchParams };
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
    const core = new EventStreamCore(options);
    // The instance is a function so `eventStream('chan')` works; its prototype makes it an EventStream too.
    const instance = function eventStream(spec: ChannelSpec): EventStreamHandler {
      return instance.route(spec);
    } as unknown as EventStream;
    Object.setPrototypeOf(instance, new.target.prototype);
    cores.set(instance, core);
    return instance;
  }

  /**
   * Middleware serving the channels `spec` names. A spec that can never name
   * a valid channel throws InvalidChannelError here. Refusals (400, 406, and
   * an HttpRequestError thrown by a channel function, such as a 401) are
   * answered here with their status and a plain-text message; other errors
   * go to `next`, or become a 500 when there is no `next`.
   */
  route(spec: ChannelSpec): EventStreamHandler {
    const core = coreOf(this);
    const resolve = compileChannelSpec<SseRequest, never>(spec, nodeRouteValues, core.options);
    return (req: SseRequest, res: SseResponse, next?: NextFunction): Promise<void> =>
      serveNodeRequest(core, req, res, () => resolve(req, undefined as never)).catch((error: unknown) => {
        // Admission answers refusals itself; one raised later is still the client's answer, never an error page.
        if (error instanceof HttpRequestError) respondPlainText(res, error.status, error.message);
        else if (typeof next === 'function') next(error);
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
    return serveNodeRequest(coreOf(this), req, res, () => channels);
  }

  /**
   * A web-standard handler `(request, context?) => Promise<Response>` serving
   * the channels `spec` names: `{param}` tokens come from `context.params`
   * (Next.js App Router), then the URL's query. Refusals are plain-text
   * Responses; unexpected errors reject.
   */
  fetchHandler(spec: ChannelSpec<Request, WebRouteContext | undefined>): WebEventStreamHandler {
    const core = coreOf(this);
    const resolve = compileChannelSpec<Request, WebRouteContext | undefined>(spec, webRouteValues, core.options);
    return (request, context) => serveWebRequest(core, request, () => resolve(request, context));
  }

  /** Serves `channels` on a web-standard Request; the web counterpart of `run`. */
  respond(request: Request, channels: string | readonly string[]): Promise<Response> {
    return serveWebRequest(coreOf(this), request, () => channels);
  }

  /** Publishes one event; resolves when it has been handed to local subscribers and every GRIP proxy. */
  async publishEvent(channel: string, event: ServerSentEvent): Promise<void> {
    return coreOf(this).publish(channel, event);
  }

  getChannelPublisher(channel: string): ChannelPublisher {
    assertChannelName(channel, coreOf(this).options);
    return new ChannelPublisher(this, channel);
  }

  /** An object-mode Writable of events for `channel`, with backpressure from delivery (and GRIP publishing). */
  createChannelWritable(channel: string, options?: { highWaterMark?: number }): Writable {
    const core = coreOf(this);
    const highWaterMark = options?.highWaterMark;
    // Checked here so a bad value is our coded error, not the stream library's.
    if (highWaterMark !== undefined && !(Number.isSafeInteger(highWaterMark) && highWaterMark >= 0)) {
      throw new InvalidArgumentError(`createChannelWritable: highWaterMark must be an integer >= 0, got ${String(highWaterMark)}`);
    }
    return core.openWritable(channel, highWaterMark) as unknown as Writable;
  }

  stats(): EventStreamStats {
    return coreOf(this).stats();
  }

  /** Ends every stream, timer and writer for a graceful shutdown. Later publishes reject and requests get 503. */
  async close(): Promise<void> {
    coreOf(this).close();
  }
}
