import {
  SCHEMA_VERSION,
  commandMessageId,
  taskCompletedMessageId,
  outcomeOf,
  compileValidator,
  permanentError,
  serviceName,
  validateTarget,
  type LookupCommand,
  type ResultLocation,
  type ServiceType,
  type StoredResult,
  type TargetPolicy,
  type TaskCompleted,
} from '@lookup/contracts';
import { SpanStatusCode, withSpan, type Logger } from '@lookup/logging';
import type { ReceivedMessage } from '@lookup/messaging';
import { PoisonMessageError } from '@lookup/messaging';
import { needsAnnouncing, type JobStore, type ResultStore } from '@lookup/store';
import type { JobEndMetrics, TaskInstruments } from '@lookup/metrics';
import type { TSchema } from '@sinclair/typebox';
import type { LookupFn } from './types.ts';
import { backoffMs, checkLookupData, runAttempt, type AttemptPolicy } from './run-lookup.ts';
import { JobCancelled, type Cancellations } from './cancellations.ts';
import type { ReusableOutcome, createResultReuse } from './reuse.ts';
import { TARGET_REFUSED, assertAddressAllowed } from '@lookup/dns';

export interface CommandHandlerDeps {
  service: ServiceType;
  lookup: LookupFn;
  /** The service's data schema (LookupService.dataSchema): every successful lookup's data is checked against it. */
  dataSchema: TSchema;
  results: Pick<ResultStore, 'saveIfOpen' | 'find' | 'locate'>;
  jobs: Pick<JobStore, 'getStatus'>;
  /**
   * Announces an outcome to the saga (Publishers.taskCompleted): one not recorded here (an earlier delivery stored
   * the result), or the one that completes a tenant's job (the saga frees its window slot) or any job when
   * `announceJobEnd` is absent.
   */
  publishTaskCompleted: (event: TaskCompleted) => Promise<void>;
  /**
   * Announces the end of a job without a tenant whose last outcome this worker recorded: job.completed (and its
   * callback: messaging's announceJobEnd), then marks it announced (JobStore.markNotified); answers whether this call
   * marked it first. The saga takes no part in such a job.
   */
  announceJobEnd?: (jobId: string, hasCallback: boolean) => Promise<boolean>;
  /** Counts a job whose end this worker announced first (lookup_jobs_completed_total, lookup_job_duration_seconds). */
  jobEnd?: JobEndMetrics;
  /** Sends the command back through the broker's delay queue for its next attempt (Publishers.commandRetry). */
  publishRetry: (command: LookupCommand, delayMs: number) => Promise<void>;
  policy: AttemptPolicy;
  /**
   * The target policy, re-checked on every command whoever sent it: a command whose target is not a valid
   * target of its type, or an IP target the policy refuses, is recorded Failed without running the lookup.
   * (Domains are checked after resolution, by resolveTarget.)
   */
  targetPolicy: TargetPolicy;
  logger: Logger;
  /** The service's task metrics (taskInstruments): attempts, retries, and each stored outcome with its duration. */
  metrics?: TaskInstruments;
  stopSignal?: AbortSignal;
  /** The job cancellations this process heard (job.cancelled): a cancelled job's running lookup is aborted. */
  cancellations?: Cancellations;
  /** Result reuse (CACHE_TTL_<SERVICE>): a recent success of the same target is reused; identical lookups run once. */
  reuse?: ReturnType<typeof createResultReuse>;
  /** Time source (tests). */
  now?: () => number;
}

/**
 * A first delivery of a first attempt dispatched less than this long ago skips the job-status check before
 * its lookup: the job was open a moment ago, and the status is checked again, atomically, when the result
 * is stored (ResultStore.saveIfOpen). Older commands (a backlog, where cancellations matter), redeliveries
 * and retries check first, so a cancelled job's queued commands cost no lookup.
 */
export const PRECHECK_AFTER_MS = 1000;

