import { masters, newRedisClient } from '@lookup/store';

/** A client of REDIS_URL: a Redis Cluster client for a `redis+cluster://` URL, as the services make. */
export function benchRedis(redisUrl: string, options: { lazyConnect?: boolean; maxRetriesPerRequest?: number; enableAutoPipelining?: boolean } = {}) {
  const redis = newRedisClient({ redisUrl, redisSentinels: [], redisMasterName: 'unused', redisCluster: redisUrl.startsWith('redis+cluster:') }, options);
  redis.on('error', () => undefined);
  return redis;
}

/** `INFO commandstats` as { command: calls }, summed over every master of a cluster; `nodes`: how many answered. */
export async function redisCommandStats(redisUrl: string): Promise<Map<string, number> & { nodes?: number }> {
  const redis = benchRedis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const out: Map<string, number> & { nodes?: number } = new Map<string, number>();
    const nodes = await masters(redis);
    for (const node of nodes) {
      const text = await node.info('commandstats');
      for (const line of text.split('\n')) {
        const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
        if (m) out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]));
      }
    }
    out.nodes = nodes.length;
    return out;
  } finally {
    redis.disconnect();
  }
}

/** after - before per command, without the bench's own INFO calls; sorted by calls, largest first. */
export function commandDelta(before: Map<string, number> & { nodes?: number }, after: Map<string, number>): { total: number; byCommand: [string, number][] } {
  const byCommand: [string, number][] = [];
  let total = 0;
  for (const [cmd, calls] of after) {
    let d = calls - (before.get(cmd) ?? 0);
    // The 'before' snapshot's INFO, once per node (each node's own INFO is counted after it answers).
    if (cmd === 'info') d -= before.nodes ?? 1;
    if (d <= 0) continue;
    byCommand.push([cmd, d]);
    total += d;
  }
  byCommand.sort((a, b) => b[1] - a[1]);
  return { total, byCommand };
}

export interface AmqpCounts {
  /** Messages clients published into the namespace's exchanges (publish_in). */
  published: number;
  /** Messages routed into the namespace's queues (publish). */
  enqueued: number;
  /** Deliveries to consumers (deliver_get), redeliveries included. */
  delivered: number;
  redelivered: number;
  acked: number;
}

/**
 * Message counts of one namespace from the RabbitMQ management HTTP API (exchange and queue message_stats).
 * Undefined when the management plugin is not enabled or not reachable.
 */
export class RabbitStats {
  private constructor(private readonly base: string, private readonly auth: string, private readonly vhost: string) {}

  static async connect(amqpUrl: string, mgmtUrl?: string): Promise<RabbitStats | undefined> {
    const u = new URL(amqpUrl);
    const user = decodeURIComponent(u.username || 'guest');
    const pass = decodeURIComponent(u.password || 'guest');
    const vhost = decodeURIComponent(u.pathname.replace(/^\//, '')) || '/';
    const base = (mgmtUrl ?? `http://${u.hostname}:15672`).replace(/\/+$/, '');
    const stats = new RabbitStats(base, `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`, vhost);
    try {
      await stats.get('/api/overview');
      return stats;
    } catch {
      return undefined;
    }
  }

  private async get(path: string): Promise<unknown> {
    const res = await fetch(`${this.base}${path}`, { headers: { authorization: this.auth }, signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return res.json();
  }

  /** Every queue and exchange of the namespace (names starting with `<namespace>.`). */
  async names(namespace: string): Promise<{ queues: string[]; exchanges: string[] }> {
    const v = encodeURIComponent(this.vhost);
    const prefix = `${namespace}.`;
    const qs = (await this.get(`/api/queues/${v}?columns=name`)) as { name: string }[];
    const xs = (await this.get(`/api/exchanges/${v}?columns=name`)) as { name: string }[];
    return {
      queues: qs.map((q) => q.name).filter((n) => n.startsWith(prefix)),
      exchanges: xs.map((x) => x.name).filter((n) => n.startsWith(prefix)),
    };
  }

  async counts(namespace: string): Promise<AmqpCounts> {
    const v = encodeURIComponent(this.vhost);
    const prefix = `${namespace}.`;
    type Stats = { name: string; message_stats?: Record<string, number> };
    const xs = ((await this.get(`/api/exchanges/${v}?columns=name,message_stats`)) as Stats[]).filter((x) => x.name.startsWith(prefix));
    const qs = ((await this.get(`/api/queues/${v}?columns=name,message_stats`)) as Stats[]).filter((q) => q.name.startsWith(prefix));
    const sum = (items: Stats[], key: string) => items.reduce((a, i) => a + (i.message_stats?.[key] ?? 0), 0);
    return {
      published: sum(xs, 'publish_in'),
      enqueued: sum(qs, 'publish'),
      delivered: sum(qs, 'deliver_get'),
      redelivered: sum(qs, 'redeliver'),
      acked: sum(qs, 'ack'),
    };
  }

  /**
   * The management plugin aggregates statistics every collect_statistics_interval (5 s by default):
   * read until two reads a second apart agree, after at least `minWaitMs`.
   */
  async settledCounts(namespace: string, minWaitMs = 5500, maxWaitMs = 20_000): Promise<AmqpCounts> {
    const started = Date.now();
    await new Promise((r) => setTimeout(r, minWaitMs));
    let last = await this.counts(namespace);
    while (Date.now() - started < maxWaitMs) {
      await new Promise((r) => setTimeout(r, 1000));
      const next = await this.counts(namespace);
      if (JSON.stringify(next) === JSON.stringify(last)) return next;
      last = next;
    }
    return last;
  }
}

export function diffCounts(a: AmqpCounts, b: AmqpCounts): AmqpCounts {
  return {
    published: b.published - a.published,
    enqueued: b.enqueued - a.enqueued,
    delivered: b.delivered - a.delivered,
    redelivered: b.redelivered - a.redelivered,
    acked: b.acked - a.acked,
  };
}
