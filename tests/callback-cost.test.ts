import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { RoutingKeys, SCHEMA_VERSION, outcomeOf, type TaskCompleted } from '@lookup/contracts';
import { createLogger } from '@lookup/logging';
import { createBroker, createPublishers, declarations, topology, type Broker, type ReceivedMessage } from '@lookup/messaging';
import { createJobStore } from '@lookup/store';
import { createSaga } from '../services/saga/src/saga.ts';
import { sweepDeadlines } from '../services/saga/src/deadline-sweeper.ts';
import { AMQP_URL } from './support/env.ts';
import { rawAmqp } from './support/amqp.ts';
import { rawRedis } from './support/redis.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { waitFor } from './support/processes.ts';

// Completion callbacks cost nothing for a job without one: the saga's code that ends a job (record outcome, the
// deadline sweep) runs against the real broker and Redis, and nobody consumes `<ns>.callbacks`, so what it holds is
// exactly what was sent to it. The queue is first declared as an earlier version did (bound to every job.completed):
// starting the broker must remove that binding (an upgrade stops the cost too).
const ns = newNamespace('cbcost');
const t = topology(ns);
const logger = createLogger({ service: 'test', level: 'silent' });
let broker: Broker;
let redis: Redis;
let amqp: Awaited<ReturnType<typeof rawAmqp>>;
let jobs: ReturnType<typeof createJobStore>;
let saga: ReturnType<typeof createSaga>;

beforeAll(async () => {
  amqp = await rawAmqp();
  const old = declarations(ns, { maxAttempts: 10 }).queues.find((q) => q.name === t.queues.callbacks)!;
  await amqp.channel.assertExchange(t.exchanges.events, 'topic', { durable: true });
  await amqp.channel.assertQueue(old.name, { durable: true, arguments: old.arguments });
  await amqp.channel.bindQueue(old.name, t.exchanges.events, RoutingKeys.jobCompleted);
  broker = createBroker({ url: AMQP_URL, namespace: ns, logger, name: `${ns}-test`, maxAttempts: 10 });
  await broker.start();
  redis = rawRedis();
  jobs = createJobStore({ redis, namespace: ns, ttlSeconds: 600 });
  saga = createSaga({ jobs, logger, publish: createPublishers(broker) });
});

afterAll(async () => {
  await broker?.close();
  await amqp?.close();
  redis?.disconnect();
  await cleanupNamespace(ns);
});

const callbackUrl = 'http://127.0.0.1:28001/hook';

async function create(jobId: string, withCallback: boolean, deadlineAt = Date.now() + 120_000) {
  await jobs.create({
    jobId,
    target: '127.0.0.2',
    targetType: 'IPAddress',
    services: [0],
    createdAt: new Date().toISOString(),
    deadlineAt,
    ...(withCallback ? { callback: { url: callbackUrl, events: ['completed', 'cancelled'] } } : {}),
  });
}

function completed(jobId: string): ReceivedMessage<TaskCompleted> {
  const body: TaskCompleted = {
    messageId: randomUUID(),
    correlationId: jobId,
    schemaVersion: SCHEMA_VERSION,
    occurredAt: new Date().toISOString(),
    jobId,
    serviceType: 0,
    status: 'Succeeded',
    success: true,
    errorMessage: null,
    errorCode: null,
    completedAt: new Date().toISOString(),
    durationMs: 3,
    attempts: 1,
    location: jobs.resultLocation(jobId, 0),
  };
  return { body, redelivered: false, headers: {}, queue: t.queues.saga, raw: {} as never };
}

const queued = async () => (await amqp.channel.checkQueue(t.queues.callbacks)).messageCount;

describe('completion callbacks cost nothing for jobs without one', () => {
  it('a completed job without a callback sends nothing to the callbacks queue, one with a callback sends one command', async () => {
    const without = randomUUID();
    await create(without, false);
    await saga.onTaskCompleted(completed(without));
    expect((await jobs.getDocument(without))?.status).toBe('Completed');
    expect(await queued()).toBe(0);

    const withOne = randomUUID();
    await create(withOne, true);
    await saga.onTaskCompleted(completed(withOne));
    // A redelivery of the message that finished the job, after the announcement was recorded: nothing more.
    await saga.onTaskCompleted(completed(withOne));
    const [msg, ...rest] = await amqp.drain(t.queues.callbacks, 1);
    expect(rest).toEqual([]);
    expect(msg!.fields.routingKey).toBe(RoutingKeys.callbackDelivery);
    expect(JSON.parse(msg!.content.toString())).toMatchObject({ jobId: withOne, event: 'completed', attempt: 1, deliveryId: `${withOne}:callback:completed` });
    expect(msg!.properties.deliveryMode).toBe(2);
  });

  it('announces again (callback command included) when the job completed but was not marked notified', async () => {
    const jobId = randomUUID();
    await create(jobId, true);
    const message = completed(jobId);
    await jobs.recordOutcome(jobId, 0, { ...outcomeOf(message.body), location: message.body.location }, new Date().toISOString());
    // A saga died after the outcome completed the job and before announcing it: the redelivered message does it.
    await saga.onTaskCompleted({ ...message, redelivered: true });
    const msgs = await amqp.drain(t.queues.callbacks, 1);
    expect(msgs.map((m) => JSON.parse(m.content.toString()).jobId)).toEqual([jobId]);
  });

  it('the deadline sweep sends the callback command of a timed-out job that has one, and nothing for one without', async () => {
    const withOne = randomUUID();
    const without = randomUUID();
    await create(without, false, Date.now() - 1000);
    await create(withOne, true, Date.now() - 1000);
    const controller = new AbortController();
    const sweeping = sweepDeadlines({ jobs, announce: saga.announceCompleted, intervalMs: 20, logger }, controller.signal);
    try {
      await waitFor(async () => ((await jobs.getStatus(without)) === 'Completed' && (await jobs.getStatus(withOne)) === 'Completed' ? true : undefined), 10_000);
      const msgs = await amqp.drain(t.queues.callbacks, 1);
      expect(msgs.map((m) => JSON.parse(m.content.toString()))).toEqual([expect.objectContaining({ jobId: withOne, event: 'completed', attempt: 1 })]);
    } finally {
      controller.abort();
      await sweeping;
    }
  });
});
