import { describe, expect, it } from 'vitest';
import { Type } from '@sinclair/typebox';
import { createLogger } from '@lookup/logging';
import { commandMessageId, createTargetPolicy, transientError, type LookupCommand, type StoredResult } from '@lookup/contracts';
import { exposition, parseExposition, sampleValue, taskInstruments } from '@lookup/metrics';
import type { ReceivedMessage } from '@lookup/messaging';
import type { SaveResultOutcome } from '@lookup/store';
import { createCommandHandler } from './command-handler.ts';

const JOB = '7d3c1a52-0c1e-4f0b-9b8e-0f3d2a6c4e11';
const read = async () => parseExposition((await exposition()).body);

const command = (attempt: number): LookupCommand => ({
  messageId: commandMessageId(JOB, 4, attempt),
  correlationId: JOB,
  schemaVersion: 1,
  occurredAt: new Date().toISOString(),
  jobId: JOB,
  target: '127.0.0.2',
  targetType: 'IPAddress',
  serviceType: 4,
  attempt,
});
const delivery = (body: LookupCommand, redelivered = false) => ({ body, redelivered, queue: 'q', headers: {}, raw: {} }) as unknown as ReceivedMessage<LookupCommand>;

describe('task metrics (worker-kit)', () => {
  it('counts every attempt, each retry scheduled, and the stored outcome once with its duration', async () => {
    let calls = 0;
    let stored: StoredResult | undefined;
    const location = { storage: 'redis' as const, key: `ns:result:${JOB}:4` };
    const handle = createCommandHandler({
      service: 4,
      logger: createLogger({ service: 'test', level: 'silent' }),
      metrics: taskInstruments('DNS'),
      policy: { timeoutMs: 1000, maxAttempts: 3, baseBackoffMs: 10, maxBackoffMs: 100 },
      targetPolicy: createTargetPolicy({ allowPrivate: true }),
      dataSchema: Type.Object({ ok: Type.Boolean() }),
      lookup: async () => {
        calls += 1;
        if (calls === 1) throw transientError('DNS_TIMEOUT', 'the server did not answer');
        return { ok: true };
      },
      jobs: { getStatus: async () => 'Processing' },
      results: {
        locate: () => location,
        find: async () => stored,
        saveIfOpen: async (result): Promise<SaveResultOutcome> => {
          const created = stored === undefined;
          stored ??= result;
          return { location, result: stored, created };
        },
      },
      publishTaskCompleted: async () => undefined,
      publishRetry: async () => undefined,
    });
    const before = await read();
    await handle(delivery(command(1))); // fails transiently: a retry is scheduled
    await handle(delivery(command(2))); // succeeds: stored, counted
    await handle(delivery(command(2), true)); // a redelivery re-announces the stored result: nothing counted
    const after = await read();
    const delta = (name: string, labels: Record<string, string>) => sampleValue(after, name, labels) - sampleValue(before, name, labels);
    expect(delta('lookup_task_attempts_total', { service: 'DNS' })).toBe(2);
    expect(delta('lookup_task_retries_total', { service: 'DNS' })).toBe(1);
    expect(delta('lookup_tasks_total', { service: 'DNS', outcome: 'succeeded' })).toBe(1);
    expect(delta('lookup_tasks_total', { service: 'DNS', outcome: 'failed' })).toBe(0);
    expect(delta('lookup_task_duration_seconds_count', { service: 'DNS' })).toBe(1);
    expect(stored?.attempts).toBe(2);
  });
});
