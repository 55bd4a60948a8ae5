import { randomUUID } from 'node:crypto';
import { mapBounded, type ErrorBody } from '@lookup/contracts';
import { jobShard, newIdInShard, type NewJob } from '@lookup/store';
import type { TenantSpend } from './tenant-quota.ts';
import type { ApiDeps } from './deps.ts';
import { jobSubmittedMessage } from './dispatch-job.ts';
import {
  BatchNotFound,
  BatchRejected,
  BrokerUnavailable,
  HttpError,
  InvalidIdempotencyKey,
  StoreUnavailable,
  TargetNotAllowed,
} from './http-errors.ts';
import { IDEMPOTENCY_KEY_RE, claimIdempotencyKey, validateSubmission, type SubmitLog, type SubmitLookupDeps, type ValidSubmission } from './submit-lookup.ts';

/** How many domain items of one batch are pre-checked in DNS at a time. */
export const BATCH_PRECHECK_CONCURRENCY = 8;
/** How many jobs of one batch are being dispatched (published, confirms awaited) at a time. */
export const BATCH_DISPATCH_CONCURRENCY = 64;

export interface SubmitBatchDeps extends SubmitLookupDeps {
  batches: NonNullable<ApiDeps['batches']>;
}

export interface BatchItemInput {
  target: string;
  services?: readonly unknown[];
  callback?: { url: string; events?: readonly string[] };
}

export interface SubmitBatchInput {
  items: readonly BatchItemInput[];
  /** The services of every item without its own. */
  services?: readonly unknown[];
  clientId: string;
  idempotencyKey?: string | string[];
  /** Cache-Control: no-cache on the request: every lookup of every job anew. */
  fresh?: boolean;
  /** The priority of every job of the batch (body `priority`; absent: normal). */
  priority?: 'high' | 'normal' | 'low';
}

export interface BatchRejection {
  index: number;
  error: ErrorBody;
}

/** The 202 body of POST /api/lookup/batch. */
export interface BatchAccepted {
  batchId: string;
  jobs: { index: number; jobId: string; statusUrl: string }[];
  rejected: BatchRejection[];
}

export interface SubmitBatchOptions {
  log: SubmitLog;
  /** Spends `count` submissions of the quota at once (all or none); throws (RateLimited) to refuse the batch. */
  spendQuota?: (count: number) => Promise<void>;
  /** The tenant quota of the request's key (tenant-quota.ts): one job per valid item, spent at once after
   *  `spendQuota`, all or none (a refusal is the whole batch's 429). */
  tenant?: TenantSpend;
}

const statusUrl = (jobId: string) => `/api/lookup/${jobId}`;


/**
 * Submits a batch, HTTP-free. Each item goes through the single submission's checks (validateSubmission; the
 * services of an item default to the batch's `services`, then to every service); a refused item is reported in
 * `rejected` with the error body a single submission would have answered, and the others are accepted. The order:
 * 1. every item's checks that cost no I/O; none valid: BatchRejected (400), nothing spent;
 * 2. the Idempotency-Key for the whole batch (its fingerprint: every item, normalised): a replay answers the stored
 *    batch again (`replayed: true`), a different body is IdempotencyConflict;
 * 3. the quota: `spendQuota(valid items)` at once, then the tenant's (`options.tenant`) for every valid item's job
 *    (a refusal is the whole batch's 429, and frees the key; slots of jobs not created later are freed);
 * 4. the DNS pre-check of each domain item (BATCH_PRECHECK_CONCURRENCY at a time; a refused domain has spent its
 *    unit, as for a single submission); none left: BatchRejected;
 * 5. every job and the batch record created in one Redis script (StoreUnavailable), then every job dispatched with
 *    confirms (dispatch-job.ts: its commands, or a tenant's job.submitted), BATCH_DISPATCH_CONCURRENCY jobs at a time;
 *    if any is not confirmed, the rest is not dispatched, every job of the batch and the batch record are discarded
 *    and BrokerUnavailable (503) thrown. Whenever the batch creates nothing, the claimed key is released.
 */
