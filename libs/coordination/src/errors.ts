import type { CodedError } from '@lookup/contracts';

export type CoordinationErrorCode =
  | 'LEASE_NOT_HELD' // the caller does not hold the lease (never did, or lost it)
  | 'REDIS_TIMEOUT' // Redis did not answer in time; the outcome is unknown
  | 'INVALID_ARGUMENT';

/** Coordination error catalogue: stable codes, each saying whether a retry can help. Match on `code`. */
export class CoordinationError extends Error implements CodedError {
  readonly retryable: boolean;
  constructor(readonly code: CoordinationErrorCode, message: string) {
    super(message);
    this.name = 'CoordinationError';
    this.retryable = code === 'REDIS_TIMEOUT';
  }
}
