// Request/response over the IPC channel of a forked child.
// Parent side: `connect(child, name)` -> { call(cmd, args, timeoutMs) }.
// Child side: `serve(handlers)` answers { id, cmd, args } with { id, result } or { id, error }.

/**
 * A forked child driven over IPC. A reply is whatever the child's handler
 * returned, structured-cloned, so its type is the handler's business: `any`.
 * @typedef {object} Peer
 * @property {import('node:child_process').ChildProcess} child
 * @property {string} name
 * @property {(cmd: string, args?: object, timeoutMs?: number) => Promise<any>} call
 * @property {(graceMs?: number) => Promise<void>} stop asks the child to exit, then kills it
 */

/**
 * @typedef {{ cmd: string, resolve: (value: unknown) => void, reject: (error: Error) => void, timer: NodeJS.Timeout }} PendingCall
 */

/**
 * Wraps a forked child so commands can be awaited. Pending calls reject if the child exits.
 * @param {import('node:child_process').ChildProcess} child
 * @param {string} name
 * @returns {Peer}
 */
export function connect(child, name) {
  let nextId = 1;
  /** @type {Map<number, PendingCall>} */
  const pending = new Map();
  /** @type {string | null} */
  let exited = null;

  child.on('message', (/** @type {any} */ message) => {
    const entry = pending.get(message?.id);
    if (entry === undefined) return;
    pending.delete(message.id);
    clearTimeout(entry.timer);
    if (message.error !== undefined) entry.reject(new Error(`${name}: ${entry.cmd} failed: ${message.error}`));
    else entry.resolve(message.result);
  });
  child.on('exit', (/** @type {number | null} */ code, /** @type {NodeJS.Signals | null} */ signal) => {
    exited = `${name} exited (code ${code}, signal ${signal})`;
    for (const entry of pending.values()) {
      clearTimeout(entry.timer);
      entry.reject(new Error(`${exited} during ${entry.cmd}`));
    }
    pending.clear();
  });

  return {
    child,
    name,
    call(cmd, args = {}, timeoutMs = 60_000) {
      if (exited !== null) return Promise.reject(new Error(exited));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${name}: ${cmd} timed out after ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, { cmd, resolve, reject, timer });
        child.send({ id, cmd, args });
      });
    },
    /** Asks the child to exit, then kills it (by its own pid) if it has not gone after `graceMs`. */
    async stop(graceMs = 3000) {
      if (exited !== null || child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      try {
        child.send({ id: 0, cmd: 'exit', args: {} });
      } catch {
        // channel already closed
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await gone;
      clearTimeout(timer);
    },
  };
}

/**
 * Child side: runs `handlers[cmd](args)` for every message from the parent.
 * Every child also answers cpuStart / cpuEnd (its CPU between the two) and
 * clock (see clockPair).
 * @param {Record<string, (args: any) => unknown>} ownHandlers
 */
export function serve(ownHandlers) {
  /** @type {NodeJS.CpuUsage | undefined} */
  let cpuMark;
  /** @type {Record<string, (args: any) => unknown>} */
  const handlers = {
    cpuStart() {
      cpuMark = process.cpuUsage();
    },
    cpuEnd() {
      const { user, system } = process.cpuUsage(cpuMark);
      return { user, system };
    },
    clock: () => clockPair(),
    ...ownHandlers,
  };
  process.on('message', async (message) => {
    const { id, cmd, args } = /** @type {{ id?: number, cmd?: string, args?: object }} */ (message ?? {});
    if (cmd === 'exit') {
      process.exit(0);
    }
    const handler = cmd === undefined ? undefined : handlers[cmd];
    try {
      if (typeof handler !== 'function') throw new Error(`unknown command ${cmd}`);
      const result = await handler(args ?? {});
      process.send?.({ id, result: result ?? null });
    } catch (error) {
      process.send?.({ id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    }
  });
  // The parent is gone: nothing more to do.
  process.on('disconnect', () => process.exit(0));
}

/** Milliseconds on the clock both sides of a latency sample use. */
export function wallNow() {
  return performance.timeOrigin + performance.now();
}

/** Same instant on the wall clock and on CLOCK_MONOTONIC (shared by all processes), to check cross-process skew. */
export function clockPair() {
  const a = wallNow();
  const mono = Number(process.hrtime.bigint()) / 1e6;
  const b = wallNow();
  return { wall: (a + b) / 2, mono };
}

/**
 * Starts `server` on a free loopback port; what a server child's start() answers.
 * @param {import('node:net').Server} server
 */
export async function listenOnLoopback(server) {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(undefined));
  });
  return { port: /** @type {import('node:net').AddressInfo} */ (server.address()).port, pid: process.pid };
}
