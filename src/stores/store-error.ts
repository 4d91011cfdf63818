import { EventStoreError } from '../errors.js';

/**
 * The one way a failure inside a store reaches callers: as an
 * EventStoreError naming what was attempted, with the original as `cause`.
 * One already wrapped passes through, so a failure is described once.
 */
export function asStoreError(cause: unknown, attempted: string): EventStoreError {
  if (cause instanceof EventStoreError) return cause;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new EventStoreError(`${attempted} failed: ${reason}`, { cause });
}
