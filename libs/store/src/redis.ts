import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '@lookup/logging';
import { maskUrl } from '@lookup/config';
import { defineLuaCommand, equalJitterBackoff, type ScriptCall } from '@lookup/contracts';

export { Redis } from 'ioredis';

export interface RedisClientOptions {
  url: string;
  logger: Logger;
  /** Connection name shown by CLIENT LIST. */
  name?: string;
  /**
   * HTTP-path producers fail fast (no offline queue, one retry) so a request is answered 503 at once;
   * consumers keep retrying until Redis returns.
   */
  failFast?: boolean;
}

/** A Redis client with reconnect (exponential backoff with jitter, capped at 60 s) and an 'error' listener. */
export function createRedis({ url, logger, name, failFast = false }: RedisClientOptions): Redis {
  const options: RedisOptions = {
    connectionName: name,
    lazyConnect: false,
    enableAutoPipelining: true,
    maxRetriesPerRequest: failFast ? 1 : null,
    enableOfflineQueue: !failFast,
    connectTimeout: 5_000,
    retryStrategy: (times) => {
      return equalJitterBackoff(times, 250, 60_000);
    },
  };
  const redis = new Redis(url, options);
  let lastError = '';
  redis.on('error', (err: Error) => {
    // ioredis emits the same connection error on every retry; log each distinct one once.
    if (err.message !== lastError) logger.warn({ err: err.message, redis: maskUrl(url) }, 'redis error');
    lastError = err.message;
  });
  redis.on('ready', () => {
    if (lastError) logger.info({ redis: maskUrl(url) }, 'redis connection restored');
    lastError = '';
  });
  return redis;
}

/** Whether Redis answers right now: connected, and a PING comes back (the readiness probes). */
export async function redisAnswers(redis: Redis): Promise<boolean> {
  return redis.status === 'ready' && (await redis.ping().then(() => true, () => false));
}

/** Resolves once the client is ready (or rejects after timeoutMs). */
export async function waitForRedis(redis: Redis, timeoutMs = 30_000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`redis not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}

/**
 * Registers the Lua script `./lua/<name>.lua` kept beside the store code (includes from `./lua/includes/`
 * spliced in): contracts' one loader (shared with @lookup/coordination, see lua-script.ts), under this library's
 * command prefix. Call it with the script's keys and arguments.
 */
export function defineScript(redis: Redis, name: string): ScriptCall {
  return defineLuaCommand(redis, `lookup_${name.replace(/-/g, '_')}`, new URL(`./lua/${name}.lua`, import.meta.url));
}

/** Deletes every key under a prefix (tests and the benchmark clean their NAMESPACE with it). */
export async function deleteByPrefix(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (batch.length > 0) deleted += await redis.unlink(...batch);
  } while (cursor !== '0');
  return deleted;
}
