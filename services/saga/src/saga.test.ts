import { describe, expect, it } from 'vitest';
import { MessageValidators, type JobSubmitted, type LookupCommand } from '@lookup/contracts';
import { createLogger } from '@lookup/logging';
import type { ReceivedMessage } from '@lookup/messaging';
import { createSaga, type SagaMessage } from './saga.ts';

const JOB = '0b6f3c9e-3f7e-4a52-9a39-5f1b7d1d2c11';

function harness() {
  const commands: LookupCommand[] = [];
  const saga = createSaga({
    logger: createLogger({ service: 'test', level: 'silent' }),
    jobs: {
      startDispatch: async () => ({ status: 'Processing', tenant: '', overdue: false }),
      recordOutcome: async () => {
        throw new Error('not in this test');
      },
      markNotified: async () => true,
      resultLocation: () => ({ storage: 'redis', key: 'k' }),
    } as never,
    publish: { command: async (c) => void commands.push(c), jobCompleted: async () => undefined, callbackDelivery: async () => undefined },
  });
  return { saga, commands };
}

const delivery = (routingKey: string, body: unknown) =>
  ({ body, raw: { fields: { routingKey } }, queue: 'q', redelivered: false, headers: {} }) as unknown as ReceivedMessage<SagaMessage>;

describe('saga routing', () => {
  it('picks the schema by routing key, and none for a key the saga does not take', () => {
    const { saga } = harness();
    expect(saga.validatorFor('job.submitted')).toBe(MessageValidators.jobSubmitted);
    expect(saga.validatorFor('task.completed')).toBe(MessageValidators.taskCompleted);
    expect(saga.validatorFor('job.completed')).toBeUndefined();
  });

  it('hands job.submitted to its handler, which sends one command per service', async () => {
    const { saga, commands } = harness();
    const submitted: JobSubmitted = {
      messageId: `${JOB}:submitted`,
      correlationId: JOB,
      schemaVersion: 1,
      occurredAt: new Date().toISOString(),
      jobId: JOB,
      target: '127.0.0.1',
      targetType: 'IPAddress',
      services: [0, 3],
    };
    await saga.handle(delivery('job.submitted', submitted));
    expect(commands.map((c) => [c.messageId, c.serviceType, c.attempt])).toEqual([
      [`${JOB}:0:1`, 0, 1],
      [`${JOB}:3:1`, 3, 1],
    ]);
  });

  it('refuses a routing key it has no handler for (dead-lettered, never requeued)', async () => {
    const { saga } = harness();
    await expect(async () => saga.handle(delivery('job.completed', {}))).rejects.toMatchObject({ code: 'MESSAGE_POISON', retryable: false });
  });
});

