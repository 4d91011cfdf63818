import { type GripPublishMessage, gripPublishChannel } from '../../common/diagnostics.js';
import type { StreamMetrics } from '../../common/metrics.js';
import { EventStreamClosedError, GripPublishError } from '../../errors.js';
import type { StoredEvent } from '../../types.js';
import { groupItems, publishToProxy } from './control-api.js';
import type { GripProxy } from './proxy-config.js';

export interface ProxyQueueSettings {
  /** The GRIP channel of a channel (the bridge applies the prefix). */
  readonly gripChannel: (channel: string) => string;
  readonly reliable: boolean;
  readonly timeoutMs: number;
  readonly metrics: StreamMetrics;
}

type Done = (error: Error | null) => void;

interface Batch {
  readonly events: readonly StoredEvent[];
  readonly done: Done;
}

/**
 * Publishing to ONE proxy. Per channel, one control-API exchange is in
 * flight at a time, so items arrive in id order; batches that come in
 * meanwhile wait and then travel together in the next exchange, so a slow
 * proxy gets fewer, larger requests instead of a growing line of small ones.
 * Each batch learns the outcome of the exchange that carried it. Every proxy
 * has its own queue: a slow or dead one holds back nobody else.
 */
export class ProxyQueue {
  readonly proxy: GripProxy;
  private readonly settings: ProxyQueueSettings;
  private readonly closing: AbortSignal;
  /** Per busy channel, the batches waiting for the exchange in flight; a channel is busy while it has an entry. */
  private readonly waiting = new Map<string, Batch[]>();

  constructor(proxy: GripProxy, settings: ProxyQueueSettings, closing: AbortSignal) {
    this.proxy = proxy;
    this.settings = settings;
    this.closing = closing;
  }

  enqueue(channel: string, events: readonly StoredEvent[], done: Done): void {
    const waiting = this.waiting.get(channel);
    if (waiting !== undefined) {
      waiting.push({ events, done });
      return;
    }
    this.waiting.set(channel, []);
    void this.drain(channel, [{ events, done }]);
  }

  private async drain(channel: string, first: Batch[]): Promise<void> {
    let batches = first;
    for (;;) {
      const failure = await this.exchange(channel, batches);
      for (const batch of batches) batch.done(failure);
      const next = this.waiting.get(channel)!;
      if (next.length === 0) {
        this.waiting.delete(channel);
        return;
      }
      this.waiting.set(channel, []);
      batches = next;
    }
  }

  /** Sends the batches' events as one publish; resolves with what went wrong, or null. */
  private async exchange(channel: string, batches: readonly Batch[]): Promise<Error | null> {
    const events = batches.length === 1 ? batches[0]!.events : batches.flatMap((batch) => batch.events);
    const { gripChannel, reliable, timeoutMs } = this.settings;
    const started = performance.now();
    let items = 0;
    let failure: Error | null = null;
    try {
      const grouped = groupItems(channel, events);
      items = grouped.length;
      await publishToProxy(this.proxy, gripChannel(channel), grouped, reliable, timeoutMs, this.closing);
    } catch (error) {
      if (error instanceof GripPublishError || error instanceof EventStreamClosedError) failure = error;
      else {
        // Signing the request (a custom auth) or building it failed: still this proxy's publish that failed.
        const reason = error instanceof Error ? error.message : String(error);
        failure = new GripPublishError(this.proxy.label, -1, reason, { cause: error });
      }
    }
    this.observe(channel, items, performance.now() - started, failure);
    return failure;
  }

  /** One exchange done: its duration and outcome, to the metrics and `eventstream:grip:publish`. */
  private observe(channel: string, items: number, durationMs: number, failure: Error | null): void {
    const { metrics } = this.settings;
    if (failure !== null) metrics.gripPublishFailures++;
    for (const observer of metrics.gripPublishObservers) observer(durationMs / 1000, failure !== null);
    if (gripPublishChannel.hasSubscribers) {
      const message: GripPublishMessage =
        failure === null
          ? { channel, proxy: this.proxy.label, items, durationMs }
          : { channel, proxy: this.proxy.label, items, durationMs, error: failure };
      gripPublishChannel.publish(message);
    }
  }
}
