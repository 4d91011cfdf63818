import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';

/** Requests the middleware accepts: Node's, and what connect, Express and Next.js build on it. */
export type SseRequest = (IncomingMessage | Http2ServerRequest) & {
  params?: unknown;
  query?: unknown;
};

export type SseResponse = ServerResponse | Http2ServerResponse;

/** connect-style continuation. */
export type NextFunction = (error?: unknown) => void;

/** What `eventStream(spec)` returns: connect/Express middleware and a Next.js pages API handler. */
export type EventStreamHandler = (req: SseRequest, res: SseResponse, next?: NextFunction) => Promise<void>;

/**
 * What a response stream writes to: Node's ServerResponse (HTTP/1, and the
 * HTTP/2 compatibility API) or the sink behind a web `Response` body.
 */
export interface EventSink {
  write(chunk: Buffer): unknown;
  readonly writableLength: number;
  readonly writableNeedDrain: boolean;
  on(event: 'close', listener: () => void): unknown;
  once(event: 'drain', listener: () => void): unknown;
  removeListener(event: 'close' | 'drain', listener: () => void): unknown;
  destroy(): unknown;
  end(): unknown;
  /** Present behind the `compression` middleware. */
  flush?: () => void;
}
