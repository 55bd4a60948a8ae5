import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { rawRedis } from './support/redis.ts';
import type { StoredResult } from '@lookup/contracts';
import { createResultStore, deleteByPrefix, keys as storeKeys } from '@lookup/store';
import { newNamespace } from './support/namespace.ts';

const ns = newNamespace('results');
const redis = rawRedis();
const store = createResultStore({ redis, namespace: ns, ttlSeconds: 300 });

afterAll(async () => {
  await deleteByPrefix(redis, `${ns}:`);
  redis.disconnect();
});

const result = (jobId: string, data: Record<string, unknown>): StoredResult => ({
  jobId, serviceType: 2, status: 'Succeeded', success: true, data, errorMessage: null, durationMs: 3, attempts: 1, completedAt: new Date().toISOString(),
});

describe('result store', () => {
  it('stores under an idempotent per-(job, service) key with a TTL; the first result wins', async () => {
    const jobId = randomUUID();
    const first = await store.save(result(jobId, { n: 1 }));
    expect(first.created).toBe(true);
    expect(first.location).toEqual({ storage: 'redis', key: storeKeys(ns).result(jobId, 2) });
    const ttl = await redis.ttl(first.location.key);
    expect(ttl).toBeGreaterThan(200);
    expect(ttl).toBeLessThanOrEqual(300);

    const second = await store.save(result(jobId, { n: 2 }));
    expect(second.created).toBe(false);
    expect(second.result.data).toEqual({ n: 1 });
    expect(JSON.parse((await redis.get(first.location.key))!).data).toEqual({ n: 1 });
    expect((await store.find(jobId, 2))?.data).toEqual({ n: 1 });
    expect(await store.find(jobId, 3)).toBeUndefined();
  });

  it('lets exactly one of many concurrent writers win', async () => {
    const jobId = randomUUID();
    const outcomes = await Promise.all(Array.from({ length: 25 }, (_, i) => store.save(result(jobId, { n: i }))));
    expect(outcomes.filter((o) => o.created)).toHaveLength(1);
    const winner = outcomes.find((o) => o.created)!.result.data;
    expect(outcomes.every((o) => JSON.stringify(o.result.data) === JSON.stringify(winner))).toBe(true);
  });
});

describe('result store: saveIfOpen', () => {
  const openJob = async (status: string, services = '2,3') => {
    const jobId = randomUUID();
    await redis.hset(storeKeys(ns).job(jobId), { jobId, status, services, total: services.split(',').length, done: 0, createdAt: '2026-12-01T00:00:00.000Z' });
    return jobId;
  };

  it('stores while the job is Pending or Processing, first result wins', async () => {
    for (const status of ['Pending', 'Processing']) {
      const jobId = await openJob(status);
      const first = await store.saveIfOpen(result(jobId, { n: 1 }));
      expect(first).toMatchObject({ created: true, location: { storage: 'redis', key: storeKeys(ns).result(jobId, 2) } });
      expect(await redis.ttl(storeKeys(ns).result(jobId, 2))).toBeGreaterThan(200);
      const second = await store.saveIfOpen(result(jobId, { n: 2 }));
      expect(second).toMatchObject({ created: false, result: { data: { n: 1 } } });
      expect((await store.find(jobId, 2))?.data).toEqual({ n: 1 });
    }
  });

  it('stores nothing for a finished job or one that does not exist', async () => {
    for (const status of ['Completed', 'Cancelled'] as const) {
      const jobId = await openJob(status);
      expect(await store.saveIfOpen(result(jobId, { n: 1 }))).toEqual({ skipped: 'finished', status });
      expect(await redis.exists(storeKeys(ns).result(jobId, 2))).toBe(0);
    }
    const gone = randomUUID();
    expect(await store.saveIfOpen(result(gone, { n: 1 }))).toEqual({ skipped: 'missing' });
    expect(await redis.exists(storeKeys(ns).result(gone, 2))).toBe(0);
  });

  it('stores nothing for a service the job did not request', async () => {
    const jobId = await openJob('Processing', '0,1');
    expect(await store.saveIfOpen(result(jobId, { n: 1 }))).toEqual({ skipped: 'unrequested', status: 'Processing' });
    expect(await redis.exists(storeKeys(ns).result(jobId, 2))).toBe(0);
  });

  it("records the stored result's outcome on the job in the same step, completing the job with its last outcome", async () => {
    const jobId = await openJob('Processing', '2,3');
    const job = storeKeys(ns).job(jobId);
    const first = await store.saveIfOpen(result(jobId, { n: 1 }), '2026-12-01T00:00:01.000Z');
    expect(first).toMatchObject({ created: true, recorded: { disposition: 'recorded', status: 'Processing', notified: false } });
    expect(JSON.parse((await redis.hget(job, 'o:2'))!)).toMatchObject({ status: 'Succeeded', location: { storage: 'redis', key: storeKeys(ns).result(jobId, 2) } });
    // A second delivery finds the result stored and records nothing (its caller announces the stored one).
    expect(await store.saveIfOpen(result(jobId, { n: 2 }))).not.toHaveProperty('recorded');
    const last = await store.saveIfOpen({ ...result(jobId, { n: 3 }), serviceType: 3 }, '2026-12-01T00:00:02.000Z');
    expect(last).toMatchObject({ created: true, recorded: { disposition: 'recorded', status: 'Completed', createdAt: '2026-12-01T00:00:00.000Z' } });
    expect(await redis.hmget(job, 'status', 'completedAt', 'done')).toEqual(['Completed', '2026-12-01T00:00:02.000Z', '2']);
    expect((await redis.xrange(storeKeys(ns).jobEvents(jobId), '-', '+')).map(([, f]) => f.slice(0, 4).join(' '))).toEqual([
      'type result service 2',
      'type result service 3',
      'type completed',
    ]);
  });
});
