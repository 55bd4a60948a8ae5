import { SERVICE_CATALOGUE, type ResultStatus, type ServiceType } from '@lookup/contracts';
import { apiServiceDuration, apiServiceOutcomes, jobsSubmitted, zeroed, type ServiceOutcome } from '@lookup/metrics';
import type { Logger } from '@lookup/logging';
import type { ClaimedOutcome } from '@lookup/store';
import type { DispatchJob } from './dispatch-job.ts';

/**
 * lookup_jobs_submitted_total: `dispatch` (dispatch-job.ts) counting each job whose dispatch the broker confirmed,
 * which is when a single or batch submission's job is accepted.
 */
export function countSubmitted(dispatch: DispatchJob): DispatchJob {
  const submitted = jobsSubmitted();
  return async (message, viaSaga) => {
    await dispatch(message, viaSaga);
    submitted.inc();
  };
}

const OUTCOME: Record<ResultStatus, ServiceOutcome> = { Succeeded: 'succeeded', Failed: 'failed', TimedOut: 'timed_out', Cancelled: 'cancelled' };

export interface ServiceOutcomeDeps {
  /** The job store's claimOutcomes: a finished job's outcomes, to the first API replica that asks. */
  claim: (jobId: string) => Promise<ClaimedOutcome[] | undefined>;
  logger: Logger;
}

/**
 * The API's view of how each service is doing: lookup_api_service_outcomes_total{service, outcome} and
 * lookup_api_service_duration_seconds{service}, fed by the job.completed every API replica hears. Each finished
 * job is counted by exactly one replica (the first to claim it in Redis), so a sum over replicas counts every job
 * once; one replica alone counts the share it claimed (with one API, every job). Label children are bound once.
 */
export function createServiceOutcomeMetrics({ claim, logger }: ServiceOutcomeDeps) {
  const outcomes = apiServiceOutcomes();
  const duration = apiServiceDuration();
  const bound = new Map(
    SERVICE_CATALOGUE.map((s) => {
      duration.zero({ service: s.name });
      const outcome = Object.fromEntries(Object.entries(OUTCOME).map(([status, label]) => [status, zeroed(outcomes.labels(s.name, label))]));
      return [s.value, { outcome: outcome as Record<ResultStatus, ReturnType<typeof outcomes.labels>>, duration: duration.labels(s.name) }];
    }),
  );
  return {
    /** A job finished (its job.completed arrived): count its outcomes if this replica is the first to claim them. */
    async jobFinished(jobId: string): Promise<void> {
      let claimed: ClaimedOutcome[] | undefined;
      try {
        claimed = await claim(jobId);
      } catch (err) {
        logger.debug({ err: (err as Error).message, jobId }, 'could not claim the outcomes of a finished job; not counted');
        return;
      }
      for (const o of claimed ?? []) count(o.service, o);
    },
  };

  function count(service: ServiceType, o: ClaimedOutcome): void {
    const b = bound.get(service);
    const child = b?.outcome[o.status];
    if (!b || !child) return;
    child.inc();
    if (o.durationMs !== null && Number.isFinite(o.durationMs) && o.durationMs >= 0) b.duration.observe(o.durationMs / 1000);
  }
}
