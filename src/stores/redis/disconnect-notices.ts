import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { EventStoreError } from '../../errors.js';
import { asStoreError } from '../store-error.js';
import type { RedisConnections } from './connection.js';

type DisconnectListener = (channel: string, reason: string) => void;

/** How long a disconnect waits for every process to confirm it ended its streams. */
const CONFIRM_TIMEOUT_MS = 10_000;

interface PendingDisconnect {
  /** How many stores got the notice (PUBLISH's answer), once known. */
  expected: number | null;
  confirmed: number;
  settle: (error: Error | null) => void;
}

/**
 * Disconnects across every process sharing the store: a notice on one
 * pub/sub channel, which every store with a disconnect listener (each
 * EventStream using it) follows, and a confirmation back from each once its
 * streams ended. PUBLISH answers how many stores got the notice, so the
 * asker knows how many confirmations to wait for.
 */
export class DisconnectNotices {
  private readonly listeners = new Set<DisconnectListener>();
  private readonly pending = new Map<string, PendingDisconnect>();
  private subscribed: Promise<void> | undefined;
  private readonly noticeChannel: string;
  private readonly confirmChannel: string;

  constructor(
    keyPrefix: string,
    private readonly connections: RedisConnections,
  ) {
    this.noticeChannel = `${keyPrefix}disconnect`;
    this.confirmChannel = `${keyPrefix}disconnect-confirm`;
  }

  watch(listener: DisconnectListener): () => void {
    this.listeners.add(listener);
    // Redis may be away now: the next reconnect subscribes (see resubscribe).
    this.subscribe().catch(() => {});
    return () => {
      this.listeners.delete(listener);
    };
  }

  async disconnect(channel: string, reason: string): Promise<void> {
    await this.subscribe();
    const id = randomUUID();
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const entry = this.pending.get(id);
        const expected = entry?.expected ?? '?';
        settle(
          new EventStoreError(
            `RedisEventStore: disconnect: ${entry?.confirmed ?? 0} of ${expected} processes confirmed within ${CONFIRM_TIMEOUT_MS} ms`,
          ),
        );
      }, CONFIRM_TIMEOUT_MS);
      timer.unref();
      const settle = (error: Error | null): void => {
        clearTimeout(timer);
        this.pending.delete(id);
        if (error === null) resolve();
        else reject(error);
      };
      this.pending.set(id, { expected: null, confirmed: 0, settle });
    });
    let receivers: number;
    try {
      const redis = await this.connections.commandClient('RedisEventStore: disconnect');
      receivers = await redis.publish(this.noticeChannel, JSON.stringify({ id, channel, reason }));
    } catch (error) {
      this.pending.get(id)?.settle(asStoreError(error, 'RedisEventStore: disconnect'));
      return done;
    }
    const entry = this.pending.get(id);
    if (entry !== undefined) {
      entry.expected = receivers;
      if (entry.confirmed >= receivers) entry.settle(null);
    }
    return done;
  }

  /** A message on the subscriber connection; false when it is not one of these channels. */
  dispatch(name: string, message: string): boolean {
    if (name === this.noticeChannel) {
      this.received(message);
      return true;
    }
    if (name === this.confirmChannel) {
      const entry = this.pending.get(message);
      if (entry !== undefined) {
        entry.confirmed++;
        if (entry.expected !== null && entry.confirmed >= entry.expected) entry.settle(null);
      }
      return true;
    }
    return false;
  }

  /** After a reconnect: ioredis does not resubscribe by itself. */
  async resubscribe(redis: Redis): Promise<void> {
    if (this.subscribed === undefined) return;
    await redis.subscribe(this.noticeChannel, this.confirmChannel).catch(() => {});
  }

  private received(message: string): void {
    let notice: { id?: unknown; channel?: unknown; reason?: unknown };
    try {
      notice = JSON.parse(message) as typeof notice;
    } catch {
      return; // Not ours: someone else published on the channel.
    }
    const { id, channel, reason } = notice;
    if (typeof id !== 'string' || typeof channel !== 'string' || typeof reason !== 'string') return;
    for (const listener of this.listeners) listener(channel, reason);
    // Every store that got the notice answers, listeners or not: the asker counts one answer per receiver.
    void this.connections
      .commandClient('RedisEventStore: disconnect')
      .then((redis) => redis.publish(this.confirmChannel, id))
      .catch(() => {});
  }

  private subscribe(): Promise<void> {
    this.subscribed ??= (async () => {
      const redis = await this.connections.subscriberClient('RedisEventStore: disconnect');
      await redis.subscribe(this.noticeChannel, this.confirmChannel);
    })().catch((error: unknown) => {
      this.subscribed = undefined;
      throw asStoreError(error, 'RedisEventStore: disconnect');
    });
    return this.subscribed;
  }
}
