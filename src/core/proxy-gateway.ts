import type { StreamPosition } from '../sse/event-id.js';
import type { RemotePublisher } from '../delivery/channel-writable.js';

/** A proxied request's answer: the headers that tell the proxy to hold the stream, and what the client gets first. */
export interface HoldInstructions {
  readonly headers: Record<string, string>;
  readonly body: string;
}

/**
 * The proxies in front of this origin (GRIP: Pushpin, Fastly Fanout), as the
 * request pipeline and the publishers see them. The core knows this
 * interface only; src/adapters/grip implements it.
 */
export interface ProxyGateway extends RemotePublisher {
  /** Whether the request came through one of the proxies (its `Grip-Sig` verifies). */
  isProxied(gripSig: string | undefined): Promise<boolean>;
  /**
   * Hold instructions for a proxied request on `channels`, with what a
   * resuming client (`resume`) or the recovering proxy (`gripLast`, the
   * proxy's `Grip-Last` header) missed. `url` (path and query) is where the
   * proxy recovers missed events later. Rejects when the store cannot be read.
   */
  hold(channels: readonly string[], resume: StreamPosition | null, gripLast: string | undefined, url: string): Promise<HoldInstructions>;
  /** Stops every call to the proxies in flight; later publishes fail. */
  close(): void;
}
