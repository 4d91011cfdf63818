import { InvalidOptionError } from '../errors.js';
import { checkOptionKeys, type OptionKeys } from '../option-keys.js';
import type { EventStore, HistoryPage, StoredEvent } from './store.js';

export interface MemoryEventStoreOptions {
  /** Events kept per channel. Default 1000. */
  maxEvents?: number;
  /** Milliseconds an event is kept. Default 300000 (5 minutes). */
  maxAge?: number;
  /** Channels kept; past it the least recently used channel's history is dropped. Default 100000. */
  maxChannels?: number;
}

const OPTION_KEYS = { maxEvents: true, maxAge: true, maxChannels: true } as const satisfies OptionKeys<MemoryEventStoreOptions>;

interface TimedEvent extends StoredEvent {
  readonly time: number;
}

/** One channel's history: a bounded queue plus the channel's next sequence number. */
class ChannelHistory {
  next: number;
  lastActive = 0;
  /** events[start..] are live; the prefix is trimmed lazily so trimming stays O(1). */
  events: TimedEvent[] = [];
  start = 0;

  constructor(first: number) {
    this.next = first;
  }

  get size(): number {
    return this.events.length - this.start;
  }

  trim(maxEvents: number, oldestTime: number): void {
    const { events } = this;
    let start = Math.max(this.start, events.length - maxEvents);
    while (start < events.length && events[start]!.time < oldestTime) start++;
    this.start = start;
    // Compact once the dead prefix outweighs the live part.
    if (start > 1024 && start * 2 > events.length) {
      this.events = events.slice(start);
      this.start = 0;
    }
  }
}

/**
 * The default store: per-channel history in this process, bounded by count
 * and by age. Sequence numbers of a new channel start from the clock
 * (milliseconds × 1000), so they keep growing across a channel's expiry and
 * across process restarts, and an id from before either is recognised as too
 * old instead of being mistaken for a recent position.
 */
export class MemoryEventStore implements EventStore {
  readonly shared = false;
  readonly maxEvents: number;
  readonly maxAge: number;
  readonly maxChannels: number;
  /** In order of last use (a used channel moves to the end), so the first is the one to evict. */
  private readonly channels = new Map<string, ChannelHistory>();
  private appendsSinceSweep = 0;
  private lastSweep = Date.now();

  constructor(options: MemoryEventStoreOptions = {}) {
    checkOptionKeys(options, OPTION_KEYS, 'MemoryEventStore');
    this.maxEvents = positiveInteger(options.maxEvents, 1000, 'maxEvents', 0);
    this.maxAge = positiveInteger(options.maxAge, 300_000, 'maxAge', 1);
    this.maxChannels = positiveInteger(options.maxChannels, 100_000, 'maxChannels', 1);
  }

  append(channel: string, bodies: readonly string[]): number {
    const now = Date.now();
    const history = this.record(channel, now);
    // Most recently used last: delete and re-insert moves it there in O(1).
    this.channels.delete(channel);
    this.channels.set(channel, history);
    const first = history.next;
    if (this.maxEvents > 0) {
      for (let i = 0; i < bodies.length; i++) history.events.push({ seq: first + i, body: bodies[i]!, time: now });
    }
    history.next += bodies.length;
    history.lastActive = now;
    history.trim(this.maxEvents, now - this.maxAge);
    this.appendsSinceSweep += bodies.length;
    if (this.appendsSinceSweep >= 4096 || now - this.lastSweep >= this.maxAge) this.sweep(now);
    return first;
  }

  readSince(channel: string, after: number, limit: number): HistoryPage {
    const now = Date.now();
    const history = this.record(channel, now);
    history.trim(this.maxEvents, now - this.maxAge);
    const head = history.next - 1;
    const { events, start } = history;
    const oldest = start < events.length ? events[start]!.seq : history.next;
    if (after >= head) return { events: [], gap: false, head };
    const from = Math.max(after + 1, oldest);
    const index = start + (from - oldest);
    const page = events.slice(index, index + limit).map(({ seq, body }) => ({ seq, body }));
    return { events: page, gap: from > after + 1, head };
  }

  head(channel: string): number {
    return this.record(channel, Date.now()).next - 1;
  }

  /**
   * A channel's record, created on first mention: a subscriber's position on
   * a channel nobody has published to yet must already be a real point in
   * the channel's sequence, not 0, or it could not tell a new channel from
   * one whose history was lost.
   */
  private record(channel: string, now: number): ChannelHistory {
    let history = this.channels.get(channel);
    if (history === undefined) {
      history = new ChannelHistory(firstSequence(now));
      history.lastActive = now;
      this.channels.set(channel, history);
      if (this.channels.size > this.maxChannels) {
        // Bounded memory whatever channel names clients ask for; the evicted channel's clients get a stream-reset.
        this.channels.delete(this.channels.keys().next().value!);
      }
    }
    return history;
  }

  /** Drops channels whose whole history has expired, so one-off channels leave nothing behind. */
  private sweep(now: number): void {
    this.appendsSinceSweep = 0;
    this.lastSweep = now;
    const oldestTime = now - this.maxAge;
    for (const [channel, history] of this.channels) {
      if (history.lastActive < oldestTime) this.channels.delete(channel);
    }
  }

  /** Channels with history kept; for tests and stats. */
  get channelCount(): number {
    return this.channels.size;
  }
}

/** Every new channel starts above any sequence number an earlier channel of that name could have reached. */
function firstSequence(now: number): number {
  return now * 1000 + 1;
}

function positiveInteger(value: unknown, fallback: number, name: string, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidOptionError(`MemoryEventStore: ${name} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}
