import { OutgoingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { EventSink } from '../../delivery/event-sink.js';
import { ResponseWriteSink, ServerResponseSink } from './server-response-sink.js';

/**
 * The last chunk framed and its framing. A hub hands one frame's shared bytes
 * to all its subscribers in one synchronous loop, so consecutive writes are
 * the same Buffer: its framing is built once per frame, not once per client,
 * and a chunk of one client alone just replaces the entry. The entry is
 * dropped once that loop is over (at the end of the current tick), so no
 * module state keeps a frame alive: a 40 MB event would otherwise hold its
 * 80 MB (bytes and framing) until the next event, or forever.
 */
let lastChunk: Buffer | null = null;
let lastFraming: Buffer | null = null;
let forgetScheduled = false;

function forgetLastChunk(): void {
  forgetScheduled = false;
  lastChunk = null;
  lastFraming = null;
}

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
  if (!forgetScheduled) {
    forgetScheduled = true;
    process.nextTick(forgetLastChunk);
  }
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
 *
 * Bypassing `res` means Node no longer stops writes after the response
 * ended, so this sink does: after `res.end()` (the last chunk is out), once
 * the socket serves another response, or once it is closed for writing
 * (the client half-closed), not one more byte goes to the socket.
 */
class ChunkedSocketSink extends ServerResponseSink {
  private readonly socket: Socket;

  constructor(res: ServerResponse, socket: Socket) {
    super(res);
    this.socket = socket;
  }

  protected serving(): boolean {
    return !this.res.writableEnded && this.res.socket === this.socket && this.socket.writable;
  }

  protected send(chunk: Buffer): boolean {
    // Empty: framed, it would be the last chunk.
    if (chunk.length === 0) return true;
    return this.socket.write(chunkFraming(chunk));
  }

  get writableLength(): number {
    return this.res.writableLength;
  }

  get writableNeedDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  protected get drainSource(): Socket {
    return this.socket;
  }
}

/**
 * Where a stream's bytes go: straight to the socket for a plain HTTP/1.1
 * chunked response whose headers are out, through `res.write()` for other
 * Node HTTP/1 responses (HTTP/1.0, or one whose write() a middleware such as
 * `compression` has replaced and must keep seeing), or `res` itself for
 * HTTP/2.
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
    return new ResponseWriteSink(res);
  }
  return res as EventSink;
}
