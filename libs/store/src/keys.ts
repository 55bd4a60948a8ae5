import type { ServiceType } from '@lookup/contracts';

/** Every Redis key of a suite starts with its NAMESPACE, so suites (and tests) can share one Redis. */
export function keys(namespace: string) {
  return {
    prefix: `${namespace}:`,
    job: (jobId: string) => `${namespace}:job:${jobId}`,
    /** The job's event stream (a Redis Stream, lua/includes/job-event.lua), also the name of its wake-up channel. */
    jobEvents: (jobId: string) => `${namespace}:job:${jobId}:events`,
    result: (jobId: string, service: ServiceType) => `${namespace}:result:${jobId}:${service}`,
    rateLimit: (tier: string, client: string) => `${namespace}:rl:${tier}:${client}`,
    deliveries: (queue: string, messageId: string) => `${namespace}:deliveries:${queue}:${messageId}`,
    /** Sorted set of unfinished jobs scored by deadline (epoch ms). */
    deadlines: `${namespace}:deadlines`,
    /** A batch submission (POST /api/lookup/batch): its job ids in item order, kept as long as its jobs. */
    batch: (batchId: string) => `${namespace}:batch:${batchId}`,
    /** A job's completion-callback delivery: hash of its state, and the list of its attempts (JSON), with the job's TTL. */
    callback: (jobId: string) => `${namespace}:callback:${jobId}`,
    callbackAttempts: (jobId: string) => `${namespace}:callback:${jobId}:attempts`,
    /** A recent successful lookup of a service and target (result reuse, CACHE_TTL_<SERVICE>), and its single-flight claim. */
    resultCache: (service: ServiceType, target: string) => `${namespace}:cache:${service}:${target}`,
    resultFlight: (service: ServiceType, target: string) => `${namespace}:flight:${service}:${target}`,
    idempotency: (client: string, key: string) => `${namespace}:idem:${client}:${key}`,
    /** The job listing's index (GET /api/lookup): a sorted set, every score 0, members `<createdAt ms, 16
     *  digits>:<jobId>`, so lexicographic order is creation order; trimmed to JOB_TTL_SECONDS (lua/includes/index-job.lua). */
    jobIndex: `${namespace}:jobs:by-created`,
  };
}
export type Keys = ReturnType<typeof keys>;
