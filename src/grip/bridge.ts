import type { RemotePublisher } from '../channel/writable.js';
import type { StoredEvent } from '../history/store.js';
import { resolveGripProxies, type GripProxy } from './config.js';
import { groupItems, publishToProxy, serializeItems } from './control-api.js';
import { holdResponse, type HoldResponse } from './hold.js';
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
  /** The last publish of each channel: the next waits for it, so items reach the proxy in id order. */
  private readonly tails = new Map<string, Promise<void>>();

  constructor(option: unknown, options: GripBridgeOptions) {
    this.proxies = resolveGripProxies(option);
    this.options = options;
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

  publish(channel: string, events: readonly StoredEvent[]): Promise<void> {
    const previous = this.tails.get(channel);
    const published = previous === undefined ? this.send(channel, events) : previous.then(() => this.send(channel, events));
    const tail = published.then(settled, settled);
    this.tails.set(channel, tail);
    void tail.then(() => {
      if (this.tails.get(channel) === tail) this.tails.delete(channel);
    });
    return published;
  }

  private async send(channel: string, events: readonly StoredEvent[]): Promise<void> {
    const gripChannel = this.gripChannel(channel);
    const items = groupItems(channel, events);
    const serialized = serializeItems(gripChannel, items, this.options.gripReliable);
    const { gripPublishTimeout } = this.options;
    const results = await Promise.allSettled(
      this.proxies.map((proxy) =>
        publishToProxy(proxy, gripChannel, items, serialized, gripPublishTimeout, this.options.gripReliable),
      ),
    );
    for (const result of results) {
      if (result.status === 'rejected') throw result.reason;
    }
  }
}

function settled(): void {}
