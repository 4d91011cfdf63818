/**
 * Forks test/helpers/stream-server-process.ts (a node:http server with one
 * EventStream, under --expose-gc) and drives it over IPC; see that file for
 * its routes and protocol.
 */
import { fileURLToPath } from 'node:url';
import { forkIpcChild } from './ipc-child.js';
import type { StreamServerOptions, StreamServerSnapshot } from './stream-server-process.js';

export type { StreamServerOptions, StreamServerSnapshot };

export interface StreamServer {
  port: number;
  /** Publishes `count` events (default 1) of `data` repeated `repeat` times (default 1) on `channel`, one after another. */
  publish(channel: string, data: string, options?: { count?: number; repeat?: number }): Promise<void>;
  snapshot(): Promise<StreamServerSnapshot>;
  /** Closes the EventStream and its server and forgets both. */
  drop(): Promise<void>;
  close(): Promise<void>;
}

const PROCESS = fileURLToPath(new URL('./stream-server-process.ts', import.meta.url));

export async function forkStreamServer(options: StreamServerOptions = {}): Promise<StreamServer> {
  const child = await forkIpcChild<{ snapshot?: StreamServerSnapshot }>(PROCESS, {
    name: 'stream server',
    args: [JSON.stringify(options)],
    nodeFlags: ['--expose-gc'],
  });
  return {
    port: child.port,
    publish: async (channel, data, { count = 1, repeat = 1 } = {}) => {
      await child.send({ type: 'publish', channel, data, repeat, count });
    },
    snapshot: async () => (await child.send({ type: 'snapshot' })).snapshot!,
    drop: async () => {
      await child.send({ type: 'drop' });
    },
    close: () => child.close(),
  };
}

/** Polls an asynchronous condition until it holds. */
export async function untilAsync(predicate: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now();
  while (!(await predicate())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
