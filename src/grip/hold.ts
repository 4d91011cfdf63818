import { KEEP_ALIVE_TEXT, STREAM_OPEN_TEXT } from '../sse/encoder.js';

/** GRIP's cstring format: backslash escapes, so the value fits in one header line. */
function cstring(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\r/g, '\\r').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
}

function holdHeaders(gripChannels: readonly string[], keepAliveMs: number): Record<string, string> {
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

export interface HoldResponse {
  headers: Record<string, string>;
  /** The same opening bytes as a direct stream; the proxy sends them, then holds the stream. */
  body: string;
}

/** A proxied request's answer: hold instructions and the opening bytes. The proxy holds the stream, not us. */
export function holdResponse(gripChannels: readonly string[], keepAliveMs: number): HoldResponse {
  const body = STREAM_OPEN_TEXT;
  return {
    headers: { ...holdHeaders(gripChannels, keepAliveMs), 'content-length': String(Buffer.byteLength(body)) },
    body,
  };
}
