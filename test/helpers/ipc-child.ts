/**
 * A helper process forked under tsx and driven over IPC: it reports
 * `{ type: 'ready', port }` once its server listens, and answers every
 * command `{ ...command, id }` with `{ type: 'done', id, error? , ... }`.
 * Shared by the processes the tests start (app-process.ts, stream-server.ts).
 */
import { type ChildProcess, fork } from 'node:child_process';

export interface IpcChild<Reply> {
  port: number;
  /** Sends a command and resolves with the child's reply (its 'done' message). */
  send(command: object): Promise<Reply>;
  /** Sends `goodbye` when given (else disconnects), waits for the exit, and kills the child after 5 s. */
  close(): Promise<void>;
  /** Kills the child with `signal` (a crash, for SIGKILL) and waits for it to exit. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

interface Done {
  type: 'done';
  id: number;
  error?: string;
}

export interface IpcChildOptions {
  /** Named in errors. */
  name: string;
  args?: string[];
  /** Node flags besides `--import tsx`. */
  nodeFlags?: string[];
  /** The command that makes the child shut down; without it, disconnecting does. */
  goodbye?: object;
}

export async function forkIpcChild<Reply extends object>(
  path: string,
  options: IpcChildOptions,
): Promise<IpcChild<Reply & Done>> {
  const { name } = options;
  const child: ChildProcess = fork(path, options.args ?? [], {
    execArgv: [...(options.nodeFlags ?? []), '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pending = new Map<number, { resolve: (reply: Reply & Done) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  const port = new Promise<number>((resolve, reject) => {
    child.on('message', (message: { type: 'ready'; port: number } | (Reply & Done)) => {
      if (message.type === 'ready') {
        resolve((message as { port: number }).port);
        return;
      }
      const reply = message as Reply & Done;
      const waiter = pending.get(reply.id);
      pending.delete(reply.id);
      if (reply.error === undefined) waiter?.resolve(reply);
      else waiter?.reject(new Error(`${name}: ${reply.error}`));
    });
    void exited.then(() => {
      reject(new Error(`${name} exited before it was ready`));
      for (const waiter of pending.values()) waiter.reject(new Error(`${name} exited`));
      pending.clear();
    });
  });
  const send = (command: object): Promise<Reply & Done> => {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      if (!child.connected) {
        reject(new Error(`${name} is gone`));
        return;
      }
      pending.set(id, { resolve, reject });
      child.send({ ...command, id });
    });
  };
  const close = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (child.connected) {
      if (options.goodbye === undefined) child.disconnect();
      else child.send({ ...options.goodbye, id: nextId++ });
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  const kill = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    await exited;
  };
  try {
    return { port: await port, send, close, kill };
  } catch (error) {
    await close();
    throw error;
  }
}
