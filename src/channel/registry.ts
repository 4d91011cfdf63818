import { ChannelHub, type HubMetrics } from './hub.js';

/**
 * Owns the live hubs of one EventStream. A hub exists while something holds
 * a reference (a subscriber or a writer) and is dropped with the last one, so
 * one-off channels leave nothing behind.
 */
export class HubRegistry {
  private readonly hubs = new Map<string, ChannelHub>();
  private readonly metrics: HubMetrics;

  constructor(metrics: HubMetrics) {
    this.metrics = metrics;
  }

  retain(channel: string): ChannelHub {
    let hub = this.hubs.get(channel);
    if (hub === undefined) {
      hub = new ChannelHub(channel, this.metrics);
      // A hub never fails on its own; a listener keeps a stray error from crashing the process.
      hub.on('error', () => {});
      this.hubs.set(channel, hub);
    }
    hub.refs++;
    return hub;
  }

  release(hub: ChannelHub): void {
    if (--hub.refs > 0) return;
    if (this.hubs.get(hub.channel) === hub) this.hubs.delete(hub.channel);
    hub.destroy();
  }

  get size(): number {
    return this.hubs.size;
  }

  subscriberCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const [channel, hub] of this.hubs) {
      if (hub.subscriberCount > 0) counts[channel] = hub.subscriberCount;
    }
    return counts;
  }

  destroyAll(): void {
    for (const hub of this.hubs.values()) hub.destroy();
    this.hubs.clear();
  }
}