/**
 * One command, one attempt: run the lookup; on a transient failure with attempts left, hand the command to
 * the broker's delay queue for the next attempt; otherwise store the result (first writer wins) and record its
 * outcome on the job in the same step; if that outcome completed the job, announce the job's end here (a job without
 * a tenant: announceJobEnd) or publish task.completed with its location (the saga announces it); only then return
 * (the caller acks). Commands of cancelled or finished jobs are skipped; a redelivered command whose result is
 * already stored re-announces it to the saga (which records it once, and announces the job unless that was done).
 */
export function createCommandHandler(deps: CommandHandlerDeps) {
  const { service, results, jobs, publishTaskCompleted, announceJobEnd, jobEnd, publishRetry, policy, logger, metrics, stopSignal, cancellations, reuse, now = Date.now } = deps;
  const lookup = guardTarget(deps.lookup, deps.targetPolicy);
  const dataSchema = { name: serviceName(service), validator: compileValidator(deps.dataSchema) };
  return async function handleCommand(message: ReceivedMessage<LookupCommand>): Promise<void> {
    const cmd = message.body;
    const log = logger.child({ jobId: cmd.jobId, messageId: cmd.messageId, lookupService: serviceName(service), attempt: cmd.attempt });
    if (cmd.serviceType !== service) {
      throw new PoisonMessageError(`command for service ${cmd.serviceType} reached the ${serviceName(service)} worker`);
    }
    const retried = message.redelivered || cmd.attempt > 1;
    if (retried || !(now() - Date.parse(cmd.occurredAt) < PRECHECK_AFTER_MS)) {
      // One round trip (ioredis pipelines commands issued in the same tick).
      const [status, existing] = await Promise.all([jobs.getStatus(cmd.jobId), retried ? results.find(cmd.jobId, service) : undefined]);
      if (status === undefined) {
        log.warn('command for a job that no longer exists; skipping');
        return;
      }
      // A Completed job with this task's result stored may be one this command's earlier delivery completed (its
      // save recorded the last outcome) and died before announcing: re-announce it (the saga announces the job
      // unless that was done).
      if (status === 'Cancelled' || (status === 'Completed' && !existing)) {
        log.info({ status }, 'job already finished; skipping the lookup');
        return;
      }
      if (existing) {
        log.info('a result is already stored for this task; re-announcing it');
        await publishTaskCompleted(eventFor(existing, results.locate(cmd.jobId, service), cmd));
        return;
      }
    }

    const watch = cancellations?.watch(cmd.jobId);
    let attempt: ReusableOutcome;
    try {
      attempt = await withSpan(`lookup ${serviceName(service)}`, { 'lookup.service': serviceName(service), 'lookup.job_id': cmd.jobId, 'lookup.attempt': cmd.attempt }, async (span) => {
        const run = () => runAttempt(lookup, cmd, policy.timeoutMs, log, stopSignal, watch?.signal);
        const ran = reuse ? await reuse.attempt(cmd, run) : await run();
        span?.setAttributes({ 'lookup.outcome': ran.ok ? 'succeeded' : 'failed', 'lookup.duration_ms': ran.durationMs });
        if (span && !ran.ok) span.setStatus({ code: SpanStatusCode.ERROR, message: ran.errorMessage });
        return ran;
      });
    } catch (err) {
      if (!(err instanceof JobCancelled)) throw err;
      // The cancel already recorded this service Cancelled: nothing to store, retry or announce.
      log.info('job cancelled during the lookup; lookup aborted');
      return;
    } finally {
      watch?.release();
    }
    metrics?.attempts.inc();
    const outcome = checkLookupData(attempt, dataSchema, log);
    if (!outcome.ok && outcome.retryable && cmd.attempt < policy.maxAttempts) {
      const delayMs = backoffMs(policy, cmd.attempt + 1);
      const next: LookupCommand = {
        ...cmd,
        messageId: commandMessageId(cmd.jobId, service, cmd.attempt + 1),
        occurredAt: new Date().toISOString(),
        attempt: cmd.attempt + 1,
      };
      await publishRetry(next, delayMs);
      metrics?.retries.inc();
      log.info({ err: outcome.errorMessage, retryInMs: delayMs, nextAttempt: next.attempt }, 'lookup attempt failed; retry scheduled');
      return;
    }
    const stored: StoredResult = {
      jobId: cmd.jobId,
      serviceType: service,
      status: outcome.ok ? 'Succeeded' : outcome.timedOut ? 'TimedOut' : 'Failed',
      success: outcome.ok,
      data: outcome.ok ? outcome.data : null,
      errorMessage: outcome.ok ? null : outcome.errorMessage,
      errorCode: outcome.ok ? null : outcome.errorCode,
      durationMs: outcome.durationMs,
      attempts: cmd.attempt,
      completedAt: new Date().toISOString(),
      ...(outcome.ok && attempt.cached ? { cached: true, ageMs: attempt.ageMs } : {}),
    };
    // The result's completion time also stamps the job's, when this outcome completes it.
    const at = stored.completedAt;
    const saved = await results.saveIfOpen(stored, at);
    if ('skipped' in saved) {
      if (saved.skipped === 'unrequested') throw new PoisonMessageError(`job ${cmd.jobId} did not request ${serviceName(service)}`);
      log.info({ status: saved.status ?? 'missing' }, 'job finished or gone during the lookup; result not stored');
      return;
    }
    if (!saved.created) log.info('a result was already stored for this task; announcing the stored one');
    else if (metrics) {
      // Counted once per task, where its result is stored (a redelivery that finds it stored counts nothing).
      (stored.success ? metrics.succeeded : metrics.failed).inc();
      metrics.duration.observe(stored.durationMs / 1000);
    }
    // Recorded here and not the last outcome: nothing to announce until the job's last outcome is in.
    const r = saved.recorded;
    let announced: 'job' | 'task' | false = false;
    if (announceJobEnd && r?.disposition === 'recorded' && r.status === 'Completed' && !r.notified && !r.tenant) {
      // This outcome completed a job without a tenant: announce its end here (a crash before it is marked announced
      // leaves the command unacked; its redelivery finds the result stored and hands the announcement to the saga).
      const first = await withSpan('worker complete job', { 'lookup.job_id': cmd.jobId }, () => announceJobEnd(cmd.jobId, r.hasCallback));
      if (first) jobEnd?.finished('Completed', r.createdAt, at);
      announced = 'job';
      log.info('job completed');
    } else if (needsAnnouncing(saved)) {
      await publishTaskCompleted(eventFor(saved.result, saved.location, cmd));
      announced = 'task';
    }
    log.info({ status: saved.result.status, durationMs: saved.result.durationMs, attempts: saved.result.attempts, jobStatus: r?.status, announced }, 'lookup done');
  };
}

