import { acceptsEventStream } from '../admission/accept.js';
import { type Access, authorizeRequest } from '../admission/access.js';
import { checkRequestChannels } from '../admission/request-channels.js';
import { parseEventId } from '../admission/resume-position.js';
import { type StreamOpenMessage, streamOpenChannel } from '../common/diagnostics.js';
import type { EventSink } from '../delivery/event-sink.js';
import type { ChannelHub } from '../delivery/hub.js';
import { EventStoreError, EventStreamClosedError, HttpRequestError } from '../errors.js';
import { retryLaterText } from '../sse/encoder.js';
import type { StreamPosition } from '../sse/event-id.js';
import type { AuthorizeFunction, NodeRequest } from '../types.js';
import type { EventStreamCore } from './event-stream-core.js';
import type { HoldInstructions } from './proxy-gateway.js';

type HeaderValue = string | string[] | undefined | null;

/** What a transport adapter read from one request; all the pipeline needs to decide. */
export interface StreamRequest {
  /** The request as the transport has it (Node `req`, web `Request`): what `authorize` is given. */
  readonly source: NodeRequest | Request;
  /** Who may listen: the route's `authorize`, else the instance's, else null (everyone). */
  readonly authorize: AuthorizeFunction | null;
  readonly transport: 'node' | 'web';
  readonly method: string | undefined;
  readonly accept: HeaderValue;
  readonly gripSig: HeaderValue;
  readonly lastEventId: HeaderValue;
  /** Pushpin's `Grip-Last`, when it follows our `Grip-Link` to recover missed events. */
  readonly gripLast: HeaderValue;
  /** Path and query as the client sent them: the proxy fetches it again to recover missed events. */
  readonly url: string;
  resolveChannels(): unknown;
}

/**
 * How one transport (Node `req`/`res`, web `Request`/`Response`) gives each
 * answer the pipeline decides on. `Answer` is what the adapter returns:
 * nothing for Node, a `Response` for the web.
 */
export interface StreamTransport<Answer, Sink extends EventSink = EventSink> {
  /** The client can no longer be reached (it left while channels were resolved or the store read). */
  clientGone(): boolean;
  /** A plain-text refusal; `retryAfterSeconds` becomes a `Retry-After` header. */
  refuse(status: number, message: string, retryAfterSeconds?: number): Answer;
  /** GRIP hold instructions; the proxy holds the stream, not us. */
  hold(instructions: HoldInstructions): Answer;
  /**
   * An event stream that only tells the client when to reconnect (see
   * RetryReason); `closeConnection` when this server is going away, so the
   * reconnect can reach another one.
   */
  retryLater(body: string, closeConnection: boolean): Answer;
  /** HEAD: the head of a stream and no stream, since nothing would ever end it. */
  headOnly(): Answer;
  /**
   * True once the stream's bytes can reach the client: a pipelined Node
   * response waits for the responses ahead of it. False when the client left first.
   */
  waitForTurn(): boolean | Promise<boolean>;
  /** Sends the head of the stream (if not sent yet) and returns where its bytes go. */
  openSink(): Sink;
  /** The answer for a stream now open on `sink`. */
  opened(sink: Sink): Answer;
  /** The answer when the client left before anything was sent. */
  abandoned(): Answer;
}

/** What to do with a request, whatever transport it came through. */
export type Admission =
  | { readonly kind: 'refuse'; readonly status: number; readonly message: string }
  | { readonly kind: 'hold'; readonly instructions: HoldInstructions; readonly channels: readonly string[] }
  | { readonly kind: 'follow-up'; readonly instructions: HoldInstructions }
  | { readonly kind: 'retry-later'; readonly reason: RetryReason }
  | { readonly kind: 'stream'; readonly channels: string[]; readonly resume: StreamPosition | null; readonly access: Access };

/**
 * Why a stream cannot start now. The client gets a 200 event stream that
 * only tells it when to reconnect: EventSource gives up for good on any other
 * status, which in a rolling restart or a store outage would strand every client.
 */
export type RetryReason = 'store-unavailable' | 'shutting-down' | 'busy';

const RETRY_REASON_TEXT: Readonly<Record<RetryReason, string>> = {
  'store-unavailable': 'the event history is unavailable',
  'shutting-down': 'this server is shutting down',
  busy: 'this server has as many streams open as it takes (maxStreams)',
};

/** What a client over `maxStreamsPerClient` is told to wait before trying again. */
const RETRY_AFTER_SECONDS = 5;

/** Reconnection delay a client is told when its stream cannot start now, unless `clientRetry` says otherwise. */
const RETRY_LATER_MS = 2000;

/**
 * The one request pipeline every transport adapter drives: admission
 * (accept, channels, resume position, authorization), then a refusal, GRIP hold
 * instructions, a retry-later answer, a HEAD answer, or an open stream.
 * The adapter only translates each answer to its transport.
 */
