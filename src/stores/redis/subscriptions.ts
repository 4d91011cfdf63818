import type { Redis } from 'ioredis';
import { EventStoreError } from '../../errors.js';
import type { StoreListener, StoreLossListener, StoreWatch } from '../../types.js';
import { asStoreError } from '../store-error.js';
import type { RedisConnections } from './connection.js';
import { channelKeys } from './keys.js';
import { type ChannelSubscription, Watcher, type WatchHost } from './watcher.js';

/** The reads a watch makes through the store's command connection. */
export type HistoryReads = Pick<WatchHost, 'head' | 'readSince' | 'repair'>;

/**
 * The watch side of one store: one pub/sub subscription per watched
 * channel on the subscriber connection, shared by that channel's watches,
 * and the dispatch of each announcement to them.
 */
export class Subscriptions {
  private closed = false;
  /** By pub/sub channel name. */
  private readonly byName = new Map<string, ChannelSubscription>();
  private readonly host: WatchHost;

  constructor(
    private readonly keyPrefix: string,
    private readonly connections: RedisConnections,
    reads: HistoryReads,
  ) {
    this.host = {
      subscribe: (subscription) => this.subscribe(subscription),
      head: (channel) => reads.head(channel),
      readSince: (channel, after, limit) => reads.readSince(channel, after, limit),
      repair: (channel, floor) => reads.repair(channel, floor),
      release: (watcher) => this.release(watcher),
    };
  }

  watch(channel: string, listener: StoreListener, lost?: StoreLossListener): StoreWatch {
    const name = this.nameOf(channel);
    let subscription = this.byName.get(name);
    if (subscription === undefined) {
      subscription = { channel, watchers: new Set(), subscribed: undefined, seen: 0 };
      this.byName.set(name, subscription);
    }
    const watcher = new Watcher(this.host, subscription, listener, lost);
    subscription.watchers.add(watcher);
    return watcher;
  }

  /** The subscription of a channel some watch of this store follows. */
  get(channel: string): ChannelSubscription | undefined {
    return this.byName.get(this.nameOf(channel));
  }

  /** Closes every watch; the connection is the store's to close. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const subscription of [...this.byName.values()]) {
      for (const watcher of [...subscription.watchers]) watcher.close();
    }
    this.byName.clear();
  }

  /** A message on the subscriber connection. */
  dispatch(name: string, message: string): void {
    const subscription = this.byName.get(name);
    if (subscription === undefined) return;
    let first: unknown;
    let bodies: unknown;
    try {
      [first, bodies] = JSON.parse(message) as unknown[];
    } catch {
      return; // Not ours: someone else published on the channel.
    }
    if (!Number.isSafeInteger(first) || !Array.isArray(bodies) || !bodies.every((body) => typeof body === 'string')) return;
    for (const watcher of subscription.watchers) watcher.receive(first as number, bodies as string[]);
  }

  /** After a reconnect: subscribe again, then read what the subscriptions missed meanwhile. */
  async resubscribe(redis: Redis): Promise<void> {
    const names = [...this.byName.keys()];
    if (names.length === 0 || this.closed) return;
    try {
      await redis.subscribe(...names);
    } catch {
      return; // Down again: the next 'ready' tries again.
    }
    for (const subscription of this.byName.values()) {
      for (const watcher of subscription.watchers) watcher.catchUp();
    }
  }

  private async subscribe(subscription: ChannelSubscription): Promise<void> {
    if (this.closed) throw new EventStoreError('RedisEventStore: watch failed: the store is closed');
    const name = this.nameOf(subscription.channel);
    subscription.subscribed ??= (async () => {
      await (await this.connections.subscriberClient('RedisEventStore: subscribe')).subscribe(name);
    })().catch((error: unknown) => {
      subscription.subscribed = undefined;
      throw asStoreError(error, 'RedisEventStore: subscribe');
    });
    return subscription.subscribed;
  }

  private release(watcher: Watcher): void {
    const { subscription } = watcher;
    subscription.watchers.delete(watcher);
    if (subscription.watchers.size > 0) return;
    const name = this.nameOf(subscription.channel);
    if (this.byName.get(name) === subscription) this.byName.delete(name);
    if (this.closed) return;
    // A watch on this channel started later queues its SUBSCRIBE behind this on the same connection.
    this.connections.onSubscriber((redis) => redis.unsubscribe(name));
  }

  private nameOf(channel: string): string {
    return channelKeys(this.keyPrefix, channel).pubsub;
  }
}
