import { HttpRequestError } from '../errors.js';
import { SEQUENCE, type StreamPosition } from '../sse/event-id.js';
import { type ChannelNameLimits, channelNameProblem } from './channel-names.js';

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
