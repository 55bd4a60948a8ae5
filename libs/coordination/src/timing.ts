import { CoordinationError } from './errors.ts';

export interface LeaseTimingOptions {
  /** Heartbeat interval (RESOURCE_HEARTBEAT_MS, the seed's IntervalMs). */
  heartbeatMs: number;
  /** Missed beats before the lease runs out (RESOURCE_MAX_MISSED, the seed's MaxFailures). */
  maxMissed: number;
  /** Override of the holder's safety margin (default: a fifth of the TTL). */
  safetyMarginMs?: number;
}

export interface LeaseTimings {
  /** What Redis grants: the full period, heartbeatMs x maxMissed. */
  ttlMs: number;
  /** How often the holder renews: every heartbeat, or a third of the TTL if that is shorter. */
  renewEveryMs: number;
  /** How much earlier than Redis the holder gives the lease up. */
  safetyMarginMs: number;
  /**
   * How long after *sending* a successful acquire/renew the holder still considers the lease its own
   * (ttl - margin), on its own monotonic clock. Redis started the TTL after the command arrived, so Redis
   * expires it no earlier than `safetyMarginMs` after the holder stopped.
   */
  localValidityMs: number;
}

export function leaseTimings({ heartbeatMs, maxMissed, safetyMarginMs }: LeaseTimingOptions): LeaseTimings {
  if (!(heartbeatMs > 0) || !Number.isInteger(maxMissed) || maxMissed < 1) {
    throw new CoordinationError('INVALID_ARGUMENT', `heartbeatMs must be > 0 and maxMissed an integer >= 1 (got ${heartbeatMs}, ${maxMissed})`);
  }
  const ttlMs = Math.round(heartbeatMs * maxMissed);
  const margin = safetyMarginMs ?? Math.max(1, Math.floor(ttlMs / 5));
  if (margin <= 0 || margin >= ttlMs) {
    throw new CoordinationError('INVALID_ARGUMENT', `safetyMarginMs must be between 0 and the TTL (${ttlMs} ms), got ${margin}`);
  }
  const renewEveryMs = Math.max(1, Math.min(heartbeatMs, Math.floor(ttlMs / 3)));
  const localValidityMs = ttlMs - margin;
  if (localValidityMs <= renewEveryMs) {
    throw new CoordinationError('INVALID_ARGUMENT', `the safety margin leaves no time to renew (ttl ${ttlMs} ms, margin ${margin} ms, renew every ${renewEveryMs} ms)`);
  }
  return { ttlMs, renewEveryMs, safetyMarginMs: margin, localValidityMs };
}
