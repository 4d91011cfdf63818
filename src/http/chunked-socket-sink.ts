import { OutgoingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { EventSink } from './types.js';

/**
 * The last chunk framed and its framing. A hub hands one frame's shared bytes
 * to all its subscribers in one synchronous loop, so consecutive writes are
 * the same Buffer: its framing is built once per frame, not once per client,
 * and a chunk of one client alone just replaces the entry.
 */
let lastChunk: Buffer | null = null;
let lastFraming: Buffer | null = null;

/** `chunk` as one HTTP/1.1 chunk: size in hex, CRLF, the bytes, CRLF. */
export function chunkFraming(chunk: Buffer): Buffer {
  if (chunk === lastChunk) return lastFraming!;
  const size = `${chunk.length.toString(16)}\r\n`;
  const framed = Buffer.allocUnsafe(size.length + chunk.length + 2);
  framed.write(size, 0, 'latin1');
  chunk.copy(framed, size.length);
  framed[framed.length - 2] = 0x0d;
  framed[framed.length - 1] = 0x0a;
  lastChunk = chunk;
  lastFraming = framed;
  return framed;
}

/**
 * Writes an HTTP/1.1 chunked response body straight to its socket, one
 * pre-framed buffer per write. `res.write()` frames every chunk again for
 * each client as four socket writes (size line, CRLF, data, CRLF) behind a
 * cork until the next tick; for a fan-out that framing is the same bytes for
 * every client, and the cork holds every client's event back until all of
 * them have been served. Ending, destroying and 'close' stay with `res`, so
 * Node still writes the last chunk and owns the connection's life.
 */
class ChunkedSocketSink implements EventSink {
  private readonly res: ServerResponse;
  private readonly socket: Socket;

  constructor(res: ServerResponse, socket: Socket) {
    this.res = res;
    this.socket = socket;
  }

  write(chunk: Buffer): boolean {
    // Gone: 'close' on res follows and ends the stream. Empty: framed, it would be the last chunk.
    if (this.socket.destroyed || chunk.length === 0) return true;
    return this.socket.write(chunkFraming(chunk));
  }

  get writableLength(): number {
    return this.res.writableLength;
  }

  get writableNeedDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  on(event: 'close', listener: () => void): this {
    this.res.on(event, listener);
    return this;
  }

  once(event: 'drain', listener: () => void): this {
    this.socket.once(event, listener);
    return this;
  }

  removeListener(event: 'close' | 'drain', listener: () => void): this {
    if (event === 'drain') this.socket.removeListener(event, listener);
    else this.res.removeListener(event, listener);
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
 * Where a stream's bytes go: straight to the socket for a plain HTTP/1.1
 * chunked response whose headers are out, or `res` itself otherwise
 * (HTTP/2, HTTP/1.0, a response still queued behind another on its
 * connection, or one whose write() a middleware such as `compression` has
 * replaced and must keep seeing).
 */
export function responseSink(res: unknown): EventSink {
  if (res instanceof ServerResponse) {
    const { socket } = res;
    if (
      socket !== null &&
      !socket.destroyed &&
      res.headersSent &&
      res.chunkedEncoding &&
      !res.writableEnded &&
      res.write === OutgoingMessage.prototype.write
    ) {
      return new ChunkedSocketSink(res, socket);
    }
  }
  return res as EventSink;
}
