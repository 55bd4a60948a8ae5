import { describe, expect, it } from 'vitest';
import { ServiceType } from '@lookup/contracts';
import { createLogger } from '@lookup/logging';
import { exposition, parseExposition, sampleValue } from '@lookup/metrics';
import type { DrainedOutcomes } from '@lookup/store';
import { createServiceOutcomeMetrics } from './api-metrics.ts';

const logger = createLogger({ service: 'test', level: 'silent' });
const read = async () => parseExposition((await exposition()).body);

describe("the API's per-service outcomes of finished jobs", () => {
  it('counts the outcomes it drains, with the durations they have, and drains again while a shard was full', async () => {
    const batches: DrainedOutcomes[] = [
      {
        outcomes: [
          { service: ServiceType.Ping, status: 'Succeeded', durationMs: 12 },
          { service: ServiceType.RDAP, status: 'TimedOut', durationMs: null },
        ],
        jobs: 1,
        full: true,
      },
      { outcomes: [{ service: ServiceType.Ping, status: 'Failed', durationMs: 2500 }], jobs: 1, full: false },
      { outcomes: [{ service: ServiceType.Ping, status: 'Failed', durationMs: 1 }], jobs: 1, full: false },
    ];
    const asked: number[] = [];
    const metrics = createServiceOutcomeMetrics({
      drain: async (max) => {
        asked.push(max);
        return batches.shift() ?? { outcomes: [], jobs: 0, full: false };
      },
      logger,
    });
    const before = await read();
    // The first drain takes both lists' worth (the first answer was full); the third batch waits for the next drain.
    expect(await metrics.drainOnce()).toBe(2);
    expect(asked.length).toBe(2);
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
    expect(await metrics.drainOnce()).toBe(1);
    expect(batches).toEqual([]);
  });

  it('runs one drain at a time: a drain asked for while one runs shares it', async () => {
    let release: () => void = () => undefined;
    let calls = 0;
    const metrics = createServiceOutcomeMetrics({
      drain: async () => {
        calls++;
        await new Promise<void>((resolve) => (release = resolve));
        return { outcomes: [], jobs: 3, full: false };
      },
      logger,
    });
    const first = metrics.drainOnce();
    const second = metrics.drainOnce();
    await new Promise((resolve) => setImmediate(resolve));
    release();
    expect(await first).toBe(3);
    expect(await second).toBe(3);
    expect(calls).toBe(1);
  });

  it('never throws when the drain fails (Redis down): nothing is counted, and the next drain tries again', async () => {
    let fail = true;
    const metrics = createServiceOutcomeMetrics({
      drain: async () => {
        if (fail) throw new Error('redis down');
        return { outcomes: [], jobs: 2, full: false };
      },
      logger,
    });
    await expect(metrics.drainOnce()).resolves.toBe(0);
    fail = false;
    await expect(metrics.drainOnce()).resolves.toBe(2);
  });
});
