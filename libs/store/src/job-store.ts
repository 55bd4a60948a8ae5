import {
  ALL_SERVICES,
  serviceName,
  completionPercentage,
  type JobDocument,
  type JobStatus,
  type ResultLocation,
  type ResultStatus,
  type ServiceResult,
  type ServiceType,
  type StoredResult,
  type TargetType,
} from '@lookup/contracts';
import { defineScript, type Redis } from './redis.ts';
import { keys as makeKeys } from './keys.ts';

export interface NewJob {
  jobId: string;
  target: string;
  targetType: TargetType;
  services: ServiceType[];
  createdAt: string;
  /** When every service still missing is recorded TimedOut (epoch ms). */
  deadlineAt: number;
}

/** What the saga records per service: the event's metadata and where the data is, never the data. */
export interface Outcome {
  status: ResultStatus;
  success: boolean;
  errorMessage: string | null;
  completedAt: string;
  durationMs: number | null;
  attempts: number;
  location: ResultLocation | null;
}

export interface JobRecord extends NewJob {
  status: JobStatus;
  completedAt: string | null;
  outcomes: Map<ServiceType, Outcome>;
  notified: boolean;
}

export type OutcomeDisposition = 'recorded' | 'duplicate' | 'late' | 'missing' | 'unrequested';
export type ExpireDisposition = 'expired' | 'not-due' | 'finished' | 'missing';
export type CancelDisposition = 'cancelled' | 'finished' | 'missing';

export interface RecordOutcomeResult {
  disposition: OutcomeDisposition;
  /** The job's status after the call ('' when the job does not exist). */
  status: JobStatus | '';
  /** Whether job.completed was already published for this job. */
  notified: boolean;
}

export interface JobStoreDeps {
  redis: Redis;
  namespace: string;
  ttlSeconds: number;
}

export type JobStore = ReturnType<typeof createJobStore>;

