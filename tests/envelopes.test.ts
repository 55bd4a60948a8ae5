import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsumeMessage, GetMessage } from 'amqplib';
import { MessageValidators, RoutingKeys, SCHEMA_VERSION, commandMessageId, taskCompletedMessageId, type JobDocument, type TaskCompleted } from '@lookup/contracts';
import { createLogger } from '@lookup/logging';
import { Broker, ENVELOPE_HEADER, MAX_ENVELOPE_ITEMS, createPublishers, topology, type ReceivedMessage } from '@lookup/messaging';
import { createJobStore } from '@lookup/store';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startSuite, waitFor, type Suite } from './support/processes.ts';
import { rawAmqp } from './support/amqp.ts';
import { rawRedis } from './support/redis.ts';
import { AMQP_URL, fixtureEnv } from './support/env.ts';
import { startDnsFixture, startRdapFixture } from './fixtures/index.ts';

// Envelopes (libs/messaging/src/envelope.ts): several messages of one turn in one AMQP message. Part one drives the
// Broker itself against the real RabbitMQ (a consumer whose handler the test controls, a publisher that coalesces);
// part two the real suite (API, saga, GeoIP worker) with the default MESSAGE_BATCH_MAX.

const logger = createLogger({ service: 'envelopes-test', level: 'silent' });
const now = () => new Date().toISOString();
const reasonOf = (m: GetMessage) => String(m.properties.headers?.['x-dead-letter-reason'] ?? '');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function taskCompleted(jobId = randomUUID(), serviceType = 0): TaskCompleted {
  return {
    messageId: taskCompletedMessageId(jobId, serviceType), correlationId: jobId, schemaVersion: SCHEMA_VERSION, occurredAt: now(),
    jobId, serviceType, status: 'Failed', success: false, errorMessage: 'test', durationMs: 1, attempts: 1, completedAt: now(), location: null,
  } as TaskCompleted;
}

