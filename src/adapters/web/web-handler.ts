import type { ChannelHub } from '../../delivery/hub.js';
import type { EventStreamCore } from '../../core/event-stream-core.js';
import { EVENT_STREAM_HEADERS } from '../../sse/headers.js';
import { BodySink } from './body-sink.js';

/** Bytes the consumer of a web body may leave unread before writes count as backed up. */
const BODY_HIGH_WATER_MARK = 64 * 1024;

/**
 * Serves one web-standard Request: a plain-text 4xx, GRIP hold
 * instructions with no body held open, or a streaming Response whose body is
 * fed from the same hubs and encoder as a Node response. The stream ends when
 * the client disconnects (`request.signal`) or the body is cancelled.
 */
export async function serveWebRequest(
  core: EventStreamCore,
  request: Request,
  resolveChannels: () => unknown,
): Promise<Response> {
  const url = new URL(request.url);
  const admission = await core.admit({
    accept: request.headers.get('accept'),
    gripSig: request.headers.get('grip-sig'),
    lastEventId: request.headers.get('last-event-id') ?? url.searchParams.get('lastEventId'),
    gripLast: request.headers.get('grip-last'),
    url: url.pathname + url.search,
    resolveChannels,
  });
  switch (admission.kind) {
    case 'refuse':
      return plainText(admission.status, admission.message);
    case 'hold': {
      const { headers, body } = admission.response;
      return new Response(body, { status: 200, headers });
    }
    case 'retry-later':
      return retryLater(admission.body);
    case 'stream': {
      // The head of a stream and no stream: a body nobody reads would hold the subscription open.
      if (request.method === 'HEAD') return new Response(null, { status: 200, headers: EVENT_STREAM_HEADERS });
      let hubs: ChannelHub[];
      try {
        hubs = await core.prepareStream(admission.channels);
      } catch (error) {
        return retryLater(core.retryLaterFor(error).body);
      }
      const sink = new BodySink(BODY_HIGH_WATER_MARK, request.signal);
      core.openStream(sink, hubs, admission.resume);
      return new Response(sink.body, { status: 200, headers: EVENT_STREAM_HEADERS });
    }
  }
}

function retryLater(body: string): Response {
  return new Response(body, { status: 200, headers: EVENT_STREAM_HEADERS });
}

function plainText(status: number, message: string): Response {
  return new Response(`${message}\n`, {
    status,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
  });
}
