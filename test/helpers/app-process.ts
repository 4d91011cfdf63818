/**
 * Forks test/helpers/grip-app-process.ts, a second application process, and
 * drives it over IPC (see that file for the protocol).
 */
import { fileURLToPath } from 'node:url';
import type { ServerSentEvent } from '../../src/index.js';
import type { AppProcessOptions } from './grip-app-process.js';
import { forkIpcChild } from './ipc-child.js';

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
  /** Kills the process with `signal` and waits for it to exit: SIGKILL is a crash, with no cleanup. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

const APP_PROCESS = fileURLToPath(new URL('./grip-app-process.ts', import.meta.url));

export async function forkAppProcess(pathPrefix = '/'): Promise<AppProcess> {
  const child = await forkIpcChild<AppCounts>(APP_PROCESS, {
    name: 'app process',
    args: [pathPrefix],
    goodbye: { type: 'close' },
  });
  const counts = async (command: object): Promise<AppCounts> => {
    const { requests, streams } = await child.send(command);
    return { requests, streams };
  };
  return {
    port: child.port,
    url: `http://127.0.0.1:${child.port}`,
    configure: (options) => counts({ type: 'configure', options }),
    publish: (channel, event) => counts({ type: 'publish', channel, event }),
    counts: () => counts({ type: 'stats' }),
    close: () => child.close(),
    kill: (signal) => child.kill(signal),
  };
}
