import { checkOptionKeys, integerOption, type OptionKeys } from '../common/option-checks.js';
import type { EventStore, HistoryPage, MemoryEventStoreOptions } from '../types.js';

const OPTION_KEYS = {
  maxEvents: true,
  maxAge: true,
  maxBytes: true,
  maxChannels: true,
} as const satisfies OptionKeys<MemoryEventStoreOptions>;

/** What one stored event costs beyond its text: the entry, its two queue slots, boxed numbers, the string's header and cons node. */
const EVENT_OVERHEAD_BYTES = 160;
/** What a channel's record costs beyond its name: the map entry, the record, its queue array. */
const CHANNEL_OVERHEAD_BYTES = 192;
/** Slots that remember the numbering of forgotten channels (see `forgottenHeads`). */
const FORGOTTEN_SLOTS = 4096;

/**
 * One stored event. The same entry sits in its channel's queue and in the
 * store-wide queue (append order, so oldest first across channels); an entry
 * trimmed from its channel is marked dead and skipped by the store-wide one.
 */
class Entry {
  constructor(
    readonly seq: number,
    public body: string,
    readonly time: number,
    readonly size: number,
    public owner: ChannelRecord | null,
  ) {}
}

/** A channel that was published to: its next sequence number and its live events. */
class ChannelRecord {
  next: number;
  /** events[start..] are live; the prefix is dropped lazily so trimming stays O(1). */
  events: Entry[] = [];
  start = 0;

  constructor(
    readonly channel: string,
    first: number,
  ) {
    this.next = first;
  }

  get size(): number {
    return this.events.length - this.start;
  }

  get oldest(): Entry | undefined {
    return this.events[this.start];
  }

  /** Drops the oldest live event; its slot lets go of it at once, not at the next compaction. */
  shift(): void {
    this.events[this.start] = DEAD;
    this.start++;
    // Compact once the dead prefix outweighs the live part.
    if (this.start > 1024 && this.start * 2 > this.events.length) {
      this.events = this.events.slice(this.start);
      this.start = 0;
    }
  }
}

/** What a dropped entry's slots hold until their array is compacted. */
const DEAD = new Entry(0, '', 0, 0, null);

/**
 * Highest sequence number any memory store of this process has handed out,
 * so a store created later (an EventStream made again) never starts below it,
 * even within the same millisecond.
 */
let processHighest = 0;

/**
 * The default store: history in this process, bounded by count per channel,
 * by age, by total bytes and by channels.
 *
 * Numbering never repeats an id and never tells a client that missed nothing
 * to reset:
 * - A store starts numbering from the clock (milliseconds × 1000), so ids
 *   from an earlier process are below everything this one hands out and are
 *   recognised as lost history. That holds while a channel averages fewer
 *   than a million events a second since the store was created.
 * - A channel never published to has no record: its head is the store's
 *   starting point, the same for every subscriber, and its first event
 *   follows it.
 * - A channel whose events all expired keeps its record (its next number),
 *   so a client that has its last event resumes without a reset. Only
 *   `maxChannels` forgets a channel (the least recently published); its
 *   numbering then folds into one of a few thousand slots that later
 *   channels of the same slot start above, so ids still never repeat and a
 *   client of the forgotten channel is reset only if another forgotten
 *   channel of its slot had gone further.
 */
export class MemoryEventStore implements EventStore {
  readonly shared = false;
  readonly maxEvents: number;
  readonly maxAge: number;
  readonly maxBytes: number;
  readonly maxChannels: number;
  /** In order of last publish (a published channel moves to the end), so the first is the one to forget. */
  private readonly channels = new Map<string, ChannelRecord>();
  /** Every live entry, oldest first, with dead ones among them (`dead` counts those). */
  private queue: Entry[] = [];
  private queueStart = 0;
  private live = 0;
  private dead = 0;
  private accounted = 0;
  /** The head of a channel without a record: where this store's numbering starts. */
  private readonly origin: number;
  /** Per slot, the highest head of a forgotten channel of that slot. */
  private readonly forgottenHeads = new Float64Array(FORGOTTEN_SLOTS);

  constructor(given: MemoryEventStoreOptions | null = {}) {
    const options = given ?? {};
    checkOptionKeys(options, OPTION_KEYS, 'MemoryEventStore');
    this.maxEvents = integerOption(options.maxEvents, 'MemoryEventStore: maxEvents', 1000, 0);
    this.maxAge = integerOption(options.maxAge, 'MemoryEventStore: maxAge', 300_000, 1);
    this.maxBytes = integerOption(options.maxBytes, 'MemoryEventStore: maxBytes', 64 * 1024 * 1024, 1);
    this.maxChannels = integerOption(options.maxChannels, 'MemoryEventStore: maxChannels', 100_000, 1);
    this.origin = Math.max(Date.now() * 1000, processHighest);
  }

