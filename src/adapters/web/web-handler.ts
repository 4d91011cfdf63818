import type { EventStreamCore } from '../../core/event-stream-core.js';
import type { HoldInstructions } from '../../core/proxy-gateway.js';
import { type StreamTransport, serveStreamRequest } from '../../core/request-pipeline.js';
import { EVENT_STREAM_HEADERS } from '../../sse/headers.js';
import type { AuthorizeFunction } from '../../types.js';
import { BodySink } from './body-sink.js';

/** Bytes the consumer of a web body may leave unread before writes count as backed up. */
const BODY_HIGH_WATER_MARK = 64 * 1024;

/**
 * Serves one web-standard Request through the request pipeline: a
 * plain-text refusal, GRIP hold instructions with no body held open, or a
 * streaming Response whose body is fed from the same hubs and encoder as a
 * Node response. The stream ends when the client disconnects
 * (`request.signal`) or the body is cancelled.
 */
export function serveWebRequest(
  core: EventStreamCore,
  request: Request,
  resolveChannels: () => unknown,
  authorize: AuthorizeFunction | null,
): Promise<Response> {
  const url = new URL(request.url);
  return serveStreamRequest(
    core,
    {
      transport: 'web',
      source: request,
      authorize,
      method: request.method,
      accept: request.headers.get('accept'),
      gripSig: request.headers.get('grip-sig'),
      lastEventId: request.headers.get('last-event-id'),
      gripLast: request.headers.get('grip-last'),
      url: url.pathname + url.search,
      resolveChannels,
    },
    new WebTransport(request.signal),
  );
}

/** The pipeline's answers as web Responses. */
class WebTransport implements StreamTransport<Response, BodySink> {
  private readonly signal: AbortSignal;

  constructor(signal: AbortSignal) {
    this.signal = signal;
  }

  /** A body sink sees the signal abort and ends itself, so a stream opened for a client that left is released at once. */
  clientGone(): boolean {
    return false;
  }

  refuse(status: number, message: string, retryAfterSeconds?: number): Response {
    const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' };
    if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds);
    return new Response(`${message}\n`, { status, headers });
  }

  hold(instructions: HoldInstructions): Response {
    return new Response(instructions.body, { status: 200, headers: instructions.headers });
  }

  /** The web server decides about the connection; the body alone tells the client when to come back. */
  retryLater(body: string): Response {
    return new Response(body, { status: 200, headers: EVENT_STREAM_HEADERS });
  }

  headOnly(): Response {
    // A body nobody reads would hold the subscription open.
    return new Response(null, { status: 200, headers: EVENT_STREAM_HEADERS });
  }

  waitForTurn(): boolean {
    return true;
  }

  openSink(): BodySink {
    return new BodySink(BODY_HIGH_WATER_MARK, this.signal);
  }

  opened(sink: BodySink): Response {
    return new Response(sink.body, { status: 200, headers: EVENT_STREAM_HEADERS });
  }

  abandoned(): Response {
    return new Response(null, { status: 200, headers: EVENT_STREAM_HEADERS });
  }
}
