import type { Redis } from './redis.ts';
import { keys as makeKeys } from './keys.ts';

/**
 * Counts deliveries of redelivered messages (RabbitMQ classic queues only flag a redelivery), so a message
 * that crashes its consumer every time can be dead-lettered past a limit. Returns the delivery number
 * (2 for the first redelivery). Counters expire after ttlSeconds.
 */
export function createDeliveryCounter({ redis, namespace, ttlSeconds = 3600 }: { redis: Redis; namespace: string; ttlSeconds?: number }) {
  const k = makeKeys(namespace);
  return async (queue: string, messageId: string): Promise<number> => {
    const key = k.deliveries(queue, messageId);
    const res = await redis.multi().incr(key).expire(key, ttlSeconds).exec();
    return Number(res?.[0]?.[1] ?? 0) + 1;
  };
}
