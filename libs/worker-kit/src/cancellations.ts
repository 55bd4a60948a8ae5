import { setMaxListeners } from 'node:events';

/** How long a cancellation is remembered, so a command that starts just after its broadcast is aborted too. */
export const CANCELLED_MEMORY_MS = 60_000;
/** The most cancellations remembered at once (the oldest are forgotten first). */
const MAX_REMEMBERED = 10_000;

export class JobCancelled extends Error {
  readonly code = 'JOB_CANCELLED';
  readonly retryable = false;
}

/**
 * The lookups in flight in one worker process, by job: `job.cancelled` (a broadcast every worker hears on its
 * private queue) aborts the signals of that job's running attempts. A job cancelled shortly before one of its
 * commands starts gets an aborted signal at once.
 */
export interface Cancellations {
  /** A signal aborted (reason JobCancelled) when the job is cancelled; call release() when the attempt ends. */
  watch(jobId: string): { signal: AbortSignal; release(): void };
  /** Aborts every running attempt of the job; returns how many. */
  cancel(jobId: string): number;
}

export function createCancellations(now: () => number = Date.now): Cancellations {
  const running = new Map<string, Set<AbortController>>();
  const cancelledAt = new Map<string, number>();
  const remembered = (jobId: string) => {
    const at = cancelledAt.get(jobId);
    return at !== undefined && now() - at < CANCELLED_MEMORY_MS;
  };
  return {
    watch(id) {
      const jobId = id.toLowerCase();
      const controller = new AbortController();
      setMaxListeners(0, controller.signal);
      if (remembered(jobId)) {
        controller.abort(new JobCancelled(`job ${jobId} was cancelled`));
        return { signal: controller.signal, release: () => undefined };
      }
      let set = running.get(jobId);
      if (!set) running.set(jobId, (set = new Set()));
      set.add(controller);
      return {
        signal: controller.signal,
        release: () => {
          set.delete(controller);
          if (set.size === 0 && running.get(jobId) === set) running.delete(jobId);
        },
      };
    },
    cancel(id) {
      const jobId = id.toLowerCase();
      cancelledAt.delete(jobId);
      cancelledAt.set(jobId, now());
      for (const [id, at] of cancelledAt) {
        if (cancelledAt.size <= MAX_REMEMBERED && now() - at < CANCELLED_MEMORY_MS) break;
        cancelledAt.delete(id);
      }
      const set = running.get(jobId);
      if (!set) return 0;
      for (const c of set) c.abort(new JobCancelled(`job ${jobId} was cancelled`));
      return set.size;
    },
  };
}
