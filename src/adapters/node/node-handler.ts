import { Http2ServerResponse } from 'node:http2';
import type { EventStreamCore } from '../../core/event-stream-core.js';
import type { HoldInstructions } from '../../core/proxy-gateway.js';
import { type StreamTransport, serveStreamRequest } from '../../core/request-pipeline.js';
import type { EventSink } from '../../delivery/event-sink.js';
import { EVENT_STREAM_HEADERS } from '../../sse/headers.js';
import type { AuthorizeFunction, NodeRequest, SseResponse } from '../../types.js';
import { responseSink } from './chunked-socket-sink.js';
import { respondPlainText } from './plain-text.js';
import { connectionClosed, isQueued, untilAtHead } from './queued-response.js';

/**
 * Serves one Node request (HTTP/1 or the HTTP/2 compatibility API) through
 * the request pipeline. Resolves once it is answered: refused, held by the
 * proxy, told to retry later, or streaming.
 */
export function serveNodeRequest(
  core: EventStreamCore,
  req: NodeRequest,
  res: SseResponse,
  resolveChannels: () => unknown,
  authorize: AuthorizeFunction | null,
): Promise<void> {
  return serveStreamRequest(
    core,
    {
      transport: 'node',
      source: req,
      authorize,
      method: req.method,
      accept: req.headers.accept,
      gripSig: req.headers['grip-sig'],
      lastEventId: req.headers['last-event-id'],
      gripLast: req.headers['grip-last'],
      url: requestUrl(req),
      resolveChannels,
    },
    new NodeTransport(res),
  );
}

/** The pipeline's answers as Node writes them on `res`. */
class NodeTransport implements StreamTransport<void> {
  private readonly res: SseResponse;

  constructor(res: SseResponse) {
    this.res = res;
  }

  clientGone(): boolean {
    return clientGone(this.res);
  }

  refuse(status: number, message: string, retryAfterSeconds?: number): void {
    respondPlainText(this.res, status, message, retryAfterSeconds);
  }

  hold(instructions: HoldInstructions): void {
    this.res.writeHead(200, instructions.headers);
    this.res.end(instructions.body);
  }

  retryLater(body: string, closeConnection: boolean): void {
    const { res } = this;
    // A queued stream's head is already out (see waitForTurn): only its body is left to send.
    if (!res.headersSent) {
      const closing = closeConnection && !(res instanceof Http2ServerResponse);
      res.writeHead(200, closing ? { ...EVENT_STREAM_HEADERS, connection: 'close' } : EVENT_STREAM_HEADERS);
    }
    res.end(body);
  }

  headOnly(): void {
    // Node sends no body for HEAD, so nothing would ever end a stream opened on it.
    this.res.writeHead(200, EVENT_STREAM_HEADERS);
    this.res.end();
  }

  /**
   * A stream requested behind another response on its connection (pipelined)
   * cannot reach the client before every response ahead of it has ended,
   * which for a stream ahead may be never. So it is opened (hubs retained,
   * subscribed, counted in `stats().streams`) only once it reaches the head
   * of the connection, and never if the connection goes first: until then it
   * holds no subscription and buffers no events, and its client, like one
   * that connected at that moment, starts from where the channel then stands
   * (a resuming client is replayed from the store as usual). Its head is
   * written at once all the same: Node keeps it in the connection's outgoing
   * queue and counts it, and that count is what makes Node stop reading a
   * connection that piles up pipelined requests, exactly as it does for any
   * handler that answers (without its head, one connection could queue
   * requests without end).
   */
  waitForTurn(): boolean | Promise<boolean> {
    const { res } = this;
    if (!isQueued(res)) return true;
    res.writeHead(200, EVENT_STREAM_HEADERS);
    res.flushHeaders();
    return untilAtHead(res);
  }

  openSink(): EventSink {
    const { res } = this;
    if (!res.headersSent) {
      res.writeHead(200, EVENT_STREAM_HEADERS);
      // Proxies and browsers learn at once that the stream started. (HTTP/2 sends headers on writeHead.)
      (res as { flushHeaders?: () => void }).flushHeaders?.();
    }
    return responseSink(res);
  }

  opened(): void {}

  abandoned(): void {}
}

/** Express strips a router's mount path from `req.url`; the proxy must fetch the full path again. */
function requestUrl(req: NodeRequest): string {
  return (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
}

/**
 * Whether the response can no longer reach the client. A queued HTTP/1
 * response is never told that its connection closed (see
 * queued-response.ts): its connection is asked. An HTTP/2
 * compatibility response is no Writable at run time: after its stream is
 * reset, `destroyed` is undefined, `writableEnded` stays false and no second
 * 'close' comes, so a stream opened on it would never be released. Its
 * Http2Stream knows.
 */
function clientGone(res: SseResponse): boolean {
  if (res instanceof Http2ServerResponse) return res.stream.destroyed || res.writableEnded;
  return res.destroyed || res.writableEnded || connectionClosed(res);
}