export async function submitBatch(
  deps: SubmitBatchDeps,
  input: SubmitBatchInput,
  options: SubmitBatchOptions,
): Promise<{ accepted: BatchAccepted; replayed: boolean }> {
  const { batches, idempotency, dispatchJob, targetPolicy, precheckDomain } = deps;
  const batchId = randomUUID();
  const log = options.log.child({ batchId });

  // 1. Every item's checks that cost no I/O.
  const rejected: BatchRejection[] = [];
  const valid: { index: number; item: ValidSubmission }[] = [];
  input.items.forEach((raw, index) => {
    try {
      valid.push({ index, item: validateSubmission(targetPolicy, { target: raw.target, services: raw.services ?? input.services, callback: raw.callback }, log, deps.config.callbackSecret !== undefined) });
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      rejected.push({ index, error: err.toBody() });
    }
  });
  if (valid.length === 0) throw new BatchRejected(rejected);

  // 2. The Idempotency-Key, for the batch as a whole.
  const idemKey = input.idempotencyKey;
  if (idemKey !== undefined && (typeof idemKey !== 'string' || !IDEMPOTENCY_KEY_RE.test(idemKey))) throw new InvalidIdempotencyKey();
  if (typeof idemKey === 'string') {
    const byIndex = new Map(valid.map((v) => [v.index, v.item]));
    const fingerprint = JSON.stringify([
      'batch',
      input.items.map((raw, i) => {
        const v = byIndex.get(i);
        return v ? [v.target, v.services, v.callback ?? null] : ['refused', raw.target, raw.services ?? input.services ?? null];
      }),
    ]);
    const claim = await claimIdempotencyKey(idempotency, input.clientId, idemKey, fingerprint, batchId, log);
    if (claim.state === 'replay') {
      log.info({ existingBatchId: claim.jobId }, 'idempotent replay of a batch');
      let stored;
      try {
        stored = await batches.getBatch(claim.jobId);
      } catch (err) {
        log.error({ err }, 'could not read the replayed batch; answering 503');
        throw new StoreUnavailable();
      }
      // Gone (expired), or still being created by the first request: nothing to answer with yet.
      if (!stored) throw new BatchNotFound(claim.jobId);
      return {
        replayed: true,
        accepted: {
          batchId: stored.batchId,
          jobs: stored.jobs.map((j) => ({ index: j.index, jobId: j.jobId, statusUrl: statusUrl(j.jobId) })),
          rejected: stored.rejected as BatchRejection[],
        },
      };
    }
  }
  const releaseKey = async () => {
    if (typeof idemKey === 'string') await idempotency.release(input.clientId, idemKey, batchId).catch(() => undefined);
  };

  // 3. The quotas: one unit per valid item, all at once. Each valid item's job id is drawn now (in the batch's
  // shard), since the tenant's in-flight slots are held by job id.
  const jobIdOf = new Map(valid.map((v) => [v.index, newIdInShard(jobShard(batchId))]));
  try {
    await options.spendQuota?.(valid.length);
    await options.tenant?.acquire([...jobIdOf.values()]);
  } catch (err) {
    await releaseKey();
    throw err;
  }
  /** Frees the tenant's slots of these items' jobs (not created after all). */
  const releaseSlots = async (indexes: readonly number[]) => {
    await options.tenant?.release(indexes.map((i) => jobIdOf.get(i)!));
  };

  // 4. The domains' DNS pre-check, a few at a time.
  let accepted = valid;
  if (precheckDomain && valid.some((v) => v.item.targetType === 'Domain')) {
    const refusals = await mapBounded(valid, BATCH_PRECHECK_CONCURRENCY, async (v) =>
      v.item.targetType === 'Domain' ? precheckDomain(v.item.target) : undefined,
    );
    accepted = valid.filter((v, i) => {
      const refusal = refusals[i];
      if (refusal === undefined) return true;
      log.info({ index: v.index, target: v.item.target }, 'domain refused by the target policy: it resolves to a refused address');
      rejected.push({ index: v.index, error: new TargetNotAllowed(refusal).toBody() });
      return false;
    });
    rejected.sort((a, b) => a.index - b.index);
  }
  await releaseSlots(valid.filter((v) => !accepted.includes(v)).map((v) => v.index));
  const undo = async () => {
    await releaseKey();
    await releaseSlots(accepted.map((v) => v.index));
  };
  if (accepted.length === 0) {
    await releaseKey();
    throw new BatchRejected(rejected);
  }

  // 5. Every job and the batch record in one step, then the announcements. A tenant's jobs are dispatched by the
  // saga (its window); any other job here, so it starts Processing.
  const now = Date.now();
  const createdAt = new Date(now).toISOString();
  const viaSaga = options.tenant !== undefined;
  const jobs: (NewJob & { index: number })[] = accepted.map((v) => ({
    index: v.index,
    // In the batch's shard: one script creates them all, on a Redis Cluster too.
    jobId: jobIdOf.get(v.index)!,
    target: v.item.target,
    targetType: v.item.targetType,
    services: v.item.services,
    createdAt,
    deadlineAt: now + deps.config.jobDeadlineMs,
    ...(v.item.callback ? { callback: v.item.callback } : {}),
    ...(options.tenant ? { tenant: options.tenant.tenant } : { dispatchedAt: createdAt }),
  }));
  const jobIds = jobs.map((j) => j.jobId);
  try {
    await batches.createMany(
      { batchId, createdAt, total: input.items.length, jobs: jobs.map((j) => ({ index: j.index, jobId: j.jobId })), rejected },
      jobs.map(({ index: _index, ...job }) => job),
    );
  } catch (err) {
    log.error({ err }, 'could not store the batch; answering 503');
    await undo();
    throw new StoreUnavailable();
  }

  // A few jobs at a time (each one's commands coalesce with the others' of the same turn into envelopes): a batch of
  // 1000 jobs would otherwise hold 4000 commands, their bodies and their confirms in memory at once. After a failure
  // the rest is not dispatched: the whole batch is discarded.
  let failure: { reason: unknown } | undefined;
  await mapBounded(jobs, BATCH_DISPATCH_CONCURRENCY, async (job) => {
    if (failure) return;
    const message = jobSubmittedMessage(job.jobId, { ...job, fresh: input.fresh, priority: input.priority }, createdAt);
    await dispatchJob(message, viaSaga).catch((reason: unknown) => void (failure ??= { reason }));
  });
  if (failure) {
    log.error({ err: failure.reason, jobs: jobs.length }, 'a dispatch of the batch was not confirmed; discarding the batch and answering 503');
    try {
      await batches.discardMany(batchId, jobIds);
    } catch (discardErr) {
      log.error({ err: discardErr }, 'could not discard the unannounced batch; its jobs expire with their TTL');
    }
    await undo();
    throw new BrokerUnavailable('submission');
  }

  log.info({ jobs: jobs.length, rejected: rejected.length }, 'batch accepted');
  return {
    replayed: false,
    accepted: { batchId, jobs: jobs.map((j) => ({ index: j.index, jobId: j.jobId, statusUrl: statusUrl(j.jobId) })), rejected },
  };
}
