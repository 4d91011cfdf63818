import type { ServerResponse } from 'node:http';
import { Http2ServerResponse } from 'node:http2';
import type { ChannelHub } from '../../delivery/hub.js';
import type { Admission, EventStreamCore } from '../../core/event-stream-core.js';
import type { StreamPosition } from '../../admission/resume-position.js';
import { responseSink } from './chunked-socket-sink.js';
import { EVENT_STREAM_HEADERS } from '../../sse/headers.js';
import { connectionClosed, isQueued, untilAtHead } from './queued-response.js';
import { respondPlainText } from './plain-text.js';
import type { SseRequest, SseResponse } from '../../types.js';

/**
 * Serves one Node request (HTTP/1 or the HTTP/2 compatibility API): refuses
 * it with a plain-text 4xx, answers with GRIP hold instructions, or opens
 * a direct stream (or, while the event store is out of reach or the
 * instance is shutting down, ends one at once, telling the client when to
 * reconnect). Resolves once one of those is done.
 */
export async function serveNodeRequest(
  core: EventStreamCore,
  req: SseRequest,
  res: SseResponse,
  resolveChannels: () => unknown,
): Promise<void> {
  const url = requestUrl(req);
  const admission = await core.admit({
    accept: req.headers.accept,
    gripSig: req.headers['grip-sig'],
    lastEventId: req.headers['last-event-id'] ?? lastEventIdParameter(url),
    gripLast: req.headers['grip-last'],
    url,
    resolveChannels,
  });
  // The client may have left while channels were being resolved.
  if (clientGone(res)) return;
  switch (admission.kind) {
    case 'refuse':
      respondPlainText(res, admission.status, admission.message);
      return;
    case 'hold': {
      const { headers, body } = admission.response;
      res.writeHead(200, headers);
      res.end(body);
      return;
    }
    case 'retry-later':
      retryLater(res, admission);
      return;
    case 'stream': {
      // The head of a stream and no stream: Node sends no body for HEAD, so nothing would ever end it.
      if (req.method === 'HEAD') {
        res.writeHead(200, EVENT_STREAM_HEADERS);
        res.end();
        return;
      }
      if (isQueued(res)) {
        await openQueuedStream(core, res, admission.channels, admission.resume);
        return;
      }
      let hubs: ChannelHub[];
      try {
        hubs = await core.prepareStream(admission.channels);
      } catch (error) {
        retryLater(res, core.retryLaterFor(error));
        return;
      }
      if (clientGone(res)) {
        core.abandonStream(hubs);
        return;
      }
      res.writeHead(200, EVENT_STREAM_HEADERS);
      // Proxies and browsers learn at once that the stream started. (HTTP/2 sends headers on writeHead.)
      (res as { flushHeaders?: () => void }).flushHeaders?.();
      core.openStream(responseSink(res), hubs, admission.resume);
    }
  }
}

/**
 * A stream requested behind another response on its connection (pipelined):
 * its bytes cannot reach the client before every response ahead of it has
 * ended, which for a stream ahead may be never. So it is opened (hubs
 * retained, subscribed, counted in `stats().streams`) only once it reaches
 * the head of the connection, and never if the connection goes first:
 * until then it holds no subscription and buffers no events, and its
 * client, like one that connected at that moment, starts from where the
 * channel then stands (a resuming client is replayed from the store as
 * usual). Its head is written at once all the same: Node keeps it in the
 * connection's outgoing queue and counts it, and that count is what makes
 * Node stop reading a connection that piles up pipelined requests, exactly
 * as it does for any handler that answers (without its head, one connection
 * could queue requests without end). The head being out, an instance closed
 * or a store out of reach by then gets the retry-later body (see Admission):
 * an empty stream telling the client when to reconnect.
 */
async function openQueuedStream(
  core: EventStreamCore,
  res: ServerResponse,
  channels: readonly string[],
  resume: StreamPosition | null,
): Promise<void> {
  res.writeHead(200, EVENT_STREAM_HEADERS);
  res.flushHeaders();
  if (!(await untilAtHead(res)) || clientGone(res)) return;
  let hubs: ChannelHub[];
  try {
    hubs = await core.prepareStream(channels);
  } catch (error) {
    res.end(core.retryLaterFor(error).body);
    return;
  }
  if (clientGone(res)) {
    core.abandonStream(hubs);
    return;
  }
  core.openStream(responseSink(res), hubs, resume);
}

function retryLater(res: SseResponse, admission: Admission & { kind: 'retry-later' }): void {
  // A server going away closes the connection, so the reconnect can reach another instance.
  const closing = admission.reason === 'shutting-down' && !(res instanceof Http2ServerResponse);
  res.writeHead(200, closing ? { ...EVENT_STREAM_HEADERS, connection: 'close' } : EVENT_STREAM_HEADERS);
  res.end(admission.body);
}

/** Express strips a router's mount path from `req.url`; the proxy must fetch the full path again. */
function requestUrl(req: SseRequest): string {
  return (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
}

/** For clients that cannot set headers (a resumed page building its own EventSource URL). */
export function lastEventIdParameter(url: string): string | null {
  const query = url.indexOf('?');
  return query === -1 ? null : new URLSearchParams(url.slice(query + 1)).get('lastEventId');
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
