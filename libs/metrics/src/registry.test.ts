import { describe, expect, it } from 'vitest';
import { exposition, lazyCounter, zeroed } from './registry.ts';
import { parseExposition, sampleValue } from './parse.ts';

describe('zeroed counter children', () => {
  const counter = lazyCounter('registry_test_things_total', 'things counted by the test', ['kind'] as const);

  it('exposes the series at 0 from the start and every increment at the next scrape', async () => {
    const a = zeroed(counter().labels('a'));
    const b = zeroed(counter().labels('b'));
    let samples = parseExposition((await exposition()).body);
    expect(sampleValue(samples, 'registry_test_things_total', { kind: 'a' })).toBe(0);
    expect(samples.some((s) => s.name === 'registry_test_things_total' && s.labels.kind === 'b')).toBe(true);
    a.inc();
    a.inc(2);
    b.inc(0.5);
    samples = parseExposition((await exposition()).body);
    expect(sampleValue(samples, 'registry_test_things_total', { kind: 'a' })).toBe(3);
    expect(sampleValue(samples, 'registry_test_things_total', { kind: 'b' })).toBe(0.5);
    a.inc();
    samples = parseExposition((await exposition()).body);
    expect(sampleValue(samples, 'registry_test_things_total', { kind: 'a' })).toBe(4);
  });

  it('refuses what prom-client refuses, at once', () => {
    const c = zeroed(counter().labels('c'));
    expect(() => c.inc(-1)).toThrow(/decrease/);
    expect(() => c.inc(Number.NaN)).toThrow(/not a valid number/);
  });
});
