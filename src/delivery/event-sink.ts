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
