import { KEEP_ALIVE_TEXT, STREAM_OPEN_TEXT } from '../sse/encoder.js';
import type { SseResponse } from '../http/types.js';

/** GRIP's cstring format: backslash escapes, so the value fits in one header line. */
function cstring(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\r/g, '\\r').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
}

export function holdHeaders(gripChannels: readonly string[], keepAliveMs: number): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    'grip-hold': 'stream',
    // Names were checked against the allowlist, so none carries `,` or `;` into this header.
    'grip-channel': gripChannels.join(', '),
  };
  if (keepAliveMs > 0) {
    const seconds = Math.max(1, Math.round(keepAliveMs / 1000));
    headers['grip-keep-alive'] = `${cstring(KEEP_ALIVE_TEXT)}; format=cstring; timeout=${seconds}`;
  }
  return headers;
}

/** Answers a proxied request with hold instructions and the opening bytes; the proxy holds the stream, not us. */
export function respondWithHold(res: SseResponse, gripChannels: readonly string[], keepAliveMs: number): void {
  const body = STREAM_OPEN_TEXT;
  res.writeHead(200, { ...holdHeaders(gripChannels, keepAliveMs), 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}
