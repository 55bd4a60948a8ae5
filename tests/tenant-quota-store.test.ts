import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createJobStore, createTenantQuota, deleteByPrefix, keys as storeKeys } from '@lookup/store';
import { newNamespace } from './support/namespace.ts';
import { rawRedis } from './support/redis.ts';

// The tenant quota script (lua/tenant-quota.lua) and the job store's release of a job's slot, on the real Redis.
const ns = newNamespace('tquota');
const redis = rawRedis();
const quota = createTenantQuota({ redis, namespace: ns, holdMs: 60_000 });
const jobs = createJobStore({ redis, namespace: ns, ttlSeconds: 300 });
const k = storeKeys(ns);
const ids = (n: number) => Array.from({ length: n }, () => randomUUID());

afterAll(async () => {
  await deleteByPrefix(redis, `${ns}:`);
  redis.disconnect();
});

describe('tenant quota store', () => {
  it('spends a batch all or none against the in-flight quota, and a release frees a slot once', async () => {
    const limits = { jobsPerDay: 0, jobsInFlight: 5 };
    const refused = await quota.acquire('a', limits, ids(20));
    expect(refused).toMatchObject({ allowed: false, reason: 'in-flight', jobsInFlight: 0, jobsToday: 0 });
    const five = ids(5);
    expect(await quota.acquire('a', limits, five)).toMatchObject({ allowed: true, jobsInFlight: 5, jobsToday: 5 });
    expect(await quota.acquire('a', limits, ids(1))).toMatchObject({ allowed: false, reason: 'in-flight' });
    expect(await quota.acquire('b', limits, ids(1))).toMatchObject({ allowed: true, jobsInFlight: 1 }); // another tenant is not affected
    await quota.release('a', [five[0]!]);
    await quota.release('a', [five[0]!]); // a duplicate release frees nothing more
    expect(await quota.usage('a')).toMatchObject({ jobsInFlight: 4, jobsToday: 5 });
    expect(await redis.zcard(k.tenantInFlight('a'))).toBe(4);
  });

  it('refuses past the daily quota with the seconds until the UTC day ends, and the counter expires after the day', async () => {
    // The last minute of a UTC day a year ahead: the holds' key expires at an absolute time (PEXPIREAT now + holdMs),
    // so `now` must lie ahead of the wall clock (a fixed date in the past made Redis drop the holds at once).
    const year = new Date().getUTCFullYear() + 1;
    const now = Date.UTC(year, 11, 30, 23, 59, 0);
    const [today, tomorrow] = [`${year}-12-30`, `${year}-12-31`];
    const limits = { jobsPerDay: 3, jobsInFlight: 0 };
    expect(await quota.acquire('d', limits, ids(2), now)).toMatchObject({ allowed: true, jobsToday: 2, day: today });
    expect(await quota.acquire('d', limits, ids(2), now)).toEqual({ allowed: false, reason: 'day', retryAfterSeconds: 60, day: today, jobsToday: 2, jobsInFlight: 2 });
    const ttl = await redis.ttl(k.tenantDay('d', today));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60 + 3600);
    // The next UTC day has its own counter.
    expect(await quota.acquire('d', limits, ids(3), now + 120_000)).toMatchObject({ allowed: true, jobsToday: 3, day: tomorrow });
  });

  it('drops a hold that lapsed (its end was never released) before counting', async () => {
    const short = createTenantQuota({ redis, namespace: ns, holdMs: 1_000 });
    const now = Date.now();
    await short.acquire('h', { jobsPerDay: 0, jobsInFlight: 1 }, ids(1), now);
    expect(await short.acquire('h', { jobsPerDay: 0, jobsInFlight: 1 }, ids(1), now + 500)).toMatchObject({ allowed: false });
    expect(await short.acquire('h', { jobsPerDay: 0, jobsInFlight: 1 }, ids(1), now + 2_000)).toMatchObject({ allowed: true, jobsInFlight: 1 });
  });

  it('the job store frees the slot when a job ends: completed, cancelled or expired, each once', async () => {
    const limits = { jobsPerDay: 0, jobsInFlight: 10 };
    const [done, cancelled, expired] = ids(3) as [string, string, string];
    await quota.acquire('j', limits, [done, cancelled, expired]);
    const base = { target: '127.0.0.2', targetType: 'IPAddress' as const, services: [0 as const], createdAt: new Date().toISOString(), tenant: 'j' };
    await jobs.create({ ...base, jobId: done, deadlineAt: Date.now() + 60_000 });
    await jobs.create({ ...base, jobId: cancelled, deadlineAt: Date.now() + 60_000 });
    await jobs.create({ ...base, jobId: expired, deadlineAt: Date.now() - 1 });
    const outcome = { status: 'Succeeded' as const, success: true, errorMessage: null, errorCode: null, completedAt: base.createdAt, durationMs: 1, attempts: 1, location: null };
    expect((await jobs.recordOutcome(done, 0, outcome, base.createdAt)).status).toBe('Completed');
    expect((await jobs.cancel(cancelled, base.createdAt)).disposition).toBe('cancelled');
    expect((await jobs.expire(expired, new Date())).disposition).toBe('expired');
    expect(await redis.zrange(k.tenantInFlight('j'), 0, -1)).toEqual([]);
    expect((await jobs.cancel(done, base.createdAt)).disposition).toBe('finished');
    expect(await quota.usage('j')).toMatchObject({ jobsInFlight: 0, jobsToday: 3 });
  });
});
