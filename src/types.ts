/**
 * Every public type of the library, in one place. This module holds types
 * only (no code, no imports of ours), so every layer may import from it.
 * The optional subpath entries declare their own option types beside their
 * code (RedisEventStoreOptions in stores/redis), since those name the
 * optional dependency's types.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Writable } from 'node:stream';

// ---- Requests, responses and handlers ----

/** Any request Node's HTTP servers make: HTTP/1 or the HTTP/2 compatibility API. connect, Express and Next.js build on it. */
export type NodeRequest = IncomingMessage | Http2ServerRequest;

/**
 * What a channel function's `req` is when it is not annotated: a Node
 * request with route parameters (`req.params.room`, as Express and its
 * routers set them) and, where the framework parses it, the query (Express,
 * Next.js pages router). The middleware made from such a function takes any
 * Node request; behind a server that sets no `params` they are undefined at
 * run time. Annotate the parameter with your framework's type
 * (`(req: express.Request) => ...`, `(req: IncomingMessage) => ...`) to get
 * exactly it; the middleware then takes that type.
 */
export type SseRequest<TParams extends Record<string, string> = Record<string, string>> = NodeRequest & {
  params: TParams;
  query?: Record<string, unknown>;
};

export type SseResponse = ServerResponse | Http2ServerResponse;

/** connect-style continuation. */
export type NextFunction = (error?: unknown) => void;

/** What `eventStream(spec)` returns: connect/Express middleware and a Next.js pages API handler. */
export type EventStreamHandler<TRequest extends NodeRequest = NodeRequest> = (
  req: TRequest,
  res: SseResponse,
  next?: NextFunction,
) => Promise<void>;

type Awaitable<T> = T | Promise<T>;

// ---- Access control ----

/**
 * What `authorize` decides for a request: `true` (allowed), `false` (refused
 * with a plain-text 403), or `{ until }`: allowed until that time (epoch
 * milliseconds), when the stream is told `stream-close` with reason
 * `expired` and ended, so the client reconnects and is authorized afresh.
 */
export type Authorization = boolean | { readonly until: number };

/**
 * Decides whether `request` may listen to `channels` (resolved and checked
 * names). `request` is the Node `req` for middleware and `run`, the web
 * `Request` for `fetchHandler` and `respond`. Throw an `HttpRequestError` to
 * answer with its status and message (a 401, say); any other throw goes to
 * `next(err)`, else a 500. It runs before any header is sent, for direct and
 * for proxied requests, and for every reconnection.
 */
export type AuthorizeFunction<TRequest = NodeRequest | Request> = (
  request: TRequest,
  channels: readonly string[],
) => Awaitable<Authorization>;

/** Who a request comes from, for `maxStreamsPerClient`; null leaves it uncounted. */
export type ClientKeyFunction = (request: NodeRequest | Request) => string | null;

/** Options of one route (`eventStream(spec, options)`, `run`, `fetchHandler`, `respond`). */
export interface RouteOptions<TRequest = NodeRequest | Request> {
  /** Overrides the instance's `authorize` for this route. */
  authorize?: AuthorizeFunction<TRequest>;
}

/**
 * Which channels a request listens to: a name, a list of names, templates
 * with `{param}` tokens filled from the route (`req.params`, Express; the
 * route context's `params`, Next.js App Router) or the query (`req.query`,
 * Next.js pages router; the URL's search params for web requests), or a
 * function of the request.
 */
export type ChannelSpec<TRequest = SseRequest, TContext = never> =
  | string
  | readonly string[]
  | ((req: TRequest, context: TContext) => Awaitable<string | readonly string[]>);

/** The second argument web frameworks pass to route handlers (Next.js App Router: `{ params }`, possibly a promise). */
export interface WebRouteContext {
  params?: Record<string, string | string[] | undefined> | Promise<Record<string, string | string[] | undefined>>;
}

/** What `eventStream.fetchHandler(spec)` returns: a web-standard route handler (Next.js App Router `GET`, Hono, ...). */
export type WebEventStreamHandler = (request: Request, context?: WebRouteContext) => Promise<Response>;

// ---- Events ----

/** One server-sent event as a publisher describes it. */
export interface ServerSentEvent<TData = unknown> {
  /** Event type; the browser dispatches it to `addEventListener(event)`. Omitted means `message`. */
  event?: string;
  /** Payload. Serialized as JSON unless the EventStream was given another `serializeData`. */
  data: TData;
  /**
   * Not settable: every event gets its channel's next sequence number as its
   * id, which is what clients resume from. Setting it is a TypeError.
   */
  id?: never;
  /** Reconnection delay the client should use, in milliseconds. */
  retry?: number;
}

/** Turns an event's `data` into the text carried by its `data:` lines. */
export type DataSerializer = (data: unknown) => string;

