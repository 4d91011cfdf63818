import { channelNameProblem, type ChannelNameLimits } from './channel-names.js';
import { HttpRequestError } from '../errors.js';

/** Where a client stands in each channel: channel name → sequence number of the last event it has. */
export type StreamPosition = ReadonlyMap<string, number>;

const SEQUENCE = /^(?:0|[1-9][0-9]{0,15})$/;

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

/** Reads a Last-Event-ID back. A value this library could not have sent is a 400 with the reason. */
export function parseEventId(text: string, limits: ChannelNameLimits): StreamPosition {
  const position = new Map<string, number>();
  for (const entry of text.split(',')) {
    const colon = entry.lastIndexOf(':');
    const channel = entry.slice(0, colon);
    const seq = entry.slice(colon + 1);
    if (colon <= 0 || !SEQUENCE.test(seq) || channelNameProblem(channel, limits) !== null || position.has(channel)) {
      throw badEventId(text);
    }
    const value = Number(seq);
    if (!Number.isSafeInteger(value)) throw badEventId(text);
    position.set(channel, value);
  }
  return position;
}

function badEventId(text: string): HttpRequestError {
  const shown = text.length > 200 ? `${text.slice(0, 200)}...` : text;
  return new HttpRequestError(
    400,
    `Bad Request: Last-Event-ID ${JSON.stringify(shown)} is not an id this server sent (expected channel:sequence, comma-separated).`,
  );
}

/**
 * Reads Pushpin's `Grip-Last: <grip channel>; last-id=<id>, ...` (sent when
 * it follows our `Grip-Link` to recover missed events) into a position in the
 * unprefixed channels. Entries for other channels are ignored.
 */
export function parseGripLast(header: string, gripPrefix: string): StreamPosition {
  const position = new Map<string, number>();
  for (const entry of header.split(',')) {
    const [name, ...params] = entry.split(';').map((part) => part.trim());
    if (name === undefined || !name.startsWith(gripPrefix)) continue;
    for (const param of params) {
      const [key, value] = param.split('=').map((part) => part.trim());
      if (key === 'last-id' && value !== undefined && SEQUENCE.test(value)) {
        position.set(name.slice(gripPrefix.length), Number(value));
      }
    }
  }
  return position;
}
