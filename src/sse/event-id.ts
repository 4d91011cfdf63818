/** Where a client stands in each channel: channel name → sequence number of the last event it has. */
export type StreamPosition = ReadonlyMap<string, number>;

/** A sequence number as ids carry it: decimal digits, no leading zero, at most 16 of them (a safe integer). */
export const SEQUENCE = /^(?:0|[1-9][0-9]{0,15})$/;

/**
 * The SSE id of an event on a stream: `channel:seq` for each channel, joined
 * with `,`. Channel names cannot contain `,` and a sequence is digits only,
 * so splitting on `,` and then at the last `:` reads it back unambiguously.
 */
export function formatEventId(channels: readonly string[], positions: ArrayLike<number>): string {
  let id = `${channels[0]}:${positions[0]}`;
  for (let i = 1; i < channels.length; i++) id += `,${channels[i]}:${positions[i]}`;
  return id;
}
