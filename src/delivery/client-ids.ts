import { streamResetText } from '../sse/encoder.js';
import { formatEventId } from '../sse/event-id.js';
import { singleChannelText } from '../sse/event-text.js';
import type { HubFrame } from './hub-frame.js';

/**
 * The bytes one client gets for a hub frame: only the events past its
 * position in the frame's channel, with ids naming where it stands in all
 * of its channels (`channels[i]` at `positions[i]`), which this moves on.
 * Null when the client already has every event of the frame. A
 * single-channel client that has none of them gets the frame's shared bytes.
 *
 * `announceGaps`: events between the position and the frame were lost on
 * the way (a shared store that could not refill), and the client is told
 * with a stream-reset. Off while a replay is under way: the replay is what
 * fills that gap.
 */
export function clientBytes(
  channels: readonly string[],
  positions: number[],
  frame: HubFrame,
  announceGaps: boolean,
  metrics: { streamResets: number },
): Buffer | null {
  const index = channels.length === 1 ? 0 : channels.indexOf(frame.channel);
  const position = positions[index]!;
  const { events } = frame;
  if (frame.lastSeq <= position) return null;
  let skip = 0;
  while (events[skip]!.seq <= position) skip++;
  let reset = '';
  if (announceGaps && events[skip]!.seq > position + 1) {
    reset = resetText(channels, positions, [frame.channel], index, events[skip]!.seq - 1);
    metrics.streamResets++;
  }
  if (channels.length === 1) {
    positions[0] = frame.lastSeq;
    if (skip === 0 && reset === '') return frame.wire;
    return Buffer.from(reset + singleChannelText(frame.channel, events, skip));
  }
  let text = reset;
  for (let i = skip; i < events.length; i++) {
    const event = events[i]!;
    positions[index] = event.seq;
    text += `${event.body}id: ${formatEventId(channels, positions)}\n\n`;
  }
  return Buffer.from(text);
}

/** A stream-reset for `reset` (some of the client's channels) once channel `index` has moved to `position`. */
export function resetText(
  channels: readonly string[],
  positions: number[],
  reset: readonly string[],
  index: number,
  position: number,
): string {
  positions[index] = position;
  return streamResetText(reset, formatEventId(channels, positions));
}
