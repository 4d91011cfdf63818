import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { type Access, closingTime } from '../../admission/access.js';
import type { StreamMetrics } from '../../common/metrics.js';
import type { HoldInstructions, ProxyGateway } from '../../core/proxy-gateway.js';
import { EventStreamClosedError, HttpRequestError } from '../../errors.js';
import { streamCloseText } from '../../sse/encoder.js';
import type { StreamPosition } from '../../sse/event-id.js';
import { EVENT_STREAM_HEADERS } from '../../sse/headers.js';
import { asStoreError } from '../../stores/store-error.js';
import type { EventStore, StoredEvent } from '../../types.js';
import { closeHeldStreams } from './control-api.js';
import { parseGripLast } from './grip-last.js';
import { type HeldStreamStart, startHeldStream } from './held-stream.js';
import { HeldStreams } from './held-streams.js';
import { holdInstructions } from './hold-instructions.js';
import { type GripProxy, resolveGripProxies } from './proxy-config.js';
import { ProxyQueue } from './proxy-queue.js';
import { isProxiedRequest } from './signature.js';
import { LinkSigner } from './stream-link.js';

export interface GripBridgeOptions {
  gripPrefix: string;
  gripReliable: boolean;
  keepAliveInterval: number;
  gripPublishTimeout: number;
  /** Milliseconds between the proxy's checks on an idle held stream (its link fetch); 0: no checks. */
  gripCheckInterval: number;
  /** Bytes of missed events a held stream's opening may carry; the proxy recovers the rest. */
  maxBufferBytes: number;
  clientRetry: number | null;
}

let warnedUnverified = false;

/** Streams held until about the same time close together: one close publish per bucket and process. */
const EXPIRY_BUCKET_MS = 5000;

/** The control channel a disconnect of `gripChannel` is published on; `#` is in no channel name, so it names no data channel. */
function closeChannel(gripChannel: string): string {
  return `${gripChannel}#close`;
}

/** Seconds between the proxy's fetches of an idle stream's link: about when it is to close, at most an hour. */
function linkTimeout(closeAt: number): number {
  return Math.min(3600, Math.max(1, Math.ceil((closeAt - Date.now()) / 1000)));
}