/**
 * The lookup behind the target policy: the command's target must be what the API would have accepted (a valid
 * target of the stated type) and, for an IP address, allowed by the policy. A forged or stale command fails
 * permanently here, before the lookup sends anything anywhere.
 */
export function guardTarget(lookup: LookupFn, policy: TargetPolicy): LookupFn {
  return async (ctx) => {
    const check = validateTarget(ctx.target);
    if (!check.ok) throw permanentError('TARGET_INVALID', `the command's target is not a valid lookup target: ${check.error}`);
    if (check.targetType !== ctx.targetType) {
      throw permanentError('TARGET_INVALID', `the command's target '${check.target}' is ${check.targetType === 'IPAddress' ? 'an IP address' : 'a domain'}, not the ${ctx.targetType} it claims`);
    }
    if (ctx.targetType === 'IPAddress') {
      try {
        assertAddressAllowed(policy, ctx.target);
      } catch (err) {
        ctx.logger.warn({ target: ctx.target, code: TARGET_REFUSED, err: (err as Error).message }, 'target refused by the target policy; no lookup');
        throw err;
      }
    }
    return lookup(ctx);
  };
}

export function eventFor(result: StoredResult, location: ResultLocation | null, cmd: { jobId: string }): TaskCompleted {
  return {
    messageId: taskCompletedMessageId(cmd.jobId, result.serviceType),
    correlationId: cmd.jobId,
    schemaVersion: SCHEMA_VERSION,
    occurredAt: new Date().toISOString(),
    jobId: cmd.jobId,
    serviceType: result.serviceType,
    ...outcomeOf(result),
    location,
  };
}