/**
 * Event names and the type of each one's `data`, for a typed EventStream:
 * `new EventStream<{ message: string; price: { symbol: string; value: number } }>()`.
 * An interface or a type literal will do. The default (any name, any data)
 * leaves events untyped.
 */
export type EventMap = Record<string, unknown>;

/**
 * The events an EventStream with event map `TEvents` publishes: `event`
 * names one of its keys and `data` has that key's type. A `message` event
 * (what the browser dispatches to `onmessage`) may leave `event` out.
 */
export type EventOf<TEvents extends object> = string extends keyof TEvents
  ? ServerSentEvent
  : {
      [K in keyof TEvents & string]: K extends 'message'
        ? ServerSentEvent<TEvents[K]> & { event?: 'message' }
        : ServerSentEvent<TEvents[K]> & { event: K };
    }[keyof TEvents & string];

/**
 * What `createChannelWritable(channel)` returns: an object-mode Writable of
 * events, typed by the EventStream's event map. It is a stream.Writable, so
 * `pipeline(source, writable)` and `source.pipe(writable)` take it.
 */
export interface ChannelEventWritable<TEvent = ServerSentEvent> extends Writable {
  write(event: TEvent, callback?: (error: Error | null | undefined) => void): boolean;
  write(event: TEvent, encoding: BufferEncoding, callback?: (error: Error | null | undefined) => void): boolean;
  /**
   * Never matches a call (nothing is assignable to `never`); it only lets
   * the compiler accept this Writable where Node's stream functions expect
   * a byte stream (`pipeline(source, writable)`), as it accepts any Writable.
   */
  write(chunk: never, encoding?: never, callback?: never): boolean;
  end(callback?: () => void): this;
  end(event: TEvent, callback?: () => void): this;
  end(event: TEvent, encoding: BufferEncoding, callback?: () => void): this;
  /** Never matches a call; see write(chunk: never). */
  end(chunk: never, encoding?: never, callback?: never): this;
}

// ---- Options ----

export interface EventStreamOptions {
  /**
   * Who may listen: called for every stream request (direct, proxied, and
   * every reconnection) before any header is sent. See AuthorizeFunction;
   * a route's own `authorize` overrides it. Default: everyone may.
   */
  authorize?: AuthorizeFunction;
  /** GRIP proxy configuration; absent or null serves every stream directly. */
  grip?: GripOption | null;
  /** Prefix of every GRIP channel name. Default `'events-'`. */
  gripPrefix?: string;
  /**
   * GRIP reliable mode: published items carry `id`/`prev-id` and held streams
   * a `Grip-Link`, so the proxy notices a lost publish and recovers it from
   * the history. It needs ids every process agrees on: default `true` with a
   * shared store (Redis), `false` otherwise, since separate memory stores in
   * several processes number their events independently.
   */
  gripReliable?: boolean;
  /**
   * Milliseconds between a GRIP proxy's checks on each idle stream it holds
   * (it fetches the stream's link), which is how this origin counts held
   * streams for `subscribers()` and the `held` metrics. Each check is a
   * request to the origin: 10,000 idle held streams at the default cost
   * about 333 requests a second. 0 turns checks (and held counts) off.
   * Default 30000.
   */
  gripCheckInterval?: number;
  /** Milliseconds a GRIP control-API call may take before it fails. Default 10000. */
  gripPublishTimeout?: number;
  /** Milliseconds without traffic before a keep-alive comment is sent. Default 15000; 0 disables. */
  keepAliveInterval?: number;
  /**
   * Milliseconds a client should wait before reconnecting, sent as `retry:`
   * in the opening event. Default: not sent (browsers wait about 3 s).
   */
  clientRetry?: number;
  /** Unsent bytes a client may fall behind by before it is disconnected. Default 1 MiB. */
  maxBufferBytes?: number;
  /**
   * Largest event a publish accepts, in bytes of its encoded fields (the
   * `event:`, `retry:` and `data:` lines as sent, UTF-8). A larger one is
   * refused with an InvalidEventError and neither stored nor sent: it could
   * never reach a client whose buffer it overflows. Default and maximum:
   * half of `maxBufferBytes` (512 KiB), so a client less than half a buffer
   * behind always has room for it; with `grip`, at most 480 KiB, the most a
   * Pushpin publish request is sure to carry.
   */
  maxEventBytes?: number;
  /** Longest channel name accepted. Default 128. */
  maxChannelNameLength?: number;
  /** Most channels one request may listen to. Default 16. */
  maxChannelsPerRequest?: number;
  /**
   * Most direct streams this process serves at once; past it a new stream
   * gets the answer that makes EventSource come back later (a 200 with only
   * `retry:`, as during a store outage). Held streams (GRIP) are not counted.
   * Default: no limit.
   */
  maxStreams?: number;
  /**
   * Most direct streams one client (see `clientKey`) may have open at once;
   * past it `429 Too Many Requests` with `Retry-After`. Default: no limit.
   */
  maxStreamsPerClient?: number;
  /**
   * Who a request comes from, for `maxStreamsPerClient`. Default: the remote
   * address of a Node request (web Requests carry none and are then not
   * counted). Behind a reverse proxy, read its header
   * (`req.headers['x-forwarded-for']`); with logins, a user id. Return null
   * to leave a request uncounted.
   */
  clientKey?: ClientKeyFunction;
  /** Turns `event.data` into text. Default `JSON.stringify`. */
  serializeData?: DataSerializer;
  /**
   * Where events get their ids and history is kept for resuming clients.
   * Default: a `MemoryEventStore` (1000 events or 5 minutes per channel).
   * A `RedisEventStore` (from `@fanoutio/eventstream/redis`) shares ids, history and delivery between processes.
   */
  store?: EventStore;
}

