import type { Logger } from '@lookup/logging';
import type { JobStore } from '@lookup/store';
import { sleep } from '@lookup/coordination';
import type { JobEndMetrics } from '@lookup/metrics';

export interface DeadlineSweeperDeps {
  jobs: Pick<JobStore, 'dueJobs' | 'expire'>;
  /** Announces a job that the sweep finished (job.completed, and its callback command if it has one), then marks it notified. */
  announce: (jobId: string, hasCallback: boolean, status?: 'Completed' | 'Cancelled') => Promise<unknown>;
  intervalMs: number;
  logger: Logger;
  /** Jobs examined per pass. */
  batch?: number;
  metrics?: JobEndMetrics;
  /** A tenant's job was expired here: its window slot goes to the tenant's next job (Saga.afterTenantJobEnded). */
  tenantJobEnded?: (tenant: string) => Promise<void>;
  /** Once per pass: heal and refill the tenants' dispatch windows (Saga.sweepTenants). */
  sweepTenants?: (signal: AbortSignal) => Promise<void>;
}

/**
 * Finishes overdue jobs: every service still missing at the deadline is recorded TimedOut and the job
 * completes with what it has. Runs while `signal` is not aborted (the saga runs it on its elected leader
 * only, so replicas do not duplicate the work; expiry is idempotent, so an overlap would be harmless).
 */
export async function sweepDeadlines(deps: DeadlineSweeperDeps, signal: AbortSignal): Promise<void> {
  const { jobs, announce, intervalMs, logger, batch = 200, metrics, tenantJobEnded, sweepTenants } = deps;
  while (!signal.aborted) {
    try {
      const due = await jobs.dueJobs(Date.now(), batch);
      for (const jobId of due) {
        if (signal.aborted) break;
        const now = new Date();
        const result = await jobs.expire(jobId, now);
        if (result.disposition === 'expired') {
          logger.warn({ jobId }, 'deadline passed; missing services recorded TimedOut');
          metrics?.finished('TimedOut', result.createdAt, now.toISOString());
        }
        if ((result.disposition === 'expired' || result.disposition === 'finished') && result.status === 'Completed' && !result.notified) {
          await announce(jobId, result.hasCallback);
        }
        if (result.disposition === 'finished' && result.status === 'Cancelled' && !result.notified) {
          logger.warn({ jobId }, 'a cancellation was never announced; announcing it');
          await announce(jobId, result.hasCallback, 'Cancelled');
        }
        if (result.disposition === 'expired' && result.tenant) await tenantJobEnded?.(result.tenant);
      }
      if (sweepTenants) {
        try {
          await sweepTenants(signal);
        } catch (err) {
          logger.warn({ err: (err as Error).message }, "tenant dispatch sweep failed; retrying");
        }
      }
      if (due.length === batch) continue; // more are due: no pause
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'deadline sweep failed; retrying');
    }
    // sleep() removes its abort listener when the pause ends; adding one per pause and never removing it
    // piled up listeners on the leader's signal (MaxListenersExceededWarning after ten sweeps).
    await sleep(intervalMs, signal);
  }
}
