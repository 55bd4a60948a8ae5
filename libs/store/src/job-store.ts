import {
  ALL_SERVICES,
  serviceName,
  completionPercentage,
  outcomeOf,
  type JobDocument,
  type JobStatus,
  type RecordedOutcome,
  type ResultStatus,
  type ResultLocation,
  type ServiceResult,
  type ServiceType,
  type StoredResult,
  type TargetType,
  type CallbackSpec,
} from '@lookup/contracts';
import { defineScript, type Redis } from './redis.ts';
import { jobShard, keys as makeKeys } from './keys.ts';
import { jobIndexCutoff, jobIndexMember, listJobs, type JobListPage, type JobListQuery } from './job-index.ts';

export interface NewJob {
  jobId: string;
  target: string;
  targetType: TargetType;
  services: ServiceType[];
  createdAt: string;
  /** When every service still missing is recorded TimedOut (epoch ms). */
  deadlineAt: number;
  /** The completion callback asked for at submission (field `callback`, JSON). */
  callback?: CallbackSpec;
  /** The tenant whose in-flight quota the job holds (TENANTS); its end releases the slot (tenant-quota.ts). */
  tenant?: string;
  /**
   * Set when the API publishes the job's commands itself (a job without a tenant): the job is created Processing,
   * dispatched at this time (ISO 8601). Absent: created Pending, for the saga to dispatch on its job.submitted.
   */
  dispatchedAt?: string;
}

/**
 * What the job records per service (field `o:<service>` of its hash, one JSON document): the outcome
 * (contracts' RecordedOutcome) and where the result data is, never the data.
 */
export type OutcomeRecord = RecordedOutcome & { location: ResultLocation | null };

/** The outcome recorded for a service that never reported: the job was cancelled, or its deadline passed. */
function unreportedOutcome(status: 'Cancelled' | 'TimedOut', errorMessage: string, at: string): OutcomeRecord {
  return { status, success: false, errorMessage, errorCode: null, completedAt: at, durationMs: null, attempts: 0, location: null };
}

export interface JobRecord extends NewJob {
  status: JobStatus;
  completedAt: string | null;
  outcomes: Map<ServiceType, OutcomeRecord>;
  notified: boolean;
}

/**
 * One entry of a job's event stream: `result` when a service's outcome was recorded, then `completed` or
 * `cancelled` when the job finished. `id` is the Redis Stream entry id (`<ms>-<seq>`), increasing per job.
 */
export type JobEvent = { id: string; type: 'result'; service: ServiceType } | { id: string; type: 'completed' | 'cancelled' };

/** A stream entry id (`<ms>-<seq>`), as a client hands one back in Last-Event-ID. */
export const JOB_EVENT_ID = /^\d{1,20}-\d{1,20}$/;

/**
 * The entries a wake-up message on a job's channel announces (lua/includes/job-event.lua: `<id> <type>[ <service>]`
 * per line, oldest first), or undefined when the message is not such a list (a bare hint: read the stream).
 */
export function parseJobEventMessage(message: string): JobEvent[] | undefined {
  const events: JobEvent[] = [];
  for (const line of message.split('\n')) {
    const [id, type, service, extra] = line.split(' ');
    if (!id || !JOB_EVENT_ID.test(id) || extra !== undefined) return undefined;
    if (type === 'result' && service && /^\d{1,3}$/.test(service)) events.push({ id, type, service: Number(service) as ServiceType });
    else if ((type === 'completed' || type === 'cancelled') && service === undefined) events.push({ id, type });
    else return undefined;
  }
  return events;
}

/** Whether stream entry id `a` comes after `b` (both `<ms>-<seq>`). */
export function eventIdAfter(a: string, b: string): boolean {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  return am! > bm! || (am === bm && as! > bs!);
}

/**
 * The most finished jobs each shard's outcome list keeps for the API's metrics (lua/mark-notified.lua): 16 shards of
 * 10,000 short entries, a few MB at most, for when no API replica drains them (none running).
 */
export const ENDED_OUTCOMES_CAP = 10_000;

/** One service's outcome of a finished job, as drainOutcomes hands it out. */
export interface EndedOutcome {
  service: ServiceType;
  status: ResultStatus;
  /** The lookup's duration; null for an outcome recorded without one (cancelled, timed out at the deadline). */
  durationMs: number | null;
}

