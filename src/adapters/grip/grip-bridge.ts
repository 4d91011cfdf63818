import { setMaxListeners } from 'node:events';
import type { HoldInstructions, ProxyGateway } from '../../core/proxy-gateway.js';
import { EventStreamClosedError, HttpRequestError } from '../../errors.js';
import type { StreamPosition } from '../../sse/event-id.js';
import { asStoreError } from '../../stores/store-error.js';
import type { EventStore } from '../../types.js';
import { parseGripLast } from './grip-last.js';
import { startHeldStream } from './held-stream.js';
import type { StoredEvent } from '../../types.js';
import { resolveGripProxies, type GripProxy } from './proxy-config.js';
import { holdInstructions } from './hold-instructions.js';
import { ProxyQueue } from './proxy-queue.js';
import { isProxiedRequest } from './signature.js';

export interface GripBridgeOptions {
  gripPrefix: string;
  gripReliable: boolean;
  keepAliveInterval: number;
  gripPublishTimeout: number;
  /** Bytes of missed events a held stream's opening may carry; the proxy recovers the rest. */
  maxBufferBytes: number;
  clientRetry: number | null;
}

let warnedUnverified = false;

/**
 * Everything GRIP, as the core's ProxyGateway: which requests came through a
 * proxy, the hold answer they get, and publishing to every proxy. The
 * channel prefix is applied here and nowhere else, so it holds for every
 * form of `options.grip`.
 */
export class GripBridge implements ProxyGateway {
  readonly proxies: readonly GripProxy[];
  private readonly options: GripBridgeOptions;
  private readonly store: EventStore;
  /** Aborted by close(): every control-API call in flight stops at once, and no new one starts. */
  private readonly closing = new AbortController();
  private readonly queues: readonly ProxyQueue[];

  constructor(option: unknown, options: GripBridgeOptions, store: EventStore) {
    this.proxies = resolveGripProxies(option);
    this.options = options;
    this.store = store;
    // Every call in flight listens for close(): one per busy channel and proxy, legitimately many.
    setMaxListeners(0, this.closing.signal);
    const settings = {
      gripChannel: (channel: string) => this.gripChannel(channel),
      reliable: options.gripReliable,
      timeoutMs: options.gripPublishTimeout,
    };
    this.queues = this.proxies.map((proxy) => new ProxyQueue(proxy, settings, this.closing.signal));
    if (!warnedUnverified && this.proxies.some((proxy) => proxy.verifyKey === undefined)) {
      warnedUnverified = true;
      process.emitWarning(
        'GRIP is configured without a verify key: any request carrying a Grip-Sig header is trusted as coming from the proxy. Set verify_key (or verify-key in GRIP_URL).',
        { code: 'EVENTSTREAM_GRIP_UNVERIFIED' },
      );
    }
  }

  get gripPrefix(): string {
    return this.options.gripPrefix;
  }

  gripChannel(channel: string): string {
    return this.options.gripPrefix + channel;
  }

  isProxied(gripSig: string | undefined): Promise<boolean> {
    return isProxiedRequest(gripSig, this.proxies);
  }

  async hold(channels: readonly string[], resume: StreamPosition | null, gripLast: string | undefined, url: string): Promise<HoldInstructions> {
    const recovering = gripLast !== undefined;
    const position = recovering ? parseGripLast(gripLast, this.options.gripPrefix) : resume;
    let start;
    try {
      start = await startHeldStream(this.store, channels, position, recovering, this.options.maxBufferBytes, this.options.clientRetry);
    } catch (error) {
      if (error instanceof HttpRequestError) throw error;
      throw asStoreError(error, 'reading the event store');
    }
    const reliable = this.options.gripReliable;
    return holdInstructions({
      gripChannels: channels.map((channel) => this.gripChannel(channel)),
      positions: reliable ? start.positions : null,
      body: start.body,
      // In reliable mode, where the proxy fetches missed events when it sees a gap.
      link: reliable ? url : null,
      keepAliveMs: this.options.keepAliveInterval,
    });
  }

  /**
   * Publishes a batch to every proxy. Resolves once all accepted it; rejects
   * with the first failing proxy's error (in the order of `options.grip`)
   * once all answered, so a failing proxy never stops the others.
   */
  publish(channel: string, events: readonly StoredEvent[]): Promise<void> {
    if (this.closing.signal.aborted) return Promise.reject(new EventStreamClosedError());
    const { queues } = this;
    return new Promise<void>((resolve, reject) => {
      const failures: Array<Error | null> = new Array(queues.length).fill(null);
      let waiting = queues.length;
      for (let i = 0; i < queues.length; i++) {
        queues[i]!.enqueue(channel, events, (error) => {
          failures[i] = error;
          if (--waiting > 0) return;
          const failure = failures.find((candidate) => candidate !== null);
          if (failure === undefined) resolve();
          else reject(failure);
        });
      }
    });
  }

  /** Aborts every control-API call in flight; queued and later publishes fail with EventStreamClosedError. */
  close(): void {
    this.closing.abort(new EventStreamClosedError());
  }
}
