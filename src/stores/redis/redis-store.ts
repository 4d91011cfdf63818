import type { Redis } from 'ioredis';
import { EventStoreError, InvalidOptionError } from '../../errors.js';
import { checkOptionKeys, integerOption, type OptionKeys } from '../../common/option-checks.js';
import { asStoreError } from '../store-error.js';
import { RedisConnections } from './connection.js';
import type { EventStore, HistoryPage, StoredEvent, StoreListener, StoreLossListener, StoreWatch } from '../event-store.js';
import { type ChannelKeys, channelKeys, seqOf } from './keys.js';
import { APPEND, evalScript, HEAD, READ, REPAIR } from './scripts.js';

export interface RedisEventStoreOptions {
  /** Where Redis listens, e.g. `redis://:password@host:6379/0` or `rediss://…`. Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** Prepended to every key and pub/sub channel, so several applications can share one Redis. Default `eventstream:`. */
  keyPrefix?: string;
  /** Events kept per channel. Default 1000. */
  maxEvents?: number;
  /** Milliseconds an event is kept. Default 300000 (5 minutes). */
  maxAge?: number;
}

const OPTION_KEYS = { url: true, keyPrefix: true, maxEvents: true, maxAge: true } as const satisfies OptionKeys<RedisEventStoreOptions>;

/** How long a watch waits before reading the history again after Redis refused a read. */
const RETRY_MS = 250;
/** Events read per XRANGE when a watch fills a gap or catches up. */
const FILL_BATCH = 500;

/** One pub/sub channel of this store and the watches fed from it. */
interface Feed {
  readonly channel: string;
  readonly watchers: Set<Watcher>;
  subscribed: Promise<void> | undefined;
  /** The highest seq this process has seen on the channel: a counter found below it was rolled back. */
  seen: number;
}

/** What a watch needs from its store. */
interface WatchHost {
  subscribe(feed: Feed): Promise<void>;
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
class Watcher implements StoreWatch {
  readonly ready: Promise<number>;
  private position = -1;
  private closed = false;
  private chain: Promise<void>;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: WatchHost,
    readonly feed: Feed,
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

