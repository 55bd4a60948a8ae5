import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { rawRedis } from './support/redis.ts';
import { RoutingKeys, SCHEMA_VERSION, SERVICE_CATALOGUE, type LookupCommand, type ResultStatus, type ServiceType, type TaskCompleted } from '@lookup/contracts';
import { topology } from '@lookup/messaging';
import { createJobStore, createResultStore, keys } from '@lookup/store';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startService, stopService, waitFor, type ServiceProcess } from './support/processes.ts';
import { rawAmqp } from './support/amqp.ts';

// Two real saga replicas consume one queue; the test plays the API and the workers with raw clients.
const ns = newNamespace('saga');
const t = topology(ns);
const completedQueue = `${ns}.test-job-completed`;
let sagas: ServiceProcess[] = [];
let amqp: Awaited<ReturnType<typeof rawAmqp>>;
let redis: Redis;
let jobs: ReturnType<typeof createJobStore>;

beforeAll(async () => {
  sagas = await Promise.all([startService('saga', { NAMESPACE: ns }), startService('saga', { NAMESPACE: ns })]);
  amqp = await rawAmqp();
  await amqp.channel.assertQueue(completedQueue, { durable: false });
  await amqp.channel.bindQueue(completedQueue, t.exchanges.events, RoutingKeys.jobCompleted);
  redis = rawRedis();
  jobs = createJobStore({ redis, namespace: ns, ttlSeconds: 600 });
});

afterAll(async () => {
  await Promise.all(sagas.map((s) => stopService(s)));
  await amqp?.close();
  redis?.disconnect();
  await cleanupNamespace(ns, [completedQueue]);
});

const ALL: ServiceType[] = [0, 1, 2, 3];

async function submit(jobId: string, services: ServiceType[] = ALL) {
  await jobs.create({ jobId, target: '127.0.0.2', targetType: 'IPAddress', services, createdAt: new Date().toISOString(), deadlineAt: Date.now() + 120_000 });
  await amqp.publish(t.exchanges.events, RoutingKeys.jobSubmitted, {
    messageId: randomUUID(),
    correlationId: jobId,
    schemaVersion: SCHEMA_VERSION,
    occurredAt: new Date().toISOString(),
    jobId,
    target: '127.0.0.2',
    targetType: 'IPAddress',
    services,
  });
}

function taskCompleted(jobId: string, serviceType: ServiceType, status: ResultStatus = 'Succeeded', durationMs = 5): TaskCompleted {
  return {
    messageId: randomUUID(),
    correlationId: jobId,
    schemaVersion: SCHEMA_VERSION,
    occurredAt: new Date().toISOString(),
    jobId,
    serviceType,
    status,
    success: status === 'Succeeded',
    errorMessage: status === 'Succeeded' ? null : 'boom',
    durationMs,
    attempts: 1,
    completedAt: new Date().toISOString(),
    location: { storage: 'redis', key: keys(ns).result(jobId, serviceType) },
  };
}

const publishCompleted = (ev: TaskCompleted) => amqp.publish(t.exchanges.events, RoutingKeys.taskCompleted, ev);

async function completedJob(jobId: string) {
  return waitFor(async () => {
    const r = await jobs.getRecord(jobId);
    return r?.status === 'Completed' && r.notified ? r : undefined;
  });
}

