/**
 * A suite's RabbitMQ queues and exchanges and Redis keys, from a shell:
 *   npm run namespace -- show NS             what exists of namespace NS (read-only: nothing is declared)
 *   npm run namespace -- delete NS --yes     remove them all (refused while a process of NS is consuming)
 * NS is always given explicitly (never taken from NAMESPACE), so a teardown names what it removes. Uses AMQP_URL
 * and REDIS_URL like every service. Usage errors exit 2; a refused or failed teardown exits 1.
 */
import { parseArgs } from 'node:util';
import { loadConfigOrExit, maskUrl } from '@lookup/config';
import { SERVICE_CATALOGUE, mapBounded } from '@lookup/contracts';
import { declarations } from '@lookup/messaging';
import { deleteByPrefix, describeRedisTarget, masters, newRedisClient, type Redis } from '@lookup/store';
import { UsageError, checkExchange, checkQueue, connectAmqp, fail, failUsage, type Connection, type QueueState } from './cli-support.ts';

const USAGE = `usage: npm run namespace -- <command> NS
  show NS                 list the queues and exchanges of namespace NS that exist, and count its Redis keys
  delete NS --yes         delete them: every queue and exchange the suite declares (work, delay and dead-letter
                          queues included, with their messages) and every Redis key NS:* (jobs, results, leases)
      --force             delete even while processes of NS are connected (they will fail and reconnect)
NS: 1-64 letters, digits, '-' or '_' (the NAMESPACE the suite ran with). AMQP_URL and REDIS_URL say where.`;

/** Highest RETRY_MAX_ATTEMPTS accepted by the config: the delay queues of every backoff are covered. */
const MAX_ATTEMPTS = 10;

let command: string;
let ns: string;
let values: { yes?: boolean; force?: boolean; help?: boolean };
try {
  const parsed = parseArgs({
    allowPositionals: true,
    strict: true,
    options: { yes: { type: 'boolean' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  values = parsed.values;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const [first, second, ...rest] = parsed.positionals;
  if (first === undefined) throw new UsageError('no command given');
  if (!['show', 'delete'].includes(first)) throw new UsageError(`unknown command '${first}'`);
  if (second === undefined) throw new UsageError(`${first} needs the namespace: npm run namespace -- ${first} NS${first === 'delete' ? ' --yes' : ''}`);
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$/.test(second)) throw new UsageError(`'${second}' is not a namespace (1-64 letters, digits, '-' or '_')`);
  if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
  if (first === 'show' && (values.yes || values.force)) throw new UsageError('show takes no --yes or --force');
  command = first;
  ns = second;
} catch (err) {
  failUsage(`namespace: ${(err as Error).message}`, USAGE);
}

const config = loadConfigOrExit({ ...process.env, NAMESPACE: ns });

/** Every durable name the suite may have declared in `ns`, whatever its retry settings were. */
function durableNames(namespace: string): { queues: string[]; exchanges: string[] } {
  const d = declarations(namespace, { maxAttempts: MAX_ATTEMPTS });
  // The delay queues before the bucket scheme (`<ns>.retry.<slug>.<attempt>`): see README, Retries.
  const legacy = SERVICE_CATALOGUE.flatMap((s) => Array.from({ length: MAX_ATTEMPTS }, (_, i) => `${namespace}.retry.${s.slug}.${i + 1}`));
  return { queues: [...d.queues.map((q) => q.name), ...legacy], exchanges: d.exchanges.map((e) => e.name) };
}


/** Which of the names exist (passive checks, a few hundred: most delay buckets were never declared). */
async function survey(connection: Connection, namespace: string) {
  const names = durableNames(namespace);
  const states = await mapBounded(names.queues, 32, (name) => checkQueue(connection, name));
  const queues = names.queues.flatMap((name, i) => (states[i] ? [{ name, state: states[i]! }] : []));
  const found = await mapBounded(names.exchanges, 4, (name) => checkExchange(connection, name));
  const exchanges = names.exchanges.filter((_, i) => found[i]);
  return { queues, exchanges };
}

async function withRedis<T>(fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = newRedisClient(config, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 10_000, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
  } catch (err) {
    fail(`could not reach Redis at ${describeRedisTarget(config)}: ${(err as Error).message}`);
  }
  try {
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

/** Keys under the prefix, on every master of a cluster. */
async function countKeys(redis: Redis, prefix: string): Promise<number> {
  let count = 0;
  for (const node of await masters(redis)) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      count += batch.length;
    } while (cursor !== '0');
  }
  return count;
}

process.stderr.write(`NAMESPACE ${ns} on ${maskUrl(config.amqpUrl)} and ${describeRedisTarget(config)}\n`);
const connection = await connectAmqp(config.amqpUrl, `${ns}-namespace-cli`);
try {
  const found = await survey(connection, ns);
  const keyCount = await withRedis((redis) => countKeys(redis, `${ns}:`));
  const consumers = found.queues.filter((q) => q.state.consumerCount > 0);
  if (command === 'show') {
    process.stdout.write(
      `${JSON.stringify(
        {
          namespace: ns,
          queues: found.queues.map((q) => ({ name: q.name, messages: q.state.messageCount, consumers: q.state.consumerCount })),
          exchanges: found.exchanges,
          redisKeys: keyCount,
        },
        null,
        2,
      )}\n`,
    );
  } else {
    if (!values.yes) {
      fail(
        `would delete ${found.queues.length} queues (${found.queues.reduce((n, q) => n + q.state.messageCount, 0)} messages), ` +
          `${found.exchanges.length} exchanges and ${keyCount} Redis keys of namespace ${ns}; nothing deleted: add --yes to delete them`,
      );
    }
    if (consumers.length > 0 && !values.force) {
      fail(
        `processes of namespace ${ns} are running (consumers on ${consumers.map((q) => q.name).join(', ')}); ` +
          'stop them first (or add --force); nothing deleted',
      );
    }
    const channel = await connection.createChannel();
    let messages = 0;
    for (const q of found.queues) messages += (await channel.deleteQueue(q.name)).messageCount;
    for (const e of found.exchanges) await channel.deleteExchange(e);
    await channel.close().catch(() => undefined);
    const keys = await withRedis((redis) => deleteByPrefix(redis, `${ns}:`));
    process.stdout.write(`${JSON.stringify({ namespace: ns, deleted: { queues: found.queues.length, messages, exchanges: found.exchanges.length, redisKeys: keys } }, null, 2)}\n`);
  }
} finally {
  await connection.close().catch(() => undefined);
}
