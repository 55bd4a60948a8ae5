import { CoordinationError } from './errors.ts';

/**
 * A monotonic clock in milliseconds. Lease deadlines are measured on it, never on the wall clock: it does not
 * jump when the system time is set, and it keeps running while the process is stopped (SIGSTOP), so a process
 * that resumes after its lease ran out sees at once that it ran out.
 */
export type MonotonicClock = () => number;

export const monotonicNow: MonotonicClock = () => performance.now();

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** Rejects with a CoordinationError('REDIS_TIMEOUT') when `promise` takes longer than `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new CoordinationError('REDIS_TIMEOUT', `${what} took longer than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
