// QUEUE_TYPE=quorum against the real broker (a one-node cluster is enough for the queue semantics; tests/cluster/
// fails a node over): the durable queues are declared as quorum queues, a retry waits in its quorum delay queue and
// comes back as a scheduled retry, and of the two poison guards the consumer's (DELIVERY_LIMIT) acts first, while the
// broker's x-delivery-limit dead-letters a message the consumer's guard cannot count.
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { QUORUM_DELIVERY_LIMIT } from '@lookup/config';
import { createLogger } from '@lookup/logging';
import { createBroker, describeDeadLetter } from '@lookup/messaging';
import type { Validator } from '@lookup/contracts';
import { AMQP_URL } from './support/env.ts';
import { rawAmqp } from './support/amqp.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';

const ns = newNamespace('quorum');
const logger = createLogger({ service: 'quorum-test', level: 'silent' });
const numbered: Validator<{ n: number }> = {
  check: (v: unknown): v is { n: number } => typeof v === 'object' && v !== null && typeof (v as { n?: unknown }).n === 'number',
  errors: () => ['not {n: number}'],
};
const broker = createBroker({ url: AMQP_URL, namespace: ns, logger, name: `${ns}-test`, queueType: 'quorum', maxAttempts: 2, retryDelays: { baseMs: 100, maxMs: 100 } });

afterAll(async () => {
  await broker.close();
  await cleanupNamespace(ns);
});

describe('QUEUE_TYPE=quorum on a real broker', () => {
  it('declares the work, delay and dead-letter queues as quorum queues; a retry returns from its delay queue', async () => {
    await broker.start();
    const raw = await rawAmqp();
    try {
      const t = broker.topology;
      // Re-declaring with the classic arguments is refused: the queues really are quorum queues.
      const probe = await amqp.connect(AMQP_URL);
      try {
        const ch = await probe.createChannel();
        ch.on('error', () => undefined);
        await expect(ch.assertQueue(t.queues.lookup('geoip'), { durable: true, arguments: { 'x-dead-letter-exchange': t.exchanges.deadLetter } })).rejects.toThrow(/PRECONDITION_FAILED - inequivalent arg/);
        const ch2 = await probe.createChannel();
        ch2.on('error', () => undefined);
        await expect(ch2.assertQueue(t.queues.deadLetter, { durable: true })).rejects.toThrow(/inequivalent arg 'x-queue-type'/);
      } finally {
        await probe.close().catch(() => undefined);
      }
      const seen: { n: number; deaths: unknown }[] = [];
      await broker.consume({ queue: t.queues.lookup('geoip'), validator: numbered, prefetch: 4, handler: async (m) => void seen.push({ n: m.body.n, deaths: m.headers['x-death'] }) });
      const waited = await broker.publishDelayed('geoip', { n: 7 }, { messageId: 'retry-7', correlationId: 'job-7', delayMs: 100 });
      await expect.poll(() => seen.map((s) => s.n), { timeout: 15_000 }).toEqual([7]);
      expect(seen[0]!.deaths).toEqual([expect.objectContaining({ reason: 'expired', queue: t.queues.delay('geoip', waited), 'original-expiration': String(waited) })]);
    } finally {
      await raw.close();
    }
  });

  it('the consumer\'s DELIVERY_LIMIT dead-letters a crashing message first, with its own reason', async () => {
    const t = broker.topology;
    const counts = new Map<string, number>();
    let handled = 0;
    await broker.consume({
      queue: t.queues.lookup('rdap'),
      validator: numbered,
      prefetch: 1,
      handler: async () => {
        handled++;
        throw new Error('crash');
      },
      onError: () => ({ action: 'requeue', delayMs: 0 }),
      deliveryLimit: { max: 3, count: async (_q, id) => counts.set(id, (counts.get(id) ?? 1) + 1).get(id)! },
    });
    await broker.publish(t.exchanges.commands, 'lookup.rdap', { n: 1 }, { messageId: 'poison-1', correlationId: 'job-1' });
    const raw = await rawAmqp();
    try {
      const [dead] = await raw.drain(t.queues.deadLetter, 1, 20_000);
      expect(describeDeadLetter(dead!)).toMatchObject({ messageId: 'poison-1', reason: expect.stringMatching(/^delivery limit exceeded: delivered 4 times \(limit 3\)/), originalQueue: t.queues.lookup('rdap') });
      expect(handled).toBe(3);
    } finally {
      await raw.close();
    }
  });

  it('the broker\'s x-delivery-limit dead-letters a message the consumer cannot count (reason delivery_limit)', async () => {
    const t = broker.topology;
    let handled = 0;
    await broker.consume({
      queue: t.queues.lookup('dns'),
      validator: numbered,
      prefetch: 1,
      handler: async () => {
        handled++;
        throw new Error('crash');
      },
      onError: () => ({ action: 'requeue', delayMs: 0 }),
      // Redis unreachable: the guard cannot count, so it lets every delivery through.
      deliveryLimit: { max: 3, count: async () => Promise.reject(new Error('redis down')) },
    });
    await broker.publish(t.exchanges.commands, 'lookup.dns', { n: 2 }, { messageId: 'poison-2', correlationId: 'job-2' });
    const raw = await rawAmqp();
    try {
      const [dead] = await raw.drain(t.queues.deadLetter, 1, 60_000);
      expect(describeDeadLetter(dead!)).toMatchObject({ messageId: 'poison-2', reason: 'delivery_limit', originalQueue: t.queues.lookup('dns') });
      // Delivered once, then once per allowed return.
      expect(handled).toBe(QUORUM_DELIVERY_LIMIT + 1);
    } finally {
      await raw.close();
    }
  });
});
