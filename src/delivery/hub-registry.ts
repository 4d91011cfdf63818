import type { StreamMetrics } from '../common/metrics.js';
import type { EventStore } from '../types.js';
import { ChannelHub } from './hub.js';

/**
 * Owns the live hubs of one EventStream. A hub exists while something holds
 * a reference (a subscriber or a writer) and is dropped with the last one, so
 * one-off channels leave nothing behind.
 */
export class HubRegistry {
  private readonly hubs = new Map<string, ChannelHub>();
  private readonly store: EventStore;
  private readonly metrics: StreamMetrics;

  constructor(store: EventStore, metrics: StreamMetrics) {
    this.store = store;
    this.metrics = metrics;
  }

  retain(channel: string): ChannelHub {
    let hub = this.hubs.get(channel);
    if (hub === undefined) {
      hub = new ChannelHub(channel, this.metrics);
      // A hub never fails on its own; a listener keeps a stray error from crashing the process.
      hub.on('error', () => {});
      if (!this.store.shared) startFromHead(hub, this.store);
      this.hubs.set(channel, hub);
    }
    hub.refs++;
    return hub;
  }

  /**
   * Makes a shared store feed the hub, for its subscribers. Local publishes
   * then reach them through the store too, so every process sends one order.
   */
  watchStore(hub: ChannelHub): Promise<void> | null {
    if (!this.store.shared || hub.unwatch !== null) return hub.ready;
    const watch = this.store.watch!(
      hub.channel,
      (events) => {
        if (!hub.destroyed) hub.write(events);
      },
      (position) => {
        // History up to `position` is gone: streams opened from now on start there, so the next event follows them
        // without a reset, while streams already open are reset when it arrives. Behind the events still queued in the hub.
        if (!hub.destroyed) hub.write([], () => moveHub(hub, position));
      },
    );
    const unwatch = (): void => watch.close();
    hub.unwatch = unwatch;
    hub.ready = watch.ready.then(
      (position) => {
        if (position > hub.position) hub.position = position;
      },
      (error: unknown) => {
        // A failed watch fails the streams waiting for it; the next stream starts a new one.
        if (hub.unwatch === unwatch) {
          hub.unwatch = null;
          hub.ready = null;
        }
        throw error;
      },
    );
    hub.ready.catch(() => {});
    return hub.ready;
  }

  release(hub: ChannelHub): void {
    if (--hub.refs > 0) return;
    if (this.hubs.get(hub.channel) === hub) this.hubs.delete(hub.channel);
    hub.unwatch?.();
    hub.destroy();
  }

  get size(): number {
    return this.hubs.size;
  }

  /** Direct streams subscribed to `channel` here. */
  subscriberCount(channel: string): number {
    return this.hubs.get(channel)?.subscriberCount ?? 0;
  }

  subscriberCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const [channel, hub] of this.hubs) {
      if (hub.subscriberCount > 0) counts[channel] = hub.subscriberCount;
    }
    return counts;
  }

  /** Hands every hub's pending batch to its subscribers now, instead of at the end of the turn. */
  flushAll(): void {
    for (const hub of this.hubs.values()) hub.flushBatch();
  }

  destroyAll(): void {
    for (const hub of this.hubs.values()) {
      hub.unwatch?.();
      hub.destroy();
    }
    this.hubs.clear();
  }
}

function moveHub(hub: ChannelHub, position: number): void {
  if (position > hub.position) hub.position = position;
}

function startFromHead(hub: ChannelHub, store: EventStore): void {
  const head = store.head(hub.channel);
  if (typeof head === 'number') {
    hub.position = head;
    return;
  }
  hub.ready = head.then((position) => {
    if (position > hub.position) hub.position = position;
  });
  hub.ready.catch(() => {});
}
