import { equalJitterBackoff, errorCodeOf, errorMessage, isCodedError, type Validator } from '@lookup/contracts';
import type { Logger } from '@lookup/logging';
import type { LookupData, LookupFn } from './types.ts';
import { JobCancelled } from './cancellations.ts';

export interface AttemptPolicy {
  /** Upper bound of one attempt. */
  timeoutMs: number;
  /** Highest attempt number; transient failures before it are retried. */
  maxAttempts: number;
  /** Backoff before attempt 2; doubles per attempt, capped at maxBackoffMs, with jitter. */
  baseBackoffMs: number;
  maxBackoffMs: number;
}

export type AttemptOutcome =
  | { ok: true; data: LookupData; durationMs: number }
  | { ok: false; retryable: boolean; timedOut: boolean; errorMessage: string; errorCode: string | null; durationMs: number };

class AttemptTimeout extends Error {
  readonly code = 'LOOKUP_TIMEOUT';
  readonly retryable = true;
}

export class WorkerStopping extends Error {
  readonly code = 'WORKER_STOPPING';
  readonly retryable = true;
}

/**
 * Runs one attempt of a lookup under a timeout. Errors are classified: a LookupError says whether it is
 * retryable; timeouts and unexpected errors are transient. Throws WorkerStopping if the worker shuts down
 * meanwhile (the command is then left unacked and redelivered), and JobCancelled if `cancelSignal` aborts (the
 * job was cancelled: its outcome is already recorded Cancelled).
 */
export async function runAttempt(
  lookup: LookupFn,
  input: { jobId: string; target: string; targetType: 'IPAddress' | 'Domain'; attempt: number },
  timeoutMs: number,
  logger: Logger,
  stopSignal?: AbortSignal,
  cancelSignal?: AbortSignal,
): Promise<AttemptOutcome> {
  const started = performance.now();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new AttemptTimeout(`timed out after ${timeoutMs} ms`)), timeoutMs);
  const onStop = () => controller.abort(new WorkerStopping('worker is shutting down'));
  stopSignal?.addEventListener('abort', onStop, { once: true });
  const onCancel = () => controller.abort(cancelSignal?.reason);
  if (cancelSignal?.aborted) onCancel();
  else cancelSignal?.addEventListener('abort', onCancel, { once: true });
  try {
    const data = await Promise.race([
      lookup({ ...input, signal: controller.signal, logger }),
      new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true })),
    ]);
    return { ok: true, data, durationMs: elapsed(started) };
  } catch (err) {
    if (err instanceof WorkerStopping || stopSignal?.aborted) throw new WorkerStopping('worker is shutting down');
    if (cancelSignal?.aborted) throw cancelSignal.reason instanceof JobCancelled ? cancelSignal.reason : new JobCancelled('the job was cancelled');
    const timedOut = err instanceof AttemptTimeout;
    return {
      ok: false,
      timedOut,
      retryable: timedOut || !isCodedError(err) || err.retryable,
      errorMessage: errorMessage(err),
      errorCode: isCodedError(err) ? errorCodeOf(err) : null,
      durationMs: elapsed(started),
    };
  } finally {
    clearTimeout(timer);
    stopSignal?.removeEventListener('abort', onStop);
    cancelSignal?.removeEventListener('abort', onCancel);
  }
}

/** The most of a schema mismatch's problems quoted in a result's errorMessage (the log line has them all). */
const MAX_PROBLEMS_TEXT = 1000;

/** The error code (in the log and in the stored outcome) of a lookup whose data does not match its data schema. */
export const RESULT_DATA_INVALID = 'RESULT_DATA_INVALID';

/**
 * A successful attempt whose data does not match the service's data schema becomes a permanent failure: it is
 * a bug in the worker, not a property of the target, so another attempt would return the same data. Logged at
 * error level with every problem found. Other outcomes pass through unchanged.
 */
export function checkLookupData(outcome: AttemptOutcome, schema: { name: string; validator: Validator<unknown> }, logger: Logger): AttemptOutcome {
  if (!outcome.ok || schema.validator.check(outcome.data)) return outcome;
  const problems = schema.validator.errors(outcome.data);
  let text = problems.join('; ');
  if (text.length > MAX_PROBLEMS_TEXT) text = `${text.slice(0, MAX_PROBLEMS_TEXT - 3)}...`;
  const message = `result data does not match the ${schema.name} data schema: ${text}`;
  logger.error({ code: RESULT_DATA_INVALID, problems }, message);
  return { ok: false, retryable: false, timedOut: false, errorMessage: message, errorCode: RESULT_DATA_INVALID, durationMs: outcome.durationMs };
}

/** Backoff before `nextAttempt` (2, 3, ...): exponential, capped, with "equal jitter" (half fixed, half random). */
export function backoffMs(policy: AttemptPolicy, nextAttempt: number, random = Math.random): number {
  return equalJitterBackoff(nextAttempt - 2, policy.baseBackoffMs, policy.maxBackoffMs, random);
}

const elapsed = (started: number) => Math.round((performance.now() - started) * 100) / 100;
