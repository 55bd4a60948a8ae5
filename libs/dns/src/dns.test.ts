import { describe, expect, it } from 'vitest';
import { DNS_TRIES, resolverSettings } from './dns.ts';

describe('resolverSettings (the one DNS timeout formula)', () => {
  it('gives each try its share of the budget, within 250 ms and the cap', () => {
    expect(DNS_TRIES).toBe(2);
    expect(resolverSettings(['127.0.0.1:53'], 1000)).toEqual({ servers: ['127.0.0.1:53'], timeoutMs: 500 });
    expect(resolverSettings([], 10_000).timeoutMs).toBe(2000); // capped
    expect(resolverSettings([], 10_000, 5000).timeoutMs).toBe(5000);
    expect(resolverSettings([], 100).timeoutMs).toBe(250); // floor
  });

  it('keeps the formulas it replaced (attempt timeout / 4, / 2 capped at 5 s, the probe timeout)', () => {
    for (const ms of [999, 1000, 1001, 1003, 4321, 8000, 15_000, 60_000]) {
      expect(resolverSettings([], ms / 2).timeoutMs, `${ms} / 4`).toBe(Math.max(250, Math.min(2000, Math.floor(ms / 4))));
      expect(resolverSettings([], ms, 5000).timeoutMs, `${ms} / 2`).toBe(Math.max(250, Math.min(5000, Math.floor(ms / 2))));
      expect(resolverSettings([], 2 * ms).timeoutMs, `${ms}`).toBe(Math.max(250, Math.min(2000, ms)));
    }
  });
});
