import { describe, expect, it } from 'vitest';
import type { CallbackDelivery, CallbackState, JobStatus } from '@lookup/contracts';
import { createLogger } from '@lookup/logging';
import type { ReceivedMessage } from '@lookup/messaging';
import { createCallbackDispatcher, type CallbackMessage } from './callbacks.ts';

const JOB = '0b6f3c9e-3f7e-4a52-9a39-5f1b7d1d2c11';
const URL_ = 'https://hooks.example/owner';

function harness(job: { status: JobStatus; claimed?: string | null; state?: CallbackState }) {
  const sent: { url: string; headers: Record<string, string> }[] = [];
  let claimed = job.claimed ?? null;
  const dispatcher = createCallbackDispatcher({
    jobs: {
      getCallback: async () => ({ url: URL_, events: ['completed', 'cancelled'] }),
      getStatus: async () => job.status,
      getDocument: async () => ({ jobId: JOB, status: job.status }) as never,
    },
    deliveries: {
      claim: async (_jobId: string, deliveryId: string) => {
        if (claimed) return false;
        claimed = deliveryId;
        return true;
      },
      recordAttempt: async () => undefined,
      setState: async () => undefined,
      get: async () => ({ state: job.state, deliveryId: claimed, attempts: [] }),
    },
    send: async (url, _body, headers) => {
      sent.push({ url, headers });
      return { statusCode: 200, ok: true, error: null, retryable: true, durationMs: 1 };
    },
    publishRetry: async () => undefined,
    secret: 'unit-test-secret-0123456789',
    maxAttempts: 3,
    backoff: { baseMs: 10, maxMs: 100 },
    logger: createLogger({ service: 'test', level: 'silent' }),
  });
  return { dispatcher, sent };
}

const deliver = (fields: Partial<CallbackDelivery> & Record<string, unknown>) =>
  ({
    body: {
      messageId: 'm',
      correlationId: JOB,
      schemaVersion: 1,
      occurredAt: new Date().toISOString(),
      jobId: JOB,
      deliveryId: `${JOB}:callback:completed`,
      event: 'completed',
      attempt: 1,
      ...fields,
    },
    raw: { fields: { routingKey: 'callback.deliver' } },
    redelivered: false,
  }) as unknown as ReceivedMessage<CallbackMessage>;

describe('callback.deliver from whoever can publish', () => {
  it("sends the job's own delivery to the job's stored URL, whatever the message adds", async () => {
    const { dispatcher, sent } = harness({ status: 'Completed' });
    await dispatcher.handle(deliver({ url: 'http://127.0.0.1/stranger' }));
    expect(sent.map((s) => [s.url, s.headers['x-lookup-delivery']])).toEqual([[URL_, `${JOB}:callback:completed`]]);
  });

  it('dead-letters a made-up delivery id, a job that has not ended or ended otherwise, and a retry of a delivery never started', async () => {
    const cases: [Parameters<typeof harness>[0], Record<string, unknown>, RegExp][] = [
      [{ status: 'Completed' }, { deliveryId: 'made-up' }, /not job .*'s/],
      [{ status: 'Processing' }, {}, /has not ended \(status Processing\)/],
      [{ status: 'Completed' }, { event: 'cancelled', deliveryId: `${JOB}:callback:cancelled` }, /ended completed/],
      [{ status: 'Completed' }, { attempt: 2 }, /never started/],
    ];
    for (const [job, fields, reason] of cases) {
      const { dispatcher, sent } = harness(job);
      await expect(dispatcher.handle(deliver(fields))).rejects.toMatchObject({ code: 'MESSAGE_POISON', message: expect.stringMatching(reason) });
      expect(sent).toEqual([]);
    }
  });

  it('sends nothing for a duplicate first attempt, nor a retry of a delivery already delivered; retries one still failing', async () => {
    const dup = harness({ status: 'Completed', claimed: `${JOB}:callback:completed` });
    await dup.dispatcher.handle(deliver({}));
    expect(dup.sent).toEqual([]);
    const delivered = harness({ status: 'Completed', claimed: `${JOB}:callback:completed`, state: 'delivered' });
    await delivered.dispatcher.handle(deliver({ attempt: 2 }));
    expect(delivered.sent).toEqual([]);
    const retrying = harness({ status: 'Completed', claimed: `${JOB}:callback:completed`, state: 'retrying' });
    await retrying.dispatcher.handle(deliver({ attempt: 2 }));
    expect(retrying.sent.map((s) => s.headers['x-lookup-attempt'])).toEqual(['2']);
  });

  it('tries a replayed dead letter of a first attempt again when its delivery gave up (CALLBACK_MAX_ATTEMPTS=1), and only then', async () => {
    const replayed = (m: ReceivedMessage<CallbackMessage>) => ({ ...m, headers: { 'x-replayed-at': new Date().toISOString() } }) as ReceivedMessage<CallbackMessage>;
    const gaveUp = harness({ status: 'Completed', claimed: `${JOB}:callback:completed`, state: 'dead-lettered' });
    await gaveUp.dispatcher.handle(replayed(deliver({})));
    expect(gaveUp.sent.map((s) => [s.url, s.headers['x-lookup-attempt']])).toEqual([[URL_, '1']]);
    // Not replayed (a duplicate of the first attempt): nothing, even though the delivery gave up.
    const duplicate = harness({ status: 'Completed', claimed: `${JOB}:callback:completed`, state: 'dead-lettered' });
    await duplicate.dispatcher.handle(deliver({}));
    expect(duplicate.sent).toEqual([]);
    // Replayed, but the delivery succeeded meanwhile: nothing.
    const delivered = harness({ status: 'Completed', claimed: `${JOB}:callback:completed`, state: 'delivered' });
    await delivered.dispatcher.handle(replayed(deliver({})));
    expect(delivered.sent).toEqual([]);
  });
});
