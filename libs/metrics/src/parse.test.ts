import { describe, expect, it } from 'vitest';
import { Counter, Histogram, Registry } from 'prom-client';
import { parseExposition, sampleValue } from './parse.ts';

describe('parseExposition', () => {
  it('reads what prom-client writes: counters with labels (escaped values too) and histogram buckets', async () => {
    const registry = new Registry();
    const c = new Counter({ name: 'x_total', help: 'x', labelNames: ['service', 'reason'], registers: [registry] });
    c.labels('Ping', 'a "quoted" \\ value').inc(2);
    c.labels('DNS', 'plain').inc();
    const h = new Histogram({ name: 'd_seconds', help: 'd', buckets: [0.1, 1], registers: [registry] });
    h.observe(0.05);
    h.observe(0.5);
    h.observe(5);
    const samples = parseExposition(await registry.metrics());
    expect(sampleValue(samples, 'x_total', { service: 'Ping', reason: 'a "quoted" \\ value' })).toBe(2);
    expect(sampleValue(samples, 'x_total')).toBe(3);
    expect(sampleValue(samples, 'd_seconds_count')).toBe(3);
    expect(sampleValue(samples, 'd_seconds_bucket', { le: '0.1' })).toBe(1);
    expect(sampleValue(samples, 'd_seconds_bucket', { le: '1' })).toBe(2);
    expect(sampleValue(samples, 'd_seconds_bucket', { le: '+Inf' })).toBe(3);
    expect(sampleValue(samples, 'nothing_total')).toBe(0);
  });

  it('throws on a line that is not a sample', () => {
    expect(() => parseExposition('x_total{a="b" 1\n')).toThrow(/not a sample line/);
  });
});