export interface MemoryEventStoreOptions {
  /** Events kept per channel. Default 1000. */
  maxEvents?: number;
  /** Milliseconds an event is kept. Default 300000 (5 minutes). */
  maxAge?: number;
  /**
   * Bytes of history kept across all channels: each event's UTF-8 size plus
   * ~160 bytes of bookkeeping, each channel ~200 bytes plus its name. Past
   * it the oldest events go first, whatever their channel. Default 64 MiB.
   */
  maxBytes?: number;
  /** Channels published to whose numbering is kept; past it the least recently published is forgotten. Default 100000. */
  maxChannels?: number;
}

/** A GRIP proxy's control endpoint, as `@fanoutio/grip` takes it. */
export interface GripProxyConfig {
  control_uri: string;
  control_iss?: string;
  key?: string | Uint8Array;
  verify_iss?: string;
  verify_key?: string | Uint8Array;
}

/**
 * The part of a `@fanoutio/grip` publisher client this library uses. Declared
 * here so the public types do not pull in `@fanoutio/grip`'s (which need the DOM lib).
 */
export interface GripPublisherClientLike {
  publish(channel: string, item: never): Promise<void>;
  getAuth?(): { buildHeader(): Promise<string> } | undefined;
  getVerifyIss?(): string | undefined;
  getVerifyKey?(): unknown;
}

/** The part of `@fanoutio/grip`'s `Publisher` this library uses. */
export interface GripPublisherLike {
  clients: GripPublisherClientLike[];
}

/** Every form `options.grip` takes: a GRIP_URL, a config, several configs, or a Publisher. */
export type GripOption = string | GripProxyConfig | ReadonlyArray<string | GripProxyConfig> | GripPublisherLike;

// ---- Stores ----

/** A value, or a promise of it: the memory store answers synchronously, shared stores asynchronously. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * One stored event: its per-channel sequence number and its SSE fields
 * (`event:`, `retry:`, `data:` lines, each ending in LF) without the `id:`
 * line and without the blank line that ends the event. The id line is added
 * per channel (or per multi-channel stream) on the way out.
 */
export interface StoredEvent {
  readonly seq: number;
  readonly body: string;
}

export interface HistoryPage {
  /** Events with `seq > after`, oldest first, at most `limit` of them. */
  readonly events: readonly StoredEvent[];
  /** True when events right after `after` are no longer kept (trimmed by count or age): the reader has a gap. */
  readonly gap: boolean;
  /** The channel's newest sequence number when the page was read (see `head`). */
  readonly head: number;
}

/**
 * Where events live and get their ids. A store assigns each channel's
 * sequence numbers, keeps a bounded history per channel and answers resume
 * reads.
 *
 * A `shared` store (Redis) is shared by several processes: it then also
 * delivers every appended event, whoever appended it, to `watch` listeners,
 * in sequence order, and the local hubs are fed from there rather than from
 * the local publisher, so every process sends the same order.
 */
