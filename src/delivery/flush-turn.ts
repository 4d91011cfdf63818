/** Something holding events to hand on once the current turn of its caller is over. */
export interface TurnFlushable {
  flushScheduledBatch(): void;
}

let waiting: TurnFlushable[] = [];

/**
 * Runs `target.flushScheduledBatch()` in the next check phase, together with
 * every other hub that got events meanwhile.
 *
 * Not process.nextTick: an awaited publish resumes its caller through a
 * nextTick (the write callback) and a microtask (the promise), so a flush
 * on nextTick would run between one awaited publish and the next and send
 * every event alone. Nothing a caller awaits in between ends before the
 * check phase, so by then an awaited loop, a pipe from Readable.from and a
 * synchronous burst have all written their turn's events, and each leaves as
 * one frame. One immediate for all hubs also keeps the frames of several
 * channels in the same turn, so a stream on several of them writes once.
 */
export function flushAtEndOfTurn(target: TurnFlushable): void {
  if (waiting.length === 0) setImmediate(flushWaiting);
  waiting.push(target);
}

function flushWaiting(): void {
  const targets = waiting;
  waiting = [];
  for (const target of targets) target.flushScheduledBatch();
}
