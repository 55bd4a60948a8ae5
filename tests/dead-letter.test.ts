import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { rawRedis } from './support/redis.ts';
import { RoutingKeys, SCHEMA_VERSION } from '@lookup/contracts';
import { topology } from '@lookup/messaging';
import { createJobStore } from '@lookup/store';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startService, stopService, waitFor, type ServiceProcess } from './support/processes.ts';
import { rawAmqp } from './support/amqp.ts';

const ns = newNamespace('dlq');
const t = topology(ns);
let procs: ServiceProcess[] = [];
let amqp: Awaited<ReturnType<typeof rawAmqp>>;
let redis: Redis;

beforeAll(async () => {
  procs = await Promise.all([startService('saga', { NAMESPACE: ns }), startService('geoip', { NAMESPACE: ns })]);
  amqp = await rawAmqp();
  redis = rawRedis();
});

afterAll(async () => {
  await Promise.all(procs.map((p) => stopService(p)));
  await amqp?.close();
  redis?.disconnect();
  await cleanupNamespace(ns);
});

describe('poison messages', () => {
  it('dead-letters malformed messages with their reason and keeps serving', async () => {
    const jobId = randomUUID();
    const poison: { via: () => Promise<void>; queue: string; reason: RegExp }[] = [
      { via: () => amqp.publish(t.exchanges.events, RoutingKeys.jobSubmitted, '{not json'), queue: t.queues.saga, reason: /invalid JSON/ },
      { via: () => amqp.publish(t.exchanges.events, RoutingKeys.taskCompleted, { jobId, hello: 'world' }), queue: t.queues.saga, reason: /schema validation failed: .*messageId/ },
      {
        via: () => amqp.publish(t.exchanges.events, RoutingKeys.jobSubmitted, {
          messageId: 'm', correlationId: jobId, schemaVersion: 99, occurredAt: new Date().toISOString(),
          jobId, target: 'x.com', targetType: 'Domain', services: [0],
        }),
        queue: t.queues.saga,
        reason: /schema validation failed: \/schemaVersion/,
      },
      { via: () => amqp.sendToQueue(t.queues.saga, { any: 'thing' }), queue: t.queues.saga, reason: /no schema for routing key/ },
      { via: () => amqp.publish(t.exchanges.commands, RoutingKeys.command('geoip'), Buffer.from([0xff, 0xfe, 0x00])), queue: t.queues.lookup('geoip'), reason: /invalid JSON/ },
      {
        via: () => amqp.publish(t.exchanges.commands, RoutingKeys.command('geoip'), {
          messageId: 'c', correlationId: jobId, schemaVersion: SCHEMA_VERSION, occurredAt: new Date().toISOString(),
          jobId, target: '8.8.8.8', targetType: 'IPAddress', serviceType: 7, attempt: 1,
        }),
        queue: t.queues.lookup('geoip'),
        reason: /\/serviceType/,
      },
      {
        // Valid shape, wrong worker: a command for Ping on the GeoIP queue can never succeed there.
        via: () => amqp.publish(t.exchanges.commands, RoutingKeys.command('geoip'), {
          messageId: 'c2', correlationId: jobId, schemaVersion: SCHEMA_VERSION, occurredAt: new Date().toISOString(),
          jobId, target: '8.8.8.8', targetType: 'IPAddress', serviceType: 1, attempt: 1,
        }),
        queue: t.queues.lookup('geoip'),
        reason: /MESSAGE_POISON: command for service 1 reached the GeoIP worker/,
      },
    ];
    for (const p of poison) await p.via();
    const dead = await amqp.drain(t.queues.deadLetter, poison.length, 20_000);
    expect(dead).toHaveLength(poison.length);
    const found = dead.map((m) => ({
      reason: String(m.properties.headers?.['x-dead-letter-reason']),
      queue: String(m.properties.headers?.['x-original-queue']),
    }));
    for (const p of poison) {
      expect(found.some((f) => f.queue === p.queue && p.reason.test(f.reason)), `${p.reason} on ${p.queue} in ${JSON.stringify(found)}`).toBe(true);
    }
    // Nothing left behind in the work queues, and the consumers are still there.
    const saga = await amqp.channel.checkQueue(t.queues.saga);
    const geo = await amqp.channel.checkQueue(t.queues.lookup('geoip'));
    expect([saga.messageCount, geo.messageCount]).toEqual([0, 0]);
    expect([saga.consumerCount, geo.consumerCount]).toEqual([1, 1]);

    // ...and a good job still goes through end to end.
    const jobs = createJobStore({ redis, namespace: ns, ttlSeconds: 600 });
    const good = randomUUID();
    await jobs.create({ jobId: good, target: '8.8.8.8', targetType: 'IPAddress', services: [0], createdAt: new Date().toISOString(), deadlineAt: Date.now() + 120_000 });
    await amqp.publish(t.exchanges.events, RoutingKeys.jobSubmitted, {
      messageId: randomUUID(), correlationId: good, schemaVersion: SCHEMA_VERSION, occurredAt: new Date().toISOString(),
      jobId: good, target: '8.8.8.8', targetType: 'IPAddress', services: [0],
    });
    const doc = await waitFor(async () => {
      const d = await jobs.getDocument(good);
      return d?.status === 'Completed' ? d : undefined;
    });
    expect(doc.results[0]).toMatchObject({ serviceType: 'GeoIP', status: 'Succeeded', success: true });
    expect(procs.every((p) => p.child.exitCode === null)).toBe(true);
  });
});