  /** Subscribing first, then reading the head, leaves no window where an event is neither in the head nor in the feed. */
  private async start(): Promise<number> {
    await this.host.subscribe(this.feed);
    const head = await this.host.head(this.feed.channel);
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
        page = await this.host.readSince(this.feed.channel, this.position, FILL_BATCH);
        if (page.head < this.feed.seen) {
          // The counter is below what this process has seen: Redis rolled back. Move it past that, then read again.
          await this.host.repair(this.feed.channel, this.feed.seen);
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
    if (position > this.feed.seen) this.feed.seen = position;
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

/**
 * A store shared by several processes through Redis: per channel a counter
 * (`<prefix>{<channel>}:seq`), a stream of recent events (`…:log`) and a
 * pub/sub channel (`…:feed`) that announces each append; and one
 * `<prefix>epoch`, where numbering starts (see NUMBERING in scripts.ts).
 * Scripts touch a channel's keys and the epoch together, so they must live
 * on one Redis (a primary and its replicas; not Redis Cluster).
 *
 * What Redis loses is said, never papered over: after a restart without
 * persistence every id is new (above the lost ones), connected streams get a
 * stream-reset with the next event and clients resuming from a lost id are
 * reset. A counter found below what this process has seen (restored from an
 * older snapshot, an AOF not yet on disk, an evicted key) is moved above it
 * by the next read or append of a process watching the channel; a process
 * that saw nothing cannot tell, so run Redis with `appendfsync always` and
 * `maxmemory-policy noeviction` (or a `volatile-*` policy) where that matters.
 *
 * `ioredis` is an optional peer dependency, loaded on first use. Nothing
 * connects until the first call. While Redis is away, calls reject at once
 * with EventStoreError (nothing queues), both connections keep reconnecting,
 * and watches catch up from the log once Redis is back.
 *
 * An append whose connection drops before the reply arrives rejects, but may
 * have been stored. A watch whose `ready` rejects (Redis unreachable) is
 * closed; start a new one.
 */
export class RedisEventStore implements EventStore {
  readonly shared = true;
  readonly keyPrefix: string;
  readonly maxEvents: number;
  readonly maxAge: number;
  private closed = false;
  private readonly connections: RedisConnections;
  /** By pub/sub channel name. */
  private readonly feeds = new Map<string, Feed>();
  private readonly host: WatchHost = {
    subscribe: (feed) => this.subscribe(feed),
    head: (channel) => this.head(channel),
    readSince: (channel, after, limit) => this.readSince(channel, after, limit),
    repair: (channel, floor) => this.repair(channel, floor),
    release: (watcher) => this.release(watcher),
  };

  constructor(options: RedisEventStoreOptions = {}) {
    checkOptionKeys(options, OPTION_KEYS, 'RedisEventStore');
    const url = redisUrl(options.url);
    this.keyPrefix = options.keyPrefix ?? 'eventstream:';
    if (typeof this.keyPrefix !== 'string' || /[{}]/.test(this.keyPrefix)) {
      // Braces in the prefix would change which part of the key Redis Cluster hashes.
      throw new InvalidOptionError(`RedisEventStore: keyPrefix must be a string without { or }, got ${String(options.keyPrefix)}`);
    }
    this.maxEvents = integerOption(options.maxEvents, 'RedisEventStore: maxEvents', 1000, 0);
    this.maxAge = integerOption(options.maxAge, 'RedisEventStore: maxAge', 300_000, 1);
    this.connections = new RedisConnections(url, {
      message: (name, message) => this.dispatch(name, message),
      reconnected: (redis) => void this.resubscribe(redis),
    });
  }

  async append(channel: string, bodies: readonly string[]): Promise<number> {
    if (bodies.length === 0) return (await this.head(channel)) + 1;
    const keys = this.keys(channel);
    const feed = this.feeds.get(keys.pubsub);
    const floor = feed?.seen ?? 0;
    const first = Number(
      await this.run('append', (redis) =>
        evalScript(redis, APPEND, [keys.seq, keys.log, keys.epoch], [this.maxEvents, this.maxAge, keys.pubsub, floor, ...bodies]),
      ),
    );
    if (feed !== undefined && first + bodies.length - 1 > feed.seen) feed.seen = first + bodies.length - 1;
    return first;
  }

  async readSince(channel: string, after: number, limit: number): Promise<HistoryPage> {
    const keys = this.keys(channel);
    const from = Math.max(0, after);
    const reply = (await this.run('readSince', (redis) =>
      evalScript(redis, READ, [keys.seq, keys.log, keys.epoch], [from, Math.max(1, limit), this.maxEvents, this.maxAge]),
    )) as string[];
    const head = Number(reply[0]);
    if (from >= head) return { events: [], gap: false, head };
    const events: StoredEvent[] = [];
    for (let i = 1; i + 1 < reply.length && events.length < limit; i += 2) {
      events.push({ seq: seqOf(reply[i]!), body: reply[i + 1]! });
    }
    // An empty page below the head means everything after `from` is gone.
    const gap = reply.length > 1 ? seqOf(reply[1]!) > from + 1 : true;
    return { events, gap, head };
  }

  async head(channel: string): Promise<number> {
    const keys = this.keys(channel);
    return Number(await this.run('head', (redis) => evalScript(redis, HEAD, [keys.seq, keys.epoch], [])));
  }

  watch(channel: string, listener: StoreListener, lost?: StoreLossListener): StoreWatch {
    const name = this.keys(channel).pubsub;
    let feed = this.feeds.get(name);
    if (feed === undefined) {
      feed = { channel, watchers: new Set(), subscribed: undefined, seen: 0 };
      this.feeds.set(name, feed);
    }
    const watcher = new Watcher(this.host, feed, listener, lost);
    feed.watchers.add(watcher);
    return watcher;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const feed of [...this.feeds.values()]) {
      for (const watcher of [...feed.watchers]) watcher.close();
    }
    this.feeds.clear();
    await this.connections.close();
  }

  private keys(channel: string): ChannelKeys {
    return channelKeys(this.keyPrefix, channel);
  }

  private async repair(channel: string, floor: number): Promise<number> {
    const keys = this.keys(channel);
    return Number(await this.run('repair', (redis) => evalScript(redis, REPAIR, [keys.seq, keys.epoch], [floor])));
  }

  private async run<T>(what: string, command: (redis: Redis) => Promise<T>): Promise<T> {
    const attempted = `RedisEventStore: ${what}`;
    if (this.closed) throw new EventStoreError(`${attempted} failed: the store is closed`);
    try {
      return await command(await this.connections.commandClient(attempted));
    } catch (error) {
      throw asStoreError(error, attempted);
    }
  }

  private async subscribe(feed: Feed): Promise<void> {
    if (this.closed) throw new EventStoreError('RedisEventStore: watch failed: the store is closed');
    const name = this.keys(feed.channel).pubsub;
    feed.subscribed ??= (async () => {
      await (await this.connections.subscriberClient('RedisEventStore: subscribe')).subscribe(name);
    })().catch((error: unknown) => {
      feed.subscribed = undefined;
      throw asStoreError(error, 'RedisEventStore: subscribe');
    });
    return feed.subscribed;
  }

  /** After a reconnect: subscribe again, then read what the feed missed meanwhile. */
  private async resubscribe(redis: Redis): Promise<void> {
    const names = [...this.feeds.keys()];
    if (names.length === 0 || this.closed) return;
    try {
      await redis.subscribe(...names);
    } catch {
      return; // Down again: the next 'ready' tries again.
    }
    for (const feed of this.feeds.values()) {
      for (const watcher of feed.watchers) watcher.catchUp();
    }
  }

  private dispatch(name: string, message: string): void {
    const feed = this.feeds.get(name);
    if (feed === undefined) return;
    let first: unknown;
    let bodies: unknown;
    try {
      [first, bodies] = JSON.parse(message) as unknown[];
    } catch {
      return; // Not ours: someone else published on the feed.
    }
    if (!Number.isSafeInteger(first) || !Array.isArray(bodies) || !bodies.every((body) => typeof body === 'string')) return;
    for (const watcher of feed.watchers) watcher.receive(first as number, bodies as string[]);
  }

  private release(watcher: Watcher): void {
    const { feed } = watcher;
    feed.watchers.delete(watcher);
    if (feed.watchers.size > 0) return;
    const name = this.keys(feed.channel).pubsub;
    if (this.feeds.get(name) === feed) this.feeds.delete(name);
    if (this.closed) return;
    // A watch on this channel started later queues its SUBSCRIBE behind this on the same connection.
    this.connections.onSubscriber((redis) => redis.unsubscribe(name));
  }
}

function redisUrl(value: unknown): string {
  if (value === undefined) return 'redis://127.0.0.1:6379';
  let url: URL | undefined;
  try {
    if (typeof value === 'string') url = new URL(value);
  } catch {
    // Reported below.
  }
  if (url === undefined || (url.protocol !== 'redis:' && url.protocol !== 'rediss:')) {
    throw new InvalidOptionError(`RedisEventStore: url must be a redis:// or rediss:// URL, got ${String(value)}`);
  }
  return value as string;
}