  append(channel: string, bodies: readonly string[]): number {
    const now = Date.now();
    this.expire(now);
    let record = this.channels.get(channel);
    if (record === undefined) {
      record = new ChannelRecord(channel, this.unrecordedHead(channel) + 1);
      this.accounted += channelBytes(channel);
    } else {
      // Most recently published last: delete and re-insert moves it there in O(1).
      this.channels.delete(channel);
    }
    this.channels.set(channel, record);
    const first = record.next;
    if (this.maxEvents > 0) {
      for (let i = 0; i < bodies.length; i++) {
        const body = bodies[i]!;
        const entry = new Entry(first + i, body, now, Buffer.byteLength(body) + EVENT_OVERHEAD_BYTES, record);
        record.events.push(entry);
        this.queue.push(entry);
        this.live++;
        this.accounted += entry.size;
      }
      while (record.size > this.maxEvents) this.kill(record.oldest!, record);
    }
    record.next += bodies.length;
    if (record.next - 1 > processHighest) processHighest = record.next - 1;
    if (this.channels.size > this.maxChannels) this.forget(this.channels.values().next().value!);
    while (this.accounted > this.maxBytes && this.live > 0) this.dropOldest();
    // Only numbering is left: forget channels, least recently published first.
    while (this.accounted > this.maxBytes && this.channels.size > 0) this.forget(this.channels.values().next().value!);
    if (this.dead > 1024 && this.dead > this.live) this.compactQueue();
    return first;
  }

  readSince(channel: string, after: number, limit: number): HistoryPage {
    this.expire(Date.now());
    const record = this.channels.get(channel);
    if (record === undefined) {
      const head = this.unrecordedHead(channel);
      return { events: [], gap: after < head, head };
    }
    const head = record.next - 1;
    if (after >= head) return { events: [], gap: false, head };
    const oldest = record.oldest?.seq ?? record.next;
    const from = Math.max(after + 1, oldest);
    const index = record.start + (from - oldest);
    const page = record.events.slice(index, index + limit).map(({ seq, body }) => ({ seq, body }));
    return { events: page, gap: from > after + 1, head };
  }

  head(channel: string): number {
    const record = this.channels.get(channel);
    return record === undefined ? this.unrecordedHead(channel) : record.next - 1;
  }

  /** Channels whose numbering is kept (published to and not forgotten); for tests and stats. */
  get channelCount(): number {
    return this.channels.size;
  }

  /** Bytes of history accounted against `maxBytes`. */
  get bytes(): number {
    return this.accounted;
  }

  /**
   * The head of a channel that has no record: computed, never stored, so
   * that looking at a channel costs nothing, yet the same for every caller
   * until the channel is published to, and above anything a forgotten
   * channel of its slot reached.
   */
  private unrecordedHead(channel: string): number {
    return Math.max(this.origin, this.forgottenHeads[slotOf(channel)]!);
  }

  /** Drops events older than maxAge: they form a prefix of the store-wide queue. */
  private expire(now: number): void {
    const oldestTime = now - this.maxAge;
    for (;;) {
      const entry = this.front();
      if (entry === undefined || entry.time >= oldestTime) return;
      this.dropOldest();
    }
  }

  /** The oldest live entry, skipping dead ones at the front. */
  private front(): Entry | undefined {
    const { queue } = this;
    while (this.queueStart < queue.length && queue[this.queueStart]!.owner === null) {
      queue[this.queueStart] = DEAD;
      this.queueStart++;
      this.dead--;
    }
    if (this.queueStart > 1024 && this.queueStart * 2 > queue.length) {
      this.queue = queue.slice(this.queueStart);
      this.queueStart = 0;
    }
    return this.queue[this.queueStart];
  }

  private dropOldest(): void {
    const entry = this.front()!;
    // Appends are in time order in both queues, so the store's oldest is its channel's oldest.
    this.kill(entry, entry.owner!);
    this.queue[this.queueStart] = DEAD;
    this.queueStart++;
    this.dead--;
  }

  /** Removes a channel's oldest live event; its store-wide slot becomes dead. */
  private kill(entry: Entry, record: ChannelRecord): void {
    record.shift();
    this.release(entry);
  }

  private release(entry: Entry): void {
    entry.owner = null;
    entry.body = '';
    this.live--;
    this.dead++;
    this.accounted -= entry.size;
  }

  /** Forgets a channel; its head folds into its slot so the channel's numbering, if it comes back, continues above. */
  private forget(record: ChannelRecord): void {
    for (let i = record.start; i < record.events.length; i++) this.release(record.events[i]!);
    record.events = [];
    record.start = 0;
    this.accounted -= channelBytes(record.channel);
    this.channels.delete(record.channel);
    const slot = slotOf(record.channel);
    if (record.next - 1 > this.forgottenHeads[slot]!) this.forgottenHeads[slot] = record.next - 1;
  }

  private compactQueue(): void {
    this.queue = this.queue.slice(this.queueStart).filter((entry) => entry.owner !== null);
    this.queueStart = 0;
    this.dead = 0;
  }
}

function channelBytes(channel: string): number {
  return Buffer.byteLength(channel) + CHANNEL_OVERHEAD_BYTES;
}

/** FNV-1a over the name's UTF-16 units, folded to a slot. */
function slotOf(channel: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < channel.length; i++) {
    hash ^= channel.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % FORGOTTEN_SLOTS;
}
