import { errorMessage, isCodedError, type ResultStatus } from '@lookup/contracts';
import type { Logger } from '@lookup/logging';
import type { LookupData, LookupFn } from './types.ts';

export interface AttemptPolicy {
  timeoutMs: number;
  maxAttempts: number;
  /** First backoff; doubles each attempt, with full jitter, capped at maxBackoffMs. */
  baseBackoffMs: number;
  maxBackoffMs: number;
}

export interface LookupOutcome {
  status: ResultStatus;
  data: LookupData | null;
  errorMessage: string | null;
  attempts: number;
  durationMs: number;
}

class AttemptTimeout extends Error {
  readonly code = 'LOOKUP_TIMEOUT';
  readonly retryable = true;
}

/**
 * Runs a lookup with a per-attempt timeout. Transient errors (and timeouts) are retried with exponential
 * backoff and jitter up to maxAttempts; permanent ones (retryable: false) fail at once.
 */
export async function runLookup(
  lookup: LookupFn,
  input: { jobId: string; target: string; targetType: 'IPAddress' | 'Domain'; firstAttempt: number },
  policy: AttemptPolicy,
  logger: Logger,
  stopSignal?: AbortSignal,
): Promise<LookupOutcome> {
  const started = performance.now();
  let attempt = input.firstAttempt;
  for (;;) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new AttemptTimeout(`timed out after ${policy.timeoutMs} ms`)), policy.timeoutMs);
    const onStop = () => controller.abort(new Error('worker is shutting down'));
    stopSignal?.addEventListener('abort', onStop, { once: true });
    try {
      const data = await Promise.race([
        lookup({ ...input, attempt, signal: controller.signal, logger }),
        new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true })),
      ]);
      return { status: 'Succeeded', data, errorMessage: null, attempts: attempt, durationMs: elapsed(started) };
    } catch (err) {
      const timedOut = err instanceof AttemptTimeout;
      const retryable = timedOut || !isCodedError(err) || err.retryable;
      if (stopSignal?.aborted) throw err; // shutting down: leave the command unacked so it is redelivered
      if (!retryable || attempt >= policy.maxAttempts) {
        return {
          status: timedOut ? 'TimedOut' : 'Failed',
          data: null,
          errorMessage: errorMessage(err),
          attempts: attempt,
          durationMs: elapsed(started),
        };
      }
      const delay = Math.round(Math.random() * Math.min(policy.maxBackoffMs, policy.baseBackoffMs * 2 ** (attempt - 1)));
      logger.info({ attempt, retryInMs: delay, err: errorMessage(err) }, 'lookup attempt failed; retrying');
      await new Promise((r) => setTimeout(r, delay));
      attempt++;
    } finally {
      clearTimeout(timer);
      stopSignal?.removeEventListener('abort', onStop);
    }
  }
}

const elapsed = (started: number) => Math.round((performance.now() - started) * 100) / 100;