/** What one drainOutcomes call took: the outcomes of `jobs` finished jobs; `full` when a shard had `max` (drain again). */
export interface DrainedOutcomes {
  outcomes: EndedOutcome[];
  jobs: number;
  full: boolean;
}

export type OutcomeDisposition = 'recorded' | 'duplicate' | 'late' | 'missing' | 'unrequested';
/**
 * How long after the deadline sweep expired a job, or the API cancelled one, the sweep checks that its end was
 * announced (job.completed, its callback), and announces it if not (expire-job.lua, cancel-job.lua).
 */
export const ANNOUNCE_RECHECK_MS = 5000;

export type ExpireDisposition = 'expired' | 'not-due' | 'finished' | 'missing';
export type CancelDisposition = 'cancelled' | 'finished' | 'missing';

/** A batch submission as stored: its jobs by item index, and the items refused at submission (their error bodies). */
export interface NewBatch {
  batchId: string;
  createdAt: string;
  /** How many items the request had (accepted and refused). */
  total: number;
  jobs: { index: number; jobId: string }[];
  rejected: { index: number; error: object }[];
}

/** A stored batch with the current status of each job ('Expired' once its record is gone). */
export interface BatchRecord extends NewBatch {
  statuses: (JobStatus | 'Expired')[];
}

export interface RecordOutcomeResult {
  disposition: OutcomeDisposition;
  /** The job's status after the call ('' when the job does not exist). */
  status: JobStatus | '';
  /** Whether job.completed was already published for this job. */
  notified: boolean;
  /**
   * The job's creation time (ISO 8601), only while the job is Completed and not yet announced (for its duration):
   * this call completed it, or an earlier one did (the worker that stored the last result, or a delivery that died
   * before announcing). Absent for a job the deadline sweep finished (counted there).
   */
  createdAt?: string;
  /** Whether the job has a completion callback (from the same script: announcing its end also sends its callback command). */
  hasCallback: boolean;
  /** The job's tenant (TENANTS), only while the job is Completed and not yet announced: its slots were released, its window may take the next job. */
  tenant?: string;
}

export interface ExpireResult {
  disposition: ExpireDisposition;
  status: JobStatus | '';
  notified: boolean;
  /** The job's creation time (ISO 8601), only when this call expired it. */
  createdAt?: string;
  /** Whether the job has a completion callback. */
  hasCallback: boolean;
  /** The job's tenant (TENANTS), only when this call ended the job: its slots were released, its window may take the next job. */
  tenant?: string;
}

/** The scripts' `{ disposition, status, notified, createdAt, callback }` answer ('' for absent), typed. */
export function endAnswer<D extends string>(raw: unknown): { disposition: D; status: JobStatus | ''; notified: boolean; createdAt?: string; hasCallback: boolean; tenant?: string } {
  const [disposition, status, notified, createdAt, callback, tenant] = raw as [D, JobStatus | '', string, string | undefined, string | undefined, string | undefined];
  const base = { disposition, status, notified: notified === '1', hasCallback: callback === '1', ...(tenant ? { tenant } : {}) };
  return createdAt ? { ...base, createdAt } : base;
}

export interface JobStoreDeps {
  redis: Redis;
  namespace: string;
  ttlSeconds: number;
}

export type JobStore = ReturnType<typeof createJobStore>;

