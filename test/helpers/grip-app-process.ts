/**
 * A second application process for GRIP tests, run with `fork()`. It listens
 * at once on a free loopback port (so a Pushpin can be routed to it), then
 * serves `<argv[2]>events/:id` with an EventStream built from the options the
 * parent sends. Driven over IPC:
 *   child  -> { type: 'ready', port } once listening
 *   parent -> { type: 'configure', id, options } | { type: 'publish', id, channel, event }
 *             | { type: 'stats', id } | { type: 'close', id }
 *   child  -> { type: 'done', id, requests, streams, error? } after each command
 * `requests` counts the event-stream requests this process has answered,
 * `streams` the ones it serves directly. After 'close' it shuts down and exits.
 *
 * The 'configure' options may carry `redisStore` (plain JSON options of a
 * RedisEventStore): the process then builds its EventStream on
 * `store: new RedisEventStore(redisStore)`, shared with other processes on the
 * same Redis and key prefix, and closes that store when it shuts down.
 */
import express from 'express';
import { EventStream, type EventStreamOptions, type ServerSentEvent } from '../../src/index.js';
import { RedisEventStore, type RedisEventStoreOptions } from '../../src/redis.js';
import { listen } from './server.js';

/** What 'configure' carries: EventStream options (JSON), plus a RedisEventStore to build from its options. */
export type AppProcessOptions = Omit<EventStreamOptions, 'store'> & { redisStore?: RedisEventStoreOptions };

type Command =
  | { type: 'configure'; id: number; options: AppProcessOptions }
  | { type: 'publish'; id: number; channel: string; event: ServerSentEvent }
  | { type: 'stats'; id: number }
  | { type: 'close'; id: number };

const pathPrefix = process.argv[2] ?? '/';
let eventStream: EventStream | null = null;
/** Stores this process built from `redisStore`; closed on shutdown, since EventStream leaves a store it was given open. */
const stores: RedisEventStore[] = [];
let requests = 0;

const app = express();
app.get(`${pathPrefix}events/:id`, (req, res, next) => {
  if (eventStream === null) {
    res.status(503).end('not configured yet');
    return;
  }
  requests++;
  void eventStream('{id}')(req, res, next);
});
const server = await listen(app);

function counts(): { requests: number; streams: number } {
  return { requests, streams: eventStream?.stats().streams ?? 0 };
}

function reply(message: object): void {
  if (process.connected) process.send?.(message);
}

async function shutDown(): Promise<void> {
  await eventStream?.close();
  await Promise.all(stores.map((store) => store.close()));
  await server.close();
}

async function run(command: Command): Promise<void> {
  switch (command.type) {
    case 'configure': {
      const { redisStore, ...options } = command.options;
      if (redisStore === undefined) {
        eventStream = new EventStream(options);
      } else {
        const store = new RedisEventStore(redisStore);
        stores.push(store);
        eventStream = new EventStream({ ...options, store });
      }
      return;
    }
    case 'publish':
      if (eventStream === null) throw new Error('publish before configure');
      return eventStream.publishEvent(command.channel, command.event);
    case 'stats':
      return;
    case 'close':
      return shutDown();
  }
}

process.on('message', (command: Command) => {
  void run(command)
    .then(
      () => reply({ type: 'done', id: command.id, ...counts() }),
      (error: Error) => reply({ type: 'done', id: command.id, ...counts(), error: `${error.name}: ${error.message}` }),
    )
    // After 'close' the parent waits for this process to exit, which needs the IPC channel gone.
    .finally(() => {
      if (command.type === 'close' && process.connected) process.disconnect();
    });
});

// The parent going away (a crashed test) must not leave this process behind.
process.on('disconnect', () => {
  void shutDown();
});

reply({ type: 'ready', port: server.port });
