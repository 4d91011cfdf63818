import type { Redis, RedisOptions } from 'ioredis';
import { EventStoreError } from '../../errors.js';

type RedisClass = typeof Redis;

/** A client and why it last failed, to tell the user why a call was refused while it is not connected. */
interface Connection {
  readonly redis: Redis;
  lastError: Error | undefined;
}

/** What the subscriber connection reports to the watch side. */
export interface SubscriberEvents {
  message(name: string, message: string): void;
  /** Ready again after a drop: ioredis does not resubscribe (see autoResubscribe), the watch side does. */
  reconnected(redis: Redis): void;
}

/** Reconnect forever: a store outliving a Redis outage must come back on its own, but never hammer a dead server. */
const retryStrategy = (times: number): number => Math.min(times * 100, 1000);

/**
 * The store's two connections: one for commands, one for pub/sub (a
 * subscribed client takes no other commands). `ioredis` is an optional peer
 * dependency, so it is imported on first use, and neither connection is
 * made before something needs it.
 */
export class RedisConnections {
  private redisClass: Promise<RedisClass> | undefined;
  private command: Promise<Connection> | undefined;
  private subscriber: Promise<Connection> | undefined;

  constructor(
    /** Private: it may hold a password. */
    private readonly url: string,
    private readonly events: SubscriberEvents,
  ) {}

  /** The command client, if it can take a command now; `attempted` names the call in the error otherwise. */
  async commandClient(attempted: string): Promise<Redis> {
    this.command ??= this.connect('command').catch((error: unknown) => {
      this.command = undefined;
      throw error;
    });
    return usable(await this.command, attempted);
  }

  /** The subscriber client, if it can take a command now; `attempted` names the call in the error otherwise. */
  async subscriberClient(attempted: string): Promise<Redis> {
    this.subscriber ??= this.connect('subscriber').catch((error: unknown) => {
      this.subscriber = undefined;
      throw error;
    });
    return usable(await this.subscriber, attempted);
  }

  /**
   * Runs `command` on the subscriber client once it exists, whatever its
   * state, and only if it was ever asked for. Commands on one connection run
   * in order, so one issued later (a SUBSCRIBE) queues behind this.
   */
  onSubscriber(command: (redis: Redis) => Promise<unknown>): void {
    if (this.subscriber === undefined) return;
    void this.subscriber.then(({ redis }) => command(redis)).catch(() => {});
  }

  async close(): Promise<void> {
    await Promise.all(
      [this.command, this.subscriber].map(async (connecting) => {
        if (connecting === undefined) return;
        const connection = await connecting.catch(() => undefined);
        if (connection === undefined) return;
        const { redis } = connection;
        // QUIT lets replies in flight arrive; a connection that is not up has nothing to wait for.
        if (redis.status === 'ready') await redis.quit().catch(() => {});
        redis.disconnect();
      }),
    );
  }

  private loadRedis(): Promise<RedisClass> {
    this.redisClass ??= import('ioredis').then(
      (module) => module.Redis,
      (cause: unknown) => {
        this.redisClass = undefined;
        throw new EventStoreError('RedisEventStore needs the ioredis package: npm install ioredis', { cause });
      },
    );
    return this.redisClass;
  }

  /** A connection that has made its first attempt to connect (commands fail fast, so they must not race that attempt). */
  private async connect(role: 'command' | 'subscriber'): Promise<Connection> {
    const RedisClient = await this.loadRedis();
    const options: RedisOptions = {
      lazyConnect: true,
      retryStrategy,
      // Fail instead of queueing while Redis is away, and reject commands in flight when the connection drops
      // (without resending them: a resent append could be stored twice).
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // Resubscribing is done by the watch side, so that it is known when to catch up.
      autoResubscribe: false,
      connectionName: `eventstream-${role}`,
    };
    const redis = new RedisClient(this.url, options);
    const connection: Connection = { redis, lastError: undefined };
    // Errors surface through the calls they make fail; without a listener ioredis would log each reconnect failure.
    redis.on('error', (error) => {
      connection.lastError = error;
    });
    redis.on('ready', () => {
      connection.lastError = undefined;
    });
    if (role === 'subscriber') {
      redis.on('message', (name: string, message: string) => this.events.message(name, message));
      let connectedBefore = false;
      redis.on('ready', () => {
        if (connectedBefore) this.events.reconnected(redis);
        connectedBefore = true;
      });
    }
    await redis.connect().catch(() => {});
    return connection;
  }
}

/**
 * The client, if it can take a command now: nothing queues while Redis is
 * away. The refusal says what was attempted, and its cause says why the
 * connection is down (what ioredis last reported, when it reported anything).
 */
function usable({ redis, lastError }: Connection, attempted: string): Redis {
  if (redis.status === 'ready') return redis;
  const reason = lastError === undefined ? redis.status : describe(lastError);
  const notConnected = new EventStoreError(`not connected to Redis (${reason})`, { cause: lastError });
  throw new EventStoreError(`${attempted} failed: ${notConnected.message}`, { cause: notConnected });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
