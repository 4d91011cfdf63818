import type { Redis } from 'ioredis';
import { checkOptionKeys, integerOption, type OptionKeys } from '../../common/option-checks.js';
import { EventStoreError, InvalidOptionError } from '../../errors.js';
import type { EventStore, HistoryPage, StoredEvent, StoreListener, StoreLossListener, StoreWatch } from '../../types.js';
import { asStoreError } from '../store-error.js';
import { RedisConnections } from './connection.js';
import { DisconnectNotices } from './disconnect-notices.js';
import { channelKeys, seqOf } from './keys.js';
import { PresenceKeys } from './presence.js';
import { APPEND, evalScript, HEAD, READ, REPAIR } from './scripts.js';
import { Subscriptions } from './subscriptions.js';

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

const OPTION_KEYS = {
  url: true,
  keyPrefix: true,
  maxEvents: true,
  maxAge: true,
} as const satisfies OptionKeys<RedisEventStoreOptions>;

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
  private readonly subscriptions: Subscriptions;
  private readonly disconnects: DisconnectNotices;
  private readonly presenceKeys: PresenceKeys;

  constructor(options: RedisEventStoreOptions = {}) {
    checkOptionKeys(options, OPTION_KEYS, 'RedisEventStore');
    const url = redisUrl(options.url);
    this.keyPrefix = options.keyPrefix ?? 'eventstream:';
    if (typeof this.keyPrefix !== 'string' || /[{}]/.test(this.keyPrefix)) {
      // Braces in the prefix would change which part of the key Redis Cluster hashes.
      throw new InvalidOptionError(
        `RedisEventStore: keyPrefix must be a string without { or }, got ${String(options.keyPrefix)}`,
      );
    }
    this.maxEvents = integerOption(options.maxEvents, 'RedisEventStore: maxEvents', 1000, 0);
    this.maxAge = integerOption(options.maxAge, 'RedisEventStore: maxAge', 300_000, 1);
    this.connections = new RedisConnections(url, {
      message: (name, message) => {
        if (!this.disconnects.dispatch(name, message)) this.subscriptions.dispatch(name, message);
      },
      reconnected: (redis) => {
        void this.disconnects.resubscribe(redis);
        void this.subscriptions.resubscribe(redis);
      },
    });
    this.disconnects = new DisconnectNotices(this.keyPrefix, this.connections);
    this.presenceKeys = new PresenceKeys(this.keyPrefix);
    this.subscriptions = new Subscriptions(this.keyPrefix, this.connections, {
      head: (channel) => this.head(channel),
      readSince: (channel, after, limit) => this.readSince(channel, after, limit),
      repair: (channel, floor) => this.repair(channel, floor),
    });
  }

  async append(channel: string, bodies: readonly string[]): Promise<number> {
    if (bodies.length === 0) return (await this.head(channel)) + 1;
    const keys = channelKeys(this.keyPrefix, channel);
    const subscription = this.subscriptions.get(channel);
    const floor = subscription?.seen ?? 0;
    const first = Number(
      await this.run('append', (redis) =>
        evalScript(redis, APPEND, [keys.seq, keys.log, keys.epoch], [this.maxEvents, this.maxAge, keys.pubsub, floor, ...bodies]),
      ),
    );
    if (subscription !== undefined && first + bodies.length - 1 > subscription.seen)
      subscription.seen = first + bodies.length - 1;
    return first;
  }

  async readSince(channel: string, after: number, limit: number): Promise<HistoryPage> {
    const keys = channelKeys(this.keyPrefix, channel);
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
    const keys = channelKeys(this.keyPrefix, channel);
    return Number(await this.run('head', (redis) => evalScript(redis, HEAD, [keys.seq, keys.epoch], [])));
  }

  watch(channel: string, listener: StoreListener, lost?: StoreLossListener): StoreWatch {
    return this.subscriptions.watch(channel, listener, lost);
  }

  disconnect(channel: string, reason: string): Promise<void> {
    if (this.closed) return Promise.reject(new EventStoreError('RedisEventStore: disconnect failed: the store is closed'));
    return this.disconnects.disconnect(channel, reason);
  }

  watchDisconnects(listener: (channel: string, reason: string) => void): () => void {
    return this.disconnects.watch(listener);
  }

  async reportPresence(processId: string, counts: Readonly<Record<string, number>>, ttlMs: number): Promise<void> {
    await this.run('reportPresence', (redis) => this.presenceKeys.report(redis, processId, counts, ttlMs));
  }

  async removePresence(processId: string): Promise<void> {
    await this.run('removePresence', (redis) => this.presenceKeys.remove(redis, processId));
  }

  presence(channel: string, exceptProcessId?: string): Promise<number> {
    return this.run('presence', (redis) => this.presenceKeys.count(redis, channel, exceptProcessId));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscriptions.close();
    await this.connections.close();
  }

  private async repair(channel: string, floor: number): Promise<number> {
    const keys = channelKeys(this.keyPrefix, channel);
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
