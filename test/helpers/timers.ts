import { createHook } from 'node:async_hooks';

/**
 * Counts live timers of one period (Node's Timeout keeps it in
 * `_idleTimeout`), to tell the library's keep-alive clock from the test's
 * and Node's own timers. Keep-alive timers are unref'd, so
 * process.getActiveResourcesInfo() would not see them: every Timeout's life
 * is tracked from the moment this is first called.
 */
export function liveTimersOf(periodMs: number): number {
  let count = 0;
  for (const timeout of trackedTimeouts().values()) {
    if ((timeout as { _idleTimeout?: number })._idleTimeout === periodMs) count++;
  }
  return count;
}

/** Every Timeout alive now, once tracking has started. */
export function liveTimers(): number {
  return trackedTimeouts().size;
}

let live: Map<number, object> | null = null;

function trackedTimeouts(): Map<number, object> {
  if (live !== null) return live;
  const timeouts = new Map<number, object>();
  createHook({
    init(asyncId, type, _triggerAsyncId, resource) {
      if (type === 'Timeout') timeouts.set(asyncId, resource);
    },
    destroy(asyncId) {
      timeouts.delete(asyncId);
    },
  }).enable();
  live = timeouts;
  return timeouts;
}

/** Starts tracking now, before the timers to count are made. */
export function trackTimers(): void {
  trackedTimeouts();
}
