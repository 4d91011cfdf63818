import { setMaxListeners } from 'node:events';
import type { RemotePublisher } from '../../delivery/channel-writable.js';
import { EventStreamClosedError } from '../../errors.js';
import type { StoredEvent } from '../../stores/event-store.js';
import { resolveGripProxies, type GripProxy } from './proxy-config.js';
import { holdResponse, type HoldResponse } from './hold-instructions.js';
import { ProxyQueue } from './proxy-queue.js';
import { isProxiedRequest } from './signature.js';

export interface GripBridgeOptions {
  gripPrefix: string;
  gripReliable: boolean;
  keepAliveInterval: number;
  gripPublishTimeout: number;
}

let warnedUnverified = false;

/**
 * Everything GRIP: which requests came through a proxy, the hold answer they
 * get, and publishing to every proxy. The channel prefix is applied here and
 * nowhere else, so it holds for every form of `options.grip`.
 */
export class GripBridge implements RemotePublisher {
  readonly proxies: readonly GripProxy[];
  private readonly options: GripBridgeOptions;
  /** Aborted by close(): every control-API call in flight stops at once, and no new one starts. */
  private readonly closing = new AbortController();
  private readonly queues: readonly ProxyQueue[];

  constructor(option: unknown, options: GripBridgeOptions) {
    this.proxies = resolveGripProxies(option);
    this.options = options;
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

  isProxied(gripSig: string | string[] | undefined): Promise<boolean> {
    return isProxiedRequest(gripSig, this.proxies);
  }

  /**
   * Hold instructions for a proxied request on `channels`, whose body brings
   * the client to `positions`; in reliable mode `link` is where the proxy
   * fetches missed events.
   */
  hold(channels: readonly string[], positions: readonly number[], body: string, link: string): HoldResponse {
    const reliable = this.options.gripReliable;
    return holdResponse({
      gripChannels: channels.map((channel) => this.gripChannel(channel)),
      positions: reliable ? positions : null,
      body,
      link: reliable ? link : null,
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
