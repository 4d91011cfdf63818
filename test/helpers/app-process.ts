/**
 * Forks test/helpers/grip-app-process.ts, a second application process, and
 * drives it over IPC (see that file for the protocol).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ServerSentEvent } from '../../src/index.js';
import type { AppProcessOptions } from './grip-app-process.js';

export interface AppCounts {
  /** Event-stream requests the process has answered. */
  requests: number;
  /** Streams it serves directly (not held by a proxy). */
  streams: number;
}

export interface AppProcess {
  port: number;
  /** Base URL; it serves `<pathPrefix>events/<channel>`. */
  url: string;
  configure(options: AppProcessOptions): Promise<AppCounts>;
  publish(channel: string, event: ServerSentEvent): Promise<AppCounts>;
  counts(): Promise<AppCounts>;
  close(): Promise<void>;
}

const APP_PROCESS = fileURLToPath(new URL('./grip-app-process.ts', import.meta.url));

export async function forkAppProcess(pathPrefix = '/'): Promise<AppProcess> {
  const child: ChildProcess = fork(APP_PROCESS, [pathPrefix], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pending = new Map<number, { resolve: (counts: AppCounts) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let ready: (port: number) => void = () => {};
  const port = new Promise<number>((resolve, reject) => {
    ready = resolve;
    void exited.then(() => reject(new Error('app process exited before it was ready')));
  });
  type Message = { type: 'ready'; port: number } | ({ type: 'done'; id: number; error?: string } & AppCounts);
  child.on('message', (message: Message) => {
    if (message.type === 'ready') {
      ready(message.port);
      return;
    }
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.error === undefined) waiter?.resolve({ requests: message.requests, streams: message.streams });
    else waiter?.reject(new Error(`app process: ${message.error}`));
  });
  void exited.then(() => {
    for (const waiter of pending.values()) waiter.reject(new Error('app process exited'));
    pending.clear();
  });
  const send = (command: object): Promise<AppCounts> => {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      if (!child.connected) {
        reject(new Error('app process is gone'));
        return;
      }
      pending.set(id, { resolve, reject });
      child.send({ ...command, id });
    });
  };
  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      if (child.connected) child.send({ type: 'close', id: nextId++ });
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
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
    url: `http://127.0.0.1:${listening}`,
    configure: (options) => send({ type: 'configure', options }),
    publish: (channel, event) => send({ type: 'publish', channel, event }),
    counts: () => send({ type: 'stats' }),
    close,
  };
}
