// Issue 15: the suite on a Redis Cluster (three masters on loopback, REDIS_URL=redis+cluster://…): every Lua script
// and MULTI touches one hash slot (keys.ts), so jobs, a batch, a cancellation, the deadline sweeper, rate limits,
// a pinned resource (the directory's scripts) and the namespace CLI work across the three masters.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, JOB_SHARDS, createJobStore, deleteByPrefix, newIdInShard, newRedisClient, type Redis, keys as storeKeys, masters } from '@lookup/store';
import { startDnsFixture, startRdapFixture } from '../fixtures/index.ts';
import { REPO_ROOT, fixtureEnv } from '../support/env.ts';
import { awaitJobs, submitLoad } from '../support/load.ts';
import { cleanupAmqpNamespace, newNamespace } from '../support/namespace.ts';
import { startSuite, waitFor, type Suite } from '../support/processes.ts';
import { startRedisCluster, stopAllRedisNodes, type ClusterSetup } from '../support/redis-nodes.ts';
import { resourceEnv, sqlUntilOk, startWorker, stopAll, type Worker } from '../support/resources.ts';

const ns = newNamespace('rcluster');
let rdap: Awaited<ReturnType<typeof startRdapFixture>>;
let dns: Awaited<ReturnType<typeof startDnsFixture>>;
let cluster: ClusterSetup;
let raw: Cluster;
let suite: Suite;
let worker: Worker | undefined;
const res = resourceEnv(ns);

beforeAll(async () => {
  [rdap, dns, cluster] = await Promise.all([startRdapFixture({}), startDnsFixture({}), startRedisCluster()]);
  raw = new Cluster([{ host: '127.0.0.1', port: cluster.nodes[0]!.port }]);
  const env = fixtureEnv({ rdapUrl: rdap.url, dnsAddress: dns.address }, { ...cluster.env, RESOURCE_DATA_DIR: res.dataDir, RESOURCE_HEARTBEAT_MS: '250', RESOURCE_MAX_MISSED: '4', JOB_DEADLINE_MS: '20000', DEADLINE_SWEEP_MS: '200' });
  suite = await startSuite({ namespace: ns, env });
  worker = await startWorker({ ...env, NAMESPACE: ns });
});

afterAll(async () => {
  if (worker) await stopAll([worker]);
  await suite?.stop();
  raw?.disconnect();
  await stopAllRedisNodes();
  await Promise.all([rdap?.close(), dns?.close()]);
  await cleanupAmqpNamespace(ns);
  res.cleanup();
});

