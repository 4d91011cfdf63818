import type { Redis } from 'ioredis';

/**
 * Stream counts per process in Redis: a hash per process (channel → count)
 * that expires unless refreshed, and a sorted set of processes scored by
 * when their report expires, so a reader finds the live ones without
 * scanning keys. One hash tag for all of them: one slot in a cluster.
 */
export class PresenceKeys {
  private readonly processes: string;
  private readonly prefix: string;

  constructor(keyPrefix: string) {
    this.prefix = `${keyPrefix}{presence}`;
    this.processes = `${this.prefix}:processes`;
  }

  async report(redis: Redis, processId: string, counts: Readonly<Record<string, number>>, ttlMs: number): Promise<void> {
    const key = this.countsKey(processId);
    const now = Date.now();
    const transaction = redis.multi().del(key);
    const fields = Object.entries(counts).filter(([, count]) => count > 0);
    if (fields.length > 0) transaction.hset(key, Object.fromEntries(fields.map(([channel, count]) => [channel, String(count)])));
    await transaction
      .pexpire(key, ttlMs)
      .zadd(this.processes, now + ttlMs, processId)
      .zremrangebyscore(this.processes, '-inf', now)
      .exec();
  }

  async remove(redis: Redis, processId: string): Promise<void> {
    await redis.multi().del(this.countsKey(processId)).zrem(this.processes, processId).exec();
  }

  async count(redis: Redis, channel: string, exceptProcessId: string | undefined): Promise<number> {
    const live = (await redis.zrangebyscore(this.processes, Date.now(), '+inf')).filter((id) => id !== exceptProcessId);
    if (live.length === 0) return 0;
    const pipeline = redis.pipeline();
    for (const id of live) pipeline.hget(this.countsKey(id), channel);
    let total = 0;
    for (const [error, value] of (await pipeline.exec()) ?? []) {
      if (error) throw error;
      const count = Number(value ?? 0);
      if (Number.isSafeInteger(count) && count > 0) total += count;
    }
    return total;
  }

  private countsKey(processId: string): string {
    return `${this.prefix}:${processId}`;
  }
}
