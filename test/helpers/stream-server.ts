/**
 * Forks test/helpers/stream-server-process.ts (a node:http server with one
 * EventStream, under --expose-gc) and drives it over IPC; see that file for
 * its routes and protocol.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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

type Message = { type: 'ready'; port: number } | { type: 'done'; id: number; snapshot?: StreamServerSnapshot; error?: string };

export async function forkStreamServer(options: StreamServerOptions = {}): Promise<StreamServer> {
  const child: ChildProcess = fork(PROCESS, [JSON.stringify(options)], {
    execArgv: ['--expose-gc', '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pending = new Map<number, { resolve: (snapshot?: StreamServerSnapshot) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  const port = new Promise<number>((resolve, reject) => {
    child.on('message', (message: Message) => {
      if (message.type === 'ready') {
        resolve(message.port);
        return;
      }
      const waiter = pending.get(message.id);
      pending.delete(message.id);
      if (message.error === undefined) waiter?.resolve(message.snapshot);
      else waiter?.reject(new Error(`stream server: ${message.error}`));
    });
    void exited.then(() => {
      reject(new Error('stream server exited before it was ready'));
      for (const waiter of pending.values()) waiter.reject(new Error('stream server exited'));
      pending.clear();
    });
  });
  const send = (command: object): Promise<StreamServerSnapshot | undefined> => {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      if (!child.connected) {
        reject(new Error('stream server is gone'));
        return;
      }
      pending.set(id, { resolve, reject });
      child.send({ ...command, id });
    });
  };
  const close = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (child.connected) child.disconnect();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  let listening: number;
  try {
    listening = await port;
  } catch (error) {
    await close();
    throw error;
  }
  return {
    port: listening,
    publish: async (channel, data, { count = 1, repeat = 1 } = {}) => {
      await send({ type: 'publish', channel, data, repeat, count });
    },
    snapshot: async () => (await send({ type: 'snapshot' }))!,
    drop: async () => {
      await send({ type: 'drop' });
    },
    close,
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
