import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SUITE_HISTOGRAMS, SUITE_METRICS } from './support/metric-names.ts';

// The deployment tests (Grafana dashboard, scrape settings) check PromQL against tests/support/metric-names.ts;
// this keeps that list equal to the metrics the suite really defines (libs/metrics catalogue).
describe('agreed metric names', () => {
  it('equal the lookup_* metrics defined in libs/metrics/src/catalogue.ts', () => {
    const source = readFileSync(new URL('../libs/metrics/src/catalogue.ts', import.meta.url), 'utf8');
    const defined = [...source.matchAll(/'(lookup_[a-z_]+)'/g)].map((m) => m[1]!);
    expect(defined.length).toBeGreaterThan(5);
    expect([...new Set(defined)].sort()).toEqual([...SUITE_METRICS, ...SUITE_HISTOGRAMS].sort());
  });
});
