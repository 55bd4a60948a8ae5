import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from '@lookup/logging';
import { maskUrl } from '@lookup/config';
import { defineLuaCommand, equalJitterBackoff, setReplicaWait, type ScriptCall } from '@lookup/contracts';

export { Cluster, Redis } from 'ioredis';

/** Where Redis is: REDIS_URL alone, or Sentinels that name the master (REDIS_URL then supplies auth, db, TLS). */
export interface RedisTarget {
  redisUrl: string;
  redisSentinels: readonly { host: string; port: number }[];
  redisMasterName: string;
  /** REDIS_URL names one node of a Redis Cluster (REDIS_CLUSTER, or a redis+cluster:// URL). */
  redisCluster?: boolean;
  /** Replicas every state change waits for (WAIT) and for how long; 0 or unset: none. */
  redisWaitReplicas?: number;
  redisWaitTimeoutMs?: number;
}

export interface RedisClientOptions {
  target: RedisTarget;
  logger: Logger;
  /** Connection name shown by CLIENT LIST. */
  name?: string;
  /**
   * HTTP-path producers fail fast (no offline queue, one retry) so a request is answered 503 at once;
   * consumers keep retrying until Redis returns.
   */
  failFast?: boolean;
}

/**
 * The connection options of every client of the suite (the services' and the operator scripts'): with
 * Sentinels, ioredis asks them for the master, follows +switch-master (failoverDetector) and reconnects when a
 * demoted master answers READONLY, so a client follows a failover instead of writing to a replica.
 */
export function redisConnectionOptions(target: RedisTarget): RedisOptions {
  const u = new URL(target.redisUrl.replace(/^redis\+cluster:/, 'redis:'));
  const base: RedisOptions = {
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) || 0 : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  };
  if (target.redisSentinels.length === 0) {
    return { ...base, host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(u.port) || 6379 };
  }
  return {
    ...base,
    sentinels: target.redisSentinels.map((s) => ({ host: s.host, port: s.port })),
    name: target.redisMasterName,
    enableTLSForSentinelMode: u.protocol === 'rediss:',
    failoverDetector: true,
    sentinelRetryStrategy: (times) => equalJitterBackoff(times, 250, 10_000),
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
  };
}

/** Where a client points, for logs (password masked). */
export function describeRedisTarget(target: RedisTarget): string {
  if (target.redisCluster) return maskUrl(target.redisUrl.replace(/^redis\+cluster:/, 'redis:')).replace(/^redis:/, 'redis+cluster:');
  if (target.redisSentinels.length === 0) return maskUrl(target.redisUrl);
  return `sentinel://${target.redisSentinels.map((s) => `${s.host}:${s.port}`).join(',')}/${target.redisMasterName}`;
}

/** A Redis client with reconnect (exponential backoff with jitter, capped at 60 s) and an 'error' listener. */
export function createRedis({ target, logger, name, failFast = false }: RedisClientOptions): Redis {
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
  const url = describeRedisTarget(target);
  const redis = newRedisClient(target, options);
  setReplicaWait(redis, { replicas: target.redisWaitReplicas ?? 0, timeoutMs: target.redisWaitTimeoutMs ?? 500 });
  let lastError = '';
  redis.on('error', (err: Error) => {
    // ioredis emits the same connection error on every retry; log each distinct one once.
    if (err.message !== lastError) logger.warn({ err: err.message, redis: url }, 'redis error');
    lastError = err.message;
  });
  redis.on('ready', () => {
    if (lastError) logger.info({ redis: url }, 'redis connection restored');
    lastError = '';
  });
  return redis;
}

/** Whether Redis answers right now: connected, and a PING comes back (the readiness probes). */
export async function redisAnswers(redis: Redis): Promise<boolean> {
  return redis.status === 'ready' && (await redis.ping().then(() => true, () => false));
}

/** A client of the target with `options` on top of its connection options: a Redis, or a Redis Cluster client. */
export function newRedisClient(target: RedisTarget, options: RedisOptions = {}): Redis {
  const all = { ...redisConnectionOptions(target), ...options };
  return target.redisCluster ? createCluster(all) : new Redis(all);
}

/**
 * A Redis Cluster client seeded with REDIS_URL's node. It is typed as a Redis: it has the same commands, Lua
 * commands and events (the suite's keys put every script's and MULTI's keys in one slot, keys.ts), and what a
 * cluster does differently (SCAN per master) goes through masters().
 */
function createCluster(options: RedisOptions): Redis {
  const { host, port, retryStrategy, enableOfflineQueue, enableAutoPipelining, lazyConnect, ...node } = options;
  const clusterOptions: ClusterOptions = {
    redisOptions: node,
    lazyConnect,
    enableOfflineQueue,
    enableAutoPipelining,
    scaleReads: 'master',
    clusterRetryStrategy: retryStrategy ? (times) => retryStrategy(times) ?? null : undefined,
  };
  return new Cluster([{ host, port }], clusterOptions) as unknown as Redis;
}

/** The clients to SCAN: every master of a cluster (once it knows them), else the client itself. */
export async function masters(redis: Redis): Promise<Redis[]> {
  const cluster = redis as unknown as Cluster;
  if (!cluster.isCluster) return [redis];
  if (cluster.status !== 'ready') await waitForRedis(redis);
  return cluster.nodes('master');
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
 * command prefix. Call it with the script's keys and arguments; each call waits for the client's replicas
 * (REDIS_WAIT_REPLICAS) unless `replicated` is false.
 */
export function defineScript(redis: Redis, name: string, options: { replicated?: boolean } = {}): ScriptCall {
  return defineLuaCommand(redis, `lookup_${name.replace(/-/g, '_')}`, new URL(`./lua/${name}.lua`, import.meta.url), options);
}

/** Deletes every key under a prefix (tests, the benchmark and `namespace delete`), on every master of a cluster. */
export async function deleteByPrefix(redis: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  for (const node of await masters(redis)) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      // One UNLINK per key: a node's keys span many slots, and a multi-key command must stay in one.
      const counts = await Promise.all(batch.map((key) => node.unlink(key)));
      deleted += counts.reduce((a, b) => a + b, 0);
    } while (cursor !== '0');
  }
  return deleted;
}
