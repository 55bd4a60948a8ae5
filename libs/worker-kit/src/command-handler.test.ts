import { describe, expect, it } from 'vitest';
import { createLogger } from '@lookup/logging';
import type { JobStatus, LookupCommand, StoredResult, TaskCompleted } from '@lookup/contracts';
import type { ReceivedMessage } from '@lookup/messaging';
import type { SaveResultOutcome, SaveSkipped } from '@lookup/store';
import { PRECHECK_AFTER_MS, createCommandHandler } from './command-handler.ts';

const NOW = Date.parse('2026-11-22T12:00:00.000Z');
const JOB = '0b6f3c9e-3f7e-4a52-9a39-5f1b7d1d2c11';

/** A handler over in-memory fakes that records every store call, lookup and publish. */
function harness(opts: { status?: JobStatus; stored?: StoredResult; saveSays?: SaveSkipped } = {}) {
  const calls: string[] = [];
  const published: TaskCompleted[] = [];
  const location = { storage: 'redis' as const, key: `ns:result:${JOB}:3` };
  const handle = createCommandHandler({
    service: 3,
    logger: createLogger({ service: 'test', level: 'silent' }),
    now: () => NOW,
    policy: { timeoutMs: 1000, maxAttempts: 3, baseBackoffMs: 10, maxBackoffMs: 100 },
    lookup: async () => {
      calls.push('lookup');
      return { hostname: 'fixture.test' };
    },
    jobs: {
      getStatus: async () => {
        calls.push('getStatus');
        return opts.status;
      },
    },
    results: {
      locate: () => location,
      find: async () => {
        calls.push('find');
        return opts.stored;
      },
      saveIfOpen: async (result): Promise<SaveResultOutcome | SaveSkipped> => {
        calls.push('saveIfOpen');
        return opts.saveSays ?? { location, result, created: true };
      },
    },
    publishEvent: async (_key, event) => {
      published.push(event);
    },
    publishRetry: async () => {
      calls.push('retry');
    },
  });
  return { handle, calls, published };
}

const command = (ageMs: number, attempt = 1): LookupCommand => ({
  messageId: `${JOB}:3:${attempt}`,
  correlationId: JOB,
  schemaVersion: 1,
  occurredAt: new Date(NOW - ageMs).toISOString(),
  jobId: JOB,
  target: '127.0.0.2',
  targetType: 'IPAddress',
  serviceType: 3,
  attempt,
});
const delivery = (body: LookupCommand, redelivered = false) =>
  ({ body, redelivered, queue: 'q', headers: {}, raw: {} }) as unknown as ReceivedMessage<LookupCommand>;

describe('command handler: when the job status is checked', () => {
  it('a fresh first delivery goes straight to the lookup; the status is checked when the result is stored', async () => {
    const h = harness({ status: 'Processing' });
    await h.handle(delivery(command(5)));
    expect(h.calls).toEqual(['lookup', 'saveIfOpen']);
    expect(h.published).toHaveLength(1);
    expect(h.published[0]).toMatchObject({ jobId: JOB, serviceType: 3, status: 'Succeeded', location: { key: `ns:result:${JOB}:3` } });
  });

  it('a fresh command whose job finished during the lookup stores and announces nothing', async () => {
    const h = harness({ saveSays: { skipped: 'finished', status: 'Cancelled' } });
    await h.handle(delivery(command(5)));
    expect(h.calls).toEqual(['lookup', 'saveIfOpen']);
    expect(h.published).toEqual([]);
  });

  it(`a command older than ${PRECHECK_AFTER_MS} ms for a cancelled job costs no lookup`, async () => {
    const h = harness({ status: 'Cancelled' });
    await h.handle(delivery(command(PRECHECK_AFTER_MS + 1)));
    expect(h.calls).toEqual(['getStatus']);
    expect(h.published).toEqual([]);
  });

  it('a redelivery or a retry checks first, and re-announces a result already stored', async () => {
    const stored: StoredResult = {
      jobId: JOB, serviceType: 3, status: 'Succeeded', success: true, data: { hostname: 'first.test' }, errorMessage: null, durationMs: 1, attempts: 1, completedAt: new Date(NOW).toISOString(),
    };
    for (const d of [delivery(command(5), true), delivery(command(5, 2))]) {
      const h = harness({ status: 'Processing', stored });
      await h.handle(d);
      expect(h.calls.sort()).toEqual(['find', 'getStatus']);
      expect(h.published).toHaveLength(1);
      expect(h.published[0]).toMatchObject({ status: 'Succeeded', attempts: 1 });
    }
  });

  it('a command for a job that no longer exists is skipped when checked, and not stored when not', async () => {
    const old = harness({ status: undefined });
    await old.handle(delivery(command(60_000)));
    expect(old.calls).toEqual(['getStatus']);
    const fresh = harness({ saveSays: { skipped: 'missing' } });
    await fresh.handle(delivery(command(5)));
    expect(fresh.calls).toEqual(['lookup', 'saveIfOpen']);
    expect(fresh.published).toEqual([]);
  });
});
