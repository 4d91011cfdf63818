import { HttpRequestError, InvalidArgumentError } from '../errors.js';
import type { Authorization, AuthorizeFunction } from '../types.js';

/** What a request was allowed: until when (epoch ms), or for as long as it stays (null). */
export interface Access {
  readonly until: number | null;
}

const FOREVER: Access = Object.freeze({ until: null });

/**
 * Runs the app's `authorize` for a request. `false` is a 403; a thrown
 * HttpRequestError is the answer it names; anything else it throws is the
 * app's error and goes on (to `next(err)`, else a 500). An `until` already
 * past is a 401, as an expired credential is: the stream would only end at
 * once and the client reconnect straight back.
 */
export async function authorizeRequest<TRequest>(
  authorize: AuthorizeFunction<TRequest> | null,
  request: TRequest,
  channels: readonly string[],
  now: number,
): Promise<Access> {
  if (authorize === null) return FOREVER;
  const decision: Authorization = await authorize(request, channels);
  if (decision === true) return FOREVER;
  if (decision === false) throw new HttpRequestError(403, 'Forbidden: you may not listen to this stream.');
  const until = typeof decision === 'object' && decision !== null ? decision.until : undefined;
  if (typeof until !== 'number' || !Number.isFinite(until)) {
    throw new InvalidArgumentError(`authorize must return true, false or { until: <epoch ms> }, got ${describe(decision)}`);
  }
  if (until <= now) throw new HttpRequestError(401, 'Unauthorized: access has expired.');
  return { until };
}

/** Longest spread of closing times before an `until`, so streams allowed together do not all reconnect together. */
const MAX_SPREAD_MS = 60_000;

/**
 * When a stream allowed until `until` is closed: at a random point in the
 * last fifth of what is left of its access (at most a minute before
 * `until`), never later than `until`. A million tokens issued at once then
 * reconnect over a minute, not in one instant.
 */
export function closingTime(until: number, now: number, random: () => number = Math.random): number {
  const spread = Math.min(MAX_SPREAD_MS, (until - now) / 5);
  return Math.floor(until - random() * spread);
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