const post = (path: string, body: unknown) => fetch(`${suite.apiUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('the suite on a three-master Redis Cluster', () => {
  it('completes jobs whose keys are spread over every master', async () => {
    const load = await submitLoad(suite.apiUrl, { jobs: 60, concurrency: 8, body: { target: '127.0.0.2' } });
    const docs = await awaitJobs(suite.apiUrl, load.accepted, 60_000);
    expect(load.accepted).toHaveLength(60);
    for (const id of load.accepted) expect(docs.get(id)).toMatchObject({ status: 'Completed', completionPercentage: 100 });
    // Every job hash is on one master (SCAN each), and more than one master holds jobs.
    const jobKeys = new Set(load.accepted.map((id) => storeKeys(ns).job(id)));
    const perMaster = await Promise.all((await masters(raw as never)).map(async (node) => (await scanAll(node, `${ns}:*`)).filter((key) => jobKeys.has(key)).length));
    expect(perMaster.reduce((a, b) => a + b, 0)).toBe(60);
    expect(perMaster.filter((n) => n > 0).length).toBeGreaterThan(1);
  });

  it('creates a batch atomically in one slot and completes it', async () => {
    const items = Array.from({ length: 12 }, (_, i) => ({ target: `127.0.0.${i + 2}` }));
    const r = await post('/api/lookup/batch', { items, services: ['GeoIP'] });
    expect(r.status).toBe(202);
    const accepted = (await r.json()) as { batchId: string; jobs: { jobId: string }[] };
    expect(accepted.jobs).toHaveLength(12);
    const done = await waitFor(async () => {
      const b = (await (await fetch(`${suite.apiUrl}/api/lookup/batch/${accepted.batchId}`)).json()) as { counts: Record<string, number> };
      return b.counts.Completed === 12 ? b : undefined;
    }, 60_000);
    expect(done.counts).toMatchObject({ Completed: 12, Pending: 0, Processing: 0 });
  });

  it('cancels a job (the cancel script: job, deadline index and events in one slot)', async () => {
    const a = (await (await post('/api/lookup', { target: '127.0.0.3', services: ['RDAP'] })).json()) as { jobId: string };
    const del = await fetch(`${suite.apiUrl}/api/lookup/${a.jobId}`, { method: 'DELETE' });
    expect([202, 409]).toContain(del.status);
    const [doc] = [...(await awaitJobs(suite.apiUrl, [a.jobId], 30_000)).values()];
    expect(['Cancelled', 'Completed']).toContain(doc!.status);
    expect(await raw.zscore(storeKeys(ns).deadlines(a.jobId), a.jobId)).toBeNull();
  });

  it('runs job scripts of every shard in one tick on an auto-pipelining client, and lists them over the 16 shard indexes', async () => {
    // The services' client options: auto-pipelining groups commands by node, which scripts must not join (lua-script.ts).
    const client = newRedisClient({ redisUrl: cluster.env.REDIS_URL!, redisSentinels: [], redisMasterName: 'unused', redisCluster: true }, { enableAutoPipelining: true });
    try {
      const store = createJobStore({ redis: client, namespace: ns, ttlSeconds: 600 });
      const base = Date.now() + 60_000; // newer than every job of the other tests
      const jobs = Array.from({ length: 2 * JOB_SHARDS }, (_, i) => ({
        jobId: newIdInShard(i % JOB_SHARDS), target: '127.0.0.2', targetType: 'IPAddress' as const, services: [0 as const],
        createdAt: new Date(base + ((i * 7) % (2 * JOB_SHARDS))).toISOString(), deadlineAt: base + 60_000,
      }));
      await Promise.all(jobs.map((j) => store.create(j)));
      const expected = [...jobs].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt)).map((j) => j.jobId);
      const seen: string[] = [];
      let after: string | undefined;
      do {
        const page = await store.list({ limit: 6, sinceMs: base, after });
        seen.push(...page.jobs.map((j) => j.jobId));
        after = page.next ?? undefined;
      } while (after && seen.length <= expected.length);
      expect(seen).toEqual(expected);
      // The API's listing too (its index entries on every master).
      const res = await fetch(`${suite.apiUrl}/api/lookup?limit=${expected.length}`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { jobs: { jobId: string }[] }).jobs.map((j) => j.jobId)).toEqual(expected);
    } finally {
      client.disconnect();
    }
  });

  it('serves a pinned resource through the resource directory on the cluster', async () => {
    const created = await sqlUntilOk(suite.apiUrl, 'clustered', 'CREATE TABLE t (v TEXT)');
    expect(created.owner).toBe(worker!.id);
    const read = await sqlUntilOk(suite.apiUrl, 'clustered', 'SELECT count(*) AS n FROM t');
    expect(read.body.rows).toEqual([{ n: 0 }]);
  });

  it('namespace show counts the keys on every master; deleteByPrefix removes them from every master', async () => {
    const run = promisify(execFile);
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/namespace.ts', 'show', ns], { cwd: REPO_ROOT, env: { ...process.env, ...cluster.env } });
    expect((JSON.parse(stdout) as { redisKeys: number }).redisKeys).toBeGreaterThan(60);
    // Keys in many slots (hence on every master), deleted by one call.
    await Promise.all(Array.from({ length: 50 }, (_, i) => raw.set(`${ns}:cleanup:${i}`, '1')));
    expect(await deleteByPrefix(raw as never, `${ns}:cleanup:`)).toBe(50);
    for (const node of await masters(raw as never)) expect(await scanAll(node, `${ns}:cleanup:*`)).toEqual([]);
  });
});

async function scanAll(node: Redis, match: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found;
}
