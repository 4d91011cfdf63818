/**
 * Response headers of a direct stream. `no-transform` keeps `compression` and
 * other proxies from buffering; `X-Accel-Buffering` does the same for nginx.
 * No `Connection` or `Transfer-Encoding`: HTTP/2 forbids them and Node sets
 * what HTTP/1.1 needs.
 */
export const EVENT_STREAM_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
});
