import { GripBridge } from '../adapters/grip/grip-bridge.js';
import { serveNodeRequest } from '../adapters/node/node-handler.js';
import { respondPlainText } from '../adapters/node/plain-text.js';
import { serveWebRequest } from '../adapters/web/web-handler.js';
import { assertChannelName } from '../admission/channel-names.js';
import { compileChannelSpec, type RouteValues } from '../admission/channel-spec.js';
import { checkOptionKeys, type OptionKeys } from '../common/option-checks.js';
import { EventStreamCore, type ProxyGatewayFactory } from '../core/event-stream-core.js';
import type { StreamMetrics } from '../core/metrics.js';
import { checkAuthorize, type ResolvedOptions, resolveOptions } from '../core/options.js';
import { HttpRequestError, InvalidArgumentError, InvalidOptionError } from '../errors.js';
import type {
  AuthorizeFunction,
  ChannelEventWritable,
  ChannelSpec,
  EventMap,
  EventOf,
  EventStreamHandler,
  EventStreamOptions,
  EventStreamStats,
  NextFunction,
  NodeRequest,
  RouteOptions,
  SseRequest,
  SseResponse,
  WebEventStreamHandler,
  WebRouteContext,
} from '../types.js';
import { ChannelPublisher } from './channel-publisher.js';

const cores = new WeakMap<object, EventStreamCore>();

function coreOf(instance: object): EventStreamCore {
  const core = cores.get(instance);
  // A method taken off its instance (`const { publishEvent } = eventStream`) lands here with another `this`.
  if (core === undefined) {
    throw new InvalidArgumentError(
      'EventStream method called on something that is not an EventStream; call it as eventStream.method(...) or bind it',
    );
  }
  return core;
}

const nodeRouteValues = (req: NodeRequest): RouteValues => req as RouteValues;

async function webRouteValues(request: Request, context: WebRouteContext | undefined): Promise<RouteValues> {
  return { params: await context?.params, query: new URL(request.url).searchParams };
}

/** A route's `authorize`, else the instance's. */
function routeAuthorize(
  core: EventStreamCore,
  options: RouteOptions<never> | undefined,
  owner: string,
): AuthorizeFunction | null {
  if (options === undefined || options === null) return core.options.authorize;
  if (typeof options !== 'object') throw new InvalidOptionError(`${owner}: options must be an object`);
  checkOptionKeys(options, ROUTE_OPTION_KEYS, owner);
  return checkAuthorize(options.authorize, `${owner}: authorize`) ?? core.options.authorize;
}

const ROUTE_OPTION_KEYS = { authorize: true } as const satisfies OptionKeys<RouteOptions>;

/** The GRIP adapter behind the core's proxy gateway, when `options.grip` names proxies. */
function gripGateway(options: ResolvedOptions): ProxyGatewayFactory | null {
  const { grip } = options;
  if (grip === null) return null;
  return (store) => new GripBridge(grip, options, store);
}

/** A channel spec made of names only: it needs nothing from the request, so any Node request will do. */
type ChannelNames = string | readonly string[];

/** A channel spec that is a function of the request (see SseRequest for what an unannotated `req` is). */
type ChannelFunction<TRequest> = Extract<ChannelSpec<TRequest>, (...args: never[]) => unknown>;

// The instance is a function (see the constructor), so its call signatures are declared on the class's interface.
// biome-ignore lint/correctness/noUnusedVariables: merged with the class, so it declares the class's type parameter.
export interface EventStream<TEvents extends object = EventMap> {
  /** Builds middleware serving the channels `spec` names; same as `eventStream.route(spec)`. */
  (spec: ChannelNames, options?: RouteOptions<NodeRequest>): EventStreamHandler;
  (spec: ChannelFunction<SseRequest>, options?: RouteOptions<SseRequest>): EventStreamHandler;
  <TRequest extends NodeRequest>(spec: ChannelFunction<TRequest>, options?: RouteOptions<TRequest>): EventStreamHandler<TRequest>;
}

/**
 * Server-sent events over named channels. The instance is callable:
 * `eventStream('chan')` returns connect/Express/Next.js middleware.
 * `TEvents` types the events it publishes (see EventMap); by default they are untyped.
 */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface above only adds the call signatures the constructor makes true.
export class EventStream<TEvents extends object = EventMap> {
  constructor(options?: EventStreamOptions | null) {
    const resolved = resolveOptions(options);
    const core = new EventStreamCore(resolved, gripGateway(resolved));
    // The instance is a function so `eventStream('chan')` works; its prototype makes it an EventStream too.
    const instance = function eventStream(
      spec: ChannelSpec<NodeRequest>,
      options?: RouteOptions<NodeRequest>,
    ): EventStreamHandler<NodeRequest> {
      return instance.route(spec as ChannelFunction<NodeRequest>, options);
    } as unknown as EventStream<TEvents>;
    Object.setPrototypeOf(instance, new.target.prototype);
    cores.set(instance, core);
    // biome-ignore lint/correctness/noConstructorReturn: the instance must be callable, which only a function is.
    return instance;
  }