describe('the broker layer with envelopes (real RabbitMQ)', () => {
  const ns = newNamespace('envelopes');
  const t = topology(ns);
  let consumer: Broker;
  let producer: Broker;
  let amqp: Awaited<ReturnType<typeof rawAmqp>>;
  let spy: string;
  /** What the consumer's handler does with one message; set by each test. */
  let behaviour: (m: ReceivedMessage<TaskCompleted>) => Promise<void> = async () => undefined;
  const deadLettered: { reason: string; raw: ConsumeMessage; body: unknown }[] = [];
  let active = 0;
  let maxActive = 0;

  beforeAll(async () => {
    consumer = new Broker({ url: AMQP_URL, namespace: ns, logger, name: `${ns}-consumer` });
    producer = new Broker({ url: AMQP_URL, namespace: ns, logger, name: `${ns}-producer`, messageBatchMax: 16 });
    await producer.start();
    amqp = await rawAmqp();
    // A spy queue of the test's own sees every task.completed the way the broker carried it.
    spy = (await amqp.channel.assertQueue('', { exclusive: true })).queue;
    await amqp.channel.bindQueue(spy, t.exchanges.events, RoutingKeys.taskCompleted);
    await consumer.consume<TaskCompleted>({
      queue: t.queues.saga,
      prefetch: 2,
      validator: (key) => (key === RoutingKeys.taskCompleted ? MessageValidators.taskCompleted : undefined),
      handler: async (m) => {
        active++;
        maxActive = Math.max(maxActive, active);
        try {
          await behaviour(m);
        } finally {
          active--;
        }
      },
      onError: (err) => ((err as { retryable?: boolean }).retryable === false ? { action: 'dead-letter', reason: `MESSAGE_POISON: ${(err as Error).message}` } : { action: 'requeue', delayMs: 50 }),
      onDeadLetter: async (reason, raw, body) => void deadLettered.push({ reason, raw, body }),
    });
    await consumer.start();
  });

  afterAll(async () => {
    await consumer?.close();
    await producer?.close();
    await amqp?.close();
    await cleanupNamespace(ns);
  });

  const queueEmpty = async () => {
    const { messageCount } = await amqp.channel.checkQueue(t.queues.saga);
    return messageCount === 0 && active === 0;
  };

  it('sends one turn\'s publishes as one envelope; the bad item alone goes to the dead-letter queue as a plain message, the good ones are handled', async () => {
    await amqp.drain(t.queues.deadLetter);
    await amqp.drain(spy);
    const seen: ReceivedMessage<TaskCompleted>[] = [];
    behaviour = async (m) => void seen.push(m);
    const publish = createPublishers(producer);
    const good = [taskCompleted(), taskCompleted(), taskCompleted()];
    const bad = { ...taskCompleted(), status: 'Exploded' } as unknown as TaskCompleted;
    // One turn: all four share one envelope, and each promise resolves with its confirm.
    await Promise.all([publish.taskCompleted(good[0]!), publish.taskCompleted(bad), publish.taskCompleted(good[1]!), publish.taskCompleted(good[2]!)]);

    const carried = await amqp.drain(spy, 1);
    expect(carried).toHaveLength(1);
    expect(carried[0]!.properties.headers?.[ENVELOPE_HEADER]).toBe(4);
    await waitFor(async () => (seen.length === 3 && (await queueEmpty()) ? true : undefined), 10_000);
    // Each handler saw its own item as the plain message it would have been.
    expect(seen.map((m) => m.body)).toEqual(good);
    for (const [i, m] of seen.entries()) {
      expect(m.raw.properties.messageId).toBe(good[i]!.messageId);
      expect(m.raw.properties.correlationId).toBe(good[i]!.jobId);
      expect(m.raw.fields.routingKey).toBe(RoutingKeys.taskCompleted);
      expect(m.headers[ENVELOPE_HEADER]).toBeUndefined();
      expect(m.redelivered).toBe(false);
    }
    const dead = await amqp.drain(t.queues.deadLetter, 1);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.properties.messageId).toBe(bad.messageId);
    expect(dead[0]!.properties.correlationId).toBe(bad.jobId);
    expect(dead[0]!.properties.headers?.[ENVELOPE_HEADER]).toBeUndefined();
    expect(dead[0]!.properties.headers?.['x-original-routing-key']).toBe(RoutingKeys.taskCompleted);
    expect(dead[0]!.properties.headers?.['x-original-queue']).toBe(t.queues.saga);
    expect(reasonOf(dead[0]!)).toMatch(/^schema validation failed/);
    expect(JSON.parse(dead[0]!.content.toString())).toEqual(bad);
  });

  it("dead-letters an item its handler refuses, alone, and runs the consumer's follow-up with that item", async () => {
    await amqp.drain(t.queues.deadLetter);
    deadLettered.length = 0;
    const items = [taskCompleted(), taskCompleted(), taskCompleted()];
    const handled: string[] = [];
    behaviour = async (m) => {
      if (m.body.messageId === items[1]!.messageId) throw Object.assign(new Error('not this one'), { retryable: false });
      handled.push(m.body.messageId);
    };
    const publish = createPublishers(producer);
    await Promise.all(items.map((m) => publish.taskCompleted(m)));
    await waitFor(async () => (handled.length === 2 && deadLettered.length === 1 && (await queueEmpty()) ? true : undefined), 10_000);
    expect(handled.sort()).toEqual([items[0]!.messageId, items[2]!.messageId].sort());
    expect(deadLettered[0]!.reason).toBe('MESSAGE_POISON: not this one');
    expect(deadLettered[0]!.raw.properties.correlationId).toBe(items[1]!.jobId);
    expect(deadLettered[0]!.body).toEqual(items[1]);
    const dead = await amqp.drain(t.queues.deadLetter, 1);
    expect(dead.map((m) => m.properties.messageId)).toEqual([items[1]!.messageId]);
  });

  it('requeues the whole envelope when one item fails transiently: every item comes again, redelivered', async () => {
    await amqp.drain(t.queues.deadLetter);
    const items = [taskCompleted(), taskCompleted(), taskCompleted()];
    const calls: { id: string; redelivered: boolean }[] = [];
    let failed = false;
    behaviour = async (m) => {
      calls.push({ id: m.body.messageId, redelivered: m.redelivered });
      if (m.body.messageId === items[1]!.messageId && !failed) {
        failed = true;
        throw new Error('redis went away for a moment');
      }
    };
    const publish = createPublishers(producer);
    await Promise.all(items.map((m) => publish.taskCompleted(m)));
    await waitFor(async () => (calls.length === 6 && (await queueEmpty()) ? true : undefined), 10_000);
    await sleep(200);
    expect(calls).toHaveLength(6);
    const ids = items.map((m) => m.messageId).sort();
    expect(calls.slice(0, 3).map((c) => c.id).sort()).toEqual(ids);
    expect(calls.slice(3).map((c) => c.id).sort()).toEqual(ids);
    expect(calls.slice(0, 3).every((c) => !c.redelivered)).toBe(true);
    expect(calls.slice(3).every((c) => c.redelivered)).toBe(true);
    expect(await amqp.drain(t.queues.deadLetter)).toEqual([]);
  });

  it('runs at most `prefetch` handlers at once, however many items an envelope holds', async () => {
    maxActive = 0;
    let done = 0;
    behaviour = async () => {
      await sleep(30);
      done++;
    };
    const publish = createPublishers(producer);
    await Promise.all(Array.from({ length: 12 }, () => publish.taskCompleted(taskCompleted())));
    await waitFor(async () => (done === 12 && (await queueEmpty()) ? true : undefined), 10_000);
    expect(maxActive).toBeGreaterThan(0);
    expect(maxActive).toBeLessThanOrEqual(2);
  });

  it('counts deliveries per envelope: past the limit each item is dead-lettered alone (delivery_limit), with its follow-up', async () => {
    await amqp.drain(t.queues.deadLetter);
    // A second consumer, on the callbacks queue, whose handler always fails transiently and whose counter is in memory.
    const deliveries = new Map<string, number>();
    const counted: string[] = [];
    const followUps: string[] = [];
    const limited = new Broker({ url: AMQP_URL, namespace: ns, logger, name: `${ns}-limited` });
    const anything = { check: (_v: unknown): _v is unknown => true, errors: () => [] };
    await limited.consume<unknown>({
      queue: t.queues.callbacks,
      prefetch: 4,
      validator: anything,
      handler: async () => {
        throw new Error('always failing, transiently');
      },
      onError: () => ({ action: 'requeue', delayMs: 20 }),
      deliveryLimit: {
        max: 2,
        count: async (_queue, messageId) => {
          counted.push(messageId);
          const n = (deliveries.get(messageId) ?? 1) + 1;
          deliveries.set(messageId, n);
          return n;
        },
      },
      onDeadLetter: async (_reason, raw) => void followUps.push(String(raw.properties.messageId)),
    });
    await limited.start();
    try {
      const ids = ['cb-1', 'cb-2', 'cb-3'];
      await Promise.all(ids.map((id) => producer.publish(t.exchanges.commands, RoutingKeys.callbackDelivery, { id }, { messageId: id, correlationId: id, coalesce: true })));
      const dead = await amqp.drain(t.queues.deadLetter, 3, 15_000);
      expect(dead.map((m) => m.properties.messageId).sort()).toEqual(ids);
      for (const m of dead) {
        expect(reasonOf(m)).toMatch(/^delivery limit exceeded: delivered 3 times \(limit 2\)/);
        expect(m.properties.headers?.[ENVELOPE_HEADER]).toBeUndefined();
        expect(JSON.parse(m.content.toString())).toEqual({ id: m.properties.messageId });
      }
      // One envelope: counted under its own messageId, never the items'.
      expect(new Set(counted).size).toBe(1);
      expect(ids).not.toContain(counted[0]);
      await waitFor(async () => (followUps.length === 3 ? true : undefined), 5_000);
      expect(followUps.sort()).toEqual(ids);
      expect((await amqp.channel.checkQueue(t.queues.callbacks)).messageCount).toBe(0);
    } finally {
      await limited.close();
    }
  });

  it('dead-letters hostile envelopes whole, with their reasons, and keeps consuming', async () => {
    await amqp.drain(t.queues.deadLetter);
    const handled: string[] = [];
    behaviour = async (m) => void handled.push(m.body.messageId);
    const key = RoutingKeys.taskCompleted;
    const item = (m: TaskCompleted) => ({ p: { messageId: m.messageId, correlationId: m.jobId, type: key }, b: m });
    const many = Array.from({ length: MAX_ENVELOPE_ITEMS + 1 }, () => item(taskCompleted()));
    let junk: unknown = 'x';
    for (let i = 0; i < 40; i++) junk = { j: junk };
    const inner = { items: [item(taskCompleted())] };
    const hostile: { id: string; body: unknown; count: unknown; extra?: Record<string, unknown>; reason: RegExp }[] = [
      { id: 'too-many', body: { items: many }, count: many.length, reason: /malformed envelope: 257 items \(limit 256\)/ },
      { id: 'junk-headers', body: { items: [{ p: { messageId: 'a', type: key, headers: { h: { deep: [1, { x: 2 }] } } }, b: taskCompleted() }] }, count: 1, reason: /header 'h' is not a string/ },
      { id: 'nested', body: { items: [{ p: { messageId: 'b', type: key, headers: { [ENVELOPE_HEADER]: 1 } }, b: inner }] }, count: 1, reason: /an envelope inside an envelope/ },
      { id: 'not-objects', body: { items: [1, 'two', null] }, count: 3, reason: /item 0: not an object/ },
      { id: 'count-lies', body: { items: [item(taskCompleted())] }, count: 9, reason: /says 9 items, the body has 1/ },
      { id: 'other-key', body: { items: [{ p: { messageId: 'c', type: 'lookup.geoip' }, b: taskCompleted() }] }, count: 1, reason: /not the envelope's routing key/ },
      { id: 'deep', body: { items: [{ p: { messageId: 'd', type: key }, b: junk }] }, count: 1, reason: /nested deeper than 32/ },
      { id: 'not-json', body: '{"items": [', count: 1, reason: /^invalid JSON$/ },
      { id: 'from-delay-queue', body: { items: [item(taskCompleted())] }, count: 1, extra: { 'x-death': [{ queue: `${ns}.delay.geoip.100ms`, reason: 'expired' }] }, reason: /not a scheduled retry: an envelope/ },
    ];
    for (const h of hostile) {
      await amqp.publish(t.exchanges.events, key, h.body, { messageId: `hostile-${h.id}`, headers: { [ENVELOPE_HEADER]: h.count, ...h.extra } });
    }
    const after = taskCompleted();
    await amqp.publish(t.exchanges.events, key, after, { messageId: after.messageId });
    await waitFor(async () => (handled.includes(after.messageId) && (await queueEmpty()) ? true : undefined), 15_000);
    expect(handled).toEqual([after.messageId]);
    const dead = await amqp.drain(t.queues.deadLetter, hostile.length);
    expect(dead.map((m) => m.properties.messageId).sort()).toEqual(hostile.map((h) => `hostile-${h.id}`).sort());
    for (const h of hostile) {
      const m = dead.find((d) => d.properties.messageId === `hostile-${h.id}`)!;
      expect(reasonOf(m), h.id).toMatch(h.reason);
    }
  });
});

