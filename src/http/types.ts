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
