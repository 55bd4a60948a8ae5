import { SERVICE_CATALOGUE, type ResultStatus } from '@lookup/contracts';
import { apiServiceDuration, apiServiceOutcomes, jobsSubmitted, zeroed, type ServiceOutcome } from '@lookup/metrics';
import type { Logger } from '@lookup/logging';
import type { DrainedOutcomes, EndedOutcome } from '@lookup/store';
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
  /** The job store's drainOutcomes: the outcomes of jobs whose end was announced, each job's to one API replica. */
  drain: (max: number) => Promise<DrainedOutcomes>;
  logger: Logger;
}

/** How often an API replica drains the finished jobs' outcomes (the metrics lag the jobs' ends by at most this). */
export const OUTCOME_DRAIN_MS = 1000;
/** Jobs taken per shard per Redis call, and calls per drain (a backlog is taken over a few drains). */
const DRAIN_MAX = 500;
const DRAIN_ROUNDS = 10;

/**
 * The API's view of how each service is doing: lookup_api_service_outcomes_total{service, outcome} and
 * lookup_api_service_duration_seconds{service}, fed by the outcomes every finished job queues in Redis when its end is
 * announced (JobStore.markNotified), which the API replicas drain every OUTCOME_DRAIN_MS. Each finished job is counted
 * by exactly one replica (the one that took it off the list), so a sum over replicas counts every job once; one
 * replica alone counts the share it took (with one API, every job). No message reaches the API for it, so the cost per
 * job does not grow with the number of replicas. Label children are bound once.
 */
export function createServiceOutcomeMetrics({ drain, logger }: ServiceOutcomeDeps) {
  const outcomes = apiServiceOutcomes();
  const duration = apiServiceDuration();
  const bound = new Map(
    SERVICE_CATALOGUE.map((s) => {
      duration.zero({ service: s.name });
      const outcome = Object.fromEntries(Object.entries(OUTCOME).map(([status, label]) => [status, zeroed(outcomes.labels(s.name, label))]));
      return [s.value, { outcome: outcome as Record<ResultStatus, ReturnType<typeof outcomes.labels>>, duration: duration.labels(s.name) }];
    }),
  );
  let running: Promise<number> | undefined;
  /**
   * Counts the outcomes of the jobs that ended since the last drain; resolves with how many jobs it counted. Never
   * rejects: with Redis down nothing is taken, and the jobs wait for the next drain. One drain at a time.
   */
  const drainOnce = (): Promise<number> => (running ??= drainAll().finally(() => (running = undefined)));
  return {
    drainOnce,
    /** Drains every `everyMs` until the returned stop is called (the timer does not keep the process alive). */
    start(everyMs = OUTCOME_DRAIN_MS): () => void {
      const timer = setInterval(() => void drainOnce(), everyMs);
      timer.unref();
      return () => clearInterval(timer);
    },
  };

  async function drainAll(): Promise<number> {
    let jobs = 0;
    try {
      for (let round = 0; round < DRAIN_ROUNDS; round++) {
        const got = await drain(DRAIN_MAX);
        for (const o of got.outcomes) count(o);
        jobs += got.jobs;
        if (!got.full) break;
      }
    } catch (err) {
      logger.debug({ err: (err as Error).message }, 'could not drain the outcomes of finished jobs; trying again at the next drain');
    }
    return jobs;
  }

  function count(o: EndedOutcome): void {
    const b = bound.get(o.service);
    const child = b?.outcome[o.status];
    if (!b || !child) return;
    child.inc();
    if (o.durationMs !== null && Number.isFinite(o.durationMs) && o.durationMs >= 0) b.duration.observe(o.durationMs / 1000);
  }
}