/** What every process behind these proxies knows alike, and clients do not: the proxies' verify keys. */
function linkSecrets(proxies: readonly GripProxy[], gripPrefix: string): Array<string | Uint8Array> {
  const secrets: Array<string | Uint8Array> = [];
  for (const { verifyKey } of proxies) {
    if (typeof verifyKey === 'string' || verifyKey instanceof Uint8Array) secrets.push(verifyKey);
  }
  return secrets.length === 0 ? secrets : [gripPrefix, ...secrets];
}

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
  private readonly links: LinkSigner;
  private readonly held: HeldStreams;
  /** One timer per closing time streams were held until (see expiryBucket). */
  private readonly expiries = new Map<number, NodeJS.Timeout>();

  constructor(option: unknown, options: GripBridgeOptions, store: EventStore, metrics: StreamMetrics) {
    this.proxies = resolveGripProxies(option);
    this.options = options;
    this.store = store;
    // Every call in flight listens for close(): one per busy channel and proxy, legitimately many.
    setMaxListeners(0, this.closing.signal);
    const settings = {
      gripChannel: (channel: string) => this.gripChannel(channel),
      reliable: options.gripReliable,
      timeoutMs: options.gripPublishTimeout,
      metrics,
    };
    this.queues = this.proxies.map((proxy) => new ProxyQueue(proxy, settings, this.closing.signal));
    this.links = new LinkSigner(linkSecrets(this.proxies, options.gripPrefix));
    this.held = new HeldStreams(options.gripCheckInterval);
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

  async hold(
    channels: readonly string[],
    resume: StreamPosition | null,
    gripLast: string | undefined,
    url: string,
    access: Access,
  ): Promise<HoldInstructions> {
    const closeAt = access.until === null ? null : this.expiryBucket(access.until);
    // Each held stream gets its own id in its link, so the proxy's checks tell this origin that it is still there.
    const id = this.options.gripCheckInterval > 0 ? randomBytes(9).toString('base64url') : null;
    return this.holdFor(
      channels,
      gripLast === undefined ? resume : parseGripLast(gripLast, this.options.gripPrefix),
      gripLast !== undefined,
      url,
      closeAt,
      id,
    );
  }

  /**
   * The answer to the proxy fetching a stream's link (to recover a gap, or
   * every `timeout` seconds while the stream is idle), or undefined for a
   * request that is not one. The link says what the stream was allowed: it
   * is never authorized again (the fetch carries none of the client's
   * credentials), and a link this origin did not sign is a 403. Past its
   * closing time the stream is told `stream-close` and ended; else it is
   * held as it was, with what the proxy reports missing.
   */
  async followLink(url: string, gripLast: string | undefined): Promise<HoldInstructions | undefined> {
    const claims = this.links.claimsOf(url);
    if (claims === undefined) return undefined;
    if (claims === null) throw new HttpRequestError(403, 'Forbidden: this stream link was not issued by this server.');
    if (claims.closeAt !== null && Date.now() >= claims.closeAt) {
      if (claims.id !== null) this.held.ended(claims.id);
      // No Grip-Hold: the proxy appends the body and ends the stream.
      return { headers: { ...EVENT_STREAM_HEADERS }, body: streamCloseText('expired') };
    }
    const position = gripLast === undefined ? null : parseGripLast(gripLast, this.options.gripPrefix);
    return this.holdFor(claims.channels, position, true, url, claims.closeAt, claims.id);
  }

  /** Ends every held stream on `channel` through each proxy, telling it why first. */
  async disconnect(channel: string, reason: string): Promise<void> {
    this.held.endedOn(channel);
    await this.everyProxy((proxy) =>
      closeHeldStreams(
        proxy,
        closeChannel(this.gripChannel(channel)),
        streamCloseText(reason),
        this.options.gripPublishTimeout,
        this.closing.signal,
      ),
    );
  }

  private async holdFor(
    channels: readonly string[],
    position: StreamPosition | null,
    recovering: boolean,
    url: string,
    closeAt: number | null,
    id: string | null,
  ): Promise<HoldInstructions> {
    let start: HeldStreamStart;
    try {
      start = await startHeldStream(
        this.store,
        channels,
        position,
        recovering,
        this.options.maxBufferBytes,
        this.options.clientRetry,
      );
    } catch (error) {
      if (error instanceof HttpRequestError) throw error;
      throw asStoreError(error, 'reading the event store');
    }
    const reliable = this.options.gripReliable;
    const gripChannels = channels.map((channel) => this.gripChannel(channel));
    const controlChannels = gripChannels.map(closeChannel);
    if (closeAt !== null) {
      controlChannels.push(this.expiryChannel(closeAt));
      this.scheduleExpiry(closeAt);
    }
    if (id !== null) this.held.seen(id, channels);
    // A link is needed to recover gaps (reliable mode), to end an idle stream at its closing time should the
    // close published then not reach it (this process gone by then), and for the proxy to check on the stream.
    const needsLink = reliable || closeAt !== null || id !== null;
    const checkSeconds = id === null ? null : Math.max(1, Math.ceil(this.options.gripCheckInterval / 1000));
    const untilClose = closeAt === null ? null : linkTimeout(closeAt);
    return holdInstructions({
      gripChannels,
      positions: reliable ? start.positions : null,
      controlChannels,
      body: start.body,
      link: needsLink ? this.links.link(url, { id, channels, closeAt }) : null,
      linkTimeoutSeconds:
        checkSeconds === null ? untilClose : untilClose === null ? checkSeconds : Math.min(checkSeconds, untilClose),
      keepAliveMs: this.options.keepAliveInterval,
    });
  }

  /** A stream allowed until `until` closes at a time shared by every stream of its bucket: one close for all of them. */
  private expiryBucket(until: number): number {
    return Math.floor(closingTime(until, Date.now()) / EXPIRY_BUCKET_MS) * EXPIRY_BUCKET_MS;
  }

  private expiryChannel(closeAt: number): string {
    return `${this.options.gripPrefix}#expire-${closeAt}`;
  }

  private scheduleExpiry(closeAt: number): void {
    if (this.expiries.has(closeAt) || this.closing.signal.aborted) return;
    const timer = setTimeout(
      () => {
        this.expiries.delete(closeAt);
        // Should this fail, each idle stream's link fetch after its closing time ends it.
        this.everyProxy((proxy) =>
          closeHeldStreams(
            proxy,
            this.expiryChannel(closeAt),
            streamCloseText('expired'),
            this.options.gripPublishTimeout,
            this.closing.signal,
          ),
        ).catch(() => {});
      },
      Math.max(0, closeAt - Date.now()),
    );
    timer.unref();
    this.expiries.set(closeAt, timer);
  }

  /** Runs `call` for every proxy at once; rejects with the first failure (in the order of `options.grip`) once all answered. */
  private async everyProxy(call: (proxy: GripProxy) => Promise<void>): Promise<void> {
    const outcomes = await Promise.allSettled(this.proxies.map(call));
    const failure = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failure !== undefined) throw (failure as PromiseRejectedResult).reason;
  }

  /**
   * Publishes a batch to every proxy. Resolves once all accepted it; rejects
   * with the first failing proxy's error (in the order of `options.grip`)
   * once all answered, so a failing proxy never stops the others.
   */
  publish(channel: string, events: readonly StoredEvent[]): Promise<void> {
    if (this.closing.signal.aborted) return Promise.reject(new EventStreamClosedError());
    // A publish pushes back the proxy's next check on every stream of the channel.
    this.held.published(channel);
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

  heldStreams(channel?: string): number {
    return this.held.count(channel);
  }

  heldStreamCounts(): Record<string, number> {
    return this.held.counts();
  }

  /** Aborts every control-API call in flight; queued and later publishes fail with EventStreamClosedError. */
  close(): void {
    for (const timer of this.expiries.values()) clearTimeout(timer);
    this.expiries.clear();
    this.closing.abort(new EventStreamClosedError());
  }
}
