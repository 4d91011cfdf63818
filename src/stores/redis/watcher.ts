import type { HistoryPage, StoredEvent, StoreListener, StoreLossListener, StoreWatch } from '../../types.js';
import { asStoreError } from '../store-error.js';

/** How long a watch waits before reading the history again after Redis refused a read. */
const RETRY_MS = 250;
/** Events read per XRANGE when a watch fills a gap or catches up. */
const FILL_BATCH = 500;

/** The pub/sub subscription to one channel's announcements, shared by every watch of that channel in one store. */
export interface ChannelSubscription {
  readonly channel: string;
  readonly watchers: Set<Watcher>;
  subscribed: Promise<void> | undefined;
  /** The highest seq this process has seen on the channel: a counter found below it was rolled back. */
  seen: number;
}

/** What a watch needs from its store. */
export interface WatchHost {
  subscribe(subscription: ChannelSubscription): Promise<void>;
  head(channel: string): Promise<number>;
  readSince(channel: string, after: number, limit: number): Promise<HistoryPage>;
  /** Moves a counter found below `floor` above it (see REPAIR); resolves with the head. */
  repair(channel: string, floor: number): Promise<number>;
  release(watcher: Watcher): void;
}

/**
 * One watch. Everything it does (going live, pub/sub messages, gap fills,
 * catch-ups) runs on one promise chain, so deliveries never interleave and
 * `position` (the last seq delivered, or skipped to) only grows.
 */
export class Watcher implements StoreWatch {
  readonly ready: Promise<number>;
  private position = -1;
  private closed = false;
  private chain: Promise<void>;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: WatchHost,
    readonly subscription: ChannelSubscription,
    private readonly listener: StoreListener,
    private readonly lost: StoreLossListener | undefined,
  ) {
    let resolve!: (head: number) => void;
    let reject!: (error: unknown) => void;
    this.ready = new Promise<number>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A caller that closes the watch without awaiting `ready` must not get an unhandled rejection.
    this.ready.catch(() => {});
    this.chain = this.start().then(resolve, (error: unknown) => {
      this.close();
      reject(asStoreError(error, 'RedisEventStore: watch'));
    });
  }

  /** Subscribing first, then reading the head, leaves no window where an event is neither in the head nor announced to the subscription. */
  private async start(): Promise<number> {
    await this.host.subscribe(this.subscription);
    const head = await this.host.head(this.subscription.channel);
    this.moveTo(head);
    return head;
  }

  /** A pub/sub message: events first, first + 1, … */
  receive(first: number, bodies: readonly string[]): void {
    this.enqueue(async () => {
      if (this.closed || first + bodies.length - 1 <= this.position) return;
      // Pub/sub lost a message (Redis drops them while a subscriber is disconnected or too slow): fill from the log first.
      if (first > this.position + 1 && !(await this.fill(first - 1))) return;
      if (this.closed) return;
      const skip = Math.max(0, this.position + 1 - first);
      if (skip >= bodies.length) return;
      this.deliver(bodies.slice(skip).map((body, i) => ({ seq: first + skip + i, body })));
    });
  }

  /** Reads whatever was appended since the last delivery: after a reconnect, messages sent meanwhile are lost for good. */
  catchUp(): void {
    this.enqueue(async () => {
      if (!this.closed && this.position >= 0) await this.fill(Number.POSITIVE_INFINITY);
    });
  }

  /**
   * Delivers the kept history in (position, upTo]. Returns false when Redis
   * could not be read; a retry is scheduled then, and the caller must not
   * deliver anything past the hole. History that is gone (trimmed, or lost
   * with Redis's data) is skipped and reported to `lost`, so a watch never
   * stalls on events that will not come.
   */
  private async fill(upTo: number): Promise<boolean> {
    for (;;) {
      let page: HistoryPage;
      try {
        page = await this.host.readSince(this.subscription.channel, this.position, FILL_BATCH);
        if (page.head < this.subscription.seen) {
          // The counter is below what this process has seen: Redis rolled back. Move it past that, then read again.
          await this.host.repair(this.subscription.channel, this.subscription.seen);
          continue;
        }
      } catch {
        this.scheduleRetry();
        return false;
      }
      if (this.closed) return false;
      const events = page.events.filter((event) => event.seq <= upTo);
      if (events.length > 0) this.deliver(events);
      if (page.events.length < FILL_BATCH || events.length < page.events.length) {
        const reached = Math.min(page.head, upTo);
        if (reached > this.position) this.skipTo(reached);
        return true;
      }
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.catchUp();
    }, RETRY_MS);
    this.retryTimer.unref();
  }

  private moveTo(position: number): void {
    this.position = position;
    if (position > this.subscription.seen) this.subscription.seen = position;
  }

  private deliver(events: StoredEvent[]): void {
    this.moveTo(events[events.length - 1]!.seq);
    this.notify(() => this.listener(events));
  }

  private skipTo(position: number): void {
    this.moveTo(position);
    const { lost } = this;
    if (lost !== undefined) this.notify(() => lost(position));
  }

  private notify(call: () => void): void {
    try {
      call();
    } catch (error) {
      // A throwing listener is a bug to surface, like a throwing event listener; delivery to it carries on.
      process.nextTick(() => {
        throw error;
      });
    }
  }

  private enqueue(task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch(() => {});
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.host.release(this);
  }
}
