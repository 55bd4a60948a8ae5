import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import type { Redis } from 'ioredis';
import { rawRedis } from './redis.ts';
import { declarations } from '@lookup/messaging';
import { deleteByPrefix } from '@lookup/store';
import { AMQP_URL, REDIS_URL } from './env.ts';

/** A fresh NAMESPACE per test, so tests share one broker and one Redis without touching each other. */
export function newNamespace(label = 't'): string {
  return `${label}-${randomBytes(4).toString('hex')}`;
}

/** Removes every queue, exchange and Redis key of a namespace (rascal's nuke, for one namespace). */
export async function cleanupNamespace(namespace: string, extraQueues: string[] = []): Promise<void> {
  await cleanupAmqpNamespace(namespace, extraQueues);
  const redis = rawRedis({ lazyConnect: true });
  try {
    await redis.connect();
    await deleteByPrefix(redis, `${namespace}:`);
  } finally {
    redis.disconnect();
  }
}

/** Removes a namespace's queues and exchanges only (its Redis keys live on servers the test stops itself). */
export async function cleanupAmqpNamespace(namespace: string, extraQueues: string[] = []): Promise<void> {
  const d = declarations(namespace, { maxAttempts: 10 });
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    for (const q of [...d.queues.map((q) => q.name), ...extraQueues]) await ch.deleteQueue(q);
    for (const e of d.exchanges) await ch.deleteExchange(e.name);
    await ch.close();
  } finally {
    await conn.close();
  }
}
