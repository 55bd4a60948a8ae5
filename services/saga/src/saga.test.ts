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
      markNotified: async () => undefined,
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
