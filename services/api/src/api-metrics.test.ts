import { describe, expect, it } from 'vitest';
import { ServiceType } from '@lookup/contracts';
import { createLogger } from '@lookup/logging';
import { exposition, parseExposition, sampleValue } from '@lookup/metrics';
import type { ClaimedOutcome } from '@lookup/store';
import { createServiceOutcomeMetrics } from './api-metrics.ts';

const logger = createLogger({ service: 'test', level: 'silent' });
const read = async () => parseExposition((await exposition()).body);

describe("the API's per-service outcomes of finished jobs", () => {
  it('counts the outcomes it claims, with the durations it has, and nothing for a job another replica claimed', async () => {
    const claims = new Map<string, ClaimedOutcome[]>([
      ['a', [
        { service: ServiceType.Ping, status: 'Succeeded', durationMs: 12 },
        { service: ServiceType.RDAP, status: 'TimedOut', durationMs: null },
      ]],
      ['b', [{ service: ServiceType.Ping, status: 'Failed', durationMs: 2500 }]],
    ]);
    const metrics = createServiceOutcomeMetrics({ claim: async (jobId) => claims.get(jobId), logger });
    const before = await read();
    await metrics.jobFinished('a');
    await metrics.jobFinished('b');
    await metrics.jobFinished('claimed elsewhere');
    const after = await read();
    const delta = (name: string, labels: Record<string, string>) => sampleValue(after, name, labels) - sampleValue(before, name, labels);
    expect(delta('lookup_api_service_outcomes_total', { service: 'Ping', outcome: 'succeeded' })).toBe(1);
    expect(delta('lookup_api_service_outcomes_total', { service: 'Ping', outcome: 'failed' })).toBe(1);
    expect(delta('lookup_api_service_outcomes_total', { service: 'RDAP', outcome: 'timed_out' })).toBe(1);
    expect(delta('lookup_api_service_outcomes_total', {})).toBe(3);
    expect(delta('lookup_api_service_duration_seconds_count', { service: 'Ping' })).toBe(2);
    expect(delta('lookup_api_service_duration_seconds_count', { service: 'RDAP' })).toBe(0);
    expect(delta('lookup_api_service_duration_seconds_bucket', { service: 'Ping', le: '0.025' })).toBe(1);
    // Every service and outcome has its series from the start (0 until counted), so rates exist at once.
    expect(after.some((s) => s.name === 'lookup_api_service_outcomes_total' && s.labels.service === 'DNS' && s.labels.outcome === 'cancelled')).toBe(true);
  });

  it('never throws when the claim fails (Redis down): the job is not counted', async () => {
    const metrics = createServiceOutcomeMetrics({
      claim: async () => {
        throw new Error('redis down');
      },
      logger,
    });
    await expect(metrics.jobFinished('x')).resolves.toBeUndefined();
  });
});
