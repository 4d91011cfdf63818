import type { EventStreamCore } from '../core.js';
import { EVENT_STREAM_HEADERS } from '../http/headers.js';
import { BodySink } from './body-sink.js';

/** Bytes the consumer of a web body may leave unread before writes count as backed up. */
const BODY_HIGH_WATER_MARK = 64 * 1024;

/**
 * Serves one web-standard Request: a plain-text 4xx/503, GRIP hold
 * instructions with no body held open, or a streaming Response whose body is
 * fed from the same hubs and encoder as a Node response. The stream ends when
 * the client disconnects (`request.signal`) or the body is cancelled.
 */
export async function serveWebRequest(
  core: EventStreamCore,
  request: Request,
  resolveChannels: () => unknown,
): Promise<Response> {
  const admission = await core.admit({
    accept: request.headers.get('accept'),
    gripSig: request.headers.get('grip-sig') ?? undefined,
    resolveChannels,
  });
  switch (admission.kind) {
    case 'refuse':
      return new Response(`${admission.message}\n`, {
        status: admission.status,
        headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
      });
    case 'hold': {
      const { headers, body } = core.grip!.hold(admission.channels);
      return new Response(body, { status: 200, headers });
    }
    case 'stream': {
      const sink = new BodySink(BODY_HIGH_WATER_MARK, request.signal);
      core.openStream(sink, admission.channels);
      return new Response(sink.body, { status: 200, headers: EVENT_STREAM_HEADERS });
    }
  }
}