export function createJobStore({ redis, namespace, ttlSeconds }: JobStoreDeps) {
  const k = makeKeys(namespace);
  const recordOutcomeScript = defineScript(redis, 'record_outcome', new URL('./lua/record-outcome.lua', import.meta.url), 2);
  const markProcessingScript = defineScript(redis, 'mark_processing', new URL('./lua/mark-processing.lua', import.meta.url), 1);
  const expireScript = defineScript(redis, 'expire_job', new URL('./lua/expire-job.lua', import.meta.url), 2);
  const cancelScript = defineScript(redis, 'cancel_job', new URL('./lua/cancel-job.lua', import.meta.url), 2);
  const createScript = defineScript(redis, 'create_job', new URL('./lua/create-job.lua', import.meta.url), 2);

  async function create(job: NewJob): Promise<void> {
    const fields: Record<string, string | number> = {
      jobId: job.jobId,
      target: job.target,
      targetType: job.targetType,
      status: 'Pending',
      createdAt: job.createdAt,
      services: job.services.join(','),
      total: job.services.length,
      done: 0,
      deadlineAt: job.deadlineAt,
    };
    // One script: the job appears whole (fields, TTL, deadline) or not at all.
    await createScript([k.job(job.jobId), k.deadlines], [ttlSeconds, job.deadlineAt, job.jobId, ...Object.entries(fields).flat()]);
  }

  /** Removes a job that was never announced (its job.submitted could not be published). */
  async function discard(jobId: string): Promise<void> {
    await redis.multi().del(k.job(jobId)).zrem(k.deadlines, jobId).exec();
  }

  /** The job's status, or undefined when there is no such job (one HGET: workers check it per command). */
  async function getStatus(jobId: string): Promise<JobStatus | undefined> {
    return ((await redis.hget(k.job(jobId), 'status')) ?? undefined) as JobStatus | undefined;
  }

  async function getRecord(jobId: string): Promise<JobRecord | undefined> {
    return toRecord(await redis.hgetall(k.job(jobId)));
  }

  /**
   * The job as the HTTP contract shows it: outcomes joined with the result data at their locations.
   * One round trip in the usual case: the hash and the results at their predictable keys (results.locate)
   * are read together; only a location elsewhere costs a second read.
   */
  async function getDocument(jobId: string): Promise<JobDocument | undefined> {
    const predicted = ALL_SERVICES.map((s) => k.result(jobId, s));
    const [hash, raw] = await Promise.all([redis.hgetall(k.job(jobId)), redis.mget(...predicted)]);
    const record = toRecord(hash);
    if (!record) return undefined;
    const stored = new Map<string, string | null>(predicted.map((key, i) => [key, raw[i] ?? null]));
    const elsewhere = [...record.outcomes.values()].map((o) => o.location?.key).filter((key): key is string => !!key && !stored.has(key));
    if (elsewhere.length > 0) {
      const more = await redis.mget(...elsewhere);
      elsewhere.forEach((key, i) => stored.set(key, more[i] ?? null));
    }
    const results: ServiceResult[] = [];
    for (const s of record.services) {
      const o = record.outcomes.get(s);
      if (!o) continue;
      const json = o.location ? stored.get(o.location.key) : null;
      results.push({
        serviceType: serviceName(s),
        status: o.status,
        success: o.success,
        data: json ? ((JSON.parse(json) as StoredResult).data ?? null) : null,
        errorMessage: o.errorMessage,
        completedAt: o.completedAt,
        durationMs: o.durationMs,
        attempts: o.attempts,
      });
    }
    return {
      jobId: record.jobId,
      target: record.target,
      targetType: record.targetType,
      status: record.status,
      createdAt: record.createdAt,
      completedAt: record.completedAt,
      completionPercentage: completionPercentage(record.services.length, record.outcomes.size),
      requestedServices: record.services.map(serviceName),
      results,
    };
  }

  async function markProcessing(jobId: string, at: string): Promise<JobStatus | ''> {
    return (await markProcessingScript([k.job(jobId)], [at])) as JobStatus | '';
  }

  async function recordOutcome(jobId: string, service: ServiceType, outcome: Outcome, at: string): Promise<RecordOutcomeResult> {
    const [disposition, status, notified] = (await recordOutcomeScript(
      [k.job(jobId), k.deadlines],
      [service, JSON.stringify(outcome), at, jobId],
    )) as [OutcomeDisposition, JobStatus | '', string];
    return { disposition, status, notified: notified === '1' };
  }

  /** Jobs whose deadline has passed (oldest first), for the deadline sweeper. */
  async function dueJobs(nowMs: number, limit: number): Promise<string[]> {
    return redis.zrangebyscore(k.deadlines, '-inf', nowMs, 'LIMIT', 0, limit);
  }

  async function expire(jobId: string, now: Date): Promise<{ disposition: ExpireDisposition; status: JobStatus | ''; notified: boolean }> {
    const [disposition, status, notified] = (await expireScript([k.job(jobId), k.deadlines], [jobId, now.toISOString(), now.getTime()])) as [ExpireDisposition, JobStatus | '', string];
    return { disposition, status, notified: notified === '1' };
  }

  async function cancel(jobId: string, at: string): Promise<{ disposition: CancelDisposition; status: JobStatus | '' }> {
    const [disposition, status] = (await cancelScript([k.job(jobId), k.deadlines], [jobId, at])) as [CancelDisposition, JobStatus | ''];
    return { disposition, status };
  }

  async function markNotified(jobId: string): Promise<void> {
    await redis.hset(k.job(jobId), 'notified', '1');
  }

  return { create, discard, getStatus, getRecord, getDocument, markProcessing, recordOutcome, markNotified, dueJobs, expire, cancel };
}

function toRecord(h: Record<string, string>): JobRecord | undefined {
  if (!h.jobId) return undefined;
  const services = h.services ? h.services.split(',').map((s) => Number(s) as ServiceType) : [];
  const outcomes = new Map<ServiceType, Outcome>();
  for (const s of services) {
    const raw = h[`o:${s}`];
    if (raw) outcomes.set(s, JSON.parse(raw) as Outcome);
  }
  return {
    jobId: h.jobId,
    target: h.target ?? '',
    targetType: (h.targetType ?? 'IPAddress') as TargetType,
    services,
    createdAt: h.createdAt ?? '',
    deadlineAt: Number(h.deadlineAt ?? 0),
    status: (h.status ?? 'Pending') as JobStatus,
    completedAt: h.completedAt || null,
    outcomes,
    notified: h.notified === '1',
  };
}
