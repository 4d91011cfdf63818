/**
 * HTTP/1 read byte by byte from a plain socket: a client connection that
 * records everything it receives, and a strict parser of the responses in
 * it, for what no HTTP client would show (exact chunk sizes, the last
 * chunk, and which bytes belong to which response on a connection).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { until } from './sse-client.js';

/** A client connection that records every byte it receives. */
export class RawConnection {
  readonly socket: net.Socket;
  // latin1 maps each byte to one character, so reads can be decoded one by one.
  private received = '';
  closed = false;
  readonly closedPromise: Promise<void>;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('data', (chunk: Buffer) => (this.received += chunk.toString('latin1')));
    this.closedPromise = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.closed = true;
        resolve();
      }),
    );
    this.socket.on('error', () => {});
  }

  send(text: string): void {
    this.socket.write(text);
  }

  text(): string {
    return this.received;
  }

  /** The chunks of a chunked body that have arrived whole so far (the stream still open), in order. */
  chunks(): string[] {
    return completeChunks(this.received);
  }

  /** The body so far: its whole chunks, joined. */
  body(): string {
    return this.chunks().join('');
  }

  async waitFor(what: string, predicate: (text: string) => boolean, timeoutMs = 5000): Promise<void> {
    await until(() => predicate(this.text()), timeoutMs, `${what}; got so far: ${JSON.stringify(this.text())}`);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The bytes received so far end before this response does; says what of it did arrive. */
export class IncompleteResponse extends Error {
  readonly head: string | null;
  /** The body bytes received, so far as they are framed. */
  readonly body: string;
  /** The whole chunks received so far, when the body is chunked. */
  readonly chunks: readonly string[];

  constructor(what: string, head: string | null = null, body = '', chunks: readonly string[] = []) {
    super(what);
    this.head = head;
    this.body = body;
    this.chunks = chunks;
  }
}

export interface ParsedResponse {
  head: string;
  status: number;
  body: string;
  /** Chunk sizes as framed, the last (0) included; null for a body that is not chunked. */
  chunks: number[] | null;
  /** The chunks' bytes, the last (empty) one left out; empty for a body that is not chunked. */
  chunkBodies: string[];
  /** Bytes after this response (the next response on the connection). */
  rest: string;
}

export interface ParseOptions {
  /** The response to a HEAD request: no body, whatever its headers say. */
  head?: boolean;
  /** The connection has closed, so a body delimited by the end of the connection is complete. */
  connectionClosed?: boolean;
}

/**
 * Parses one response from the start of `text` strictly: throws an
 * AssertionError on any framing error and an IncompleteResponse when `text`
 * ends before the response does.
 */
export function parseResponse(text: string, options: ParseOptions = {}): ParsedResponse {
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd === -1) {
    assert.ok(
      'HTTP/1.1 '.startsWith(text.slice(0, 9)),
      `a response starts with its status line: ${JSON.stringify(text.slice(0, 40))}`,
    );
    throw new IncompleteResponse('incomplete head');
  }
  const head = text.slice(0, headEnd);
  const status = /^HTTP\/1\.[01] (\d{3}) /.exec(head);
  assert.ok(status, `a status line: ${JSON.stringify(head.slice(0, 40))}`);
  let pos = headEnd + 4;
  const chunkBodies: string[] = [];
  const parsed = (body: string, chunks: number[] | null, end: number): ParsedResponse => ({
    head,
    status: Number(status[1]),
    body,
    chunks,
    chunkBodies,
    rest: text.slice(end),
  });
  if (options.head === true) return parsed('', null, pos);
  if (!/\r\ntransfer-encoding: chunked/i.test(head)) {
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (length === null) {
      // Without a length the body runs to the end of the connection.
      if (options.connectionClosed !== true)
        throw new IncompleteResponse('body runs to the end of the connection', head, text.slice(pos));
      return parsed(text.slice(pos), null, text.length);
    }
    const end = pos + Number(length[1]);
    if (text.length < end) throw new IncompleteResponse('incomplete body', head, text.slice(pos));
    return parsed(text.slice(pos, end), null, end);
  }
  const chunks: number[] = [];
  let body = '';
  for (;;) {
    const lineEnd = text.indexOf('\r\n', pos);
    if (lineEnd === -1) {
      assert.match(text.slice(pos), /^[0-9a-f]*\r?$/, 'a chunk size line');
      throw new IncompleteResponse('incomplete chunk size line', head, body, chunkBodies);
    }
    const sizeText = text.slice(pos, lineEnd);
    assert.match(sizeText, /^[0-9a-f]+$/, `chunk size line ${JSON.stringify(sizeText)}`);
    const size = parseInt(sizeText, 16);
    chunks.push(size);
    pos = lineEnd + 2;
    if (size === 0) {
      if (text.length < pos + 2) throw new IncompleteResponse('incomplete last chunk', head, body, chunkBodies);
      assert.equal(text.slice(pos, pos + 2), '\r\n', 'the last chunk ends with an empty line (no trailers)');
      return parsed(body, chunks, pos + 2);
    }
    if (text.length < pos + size + 2) {
      const crlf = text.slice(pos + size, pos + size + 2);
      assert.ok('\r\n'.startsWith(crlf), `CRLF after a chunk of ${size} bytes`);
      throw new IncompleteResponse('incomplete chunk', head, body + text.slice(pos, pos + size), chunkBodies);
    }
    chunkBodies.push(text.slice(pos, pos + size));
    body += text.slice(pos, pos + size);
    assert.equal(text.slice(pos + size, pos + size + 2), '\r\n', `CRLF after a chunk of ${size} bytes`);
    pos += size + 2;
  }
}

/** Whether `text` starts with one whole, well-framed response. */
export function complete(text: string, options: ParseOptions = {}): boolean {
  try {
    parseResponse(text, options);
    return true;
  } catch {
    return false;
  }
}

/** The whole chunks of the chunked response at the start of `text`, ended or still open: how the server framed its writes. */
export function completeChunks(text: string): string[] {
  try {
    const response = parseResponse(text);
    assert.notEqual(response.chunks, null, 'the body is chunked');
    return response.chunkBodies;
  } catch (error) {
    if (!(error instanceof IncompleteResponse)) throw error;
    return [...error.chunks];
  }
}
