import type { DispatchSpec } from '@lookup/contracts';
import { defineScript, type Redis } from './redis.ts';
import { keys as makeKeys } from './keys.ts';

/**
 * admit's answer: `dispatch` (a slot was taken now: publish the job's commands), `dispatched` (the job already holds a
 * slot: a duplicate or redelivered job.submitted), `wait` (queued now), `waiting` (already queued).
 */
export type Admission = 'dispatch' | 'dispatched' | 'wait' | 'waiting';

export interface TenantDispatchDeps {
  redis: Redis;
  namespace: string;
  /** TENANT_DISPATCH_WINDOW: a tenant's jobs dispatched and unfinished at most (> 0). */
  windowSize: number;
  /** How long a slot is held if nothing releases it (the job's deadline plus a margin), in ms. */
  holdMs: number;
}

export type TenantDispatch = ReturnType<typeof createTenantDispatch>;

/** Waiting order: priority first (high, normal, low), then arrival. Epoch ms stay below 1e13 until the year 2286. */
const PRIORITY_RANK = { high: 0, normal: 1, low: 2 } as const;
const waitingScore = (priority: DispatchSpec['priority'], nowMs: number) => PRIORITY_RANK[priority ?? 'normal'] * 1e13 + nowMs;

function parseSpec(raw: string | null | undefined): DispatchSpec | undefined {
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as DispatchSpec;
  } catch {
    return undefined;
  }
}

/**
 * Fair dispatch across tenants (README, Tenant quotas: Fairness): a tenant's job is dispatched (its commands published)
 * only while fewer than `windowSize` of the tenant's jobs are dispatched and unfinished; the others wait in the tenant's
 * queue in Redis (lua/tenant-admit.lua) and are taken, highest priority then oldest first, as its jobs end
 * (lua/tenant-refill.lua). Every key of a tenant is in the tenant's hash slot. A job leaves its window or queue when it
 * ends (JobStore's release, with its in-flight quota slot); a slot whose release was lost lapses after `holdMs`, and the
 * sweeper drops slots of jobs that have finished (heal).
 */
export function createTenantDispatch({ redis, namespace, windowSize, holdMs }: TenantDispatchDeps) {
  const k = makeKeys(namespace);
  const admitScript = defineScript(redis, 'tenant-admit');
  const refillScript = defineScript(redis, 'tenant-refill');
  const ttlMs = 2 * holdMs;

  /** Takes a slot for the job or queues it (idempotent per job id: a duplicate takes nothing more). */
  async function admit(tenant: string, jobId: string, spec: DispatchSpec, nowMs = Date.now()): Promise<{ admission: Admission; waiting: number }> {
    const [admission, waiting] = (await admitScript(
      [k.tenantWindow(tenant), k.tenantWaiting(tenant), k.tenantSpecs(tenant)],
      [nowMs, windowSize, nowMs + holdMs, jobId, waitingScore(spec.priority, nowMs), JSON.stringify(spec), ttlMs],
    )) as [Admission, number];
    if (admission === 'wait') await redis.sadd(k.dispatchTenants, tenant);
    return { admission, waiting: Number(waiting) };
  }

  /** Moves waiting jobs into the free slots of the window: the jobs to publish now (then `published`), in order. */
  async function refill(tenant: string, nowMs = Date.now()): Promise<{ taken: { jobId: string; spec: DispatchSpec | undefined }[]; waiting: number }> {
    const [waiting, ...flat] = (await refillScript(
      [k.tenantWindow(tenant), k.tenantWaiting(tenant), k.tenantSpecs(tenant), k.tenantUnpublished(tenant)],
      [nowMs, windowSize, nowMs + holdMs, ttlMs],
    )) as [number, ...string[]];
    const taken: { jobId: string; spec: DispatchSpec | undefined }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) taken.push({ jobId: flat[i]!, spec: parseSpec(flat[i + 1]) });
    return { taken, waiting: Number(waiting) };
  }

  /** The commands of a job taken by refill were published (confirmed): it no longer needs the sweeper. */
  async function published(tenant: string, jobId: string): Promise<void> {
    await redis.multi().zrem(k.tenantUnpublished(tenant), jobId).hdel(k.tenantSpecs(tenant), jobId).exec();
  }

  /** Frees the job's slot or place in the queue (a job taken by refill that turned out finished). */
  async function release(tenant: string, jobIds: readonly string[]): Promise<void> {
    if (jobIds.length === 0) return;
    await redis
      .multi()
      .zrem(k.tenantWindow(tenant), ...jobIds)
      .zrem(k.tenantWaiting(tenant), ...jobIds)
      .zrem(k.tenantUnpublished(tenant), ...jobIds)
      .hdel(k.tenantSpecs(tenant), ...jobIds)
      .exec();
  }

  /** Jobs taken by refill before `beforeMs` whose commands were never confirmed published (their saga died). */
  async function unpublished(tenant: string, beforeMs: number): Promise<{ jobId: string; spec: DispatchSpec | undefined }[]> {
    const ids = await redis.zrangebyscore(k.tenantUnpublished(tenant), '-inf', beforeMs, 'LIMIT', 0, Math.max(windowSize, 100));
    if (ids.length === 0) return [];
    const specs = await redis.hmget(k.tenantSpecs(tenant), ...ids);
    return ids.map((jobId, i) => ({ jobId, spec: parseSpec(specs[i]) }));
  }

  /** The jobs holding a slot of the tenant's window now. */
  async function windowJobs(tenant: string, nowMs = Date.now()): Promise<string[]> {
    return redis.zrangebyscore(k.tenantWindow(tenant), `(${nowMs}`, '+inf');
  }

  /** The tenants with jobs waiting (or taken and not yet published), for the sweeper. */
  async function tenants(): Promise<string[]> {
    return redis.smembers(k.dispatchTenants);
  }

  /**
   * Forgets a tenant with nothing waiting and nothing unpublished, so the sweeper stops visiting it. Checked again after
   * the removal: a job queued meanwhile (its admit registers the tenant after its script) puts the tenant back.
   */
  async function forgetIfIdle(tenant: string): Promise<boolean> {
    const idle = async () => {
      const [w, u] = await Promise.all([redis.zcard(k.tenantWaiting(tenant)), redis.zcard(k.tenantUnpublished(tenant))]);
      return w === 0 && u === 0;
    };
    if (!(await idle())) return false;
    await redis.srem(k.dispatchTenants, tenant);
    if (await idle()) return true;
    await redis.sadd(k.dispatchTenants, tenant);
    return false;
  }

  /** How many of the tenant's jobs are dispatched and unfinished, and how many wait. */
  async function usage(tenant: string, nowMs = Date.now()): Promise<{ dispatched: number; waiting: number }> {
    const [dispatched, waiting] = await Promise.all([redis.zcount(k.tenantWindow(tenant), `(${nowMs}`, '+inf'), redis.zcard(k.tenantWaiting(tenant))]);
    return { dispatched, waiting };
  }

  return { windowSize, admit, refill, published, release, unpublished, windowJobs, tenants, forgetIfIdle, usage };
}
