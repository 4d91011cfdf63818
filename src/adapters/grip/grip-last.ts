import { SEQUENCE, type StreamPosition } from '../../sse/event-id.js';

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
