import { randomUUID } from 'node:crypto';
import type { ServiceType } from '@lookup/contracts';

/**
 * Jobs are spread over JOB_SHARDS hash-slot groups. Every key of a job (hash, event stream, results) and the
 * deadline index of its shard carry the shard's hash tag, so each job script touches one hash slot and runs on
 * Redis Cluster; on a single Redis (or Sentinel) the tags change nothing.
 */
export const JOB_SHARDS = 16;

/** A job's shard: the first hex digit of its id (ids are random UUIDs, so shards fill evenly). */
export function jobShard(id: string): number {
  const digit = Number.parseInt(id.charAt(0), 16);
  return Number.isNaN(digit) ? id.charCodeAt(0) % JOB_SHARDS || 0 : digit;
}

/** A random UUID in `shard` (its first hex digit set): a batch's jobs share the batch's shard, so one script
 *  creates them all atomically on a cluster too. */
export function newIdInShard(shard: number): string {
  return `${(shard % JOB_SHARDS).toString(16)}${randomUUID().slice(1)}`;
}

/** Every Redis key of a suite starts with its NAMESPACE, so suites (and tests) can share one Redis. */
export function keys(namespace: string) {
  /** The hash tag of a shard (`{ns:s7}`): what Redis Cluster hashes, instead of the whole key. */
  const shardTag = (shard: number) => `${namespace}:{${namespace}:s${shard.toString(16)}}`;
  const jobTag = (jobId: string) => shardTag(jobShard(jobId));
  return {
    prefix: `${namespace}:`,
    job: (jobId: string) => `${jobTag(jobId)}:job:${jobId}`,
    /** The job's event stream (a Redis Stream, lua/includes/job-event.lua), also the name of its wake-up channel. */
    jobEvents: (jobId: string) => `${jobTag(jobId)}:job:${jobId}:events`,
    result: (jobId: string, service: ServiceType) => `${jobTag(jobId)}:result:${jobId}:${service}`,
    /**
     * Rate-limit buckets share one hash tag, so the script checking a client's bucket and the global one stays
     * atomic on a cluster (every check goes to the one node that owns that slot).
     */
    rateLimit: (tier: string, client: string) => `${namespace}:{${namespace}:rl}:rl:${tier}:${client}`,
    deliveries: (queue: string, messageId: string) => `${namespace}:deliveries:${queue}:${messageId}`,
    /** Sorted set of the shard's unfinished jobs scored by deadline (epoch ms): the one of a job's shard. */
    deadlines: (jobId: string) => `${jobTag(jobId)}:deadlines`,
    /** Every shard's deadline index (the sweeper reads them all). */
    allDeadlines: Array.from({ length: JOB_SHARDS }, (_, s) => `${shardTag(s)}:deadlines`),
    /** The outcomes of the shard's finished jobs, one entry per job, queued when its end is announced
     *  (lua/mark-notified.lua) for the API's metrics, which drain every shard's (JobStore.drainOutcomes). */
    endedOutcomes: (jobId: string) => `${jobTag(jobId)}:ended-outcomes`,
    allEndedOutcomes: Array.from({ length: JOB_SHARDS }, (_, s) => `${shardTag(s)}:ended-outcomes`),
    /** A batch submission (POST /api/lookup/batch): its job ids in item order, kept as long as its jobs; in the
     *  shard of its id, which is its jobs' shard too (newIdInShard). */
    batch: (batchId: string) => `${jobTag(batchId)}:batch:${batchId}`,
    /** A job's completion-callback delivery: hash of its state, and the list of its attempts (JSON), with the job's
     *  TTL; in the job's hash slot (one MULTI writes both). */
    callback: (jobId: string) => `${jobTag(jobId)}:callback:${jobId}`,
    callbackAttempts: (jobId: string) => `${jobTag(jobId)}:callback:${jobId}:attempts`,
    /** A recent successful lookup of a service and target (result reuse, CACHE_TTL_<SERVICE>), and its single-flight
     *  claim (single-key commands only, so any slot). */
    resultCache: (service: ServiceType, target: string) => `${namespace}:cache:${service}:${target}`,
    resultFlight: (service: ServiceType, target: string) => `${namespace}:flight:${service}:${target}`,
    /** A tenant's quota keys (lua/tenant-quota.lua), in one hash slot per tenant: its jobs submitted on a UTC day
     *  (`YYYY-MM-DD`, a counter expiring after that day), and its unfinished jobs (a sorted set of job ids scored by
     *  the time the hold lapses on its own, should no end ever release it). */
    tenantDay: (tenant: string, day: string) => `${namespace}:{${namespace}:t:${tenant}}:quota:day:${day}`,
    tenantInFlight: (tenant: string) => `${namespace}:{${namespace}:t:${tenant}}:quota:in-flight`,
    /** A tenant's dispatch window (TENANT_DISPATCH_WINDOW, tenant-dispatch.ts), in the tenant's hash slot: its dispatched,
     *  unfinished jobs (sorted set scored by when the slot lapses by itself), its jobs waiting for a slot (sorted set
     *  scored by priority, then arrival), what each waiting or not yet published job dispatches (hash: job id to JSON),
     *  and the jobs taken from the waiting queue whose commands are not yet confirmed published (sorted set: when). */
    tenantWindow: (tenant: string) => `${namespace}:{${namespace}:t:${tenant}}:dispatch:window`,
    tenantWaiting: (tenant: string) => `${namespace}:{${namespace}:t:${tenant}}:dispatch:waiting`,
    tenantSpecs: (tenant: string) => `${namespace}:{${namespace}:t:${tenant}}:dispatch:specs`,
    tenantUnpublished: (tenant: string) => `${namespace}:{${namespace}:t:${tenant}}:dispatch:unpublished`,
    /** The tenants that have jobs waiting for their window (a set; the elected sweeper refills them). */
    dispatchTenants: `${namespace}:dispatch:tenants`,
    idempotency: (client: string, key: string) => `${namespace}:idem:${client}:${key}`,
    /** The job listing's index (GET /api/lookup) of a job's shard: a sorted set, every score 0, members `<createdAt ms,
     *  16 digits>:<jobId>`, so lexicographic order is creation order; written by the job's create script (in its slot),
     *  trimmed to JOB_TTL_SECONDS (lua/includes/index-job.lua). */
    jobIndex: (jobId: string) => `${jobTag(jobId)}:jobs:by-created`,
    /** Every shard's listing index (the listing merges them, job-index.ts). */
    allJobIndexes: Array.from({ length: JOB_SHARDS }, (_, s) => `${shardTag(s)}:jobs:by-created`),
  };
}
export type Keys = ReturnType<typeof keys>;