export function createJobStore({ redis, namespace, ttlSeconds }: JobStoreDeps) {
  const k = makeKeys(namespace);
  const recordOutcomeScript = defineScript(redis, 'record-outcome');
  const markProcessingScript = defineScript(redis, 'mark-processing');
  const expireScript = defineScript(redis, 'expire-job');
  const cancelScript = defineScript(redis, 'cancel-job');
  const createScript = defineScript(redis, 'create-job');
  const createBatchScript = defineScript(redis, 'create-batch');
  const jobStatusesScript = defineScript(redis, 'job-statuses');
  const markNotifiedScript = defineScript(redis, 'mark-notified');

  function jobFields(job: NewJob): Record<string, string | number> {
    const fields: Record<string, string | number> = {
      jobId: job.jobId,
      target: job.target,
      targetType: job.targetType,
      status: job.dispatchedAt ? 'Processing' : 'Pending',
      createdAt: job.createdAt,
      services: job.services.join(','),
      total: job.services.length,
      done: 0,
      deadlineAt: job.deadlineAt,
    };
    if (job.callback) fields.callback = JSON.stringify(job.callback);
    if (job.tenant) fields.tenant = job.tenant;
    if (job.dispatchedAt) fields.dispatchedAt = job.dispatchedAt;
    return fields;
  }

  /**
   * Frees the in-flight slot of a job that the script answering `answer` ended (completed or expired): its tenant
   * (TENANTS) is the answer's sixth item, '' for a job without one or a call that did not end it (no round trip then).
   * Idempotent (the slot is the job's member of the tenant's set); a failure here is healed by the hold's lapse.
   */
  async function releaseTenantSlot(jobId: string, answer: unknown): Promise<void> {
    await releaseTenant(jobId, (answer as (string | undefined)[])[5]);
  }

  /**
   * A finished job's tenant slots: its in-flight quota slot and its place in the tenant's dispatch window or waiting
   * queue (tenant-dispatch.ts), in one MULTI (one hash slot). Idempotent; a lost release lapses (quota) or is healed
   * by the sweeper (window).
   */
  async function releaseTenant(jobId: string, tenant: string | undefined): Promise<void> {
    if (!tenant) return;
    await redis
      .multi()
      .zrem(k.tenantInFlight(tenant), jobId)
      .zrem(k.tenantWindow(tenant), jobId)
      .zrem(k.tenantWaiting(tenant), jobId)
      .zrem(k.tenantUnpublished(tenant), jobId)
      .hdel(k.tenantSpecs(tenant), jobId)
      .exec();
  }

  /** The job's completion callback: null when it has none, undefined when the job does not exist. */
  async function getCallback(jobId: string): Promise<CallbackSpec | null | undefined> {
    const [id, raw] = await redis.hmget(k.job(jobId), 'jobId', 'callback');
    if (!id) return undefined;
    if (!raw) return null;
    try {
      return JSON.parse(raw) as CallbackSpec;
    } catch {
      return null;
    }
  }

  async function create(job: NewJob): Promise<void> {
    const fields = jobFields(job);
    // One script: the job appears whole (fields, TTL, deadline) or not at all.
    await createScript(
      [k.job(job.jobId), k.deadlines(job.jobId), k.jobIndex(job.jobId)],
      [ttlSeconds, job.deadlineAt, job.jobId, jobIndexMember(job.createdAt, job.jobId), jobIndexCutoff(Date.now(), ttlSeconds), ...Object.entries(fields).flat()],
    );
  }

  /** Removes a job that was never announced (its job.submitted could not be published). */
  async function discard(jobId: string): Promise<void> {
    await redis.multi().del(k.job(jobId), k.jobEvents(jobId)).zrem(k.deadlines(jobId), jobId).exec();
  }

  /**
   * Creates every job of a batch and the batch record in one script: all of them exist afterwards, or (Redis failed)
   * none does. The batch record (`<ns>:batch:<id>`) keeps the job ids by item index and the refused items, with the
   * jobs' TTL.
   */
  async function createMany(batch: NewBatch, jobList: readonly NewJob[]): Promise<void> {
    const shard = jobShard(batch.batchId);
    const strays = jobList.filter((j) => jobShard(j.jobId) !== shard).map((j) => j.jobId);
    if (strays.length > 0) throw new Error(`batch ${batch.batchId}: jobs ${strays.join(', ')} are not in its shard (ids from newIdInShard)`);
    const batchFields = {
      batchId: batch.batchId,
      createdAt: batch.createdAt,
      total: batch.total,
      jobs: JSON.stringify(batch.jobs.map((j) => [j.index, j.jobId])),
      rejected: JSON.stringify(batch.rejected),
    };
    const args: (string | number)[] = [ttlSeconds, jobIndexCutoff(Date.now(), ttlSeconds), Object.keys(batchFields).length, ...Object.entries(batchFields).flat()];
    for (const job of jobList) {
      const fields = Object.entries(jobFields(job));
      args.push(job.jobId, job.deadlineAt, jobIndexMember(job.createdAt, job.jobId), fields.length, ...fields.flat());
    }
    await createBatchScript([k.deadlines(batch.batchId), k.batch(batch.batchId), k.jobIndex(batch.batchId), ...jobList.map((j) => k.job(j.jobId))], args);
  }

  /** Removes a batch that was never announced (a job.submitted of it was not confirmed): every job and the record. */
  async function discardMany(batchId: string, jobIds: readonly string[]): Promise<void> {
    const m = redis.multi();
    if (jobIds.length > 0) m.del(...jobIds.flatMap((id) => [k.job(id), k.jobEvents(id)])).zrem(k.deadlines(batchId), ...jobIds);
    await m.del(k.batch(batchId)).exec();
  }

  /** A batch with each job's current status (one HGET per job, pipelined), or undefined when there is none. */
  /**
   * Each job's status (null when gone), in order: one script call per shard (a batch's jobs share one) rather than an
   * HGET per job; polling a 500-job batch was 500 commands, their promises and replies in the API per poll.
   */
  async function jobStatuses(jobIds: string[]): Promise<(string | null)[]> {
    const byShard = new Map<number, number[]>();
    jobIds.forEach((id, i) => {
      const shard = jobShard(id);
      const at = byShard.get(shard);
      if (at) at.push(i);
      else byShard.set(shard, [i]);
    });
    const out: (string | null)[] = new Array(jobIds.length).fill(null);
    await Promise.all(
      [...byShard.values()].map(async (indexes) => {
        const got = (await jobStatusesScript(indexes.map((i) => k.job(jobIds[i]!)), [])) as (string | null)[];
        indexes.forEach((i, n) => (out[i] = got[n] ?? null));
      }),
    );
    return out;
  }

  async function getBatch(batchId: string): Promise<BatchRecord | undefined> {
    const h = await redis.hgetall(k.batch(batchId));
    if (!h.batchId) return undefined;
    const pairs = JSON.parse(h.jobs ?? '[]') as [number, string][];
    const jobList = pairs.map(([index, jobId]) => ({ index, jobId }));
    const statuses = await jobStatuses(jobList.map((j) => j.jobId));
    return {
      batchId: h.batchId,
      createdAt: h.createdAt ?? '',
      total: Number(h.total ?? jobList.length),
      jobs: jobList,
      rejected: JSON.parse(h.rejected ?? '[]') as NewBatch['rejected'],
      statuses: statuses.map((s) => (s ?? 'Expired') as JobStatus | 'Expired'),
    };
  }

  /**
   * A page of the job listing, newest first (job-index.ts). A discarded job's index entry stays until it is
   * trimmed; the listing skips entries whose job is gone.
   */
  async function list(query: JobListQuery): Promise<JobListPage> {
    return listJobs(redis, k, query);
  }

  /** Where a job's result for a service lives (the same key as ResultStore.locate): the only valid location. */
  function resultLocation(jobId: string, service: ServiceType): ResultLocation {
    return { storage: 'redis', key: k.result(jobId, service) };
  }

  /** The job's status, or undefined when there is no such job (one HGET: workers check it per command). */
  async function getStatus(jobId: string): Promise<JobStatus | undefined> {
    return ((await redis.hget(k.job(jobId), 'status')) ?? undefined) as JobStatus | undefined;
  }

  async function getRecord(jobId: string): Promise<JobRecord | undefined> {
    return toRecord(await redis.hgetall(k.job(jobId)));
  }

  /**
   * The job as the HTTP contract shows it: outcomes joined with the result data at their keys. One round trip:
   * the hash and the results at the job's own result keys are read together. The location recorded on an
   * outcome is never followed (only whether there is one): data comes from the job's own key for that service,
   * and only a document stored for this job and service is shown (records written before locations were
   * checked may name another key).
   */
  async function getDocument(jobId: string): Promise<JobDocument | undefined> {
    const own = ALL_SERVICES.map((s) => k.result(jobId, s));
    const [hash, raw] = await Promise.all([redis.hgetall(k.job(jobId)), redis.mget(...own)]);
    const record = toRecord(hash);
    if (!record) return undefined;
    const stored = new Map<ServiceType, string | null>(ALL_SERVICES.map((s, i) => [s, raw[i] ?? null]));
    const results: ServiceResult[] = [];
    for (const s of record.services) {
      const o = record.outcomes.get(s);
      if (o) results.push(serviceResult(record.jobId, s, o, stored.get(s) ?? null));
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

  /**
   * Some services' results as getDocument shows them, without the rest of the job (one round trip: the outcome
   * fields and the result keys); a service with no outcome recorded is left out. For the event stream, which needs
   * only the outcome an event announces.
   */
  async function getResults(jobId: string, services: readonly ServiceType[]): Promise<ServiceResult[]> {
    if (services.length === 0) return [];
    const [outcomes, raw] = await Promise.all([
      redis.hmget(k.job(jobId), ...services.map((s) => `o:${s}`)),
      redis.mget(...services.map((s) => k.result(jobId, s))),
    ]);
    const results: ServiceResult[] = [];
    services.forEach((s, i) => {
      const o = outcomes[i] ? parseOutcome(outcomes[i]!) : undefined;
      if (o) results.push(serviceResult(jobId, s, o, raw[i] ?? null));
    });
    return results;
  }

  async function markProcessing(jobId: string, at: string): Promise<JobStatus | ''> {
    return (await startDispatch(jobId, at, false)).status;
  }

  /**
   * markProcessing that also answers the job's tenant ('' for none). With `holdTenantJobs` (TENANT_DISPATCH_WINDOW on),
   * a tenant's Pending job stays Pending: the saga marks it Processing once its tenant's window admits it.
   */
  async function startDispatch(
    jobId: string,
    at: string,
    holdTenantJobs: boolean,
    /** Epoch ms: a job already past its deadline stays Pending (overdue), for the deadline sweep to finish. */
    nowMs?: number,
  ): Promise<{ status: JobStatus | ''; tenant: string; overdue: boolean }> {
    const args = nowMs === undefined ? [at, holdTenantJobs ? '1' : ''] : [at, holdTenantJobs ? '1' : '', nowMs];
    const [status, tenant, overdue] = (await markProcessingScript([k.job(jobId)], args)) as [JobStatus | '', string, string | undefined];
    return { status, tenant, overdue: overdue === '1' };
  }

  async function recordOutcome(jobId: string, service: ServiceType, outcome: OutcomeRecord, at: string): Promise<RecordOutcomeResult> {
    const answer = await recordOutcomeScript([k.job(jobId), k.deadlines(jobId), k.jobEvents(jobId)], [service, JSON.stringify(outcome), at, jobId]);
    await releaseTenantSlot(jobId, answer);
    return endAnswer<OutcomeDisposition>(answer);
  }

  /** Jobs whose deadline has passed (oldest first within each shard, up to `limit` in all), for the sweeper. */
  async function dueJobs(nowMs: number, limit: number): Promise<string[]> {
    const perShard = await Promise.all(k.allDeadlines.map((key) => redis.zrangebyscore(key, '-inf', nowMs, 'LIMIT', 0, limit)));
    return perShard.flat().slice(0, limit);
  }

  /**
   * Finishes an overdue job; `createdAt` (ISO 8601) comes back when this call expired it. A job it expired stays due
   * (again after ANNOUNCE_RECHECK_MS) until a call finds it announced, so a sweeper dying before the announcement
   * leaves it to the next sweep (`finished`, not notified: announce it).
   */
  async function expire(jobId: string, now: Date): Promise<ExpireResult> {
    const answer = await expireScript(
      [k.job(jobId), k.deadlines(jobId), k.jobEvents(jobId)],
      [jobId, now.toISOString(), now.getTime(), JSON.stringify(unreportedOutcome('TimedOut', 'no result before the job deadline', now.toISOString())), ANNOUNCE_RECHECK_MS],
    );
    await releaseTenantSlot(jobId, answer);
    return endAnswer<ExpireDisposition>(answer);
  }

  /** Cancels an unfinished job; `hasCallback`: whether it has a completion callback (to send for `cancelled`). */
  async function cancel(jobId: string, at: string): Promise<{ disposition: CancelDisposition; status: JobStatus | ''; hasCallback: boolean; tenant?: string }> {
    const [disposition, status, callback, tenant] = (await cancelScript(
      [k.job(jobId), k.deadlines(jobId), k.jobEvents(jobId)],
      [jobId, at, JSON.stringify(unreportedOutcome('Cancelled', 'the job was cancelled', at)), Date.parse(at), ANNOUNCE_RECHECK_MS],
    )) as [CancelDisposition, JobStatus | '', string | undefined, string | undefined];
    await releaseTenant(jobId, tenant);
    return { disposition, status, hasCallback: callback === '1', ...(tenant ? { tenant } : {}) };
  }

  /**
   * The per-service outcomes of jobs whose end was announced since the last drain, taken off every shard's outcome
   * list (queued by markNotified): each job's to exactly one caller, whichever API replica drains first. At most
   * `max` jobs per shard per call; `full` says whether a shard had that many (drain again).
   */
  async function drainOutcomes(max: number): Promise<DrainedOutcomes> {
    const lists = await Promise.all(k.allEndedOutcomes.map((key) => redis.lpop(key, max)));
    const outcomes: EndedOutcome[] = [];
    let jobs = 0;
    let full = false;
    for (const entries of lists) {
      if (!entries) continue;
      jobs += entries.length;
      if (entries.length >= max) full = true;
      for (const entry of entries) {
        for (const item of entry.split(',')) {
          const [service, status, duration] = item.split(' ');
          if (!service || !status) continue;
          outcomes.push({ service: Number(service) as ServiceType, status: status as ResultStatus, durationMs: duration ? Number(duration) : null });
        }
      }
    }
    return { outcomes, jobs, full };
  }

  /**
   * Records that job.completed was published; true for the first call only (its caller counts the job's end), which
   * also queues the job's outcomes for the API's metrics (drainOutcomes). With REDIS_WAIT_REPLICAS it waits for the
   * replicas like every change of a job (a failover then keeps the flag).
   */
  async function markNotified(jobId: string): Promise<boolean> {
    return Number(await markNotifiedScript([k.job(jobId), k.endedOutcomes(jobId)], [ENDED_OUTCOMES_CAP])) === 1;
  }

  /**
   * The job's events after `afterId` (exclusive; '0-0' for all), oldest first. The stream is bounded (one entry
   * per service plus the end), so one read returns them all. Entries that are not events are skipped.
   */
  async function readEvents(jobId: string, afterId = '0-0'): Promise<JobEvent[]> {
    const entries = await redis.xrange(k.jobEvents(jobId), `(${afterId}`, '+');
    const events: JobEvent[] = [];
    for (const [id, flat] of entries) {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
      if (f.type === 'result' && f.service) events.push({ id, type: 'result', service: Number(f.service) as ServiceType });
      else if (f.type === 'completed' || f.type === 'cancelled') events.push({ id, type: f.type });
    }
    return events;
  }

  return { create, createMany, discard, discardMany, getBatch, getCallback, list, resultLocation, getStatus, getRecord, getDocument, getResults, readEvents, markProcessing, startDispatch, recordOutcome, markNotified, dueJobs, expire, cancel, drainOutcomes };
}

/** One service's result as the HTTP contract shows it: its outcome, and the data stored for it when it has a location. */
function serviceResult(jobId: string, service: ServiceType, o: OutcomeRecord, json: string | null): ServiceResult {
  const { data, ...reuse } = o.location && json ? resultData(json, jobId, service) : { data: null };
  return { serviceType: serviceName(service), data, ...outcomeOf(o), ...reuse };
}

/** The data of a stored result, if it is a result document of this job and service (else null). */
function resultData(json: string, jobId: string, service: ServiceType): Pick<ServiceResult, 'data' | 'cached' | 'ageMs'> {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return { data: null };
  }
  if (!doc || typeof doc !== 'object') return { data: null };
  const r = doc as Partial<StoredResult>;
  if (r.jobId !== jobId || r.serviceType !== service) return { data: null };
  const data = r.data && typeof r.data === 'object' && !Array.isArray(r.data) ? r.data : null;
  // A result reused from an earlier lookup of the same target (the worker's result cache) says so, with its age.
  return r.cached === true && typeof r.ageMs === 'number' ? { data, cached: true, ageMs: r.ageMs } : { data };
}

/**
 * An outcome as recorded, or undefined when the field does not hold one (never throws: the job stays readable).
 * Records written before `errorCode` existed read it as null.
 */
function parseOutcome(raw: string): OutcomeRecord | undefined {
  try {
    const o = JSON.parse(raw) as OutcomeRecord | null;
    return o && typeof o === 'object' && typeof o.status === 'string' ? { ...outcomeOf(o), location: o.location ?? null } : undefined;
  } catch {
    return undefined;
  }
}

function toRecord(h: Record<string, string>): JobRecord | undefined {
  if (!h.jobId) return undefined;
  const services = h.services ? h.services.split(',').map((s) => Number(s) as ServiceType) : [];
  const outcomes = new Map<ServiceType, OutcomeRecord>();
  for (const s of services) {
    const raw = h[`o:${s}`];
    const outcome = raw ? parseOutcome(raw) : undefined;
    if (outcome) outcomes.set(s, outcome);
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