export async function serveStreamRequest<Answer, Sink extends EventSink>(
  core: EventStreamCore,
  request: StreamRequest,
  transport: StreamTransport<Answer, Sink>,
): Promise<Answer> {
  const admission = await admit(core, request);
  if (transport.clientGone()) return transport.abandoned();
  switch (admission.kind) {
    case 'refuse':
      core.metrics.refused(admission.status);
      return transport.refuse(admission.status, admission.message);
    case 'hold':
      core.metrics.heldStreamsOpened++;
      if (streamOpenChannel.hasSubscribers) {
        streamOpenChannel.publish({
          channels: admission.channels,
          transport: request.transport,
          held: true,
        } satisfies StreamOpenMessage);
      }
      return transport.hold(admission.instructions);
    case 'follow-up':
      return transport.hold(admission.instructions);
    case 'retry-later':
      return retryLater(core, transport, admission.reason);
    case 'stream': {
      if (request.method === 'HEAD') return transport.headOnly();
      const slot = core.limits.reserve(core.limits.countsClients ? core.options.clientKey(request.source) : null);
      if (slot === 'process') return retryLater(core, transport, 'busy');
      if (slot === 'client') {
        core.metrics.refused(429);
        const limit = core.options.maxStreamsPerClient;
        return transport.refuse(429, `Too Many Requests: at most ${limit} open streams per client.`, RETRY_AFTER_SECONDS);
      }
      const turn = transport.waitForTurn();
      if (!(turn === true || (await turn)) || transport.clientGone()) {
        slot.release();
        return transport.abandoned();
      }
      let hubs: ChannelHub[];
      try {
        hubs = await core.prepareStream(admission.channels);
      } catch (error) {
        slot.release();
        return retryLater(core, transport, retryReasonFor(error));
      }
      if (transport.clientGone()) {
        slot.release();
        core.abandonStream(hubs);
        return transport.abandoned();
      }
      const sink = transport.openSink();
      core.openStream(sink, hubs, admission.resume, admission.access, slot, request.transport);
      return transport.opened(sink);
    }
  }
}

/** Decides what a request gets. Refusals and store outages are answers; anything else unexpected rejects. */
export async function admit(core: EventStreamCore, request: StreamRequest): Promise<Admission> {
  if (core.closed) return { kind: 'retry-later', reason: 'shutting-down' };
  try {
    if (!acceptsEventStream(request.accept ?? undefined)) {
      throw new HttpRequestError(406, 'Not Acceptable: this endpoint only serves text/event-stream.');
    }
    const { proxy } = core;
    const proxied = proxy !== null && (await proxy.isProxied(firstValue(request.gripSig)));
    if (proxied) {
      // The proxy following a held stream's link: what the stream may do travels in the link, not in credentials.
      const followUp = await proxy!.followLink(request.url, firstValue(request.gripLast));
      // Not a new stream: the proxy checking on one it holds.
      if (followUp !== undefined) return { kind: 'follow-up', instructions: followUp };
    }
    const channels = checkRequestChannels(await request.resolveChannels(), core.options);
    // The query parameter is for clients that cannot set headers (a resumed page building its own EventSource URL).
    const lastEventId = firstValue(request.lastEventId ?? lastEventIdParameter(request.url));
    const resume = lastEventId ? parseEventId(lastEventId, core.options) : null;
    const access = await authorizeRequest(request.authorize, request.source, channels, Date.now());
    if (proxied) {
      return {
        kind: 'hold',
        instructions: await proxy!.hold(channels, resume, firstValue(request.gripLast), request.url, access),
        channels,
      };
    }
    return { kind: 'stream', channels, resume, access };
  } catch (error) {
    if (error instanceof HttpRequestError) return { kind: 'refuse', status: error.status, message: error.message };
    if (error instanceof EventStoreError) return { kind: 'retry-later', reason: 'store-unavailable' };
    throw error;
  }
}

/** Counted as refused with 503, the status it stands for: the stream was not served, and the client comes back later. */
function retryLater<Answer>(
  core: EventStreamCore,
  transport: Pick<StreamTransport<Answer>, 'retryLater'>,
  reason: RetryReason,
): Answer {
  core.metrics.refused(503);
  if (reason === 'store-unavailable') core.metrics.storeErrors++;
  const body = retryLaterText(core.options.clientRetry ?? RETRY_LATER_MS, RETRY_REASON_TEXT[reason]);
  // Going away or full: a reconnect over a new connection may reach another instance.
  return transport.retryLater(body, reason !== 'store-unavailable');
}

/** Why a stream that was admitted could not be prepared; errors that are no such reason are rethrown. */
function retryReasonFor(error: unknown): RetryReason {
  if (error instanceof EventStreamClosedError) return 'shutting-down';
  if (error instanceof EventStoreError) return 'store-unavailable';
  throw error;
}

function firstValue(value: HeaderValue): string | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  return first === null || first === undefined || first === '' ? undefined : first;
}

function lastEventIdParameter(url: string): string | null {
  const query = url.indexOf('?');
  return query === -1 ? null : new URLSearchParams(url.slice(query + 1)).get('lastEventId');
}
