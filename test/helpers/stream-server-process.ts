/**
 * A node:http server with one EventStream, run with `fork()` and
 * `--expose-gc` so its heap can be measured after GC, away from the test
 * runner's own allocations. argv[2] is JSON: the EventStream options plus
 * `historyEvents` (the memory store's maxEvents, so the history reaches its
 * steady size quickly). Routes:
 *   /events/<a>[,<b>...]  a stream of those channels (eventStream.run)
 *   /ended/<channel>      a stream the application ends as soon as run() resolves
 *   /plain/<tag>          `plain <tag>` at once (content-length)
 *   /slow/<tag>           `slow <tag>` after 50 ms
 * Driven over IPC:
 *   child  -> { type: 'ready', port } once listening
 *   parent -> { id, type: 'publish', channel, data, repeat, count } (`count` events of `data` repeated
 *             `repeat` times, published one after another)
 *             | { id, type: 'snapshot' } | { id, type: 'drop' }
 *   child  -> { id, type: 'done', snapshot?, error? }
 * 'drop' closes the EventStream and forgets it and its server, so nothing
 * the test did is reachable any more. The process exits when the parent disconnects.
 */

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventStream, type EventStreamOptions, type EventStreamStats, MemoryEventStore } from '../../src/index.js';
import { liveTimersOf, trackTimers } from './timers.js';

export type StreamServerOptions = Omit<EventStreamOptions, 'store'> & { historyEvents?: number };

export interface StreamServerSnapshot {
  stats: EventStreamStats | null;
  /** After two full GCs. */
  heapUsed: number;
  arrayBuffers: number;
  /** Live timers with the keep-alive clock's period: one while streams are open, else none. */
  keepAliveTimers: number;
  connections: number;
}

type Command =
  | { id: number; type: 'publish'; channel: string; data: string; repeat: number; count: number }
  | { id: number; type: 'snapshot' }
  | { id: number; type: 'drop' };

const { historyEvents, ...options } = JSON.parse(process.argv[2] ?? '{}') as StreamServerOptions;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

trackTimers();
const keepAlivePeriod = Math.max(1, Math.floor((options.keepAliveInterval ?? 15_000) / 4));

let eventStream: EventStream | null = new EventStream({
  ...options,
  store: new MemoryEventStore({ maxEvents: historyEvents ?? 1000 }),
});
let server: http.Server | null = http.createServer((req, res) => {
  const [, route = '', arg = ''] = /^\/([a-z]+)\/([^?]*)/.exec(req.url ?? '') ?? [];
  const instance = eventStream;
  if (instance === null) {
    res.writeHead(503).end();
    return;
  }
  switch (route) {
    case 'events':
      void instance.run(req, res, arg.split(','));
      return;
    case 'ended':
      void instance.run(req, res, arg).then(() => res.end());
      return;
    case 'plain':
      res.end(`plain ${arg}`);
      return;
    case 'slow':
      setTimeout(() => res.end(`slow ${arg}`), 50);
      return;
    default:
      res.writeHead(404).end();
  }
});
server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'ready', port: (server!.address() as AddressInfo).port });
});

function connections(): Promise<number> {
  return new Promise((resolve) => {
    if (server === null) resolve(0);
    else server.getConnections((_error, count) => resolve(count));
  });
}

async function snapshot(): Promise<StreamServerSnapshot> {
  // Let closes and timers scheduled by the last events settle before measuring.
  await new Promise((resolve) => setImmediate(resolve));
  gc!();
  gc!();
  const memory = process.memoryUsage();
  const keepAliveTimers = liveTimersOf(keepAlivePeriod);
  return {
    stats: eventStream?.stats() ?? null,
    heapUsed: memory.heapUsed,
    arrayBuffers: memory.arrayBuffers,
    keepAliveTimers,
    connections: await connections(),
  };
}

async function run(command: Command): Promise<StreamServerSnapshot | undefined> {
  switch (command.type) {
    case 'publish': {
      const data = command.data.repeat(command.repeat);
      for (let i = 0; i < command.count; i++) await eventStream!.publishEvent(command.channel, { data });
      return undefined;
    }
    case 'snapshot':
      return snapshot();
    case 'drop': {
      await eventStream?.close();
      eventStream = null;
      const closing = server;
      server = null;
      if (closing !== null) {
        closing.closeAllConnections();
        await new Promise((resolve) => closing.close(resolve));
      }
      return undefined;
    }
  }
}

process.on('message', (command: Command) => {
  run(command).then(
    (result) => process.connected && process.send?.({ id: command.id, type: 'done', snapshot: result }),
    (error: unknown) => process.connected && process.send?.({ id: command.id, type: 'done', error: String(error) }),
  );
});
process.on('disconnect', () => process.exit(0));
