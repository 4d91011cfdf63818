/**
 * A fake GRIP control API: a real node:http server on 127.0.0.1 that takes
 * publish requests the way Pushpin's does (POST /publish/, JSON items) and
 * answers however the test tells it to. It is the fault being injected:
 * slow, failing, hanging, or cut off mid-answer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { listen, type RunningServer } from './server.js';

export interface PublishedItem {
  channel: string;
  id?: string;
  prevId?: string;
  /** The `data:` values of the SSE events the item carries, in order. */
  data: string[];
}

/** One publish request the fake received. */
export interface ControlRequest {
  readonly items: PublishedItem[];
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Set once the client went away before an answer was sent (an aborted call). */
  readonly aborted: boolean;
  answer(status?: number, text?: string): void;
}

/** How the fake reacts to each request once its body has arrived. */
export type ControlBehaviour = (request: ControlRequest) => void;

export interface FakeControlApi extends RunningServer {
  /** Every request received, in arrival order. */
  readonly requests: ControlRequest[];
  /** The `data:` values of every event received, in order, over all requests. */
  published(): string[];
  /** Requests still without an answer. */
  held(): ControlRequest[];
  /** From now on, `behaviour` answers new requests. */
  behave(behaviour: ControlBehaviour): void;
  /** Answers every held request with 200 and answers later ones at once. */
  release(): void;
}

/** Answers 200 with Pushpin's text. */
export const accept: ControlBehaviour = (request) => request.answer(200, 'Published\n');
/** Never answers: the request stays held until the test releases it, the client gives up or the server closes. */
export const hold: ControlBehaviour = () => {};

export function failWith(status: number, text: string, delayMs = 0): ControlBehaviour {
  return (request) => {
    setTimeout(() => request.answer(status, text), delayMs);
  };
}

/** Starts the answer (status and headers, part of the body), then cuts the connection. */
export const cutMidAnswer: ControlBehaviour = (request) => {
  request.res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
  request.res.write('Publi', () => request.res.socket?.destroy());
};

function dataOf(content: string): string[] {
  return content
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => line.slice('data: '.length));
}

export async function startControlApi(initial: ControlBehaviour = accept): Promise<FakeControlApi> {
  let behaviour = initial;
  const requests: ControlRequest[] = [];
  const server = await listen((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const { items } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        items: Array<{ channel: string; id?: string; 'prev-id'?: string; formats: { 'http-stream': { content: string } } }>;
      };
      let answered = false;
      let aborted = false;
      const request: ControlRequest = {
        items: items.map((item) => ({
          channel: item.channel,
          id: item.id,
          prevId: item['prev-id'],
          data: dataOf(item.formats['http-stream'].content),
        })),
        req,
        res,
        get aborted() {
          return aborted;
        },
        answer(status = 200, text = 'Published\n') {
          if (answered || res.destroyed) return;
          answered = true;
          res.writeHead(status, { 'content-type': 'text/plain' }).end(text);
        },
      };
      res.on('close', () => {
        if (!res.writableFinished) aborted = true;
        answered = true;
      });
      requests.push(request);
      behaviour(request);
    });
  });
  return {
    ...server,
    requests,
    published: () => requests.flatMap((request) => request.items.flatMap((item) => item.data)),
    held: () => requests.filter((request) => !request.res.writableEnded && !request.aborted),
    behave(next) {
      behaviour = next;
    },
    release() {
      behaviour = accept;
      for (const request of requests) request.answer(200, 'Published\n');
    },
  };
}
