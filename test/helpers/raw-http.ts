import net from 'node:net';
import { until } from './sse-client.js';

/**
 * A plain socket that sends a request and records every byte of the answer,
 * for tests that check what no HTTP client shows: how a chunked body was
 * framed, i.e. how many writes the server made to this connection.
 */
export class RawHttpClient {
  readonly socket: net.Socket;
  // latin1 maps each byte to one character, so chunk sizes count bytes.
  private received = '';
  closed = false;

  constructor(port: number, request: string) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('data', (chunk: Buffer) => (this.received += chunk.toString('latin1')));
    this.socket.on('close', () => (this.closed = true));
    this.socket.on('error', () => {});
    this.socket.write(request);
  }

  text(): string {
    return this.received;
  }

  /** The chunks of the chunked body that have arrived whole so far, in order. */
  chunks(): string[] {
    return completeChunks(this.received);
  }

  /** The body so far (its whole chunks, joined). */
  body(): string {
    return this.chunks().join('');
  }

  async waitFor(what: string, predicate: (client: RawHttpClient) => boolean, timeoutMs = 5000): Promise<void> {
    await until(() => predicate(this), timeoutMs, `${what}; got so far: ${JSON.stringify(this.received.slice(-200))}`);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Whole chunks of a chunked HTTP/1.1 body, read leniently up to the first incomplete one. */
export function completeChunks(text: string): string[] {
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd === -1) return [];
  if (!/\r\ntransfer-encoding: chunked/i.test(text.slice(0, headEnd))) throw new Error('the body is not chunked');
  const chunks: string[] = [];
  let pos = headEnd + 4;
  for (;;) {
    const lineEnd = text.indexOf('\r\n', pos);
    if (lineEnd === -1) return chunks;
    const sizeText = text.slice(pos, lineEnd);
    if (!/^[0-9a-f]+$/.test(sizeText)) throw new Error(`bad chunk size line ${JSON.stringify(sizeText)}`);
    const size = parseInt(sizeText, 16);
    if (size === 0) return chunks;
    const end = lineEnd + 2 + size;
    if (text.length < end + 2) return chunks;
    if (text.slice(end, end + 2) !== '\r\n') throw new Error(`no CRLF after a chunk of ${size} bytes`);
    chunks.push(text.slice(lineEnd + 2, end));
    pos = end + 2;
  }
}
