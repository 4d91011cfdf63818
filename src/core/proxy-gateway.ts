import type { Access } from '../admission/access.js';
import type { RemotePublisher } from '../delivery/channel-writable.js';
import type { StreamPosition } from '../sse/event-id.js';

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
   * proxy recovers missed events later; `access` is what the request was
   * allowed. Rejects when the store cannot be read.
   */
  hold(
    channels: readonly string[],
    resume: StreamPosition | null,
    gripLast: string | undefined,
    url: string,
    access: Access,
  ): Promise<HoldInstructions>;
  /**
   * The answer when the request is the proxy fetching a link this origin
   * gave a held stream (to recover missed events, or to check on an idle
   * stream); undefined when it is not such a request. Its channels and
   * access come from the link, which rejects with a 403 HttpRequestError
   * when this origin did not sign it.
   */
  followLink(url: string, gripLast: string | undefined): Promise<HoldInstructions | undefined>;
  /** Ends every stream the proxies hold on `channel`, with a `stream-close` telling why first. */
  disconnect(channel: string, reason: string): Promise<void>;
  /** How many streams the proxies hold for this process, as far as it can tell (see HeldStreams); on `channel` when given. */
  heldStreams(channel?: string): number;
  /** Per channel, the streams the proxies hold for this process. */
  heldStreamCounts(): Record<string, number>;
  /** Stops every call to the proxies in flight; later publishes fail. */
  close(): void;
}
