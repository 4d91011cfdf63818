import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { EventSink } from '../../delivery/event-sink.js';

/**
 * After each of these a response takes no more of its stream's bytes:
 * 'prefinish' comes synchronously from `res.end()` (whoever calls it: the
 * application once `run()` has resolved, or a framework), 'finish' once its
 * last bytes are out and its socket may already serve the next response on
 * the connection, 'close' when it is done or the connection is gone.
 */
const ENDING_EVENTS = ['prefinish', 'finish', 'close'] as const;

/**
 * A stream's way into a Node HTTP/1 response. Its 'close' means the stream
 * is over, whichever way the response ended, so the stream is released at
 * once, and no byte is written once the response has ended: on a keep-alive
 * connection it would land in the next response.
 */
export abstract class ServerResponseSink implements EventSink {
  protected readonly res: ServerResponse;
  /** The stream's close listener (a sink serves one stream). */
  private onEnded: (() => void) | null = null;
  private endNoticed = false;

  constructor(res: ServerResponse) {
    this.res = res;
  }

  abstract readonly writableLength: number;
  abstract readonly writableNeedDrain: boolean;
  /** Whether the response still takes bytes. */
  protected abstract serving(): boolean;
  protected abstract send(chunk: Buffer): boolean;
  /** What emits 'drain' for the bytes `send` writes: the response, or its socket. */
  protected abstract readonly drainSource: ServerResponse | Socket;

  once(event: 'drain', listener: () => void): this {
    this.drainSource.once(event, listener);
    return this;
  }

  write(chunk: Buffer): boolean {
    if (this.serving()) return this.send(chunk);
    // Ended in a way no event has told of yet (a socket reset or closed for writing): the stream is over all
    // the same. It is told in a microtask: this may be its opening write, made while it is being constructed.
    if (!this.endNoticed) {
      this.endNoticed = true;
      queueMicrotask(() => this.onEnded?.());
    }
    return true;
  }

  on(_event: 'close', listener: () => void): this {
    this.onEnded = listener;
    for (const name of ENDING_EVENTS) this.res.on(name, listener);
    return this;
  }

  removeListener(event: 'close' | 'drain', listener: () => void): this {
    if (event === 'drain') {
      this.drainSource.removeListener(event, listener);
      return this;
    }
    for (const name of ENDING_EVENTS) this.res.removeListener(name, listener);
    if (this.onEnded === listener) this.onEnded = null;
    return this;
  }

  destroy(): void {
    this.res.destroy();
  }

  end(): void {
    this.res.end();
  }
}

/**
 * A response written through `res.write()`: HTTP/1.0 (no chunked encoding),
 * or one whose write() a middleware such as `compression` has replaced and
 * must keep seeing. Writing to an ended response would make Node emit an
 * 'error' on it that nobody listens to.
 */
export class ResponseWriteSink extends ServerResponseSink {
  /** Behind `compression`: data sits in zlib until flushed. */
  readonly flush?: () => void;

  constructor(res: ServerResponse) {
    super(res);
    const { flush } = res as { flush?: unknown };
    if (typeof flush === 'function') this.flush = () => (flush as () => void).call(res);
  }

  get writableLength(): number {
    return this.res.writableLength;
  }

  get writableNeedDrain(): boolean {
    return this.res.writableNeedDrain;
  }

  protected get drainSource(): ServerResponse {
    return this.res;
  }

  protected serving(): boolean {
    return !this.res.writableEnded && !this.res.destroyed;
  }

  protected send(chunk: Buffer): boolean {
    return this.res.write(chunk);
  }
}
