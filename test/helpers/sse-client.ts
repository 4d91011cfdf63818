import http, { type IncomingHttpHeaders } from 'node:http';
import { EventSource } from 'eventsource';
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export interface ReceivedEvent {
  type: string;
  data: string;
  lastEventId: string;
}

/**
 * A real EventSource (the `eventsource` package) that records what arrives.
 * `waitFor(n)` resolves once n events of `type` (default 'message') have arrived.
 */
export class RecordingEventSource {
  readonly source: EventSource;
  readonly events: ReceivedEvent[] = [];
  readonly opened: Promise<void>;
  private waiters: Array<{ count: number; type: string; resolve: () => void }> = [];

  constructor(url: string, types: string[] = ['message']) {
    this.source = new EventSource(url);
    this.opened = new Promise((resolve, reject) => {
      this.source.addEventListener('stream-open', () => resolve(), { once: true });
      this.source.addEventListener('error', (error) => {
        if (this.source.readyState === EventSource.CLOSED)
          reject(new Error(`EventSource failed: ${String((error as { message?: string }).message)}`));
      });
    });
    for (const type of types) {
      this.source.addEventListener(type, (event) => {
        const message = event as unknown as { data: string; lastEventId: string };
        this.events.push({ type, data: message.data, lastEventId: message.lastEventId });
        this.check();
      });
    }
  }

  of(type = 'message'): ReceivedEvent[] {
    return this.events.filter((event) => event.type === type);
  }

  waitFor(count: number, type = 'message', timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${count} '${type}' events; got ${this.of(type).length}`)),
        timeoutMs,
      );
      this.waiters.push({
        count,
        type,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      this.check();
    });
  }

  close(): void {
    this.source.close();
  }

  private check(): void {
    this.waiters = this.waiters.filter((waiter) => {
      if (this.of(waiter.type).length >= waiter.count) {
        waiter.resolve();
        return false;
      }
      return true;
    });
  }
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A plain GET that reads the whole (finite) response. */
export function get(url: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

/** Opens a stream and resolves with its status, headers and the first bytes, then keeps reading into `text`. */
export function openRaw(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; text: () => string; close: () => void; res: http.IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('error', () => {});
      resolve({ status: res.statusCode ?? 0, headers: res.headers, text: () => text, close: () => req.destroy(), res });
    });
    req.on('error', reject);
  });
}

export async function until(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Every whole event in an SSE byte stream, as a browser would dispatch it (named events and comments aside). */
export function parseAll(text: string): EventSourceMessage[] {
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  parser.feed(text);
  return events;
}
