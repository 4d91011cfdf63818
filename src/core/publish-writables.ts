import type { ChannelWritable } from '../delivery/channel-writable.js';
import { PublishRequest } from '../delivery/publish-request.js';
import { EventStreamClosedError } from '../errors.js';
import type { EncodedEvent } from '../sse/encoder.js';

/** publishEvent's writable for one channel, with the publishes it has not called back for yet. */
interface PublishWritable {
  readonly writable: ChannelWritable;
  inFlight: number;
  /** An end-of-turn check for idleness is scheduled. */
  idleCheck: boolean;
}

/**
 * The writables behind publishEvent: one per channel while writes are in
 * flight (and, on a channel with subscribers, until a turn passes without
 * one), so publishes keep their order. Each publish learns its own outcome
 * (a PublishRequest), so one failure never errors the others.
 */
export class PublishWritables {
  private readonly entries = new Map<string, PublishWritable>();
  /** Publishes not settled yet: settleAll() settles them at once, whatever they still wait for. */
  private readonly pending = new Set<PublishRequest>();
  private readonly open: (channel: string) => ChannelWritable;
  private readonly isClosed: () => boolean;

  constructor(open: (channel: string) => ChannelWritable, isClosed: () => boolean) {
    this.open = open;
    this.isClosed = isClosed;
  }

  /**
   * Resolves once the store, the hub and every proxy have the event; rejects
   * with the first failure (the store's, else a proxy's GripPublishError).
   */
  publish(channel: string, event: EncodedEvent): Promise<void> {
    let entry = this.entries.get(channel);
    if (entry === undefined || entry.writable.destroyed) {
      const writable = this.open(channel);
      // Outcomes go to each PublishRequest; the listener keeps anything unforeseen from crashing the process.
      writable.on('error', () => {});
      entry = { writable, inFlight: 0, idleCheck: false };
      this.entries.set(channel, entry);
    }
    const current = entry;
    current.inFlight++;
    return new Promise<void>((resolve, reject) => {
      const request = new PublishRequest(event, (error) => {
        this.pending.delete(request);
        if (error === null) resolve();
        else reject(error);
      });
      this.pending.add(request);
      current.writable.write(request, (error) => {
        // Called once the hub has the event; the proxies may still be working on it.
        if (--current.inFlight === 0) this.idle(channel, current);
        request.written(error ? (this.isClosed() ? new EventStreamClosedError() : error) : null);
      });
    });
  }

  /** Settles every pending publish with `error` now (the EventStream is closing). */
  settleAll(error: Error): void {
    for (const request of [...this.pending]) request.abandon(error);
  }

  destroyAll(): void {
    for (const { writable } of this.entries.values()) writable.destroy();
    this.entries.clear();
  }

  /**
   * A writable has nothing in flight. An awaited publish gets here before
   * its caller publishes the next event, so ending the writable now would
   * build a new one (and retain the hub again) for every event of an awaited
   * loop. On a channel with subscribers, whose hub stays anyway, it is kept
   * until a turn of the event loop passes without a publish; a channel
   * nobody listens on lets its hub go at once.
   */
  private idle(channel: string, entry: PublishWritable): void {
    if (this.entries.get(channel) !== entry) return;
    if (!entry.writable.hasLocalSubscribers) {
      this.retire(channel, entry);
    } else if (!entry.idleCheck) {
      entry.idleCheck = true;
      setImmediate(() => {
        entry.idleCheck = false;
        // Busy again: the next time nothing is in flight checks anew.
        if (entry.inFlight === 0) this.retire(channel, entry);
      });
    }
  }

  private retire(channel: string, entry: PublishWritable): void {
    if (this.entries.get(channel) !== entry) return;
    this.entries.delete(channel);
    entry.writable.end();
  }
}
