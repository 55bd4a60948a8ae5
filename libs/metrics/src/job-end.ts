import { jobDuration, jobsCompleted } from './catalogue.ts';
import { zeroed } from './registry.ts';

/** A job's end, counted once, by whoever announced it first: the worker whose outcome completed it, or the saga. */
export interface JobEndMetrics {
  /** A job completed: `how` is Completed (every outcome in) or TimedOut (the deadline sweeper finished it). */
  finished(how: 'Completed' | 'TimedOut', createdAt: string | undefined, completedAt: string): void;
}

/**
 * lookup_jobs_completed_total{status="Completed"|"TimedOut"} and lookup_job_duration_seconds, label children bound
 * once. The duration runs from the job's creation (the store returns it with the call that finished the job) to
 * its completion; a job without a readable creation time is counted but not timed.
 */
export function jobEndMetrics(): JobEndMetrics {
  const completed = { Completed: zeroed(jobsCompleted().labels('Completed')), TimedOut: zeroed(jobsCompleted().labels('TimedOut')) };
  const duration = jobDuration();
  return {
    finished(how, createdAt, completedAt) {
      completed[how].inc();
      const ms = createdAt ? Date.parse(completedAt) - Date.parse(createdAt) : NaN;
      if (Number.isFinite(ms) && ms >= 0) duration.observe(ms / 1000);
    },
  };
}
