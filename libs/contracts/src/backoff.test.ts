import { describe, expect, it } from 'vitest';
import { equalJitterBackoff } from './backoff.ts';

describe('equalJitterBackoff', () => {
  it('doubles from the base, is capped, and keeps half of each wait fixed', () => {
    expect([0, 1, 2, 3].map((n) => equalJitterBackoff(n, 500, 3000, () => 1))).toEqual([500, 1000, 2000, 3000]);
    expect([0, 1, 2, 3].map((n) => equalJitterBackoff(n, 500, 3000, () => 0))).toEqual([250, 500, 1000, 1500]);
    expect(equalJitterBackoff(1000, 1000, 60_000, () => 1)).toBe(60_000); // no overflow for long outages
    expect(equalJitterBackoff(-1, 100, 1000, () => 1)).toBe(100);
  });
});