export interface EventStore {
  readonly shared: boolean;
  /**
   * Appends events to a channel, in order, and returns the sequence number
   * given to the first; the rest follow consecutively. Sequence numbers only
   * grow: they never repeat for a channel, even after its history expired.
   */
  append(channel: string, bodies: readonly string[]): MaybePromise<number>;
  /** Reads events published after position `after`. */
  readSince(channel: string, after: number, limit: number): MaybePromise<HistoryPage>;
  /**
   * The channel's newest sequence number. For a channel never published to,
   * the position its first event will follow (a clock-based starting point,
   * the same for every caller until then), so that it is never mistaken
   * for a position in a history that was lost.
   */
  head(channel: string): MaybePromise<number>;
  /**
   * Shared stores only: delivers events appended anywhere from now on. When
   * the store finds that history the watch had not delivered is gone (lost
   * with the store's data, or trimmed while it could not read), it calls
   * `lost` with the position the watch continues from instead.
   */
  watch?(channel: string, listener: StoreListener, lost?: StoreLossListener): StoreWatch;
  /**
   * Shared stores: asks every process sharing the store (this one
   * included) to end its streams on `channel` with `reason`; resolves once
   * each process that watches disconnects has done so.
   */
  disconnect?(channel: string, reason: string): Promise<void>;
  /** Shared stores: calls `listener` for every disconnect asked in any process; returns what stops it. */
  watchDisconnects?(listener: (channel: string, reason: string) => void): () => void;
  /**
   * Shared stores: records the streams one process has per channel (its
   * `counts` replace what it reported before), good for `ttlMs`: a process
   * that stops reporting (crashed) stops counting once it passes.
   */
  reportPresence?(processId: string, counts: Readonly<Record<string, number>>, ttlMs: number): Promise<void>;
  /** Shared stores: forgets one process's counts at once (it is shutting down). */
  removePresence?(processId: string): Promise<void>;
  /** Shared stores: the sum of the counts live processes reported for `channel`, leaving out `exceptProcessId`'s. */
  presence?(channel: string, exceptProcessId?: string): Promise<number>;
  /** Releases connections and timers. */
  close?(): MaybePromise<void>;
}

export type StoreListener = (events: readonly StoredEvent[]) => void;

/** Called with the position a watch skipped to: the events up to it will never be delivered. */
export type StoreLossListener = (position: number) => void;

export interface StoreWatch {
  /**
   * Resolves with the position from which the listener receives every event
   * (events after it, none missing, none twice, in order), once the watch is live.
   */
  readonly ready: Promise<number>;
  close(): void;
}

// ---- Monitoring ----

/** A snapshot of what an EventStream holds, for monitoring and leak checks. */
/**
 * A snapshot of what one EventStream (in this process) holds and did. Counts
 * across processes and proxies are `subscribers(channel)`'s job.
 */
export interface EventStreamStats {
  /** Direct streams per channel in this process (channels without any are omitted). */
  channels: Record<string, number>;
  /** Live channel hubs (channels with a subscriber or an open writer). */
  hubs: number;
  /** Direct streams open in this process (every stream counted once, whatever its channels). */
  streams: number;
  /** Streams GRIP proxies hold for this process, as far as it can tell (see `subscribers`); 0 without `grip`. */
  heldStreams: number;
  /** Events published through this process (numbered by the store on its behalf) since construction. */
  eventsPublished: number;
  /** Events that reached this process's hubs: its own publishes, and with a shared store every process's. */
  eventsReceived: number;
  /** Events handed to this process's direct streams, counted per frame: events times the streams subscribed. */
  deliveries: number;
  /** Clients disconnected for falling more than `maxBufferBytes` behind. */
  slowClientsDropped: number;
}

// ---- Subscriber tokens ----

/**
 * The HS256 key of subscriber tokens: a string (its UTF-8 bytes) or bytes,
 * at least 32 bytes long, since a shorter HMAC key can be brute-forced from
 * one token. Keep it apart from the app's other JWT secrets, or give tokens
 * an `audience`, so that no other token of the app passes as a subscriber token.
 */
export type SubscriberTokenSecret = string | Uint8Array;

/** Options of `subscriberTokens(options)`, which makes an `authorize` function. */
export interface SubscriberTokensOptions {
  secret: SubscriberTokenSecret;
  /** When set, a token's `iss` must equal it. */
  issuer?: string;
  /** When set, a token's `aud` must name it (or one of them). */
  audience?: string | readonly string[];
  /** The cookie read when no `Authorization: Bearer` header is sent; `false` reads none. Default `'eventstream_token'`. */
  cookie?: string | false;
  /**
   * The query parameter read when neither header nor cookie carries a token
   * (EventSource cannot set headers); `false` reads none. Default `'token'`.
   * URLs reach access logs, so prefer the cookie when the page and the
   * stream share a site.
   */
  query?: string | false;
}

/** Options of `createSubscriberToken(options)`. */
export interface CreateSubscriberTokenOptions {
  secret: SubscriberTokenSecret;
  /**
   * The channels the token allows: names, or prefixes ending in `*`
   * (`'user-42-*'` allows every channel whose name starts with `user-42-`;
   * a lone `'*'` allows every channel).
   */
  channels: readonly string[];
  /** How long the token is valid: seconds, or a `jose` time span (`'15m'`, `'2 hours'`). */
  expiresIn: number | string;
  /** The `sub` claim: who the token was issued to, for your logs. */
  subject?: string;
  issuer?: string;
  audience?: string | readonly string[];
}
