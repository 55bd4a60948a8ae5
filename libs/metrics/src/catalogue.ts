import type { ServiceName } from '@lookup/contracts';
import { gaugeOf, lazyCounter, lazyHistogram, zeroed } from './registry.ts';

/**
 * Every `lookup_*` metric of the suite: name, help, labels and buckets, in one place. Each is incremented at the
 * one place where the thing it counts happens (README, Metrics, says where). Labels are bounded sets: service
 * names, statuses, outcomes, tiers, queue roles and reason codes; never a job id, a target or a key.
 */

/** Lookup durations, seconds: a GeoIP read takes a millisecond, an RDAP query up to LOOKUP_TIMEOUT_MS (10 s). */
export const TASK_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Job durations, seconds: from submission to completion (up to JOB_DEADLINE_MS, about 36 s by default). */
export const JOB_DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** How a job ended: all outcomes in (Completed), finished by its deadline (TimedOut), or cancelled (Cancelled). */
export type JobEnd = 'Completed' | 'TimedOut' | 'Cancelled';
/** A worker's final outcome of a task (a timed-out lookup is `failed`). */
export type TaskOutcome = 'succeeded' | 'failed';
/** A result status as the API's view counts it (ResultStatus, lower case). */
export type ServiceOutcome = 'succeeded' | 'failed' | 'timed_out' | 'cancelled';
/** How a resource worker answered a request. */
export type ResourceOutcome = 'succeeded' | 'failed' | 'refused';

export const jobsSubmitted = lazyCounter('lookup_jobs_submitted_total', 'Jobs accepted (202) whose dispatch (commands, or a tenant\'s job.submitted) the broker confirmed, by the API');
export const jobsCompleted = lazyCounter(
  'lookup_jobs_completed_total',
  'Jobs finished, by how, where first announced: Completed (every outcome in) by the worker that completed it or the saga, TimedOut (at its deadline) by the saga, Cancelled by the API',
  ['status'] as const,
);
export const jobDuration = lazyHistogram(
  'lookup_job_duration_seconds',
  'Time from submission to completion of the jobs counted Completed or TimedOut here',
  JOB_DURATION_BUCKETS,
);

export const tenantJobsHeld = lazyCounter(
  'lookup_tenant_jobs_held_total',
  "Tenants' jobs the saga queued in Redis because their tenant's dispatch window (TENANT_DISPATCH_WINDOW) was full",
);

export const tasks = lazyCounter('lookup_tasks_total', 'Lookup tasks a worker finished (result stored), by final outcome', ['service', 'outcome'] as const);
export const taskDuration = lazyHistogram(
  'lookup_task_duration_seconds',
  "Duration of a finished task's last lookup attempt (the durationMs of its result)",
  TASK_DURATION_BUCKETS,
  ['service'] as const,
);
export const taskAttempts = lazyCounter('lookup_task_attempts_total', 'Lookup attempts run by workers (first tries and retries)', ['service'] as const);
export const taskRetries = lazyCounter('lookup_task_retries_total', 'Retries scheduled after a transient lookup failure', ['service'] as const);

export const deadLetters = lazyCounter(
  'lookup_dead_letters_total',
  'Messages moved to the dead-letter queue, by the queue they came from (its role, without the namespace) and reason code',
  ['queue', 'reason'] as const,
);
export const rateLimitRejections = lazyCounter('lookup_rate_limit_rejections_total', 'Requests refused with 429, by rate-limit tier', ['tier'] as const);

export const resourceRequests = lazyCounter(
  'lookup_resource_requests_total',
  'Resource requests a resource worker answered: succeeded (status below 400), failed (an error answer, 400 and above), refused (not the owner, draining...)',
  ['outcome'] as const,
);
export const resourceFailovers = lazyCounter(
  'lookup_resource_failovers_total',
  'Resource keys placed on another worker while still pinned to an owner that never released them (the owner died or lost its lease)',
);
/** lookup_resource_owned_keys: the keys this resource worker holds, read from `read` at each scrape. */
export function resourceOwnedKeys(read: () => number): void {
  gaugeOf('lookup_resource_owned_keys', 'Resource keys this worker holds a lease on right now', read);
}

export const apiServiceOutcomes = lazyCounter(
  'lookup_api_service_outcomes_total',
  'Per-service outcomes of finished jobs, counted once per job by one API replica (the first to claim it)',
  ['service', 'outcome'] as const,
);
export const apiServiceDuration = lazyHistogram(
  'lookup_api_service_duration_seconds',
  'Lookup duration of the per-service results of finished jobs (results with a duration), counted as lookup_api_service_outcomes_total',
  TASK_DURATION_BUCKETS,
  ['service'] as const,
);

/** A worker's instruments for its service, with their label children bound once (nothing allocated per task). */
export function taskInstruments(service: ServiceName) {
  taskDuration().zero({ service });
  return {
    succeeded: zeroed(tasks().labels(service, 'succeeded')),
    failed: zeroed(tasks().labels(service, 'failed')),
    duration: taskDuration().labels(service),
    attempts: zeroed(taskAttempts().labels(service)),
    retries: zeroed(taskRetries().labels(service)),
  };
}
export type TaskInstruments = ReturnType<typeof taskInstruments>;
