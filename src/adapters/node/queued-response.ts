import { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Pipelined HTTP/1.1 requests are answered in order: Node keeps a response
 * whose request arrived behind another one in its connection's outgoing
 * queue, with no socket (`res.socket` null), until every response ahead of
 * it has finished. Such a response is never told that the connection went
 * away: Node emits 'close' only on the response at the head of the
 * connection, and destroys the queued ones' requests, which a request read
 * to its end has already done for itself. So whatever waits on a queued
 * response watches the connection itself.
 */
export function isQueued(res: unknown): res is ServerResponse {
  if (!(res instanceof ServerResponse) || res.socket !== null || res.writableEnded || res.destroyed) return false;
  const connection = res.req?.socket;
  // A response detached from any live connection (hand-built, or its connection already gone) is not waiting for one.
  return connection !== null && connection !== undefined && !connection.destroyed;
}

/**
 * Whether the connection a response was to be written to has closed. The
 * response at the head of a connection is told ('close'); one queued
 * behind it is not, and would otherwise look alive for ever.
 */
export function connectionClosed(res: ServerResponse): boolean {
  return res.req?.socket?.destroyed === true;
}

/**
 * Resolves true once a queued response reaches the head of its connection
 * (Node has assigned it the socket and written what it had buffered for it),
 * false if the connection closes first.
 */
export function untilAtHead(res: ServerResponse): Promise<boolean> {
  const connection = res.req.socket;
  return new Promise((resolve) => {
    const settle = (atHead: boolean): void => {
      res.removeListener('socket', onSocket);
      stopWatching(connection, onGone);
      resolve(atHead);
    };
    // Node emits 'socket' from assignSocket() just before it flushes the response's buffered bytes; the
    // promise continuation runs after that synchronous flush, so anything written then follows them.
    const onSocket = (): void => settle(true);
    const onGone = (): void => settle(false);
    res.on('socket', onSocket);
    watch(connection, onGone);
  });
}

/**
 * Queued responses waiting on each connection, behind one 'close' listener
 * per connection however deep the pipeline: a listener per response would
 * pile up on one socket. Keyed weakly, so a connection holds its own entry.
 */
const watched = new WeakMap<Socket, { waiting: Set<() => void>; onClose: () => void }>();

function watch(connection: Socket, onGone: () => void): void {
  if (connection.destroyed) {
    queueMicrotask(onGone);
    return;
  }
  let entry = watched.get(connection);
  if (entry === undefined) {
    const waiting = new Set<() => void>();
    const onClose = (): void => {
      watched.delete(connection);
      for (const gone of [...waiting]) gone();
    };
    entry = { waiting, onClose };
    watched.set(connection, entry);
    connection.once('close', onClose);
  }
  entry.waiting.add(onGone);
}

function stopWatching(connection: Socket, onGone: () => void): void {
  const entry = watched.get(connection);
  if (entry === undefined || !entry.waiting.delete(onGone) || entry.waiting.size > 0) return;
  watched.delete(connection);
  connection.removeListener('close', entry.onClose);
}
