// Parent side of bench/grip/client-process.js: forks it once and drives one
// subscription at a time over IPC.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * What the client process sends; which fields are set depends on `type`.
 * @typedef {{ type: string, received: number, at: number, message: string }} ClientMessage
 */

const CHILD = fileURLToPath(new URL('./client-process.js', import.meta.url));

export async function startClientProcess() {
  // No inherited --import/--loader flags: the client needs plain Node only.
  const child = fork(CHILD, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  /** @type {string | null} */
  let exited = null;
  const exitedPromise = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = `client process exited (code ${code}, signal ${signal})`;
      resolve(undefined);
    });
  });
  /** @type {Set<(message: ClientMessage) => void>} */
  const waiters = new Set();
  /** @type {Promise<unknown>} */
  let donePromise = Promise.resolve();
  /** @type {((value?: unknown) => void) | null} */
  let resolveDone = null;
  const state = { received: 0, lastProgressAt: 0, doneAt: /** @type {number | null} */ (null), warm: 0 };
  child.on('message', (received) => {
    const message = /** @type {ClientMessage} */ (received);
    switch (message?.type) {
      case 'warm':
        state.warm++;
        break;
      case 'progress':
        state.received = message.received;
        state.lastProgressAt = message.at;
        break;
      case 'done':
        state.doneAt = message.at;
        resolveDone?.();
        break;
    }
    for (const waiter of [...waiters]) waiter(message);
  });
  child.once('exit', () => {
    for (const waiter of [...waiters]) waiter(/** @type {ClientMessage} */ ({ type: 'exit' }));
  });

  /**
   * Resolves with the first message of `type`; rejects on `failType`, child exit or timeout.
   * @param {string} type
   * @param {number} timeoutMs
   * @param {string} [failType]
   * @returns {Promise<any>}
   */
  function next(type, timeoutMs, failType) {
    if (exited !== null) return Promise.reject(new Error(exited));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for the client's '${type}'`));
      }, timeoutMs);
      /** @param {ClientMessage} message */
      const waiter = (message) => {
        if (message.type !== type && message.type !== failType && message.type !== 'exit') return;
        waiters.delete(waiter);
        clearTimeout(timer);
        if (message.type === type) resolve(message);
        else reject(new Error(message.type === 'exit' ? (exited ?? 'client process exited') : message.message));
      };
      waiters.add(waiter);
    });
  }

  await next('ready', 10_000);

  return {
    state,
    /** Subscribes to `url`; resolves once the stream is held (stream-open arrived). */
    /**
     * @param {string} url
     * @param {number} expected
     */
    async open(url, expected, timeoutMs = 10_000) {
      Object.assign(state, { received: 0, lastProgressAt: 0, doneAt: null, warm: 0 });
      donePromise = new Promise((resolve) => {
        resolveDone = resolve;
      });
      const opened = next('opened', timeoutMs, 'open-failed');
      child.send({ cmd: 'open', url, expected });
      await opened;
    },
    /** Resolves when the expected number of events has arrived (state.doneAt is then set). */
    done() {
      return donePromise;
    },
    async verify() {
      const answer = next('verify', 10_000);
      child.send({ cmd: 'verify' });
      return answer;
    },
    async close() {
      if (exited !== null) return;
      const closed = next('closed', 5_000);
      child.send({ cmd: 'close' });
      await closed;
    },
    /** Ends the process: asks first, SIGKILL (by its pid) if it has not gone within 3 s. */
    async stop() {
      if (exited !== null) return;
      try {
        child.send({ cmd: 'exit' });
      } catch {
        // IPC already closed
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exitedPromise;
      clearTimeout(timer);
    },
  };
}
