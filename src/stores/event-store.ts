/** A value, or a promise of it: the memory store answers synchronously, shared stores asynchronously. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * One stored event: its per-channel sequence number and its SSE fields
 * (`event:`, `retry:`, `data:` lines, each ending in LF) without the `id:`
 * line and without the blank line that ends the event. The id line is added
 * per channel (or per multi-channel stream) on the way out.
 */
export interface StoredEvent {
  readonly seq: number;
  readonly body: string;
}

export interface HistoryPage {
  /** Events with `seq > after`, oldest first, at most `limit` of them. */
  readonly events: readonly StoredEvent[];
  /** True when events right after `after` are no longer kept (trimmed by count or age): the reader has a gap. */
  readonly gap: boolean;
  /** The channel's newest sequence number when the page was read (see `head`). */
  readonly head: number;
}

/**
 * Where events live and get their ids. A store assigns each channel's
 * sequence numbers, keeps a bounded history per channel and answers resume
 * reads.
 *
 * A `shared` store (Redis) is shared by several processes: it then also
 * delivers every appended event, whoever appended it, to `watch` listeners,
 * in sequence order, and the local hubs are fed from there rather than from
 * the local publisher, so every process sends the same order.
 */
export interface EventStore {
  readonly shared: boolean;
  /**
   * Appends events to a channel, in order, and returns the sequence number
   * given to the first; the rest follow consecutively. Sequence numbers only
   * grow: they never repeat for a channel, even after its history expired.
   */
  append(channel: string, bodies: readonly string[]): MaybePromise<number>;
  /** Reads events published after position `after`. */
  readSince(channel: string, after: number, limit: number): MaybePromise<HistoryPage>;
  /**
   * The channel's newest sequence number. For a channel never published to,
   * the position its first event will follow (a clock-based starting point,
   * the same for every caller until then), so that it is never mistaken
   * for a position in a history that was lost.
   */
  head(channel: string): MaybePromise<number>;
  /**
   * Shared stores only: delivers events appended anywhere from now on. When
   * the store finds that history the watch had not delivered is gone (lost
   * with the store's data, or trimmed while it could not read), it calls
   * `lost` with the position the watch continues from instead.
   */
  watch?(channel: string, listener: StoreListener, lost?: StoreLossListener): StoreWatch;
  /** Releases connections and timers. */
  close?(): MaybePromise<void>;
}

export type StoreListener = (events: readonly StoredEvent[]) => void;

/** Called with the position a watch skipped to: the events up to it will never be delivered. */
export type StoreLossListener = (position: number) => void;

export interface StoreWatch {
  /**
   * Resolves with the position from which the listener receives every event
   * (events after it, none missing, none twice, in order), once the watch is live.
   */
  readonly ready: Promise<number>;
  close(): void;
}
