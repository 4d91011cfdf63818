import type { StoredEvent } from '../stores/event-store.js';

/**
 * Consecutive events of one channel on their way to subscribers, with the
 * bytes a single-channel stream sends for them (each event with its
 * `id: channel:seq` line) built once and shared by every such subscriber.
 */
export class HubFrame {
  readonly channel: string;
  readonly events: readonly StoredEvent[];
  readonly wire: Buffer;

  constructor(channel: string, events: readonly StoredEvent[], wire: Buffer) {
    this.channel = channel;
    this.events = events;
    this.wire = wire;
  }

  get firstSeq(): number {
    return this.events[0]!.seq;
  }

  get lastSeq(): number {
    return this.events[this.events.length - 1]!.seq;
  }
}

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
