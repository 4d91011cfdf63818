import type { StoredEvent } from '../types.js';

/** One event as a single-channel stream sends it: its fields, its `id: channel:seq` line, the blank line. */
export function eventText(channel: string, event: StoredEvent): string {
  return `${event.body}id: ${channel}:${event.seq}\n\n`;
}

/** The wire text of events on a single-channel stream. */
export function singleChannelText(channel: string, events: readonly StoredEvent[], from = 0): string {
  let text = '';
  for (let i = from; i < events.length; i++) text += eventText(channel, events[i]!);
  return text;
}

/**
 * About the length of an event's text on a single-channel stream, without
 * building it: the fields, plus the id line and blank line (at most
 * `id: ` + channel + `:` + 16 digits + 2 newlines). Enough to cut replays
 * and proxy items into bounded pieces.
 */
export function eventTextLength(channel: string, event: StoredEvent): number {
  return event.body.length + channel.length + 24;
}
