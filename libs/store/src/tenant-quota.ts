import { defineScript, type Redis } from './redis.ts';
import { keys as makeKeys } from './keys.ts';

/** A tenant's quotas (0 = unlimited), as TENANTS configures them. */
export interface TenantLimits {
  jobsPerDay: number;
  jobsInFlight: number;
}

export interface TenantUsage {
  /** The UTC day the daily count is for (`YYYY-MM-DD`). */
  day: string;
  jobsToday: number;
  jobsInFlight: number;
}

export type TenantQuotaDecision =
  | ({ allowed: true } & TenantUsage)
  | ({ allowed: false; reason: 'day' | 'in-flight'; /** Seconds until the daily quota renews ('day' only). */ retryAfterSeconds?: number } & TenantUsage);

export interface TenantQuotaDeps {
  redis: Redis;
  namespace: string;
  /** How long a job holds an in-flight slot if nothing releases it (its deadline plus a margin), in ms. */
  holdMs: number;
}

export type TenantQuota = ReturnType<typeof createTenantQuota>;

const DAY_MS = 24 * 3600 * 1000;
const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * Per-tenant quotas (lua/tenant-quota.lua): jobs per UTC day and jobs in flight. `acquire` checks and spends both
 * for a submission's job ids, all or none; `release` frees a job's in-flight slot when the job ends (the job store
 * calls it on completion, deadline expiry and cancellation). A job is a member of the tenant's in-flight set, so a
 * duplicate release frees nothing more; a job whose release was lost (a crash between its end and the release)
 * leaves the set when its hold lapses (`holdMs` after submission), so the count heals by itself.
 */
export function createTenantQuota({ redis, namespace, holdMs }: TenantQuotaDeps) {
  const k = makeKeys(namespace);
  const script = defineScript(redis, 'tenant-quota');

  async function acquire(tenant: string, limits: TenantLimits, jobIds: readonly string[], nowMs = Date.now()): Promise<TenantQuotaDecision> {
    const day = utcDay(nowMs);
    const secondsLeftToday = Math.ceil((DAY_MS - (nowMs % DAY_MS)) / 1000);
    const [allowed, reason, today, inFlight] = (await script(
      [k.tenantDay(tenant, day), k.tenantInFlight(tenant)],
      [nowMs, limits.jobsPerDay, limits.jobsInFlight, secondsLeftToday + 3600, nowMs + holdMs, ...jobIds],
    )) as [number, string, number, number];
    const usage = { day, jobsToday: Number(today), jobsInFlight: Number(inFlight) };
    if (allowed === 1) return { allowed: true, ...usage };
    return reason === 'day' ? { allowed: false, reason, retryAfterSeconds: secondsLeftToday, ...usage } : { allowed: false, reason: 'in-flight', ...usage };
  }

  /** Frees the jobs' in-flight slots (a job already released, or never held, changes nothing). */
  async function release(tenant: string, jobIds: readonly string[]): Promise<void> {
    if (jobIds.length > 0) await redis.zrem(k.tenantInFlight(tenant), ...jobIds);
  }

  /** The tenant's usage now (holds that lapsed are not counted). */
  async function usage(tenant: string, nowMs = Date.now()): Promise<TenantUsage> {
    const day = utcDay(nowMs);
    const [today, inFlight] = await Promise.all([redis.get(k.tenantDay(tenant, day)), redis.zcount(k.tenantInFlight(tenant), `(${nowMs}`, '+inf')]);
    return { day, jobsToday: Number(today ?? 0), jobsInFlight: inFlight };
  }

  return { acquire, release, usage };
}