describe('saga fair dispatch (TENANT_DISPATCH_WINDOW)', () => {
  const submitted = (jobId: string): JobSubmitted => ({
    messageId: `${jobId}:submitted`,
    correlationId: jobId,
    schemaVersion: 1,
    occurredAt: new Date().toISOString(),
    jobId,
    target: '127.0.0.1',
    targetType: 'IPAddress',
    services: [2],
    priority: 'high',
  });
  const JOB2 = '1b6f3c9e-3f7e-4a52-9a39-5f1b7d1d2c12';
  const JOB3 = '2b6f3c9e-3f7e-4a52-9a39-5f1b7d1d2c13';

  function tenantHarness(opts: { tenant: string; admission?: string; statuses?: Record<string, string>; taken?: string[][] }) {
    const commands: LookupCommand[] = [];
    const calls: string[] = [];
    const held: number[] = [];
    const taken = [...(opts.taken ?? [])];
    const spec = { target: '127.0.0.9', targetType: 'IPAddress', services: [0], priority: 'low' };
    const saga = createSaga({
      logger: createLogger({ service: 'test', level: 'silent' }),
      jobs: {
        startDispatch: async (jobId: string, _at: string, hold: boolean) => {
          calls.push(`start ${jobId} ${hold}`);
          const status = opts.statuses?.[jobId] ?? (hold && opts.tenant ? 'Pending' : 'Processing');
          return { status, tenant: opts.tenant, overdue: false };
        },
        recordOutcome: async () => ({ disposition: 'recorded', status: 'Completed', notified: true, hasCallback: false, tenant: opts.tenant }),
        markNotified: async () => true,
        resultLocation: () => ({ storage: 'redis', key: 'k' }),
        getStatus: async () => 'Processing',
      } as never,
      publish: { command: async (c) => void commands.push(c), jobCompleted: async () => undefined, callbackDelivery: async () => undefined },
      tenantDispatch: {
        admit: async (tenant: string, jobId: string) => {
          calls.push(`admit ${tenant} ${jobId}`);
          return { admission: opts.admission ?? 'dispatch', waiting: 0 };
        },
        refill: async (tenant: string) => {
          calls.push(`refill ${tenant}`);
          return { taken: (taken.shift() ?? []).map((jobId) => ({ jobId, spec })), waiting: 0 };
        },
        published: async (_tenant: string, jobId: string) => void calls.push(`published ${jobId}`),
        release: async (_tenant: string, jobIds: string[]) => void calls.push(`release ${jobIds.join(',')}`),
      } as never,
      tenantMetrics: { held: () => void held.push(1) },
    });
    return { saga, commands, calls, held };
  }
  const redelivery = (body: unknown) => ({ ...delivery('job.submitted', body), redelivered: true }) as unknown as ReceivedMessage<SagaMessage>;

  it("dispatches a tenant's job that takes a slot, with its priority; a job without a tenant never asks the window", async () => {
    const t = tenantHarness({ tenant: 'bulk' });
    await t.saga.handle(delivery('job.submitted', submitted(JOB)));
    expect(t.calls).toEqual([`start ${JOB} true`, `admit bulk ${JOB}`, `start ${JOB} false`]);
    expect(t.commands.map((c) => [c.jobId, c.serviceType, c.priority])).toEqual([[JOB, 2, 'high']]);

    const none = tenantHarness({ tenant: '' });
    await none.saga.handle(delivery('job.submitted', submitted(JOB)));
    expect(none.calls).toEqual([`start ${JOB} true`]);
    expect(none.commands).toHaveLength(1);
  });

  it('publishes nothing for a job that waits, or a duplicate of one that waits or was dispatched; a redelivery publishes again', async () => {
    for (const admission of ['wait', 'waiting', 'dispatched']) {
      const t = tenantHarness({ tenant: 'bulk', admission });
      await t.saga.handle(delivery('job.submitted', submitted(JOB)));
      expect(t.commands, admission).toEqual([]);
      expect(t.held, admission).toHaveLength(admission === 'wait' ? 1 : 0);
    }
    const again = tenantHarness({ tenant: 'bulk', admission: 'dispatched' });
    await again.saga.handle(redelivery(submitted(JOB)));
    expect(again.commands).toHaveLength(1);
  });

  it("gives a tenant's freed slot to its next waiting job when one of its jobs ends, skipping (and releasing) a job that ended while it waited", async () => {
    const t = tenantHarness({ tenant: 'bulk', statuses: { [JOB2]: 'Cancelled' }, taken: [[JOB2], [JOB3]] });
    await t.saga.handle(
      delivery('task.completed', {
        messageId: `${JOB}:2:done`,
        correlationId: JOB,
        schemaVersion: 1,
        occurredAt: new Date().toISOString(),
        jobId: JOB,
        serviceType: 2,
        status: 'Succeeded',
        success: true,
        errorMessage: null,
        completedAt: new Date().toISOString(),
        durationMs: 1,
        attempts: 1,
        location: null,
      }),
    );
    expect(t.calls).toEqual(['refill bulk', `start ${JOB2} false`, `release ${JOB2}`, 'refill bulk', `start ${JOB3} false`, `published ${JOB3}`]);
    expect(t.commands.map((c) => [c.jobId, c.serviceType, c.priority])).toEqual([[JOB3, 0, 'low']]);
  });
});
