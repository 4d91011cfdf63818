import type { RemotePublisher } from '../channel/writable.js';
import type { EncodedEvent } from '../sse/encoder.js';
import { resolveGripProxies, type GripProxy } from './config.js';
import { publishToProxy, serializeItems } from './control-api.js';
import { holdResponse, type HoldResponse } from './hold.js';
import { isProxiedRequest } from './signature.js';

export interface GripBridgeOptions {
  gripPrefix: string;
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

  gripChannel(channel: string): string {
    return this.options.gripPrefix + channel;
  }

  isProxied(gripSig: string | string[] | undefined): Promise<boolean> {
    return isProxiedRequest(gripSig, this.proxies);
  }

  /** Hold instructions for a proxied request on `channels`. */
  hold(channels: readonly string[]): HoldResponse {
    return holdResponse(channels.map((channel) => this.gripChannel(channel)), this.options.keepAliveInterval);
  }

  async publish(channel: string, events: readonly EncodedEvent[]): Promise<void> {
    const gripChannel = this.gripChannel(channel);
    const items = serializeItems(gripChannel, events);
    const { gripPublishTimeout } = this.options;
    const results = await Promise.allSettled(
      this.proxies.map((proxy) => publishToProxy(proxy, gripChannel, events, items, gripPublishTimeout)),
    );
    for (const result of results) {
      if (result.status === 'rejected') throw result.reason;
    }
  }
}
