import { describe, expect, it } from 'vitest';
import { leaseTimings } from './timing.ts';

describe('leaseTimings', () => {
  it('grants the full period, renews every beat, and gives up a margin before Redis expires the lease', () => {
    expect(leaseTimings({ heartbeatMs: 2000, maxMissed: 3 })).toEqual({ ttlMs: 6000, renewEveryMs: 2000, safetyMarginMs: 1200, localValidityMs: 4800 });
  });
  it('renews at least three times per lease even with one allowed miss', () => {
    const t = leaseTimings({ heartbeatMs: 300, maxMissed: 1 });
    expect(t.ttlMs).toBe(300);
    expect(t.renewEveryMs).toBe(100);
    expect(t.localValidityMs).toBeGreaterThan(t.renewEveryMs);
  });
  it('refuses settings that leave no time to renew', () => {
    expect(() => leaseTimings({ heartbeatMs: 0, maxMissed: 3 })).toThrow(/heartbeatMs/);
    expect(() => leaseTimings({ heartbeatMs: 100, maxMissed: 3, safetyMarginMs: 300 })).toThrow(/safetyMarginMs/);
    expect(() => leaseTimings({ heartbeatMs: 100, maxMissed: 3, safetyMarginMs: 250 })).toThrow(/no time to renew/);
  });
});