describe('saga', () => {
  it('dispatches exactly one command per requested service, to each service queue', async () => {
    const jobId = randomUUID();
    const requested: ServiceType[] = [0, 2, 3];
    await submit(jobId, requested);
    const expected = SERVICE_CATALOGUE.map((s) => (requested.includes(s.value) ? 1 : 0));
    const byService = await Promise.all(SERVICE_CATALOGUE.map((s, i) => amqp.drain(t.queues.lookup(s.slug), expected[i]!, 10_000)));
    const commands = byService.map((msgs) => msgs.map((m) => JSON.parse(m.content.toString()) as LookupCommand));
    expect(commands.map((c) => c.length)).toEqual(expected);
    expect(expected.slice(0, 4)).toEqual([1, 0, 1, 1]);
    for (const [i, c] of commands.entries()) {
      for (const cmd of c) {
        expect(cmd).toMatchObject({ jobId, correlationId: jobId, serviceType: i, target: '127.0.0.2', targetType: 'IPAddress', attempt: 1 });
      }
    }
    const msg = byService[0]![0]!;
    expect(msg.properties.correlationId).toBe(jobId);
    expect(msg.properties.deliveryMode).toBe(2);
    await waitFor(async () => ((await jobs.getRecord(jobId))?.status === 'Processing' ? true : undefined));
  });

  it('records concurrent and duplicate task.completed exactly once across two replicas', async () => {
    const ids = Array.from({ length: 20 }, () => randomUUID());
    for (const id of ids) await submit(id);
    // Every outcome three times, all at once, interleaved across jobs: the two replicas race on each job.
    const events = ids.flatMap((id) => ALL.flatMap((s) => [taskCompleted(id, s, 'Succeeded', 10 + s), taskCompleted(id, s, 'Failed', 99), taskCompleted(id, s, 'Succeeded', 77)]));
    await Promise.all(events.map(publishCompleted));
    for (const id of ids) {
      const r = await completedJob(id);
      expect(r.outcomes.size).toBe(4);
      expect(await redis.hget(keys(ns).job(id), 'done')).toBe('4');
      // First writer wins: the stored outcome is exactly one of the published ones, and never changes after.
      for (const s of ALL) expect([10 + s, 99, 77]).toContain(r.outcomes.get(s)!.durationMs);
    }
    const before = await Promise.all(ids.map((id) => jobs.getRecord(id)));
    await Promise.all(ids.map((id) => publishCompleted(taskCompleted(id, 0, 'TimedOut', 12345))));
    await new Promise((r) => setTimeout(r, 500));
    const after = await Promise.all(ids.map((id) => jobs.getRecord(id)));
    expect(after.map((r) => r!.outcomes.get(0))).toEqual(before.map((r) => r!.outcomes.get(0)));
    expect(after.every((r) => r!.status === 'Completed')).toBe(true);
    const announced = await amqp.drain(completedQueue, ids.length, 10_000);
    expect(new Set(announced.map((m) => JSON.parse(m.content.toString()).jobId))).toEqual(new Set(ids));
  });

  it('keeps an outcome that arrives before the saga has handled job.submitted', async () => {
    const jobId = randomUUID();
    await jobs.create({ jobId, target: '127.0.0.2', targetType: 'IPAddress', services: [0, 1], createdAt: new Date().toISOString(), deadlineAt: Date.now() + 120_000 });
    await publishCompleted(taskCompleted(jobId, 1));
    await waitFor(async () => ((await jobs.getRecord(jobId))?.outcomes.size === 1 ? true : undefined));
    await amqp.publish(t.exchanges.events, RoutingKeys.jobSubmitted, {
      messageId: randomUUID(), correlationId: jobId, schemaVersion: SCHEMA_VERSION, occurredAt: new Date().toISOString(),
      jobId, target: '127.0.0.2', targetType: 'IPAddress', services: [0, 1],
    });
    await publishCompleted(taskCompleted(jobId, 0));
    const r = await completedJob(jobId);
    expect([...r.outcomes.keys()].sort()).toEqual([0, 1]);
    // Take this job's commands out of the queues, so the next test sees only its own.
    await amqp.drain(t.queues.lookup('geoip'), 1);
    await amqp.drain(t.queues.lookup('ping'), 1);
  });

  it('does not dispatch for a finished job, and ignores events for unknown jobs', async () => {
    const jobId = randomUUID();
    await submit(jobId, [0]);
    await amqp.drain(t.queues.lookup('geoip'), 1);
    await publishCompleted(taskCompleted(jobId, 0));
    await completedJob(jobId);
    // A redelivered job.submitted after completion must not start the job again.
    await amqp.publish(t.exchanges.events, RoutingKeys.jobSubmitted, {
      messageId: randomUUID(), correlationId: jobId, schemaVersion: SCHEMA_VERSION, occurredAt: new Date().toISOString(),
      jobId, target: '127.0.0.2', targetType: 'IPAddress', services: [0],
    });
    await publishCompleted(taskCompleted(randomUUID(), 0));
    await new Promise((r) => setTimeout(r, 500));
    expect(await amqp.drain(t.queues.lookup('geoip'))).toHaveLength(0);
    expect((await jobs.getRecord(jobId))!.status).toBe('Completed');
    expect(sagas.every((s) => s.child.exitCode === null)).toBe(true);
  });

  it("announces a job its workers completed (each recorded its outcome with its result), once, on the last one's task.completed", async () => {
    const jobId = randomUUID();
    await submit(jobId, [0, 1]);
    await Promise.all([amqp.drain(t.queues.lookup('geoip'), 1), amqp.drain(t.queues.lookup('ping'), 1)]);
    const results = createResultStore({ redis, namespace: ns, ttlSeconds: 600 });
    const stored = (serviceType: ServiceType) => ({
      jobId, serviceType, status: 'Succeeded' as const, success: true, data: {}, errorMessage: null, durationMs: 5, attempts: 1, completedAt: new Date().toISOString(),
    });
    // What the two workers' result scripts do: the first leaves the job open, the second completes it.
    expect(await results.saveIfOpen(stored(0))).toMatchObject({ recorded: { disposition: 'recorded', status: 'Processing' } });
    expect(await results.saveIfOpen(stored(1))).toMatchObject({ recorded: { disposition: 'recorded', status: 'Completed', notified: false } });
    expect((await jobs.getRecord(jobId))!.notified).toBe(false);
    // The second worker announces; a redelivery of that announcement (its command redelivered) changes nothing.
    await publishCompleted(taskCompleted(jobId, 1));
    const record = await completedJob(jobId);
    expect([...record.outcomes.keys()].sort()).toEqual([0, 1]);
    await publishCompleted(taskCompleted(jobId, 1));
    await new Promise((r) => setTimeout(r, 500));
    const announced = (await amqp.drain(completedQueue)).filter((m) => JSON.parse(m.content.toString()).jobId === jobId);
    expect(announced).toHaveLength(1);
    expect(await redis.hget(keys(ns).job(jobId), 'done')).toBe('2');
  });
});
