/**
 * `@fanoutio/eventstream/redis`: the Redis store, on a subpath of its own so
 * that the main entry never names ioredis (an optional peer). Bundlers such as
 * Next.js resolve every import they can see, dynamic ones too, and fail the
 * build when ioredis is not installed.
 */
export { RedisEventStore, type RedisEventStoreOptions } from './stores/redis/redis-store.js';
