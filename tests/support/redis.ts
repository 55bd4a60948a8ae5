import type { RedisOptions } from 'ioredis';
import { masters, newRedisClient, type Redis } from '@lookup/store';
import { REDIS_URL } from './env.ts';

/**
 * A raw client of the tests' Redis, for checking side effects: a Redis, or a Redis Cluster client when REDIS_URL is
 * `redis+cluster://host:port` (the integration tests then run against a cluster, as the services do).
 */
export function rawRedis(options: RedisOptions = {}): Redis {
  return newRedisClient({ redisUrl: REDIS_URL, redisSentinels: [], redisMasterName: 'unused', redisCluster: REDIS_URL.startsWith('redis+cluster:') }, options);
}

/** KEYS on every master (a cluster client would ask one node only). */
export async function keysEverywhere(redis: Redis, pattern: string): Promise<string[]> {
  return (await Promise.all((await masters(redis)).map((node) => node.keys(pattern)))).flat();
}