  /**
   * Middleware serving the channels `spec` names. A spec that can never name
   * a valid channel throws InvalidChannelError here. Refusals (400, 406, and
   * an HttpRequestError thrown by a channel function, such as a 401) are
   * answered here with their status and a plain-text message; other errors
   * go to `next`, or become a 500 when there is no `next`.
   *
   * A channel function's `req` is an SseRequest (`req.params.room` is a
   * string) unless annotated with the framework's own request type.
   */
  route(spec: ChannelNames, options?: RouteOptions<NodeRequest>): EventStreamHandler;
  route(spec: ChannelFunction<SseRequest>, options?: RouteOptions<SseRequest>): EventStreamHandler;
  route<TRequest extends NodeRequest>(
    spec: ChannelFunction<TRequest>,
    options?: RouteOptions<TRequest>,
  ): EventStreamHandler<TRequest>;
  route<TRequest extends NodeRequest>(
    spec: ChannelSpec<TRequest>,
    options?: RouteOptions<TRequest>,
  ): EventStreamHandler<TRequest> {
    const core = coreOf(this);
    const resolve = compileChannelSpec<TRequest, never>(spec, nodeRouteValues, core.options);
    const authorize = routeAuthorize(core, options, 'eventStream(spec, options)');
    return (req: TRequest, res: SseResponse, next?: NextFunction): Promise<void> =>
      serveNodeRequest(core, req, res, () => resolve(req, undefined as never), authorize).catch((error: unknown) => {
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
  run<TRequest extends NodeRequest>(
    req: TRequest,
    res: SseResponse,
    channels: ChannelNames,
    options?: RouteOptions<TRequest>,
  ): Promise<void> {
    const core = coreOf(this);
    return serveNodeRequest(core, req, res, () => channels, routeAuthorize(core, options, 'run(req, res, channels, options)'));
  }

  /**
   * A web-standard handler `(request, context?) => Promise<Response>` serving
   * the channels `spec` names: `{param}` tokens come from `context.params`
   * (Next.js App Router), then the URL's query. Refusals are plain-text
   * Responses; unexpected errors reject.
   */
  fetchHandler(spec: ChannelSpec<Request, WebRouteContext | undefined>, options?: RouteOptions<Request>): WebEventStreamHandler {
    const core = coreOf(this);
    const resolve = compileChannelSpec<Request, WebRouteContext | undefined>(spec, webRouteValues, core.options);
    const authorize = routeAuthorize(core, options, 'fetchHandler(spec, options)');
    return (request, context) => serveWebRequest(core, request, () => resolve(request, context), authorize);
  }

  /** Serves `channels` on a web-standard Request; the web counterpart of `run`. */
  respond(request: Request, channels: ChannelNames, options?: RouteOptions<Request>): Promise<Response> {
    const core = coreOf(this);
    return serveWebRequest(core, request, () => channels, routeAuthorize(core, options, 'respond(request, channels, options)'));
  }

  /**
   * Ends every stream subscribed to `channel`, telling each
   * `event: stream-close` with `data: {"reason": ...}` first (default
   * `"disconnected"`): in this process, in every process sharing the store,
   * and every stream a GRIP proxy holds. Clients reconnect and meet
   * `authorize` again, so revoking a right and disconnecting its channel is
   * how access is taken away. Resolves once all of them were told and ended.
   */
  async disconnect(channel: string, options?: { reason?: string }): Promise<void> {
    const core = coreOf(this);
    assertChannelName(channel, core.options);
    const reason = options?.reason ?? 'disconnected';
    if (typeof reason !== 'string' || reason.length === 0 || reason.length > 200) {
      throw new InvalidArgumentError('disconnect: reason must be a non-empty string of at most 200 characters');
    }
    return core.disconnect(channel, reason);
  }

  /** Publishes one event; resolves when it has been handed to local subscribers and every GRIP proxy. */
  async publishEvent(channel: string, event: EventOf<TEvents>): Promise<void> {
    return coreOf(this).publish(channel, event);
  }

  getChannelPublisher(channel: string): ChannelPublisher<EventOf<TEvents>> {
    assertChannelName(channel, coreOf(this).options);
    return new ChannelPublisher(this, channel);
  }

  /** An object-mode Writable of events for `channel`, with backpressure from delivery (and GRIP publishing). */
  createChannelWritable(channel: string, options?: { highWaterMark?: number }): ChannelEventWritable<EventOf<TEvents>> {
    const core = coreOf(this);
    const highWaterMark = options?.highWaterMark;
    // Checked here so a bad value is our coded error, not the stream library's.
    if (highWaterMark !== undefined && !(Number.isSafeInteger(highWaterMark) && highWaterMark >= 0)) {
      throw new InvalidArgumentError(
        `createChannelWritable: highWaterMark must be an integer >= 0, got ${String(highWaterMark)}`,
      );
    }
    // A readable-stream Writable, which Node's stream functions take as one of theirs.
    return core.openWritable(channel, highWaterMark) as unknown as ChannelEventWritable<EventOf<TEvents>>;
  }

  stats(): EventStreamStats {
    return coreOf(this).stats();
  }

  /** Ends every stream, timer and writer for a graceful shutdown. Later publishes reject and requests get 503. */
  async close(): Promise<void> {
    coreOf(this).close();
  }
}

export function observe(eventStream: EventStream): { metrics: StreamMetrics; streams(): { direct: number; held: number } } {
  const core = coreOf(eventStream);
  return { metrics: core.metrics, streams: () => core.streamCounts() };
}
