import { describe, expect, it } from 'vitest';
import { exposition } from './registry.ts';
import { parseExposition, sampleValue } from './parse.ts';
import { jobEndMetrics } from './job-end.ts';

const read = async () => parseExposition((await exposition()).body);

describe("the job-end metrics (the saga's and the workers')", () => {
  it('counts each ending by status and times it from creation to completion', async () => {
    const m = jobEndMetrics();
    const before = await read();
    m.finished('Completed', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.300Z');
    m.finished('TimedOut', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:40.000Z');
    m.finished('Completed', undefined, '2026-01-01T00:00:01.000Z'); // no creation time: counted, not timed
    const after = await read();
    const delta = (name: string, labels: Record<string, string> = {}) => sampleValue(after, name, labels) - sampleValue(before, name, labels);
    expect(delta('lookup_jobs_completed_total', { status: 'Completed' })).toBe(2);
    expect(delta('lookup_jobs_completed_total', { status: 'TimedOut' })).toBe(1);
    expect(delta('lookup_job_duration_seconds_count')).toBe(2);
    expect(delta('lookup_job_duration_seconds_bucket', { le: '0.25' })).toBe(0);
    expect(delta('lookup_job_duration_seconds_bucket', { le: '0.5' })).toBe(1);
    expect(delta('lookup_job_duration_seconds_bucket', { le: '30' })).toBe(1);
    expect(delta('lookup_job_duration_seconds_bucket', { le: '60' })).toBe(2);
    expect(delta('lookup_job_duration_seconds_sum')).toBeCloseTo(40.3, 5);
  });
});
