import type { StoredEvent } from '../types.js';

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