describe('the real suite with envelopes (default MESSAGE_BATCH_MAX)', () => {
  const ns = newNamespace('envelopes-suite');
  const t = topology(ns);
  let suite: Suite;
  let amqp: Awaited<ReturnType<typeof rawAmqp>>;
  let rdap: Awaited<ReturnType<typeof startRdapFixture>>;
  let dns: Awaited<ReturnType<typeof startDnsFixture>>;
  const spies: Record<string, string> = {};

  beforeAll(async () => {
    [rdap, dns] = await Promise.all([startRdapFixture({}), startDnsFixture({})]);
    suite = await startSuite({
      namespace: ns,
      services: ['api', 'saga', 'geoip'],
      env: fixtureEnv({ rdapUrl: rdap.url, dnsAddress: dns.address }, { JOB_DEADLINE_MS: '60000', BATCH_MAX_ITEMS: '1000' }),
    });
    amqp = await rawAmqp();
    for (const [exchange, key] of [
      [t.exchanges.events, RoutingKeys.jobSubmitted],
      [t.exchanges.commands, 'lookup.geoip'],
      [t.exchanges.events, RoutingKeys.taskCompleted],
      [t.exchanges.events, RoutingKeys.jobCompleted],
    ] as const) {
      spies[key] = (await amqp.channel.assertQueue('', { exclusive: true })).queue;
      await amqp.channel.bindQueue(spies[key]!, exchange, key);
    }
  });

  afterAll(async () => {
    await suite?.stop();
    await amqp?.close();
    await Promise.all([rdap?.close(), dns?.close()]);
    await cleanupNamespace(ns);
  });

  /** Every message a spy queue holds, as [AMQP messages, items carried]. */
  const carried = async (key: string, min = 0) => {
    const msgs = await amqp.drain(spies[key]!, min);
    const items = msgs.reduce((n, m) => n + (m.properties.headers?.[ENVELOPE_HEADER] !== undefined ? Number(m.properties.headers[ENVELOPE_HEADER]) : 1), 0);
    return { messages: msgs.length, envelopes: msgs.filter((m) => m.properties.headers?.[ENVELOPE_HEADER] !== undefined).length, items };
  };

  it('completes every job of a batch, each result recorded once, with fewer AMQP messages than messages', async () => {
    const n = 60;
    const res = await fetch(`${suite.apiUrl}/api/lookup/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ items: Array.from({ length: n }, (_, i) => ({ target: `127.0.${Math.floor(i / 200)}.${(i % 200) + 2}` })), services: ['GeoIP'] }),
    });
    expect(res.status).toBe(202);
    const { jobs } = (await res.json()) as { jobs: { jobId: string }[] };
    expect(jobs).toHaveLength(n);
    const docs = await waitFor(async () => {
      const all = await Promise.all(jobs.map(async (j) => (await (await fetch(`${suite.apiUrl}/api/lookup/${j.jobId}`)).json()) as JobDocument));
      return all.every((d) => d.status === 'Completed') ? all : undefined;
    }, 60_000);
    for (const d of docs) {
      expect(d.results).toHaveLength(1);
      expect(d.results[0]).toMatchObject({ serviceType: 'GeoIP', attempts: 1 });
    }
    // Every message went through, and the per-job traffic was carried in envelopes: the API dispatched the jobs'
    // commands itself (no job.submitted: no job has a tenant), and the worker that completed each job announced it
    // (job.completed, no task.completed: the saga took no part).
    const submitted = await carried(RoutingKeys.jobSubmitted);
    const commands = await carried('lookup.geoip');
    const outcomes = await carried(RoutingKeys.taskCompleted);
    // A job's end is announced after its document shows it Completed: wait for every one (not in envelopes).
    const ends = await carried(RoutingKeys.jobCompleted, n);
    expect([submitted.items, commands.items, outcomes.items, ends.items]).toEqual([0, n, 0, n]);
    expect(commands.envelopes).toBeGreaterThan(0);
    expect(commands.messages).toBeLessThan(n);
  });

  it("dead-letters a command of another service in a worker's envelope alone; its siblings' jobs complete", async () => {
    await amqp.drain(t.queues.deadLetter);
    const redis = rawRedis();
    try {
      const store = createJobStore({ redis, namespace: ns, ttlSeconds: 600 });
      const ids = [randomUUID(), randomUUID()];
      for (const jobId of ids) await store.create({ jobId, target: '127.0.0.1', targetType: 'IPAddress', services: [0], createdAt: now(), deadlineAt: Date.now() + 60_000 });
      const command = (jobId: string, serviceType: number) => ({
        messageId: commandMessageId(jobId, serviceType, 1), correlationId: jobId, schemaVersion: SCHEMA_VERSION, occurredAt: now(),
        jobId, target: '127.0.0.1', targetType: 'IPAddress', serviceType, attempt: 1,
      });
      const stranger = command(randomUUID(), 3);
      const items = [command(ids[0]!, 0), stranger, command(ids[1]!, 0)].map((b) => ({ p: { messageId: b.messageId, correlationId: b.jobId, type: 'lookup.geoip' }, b }));
      await amqp.publish(t.exchanges.commands, 'lookup.geoip', { items }, { messageId: `env-${randomUUID()}`, headers: { [ENVELOPE_HEADER]: 3 } });
      await waitFor(async () => {
        const docs = await Promise.all(ids.map(async (id) => (await (await fetch(`${suite.apiUrl}/api/lookup/${id}`)).json()) as JobDocument));
        return docs.every((d) => d.status === 'Completed') ? true : undefined;
      }, 30_000);
      const dead = await amqp.drain(t.queues.deadLetter, 1);
      expect(dead.map((m) => m.properties.messageId)).toEqual([stranger.messageId]);
      expect(reasonOf(dead[0]!)).toMatch(/MESSAGE_POISON: command for service 3 reached the GeoIP worker/);
      expect(JSON.parse(dead[0]!.content.toString())).toEqual(stranger);
    } finally {
      redis.disconnect();
    }
  });
});
