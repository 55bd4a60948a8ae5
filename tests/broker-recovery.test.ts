// A consumer the broker cancels (its queue deleted: an operator's mistake in the console, or a cluster node holding
// the queue going away) must not leave the process up but deaf. The Broker reconnects, re-declares the queue and
// resumes consuming, without a restart.
import { afterAll, describe, expect, it } from 'vitest';
import amqp from 'amqplib';
import { createLogger } from '@lookup/logging';
import { createBroker } from '@lookup/messaging';
import type { Validator } from '@lookup/contracts';
import { AMQP_URL } from './support/env.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';

const ns = newNamespace('brk');
const logger = createLogger({ service: 'broker-test', level: 'silent' });
const anything: Validator<{ n: number }> = {
  check: (v: unknown): v is { n: number } => typeof v === 'object' && v !== null && typeof (v as { n?: unknown }).n === 'number',
  errors: () => ['not {n: number}'],
};

const broker = createBroker({ url: AMQP_URL, namespace: ns, logger, name: `${ns}-test`, reconnectMinMs: 50, reconnectMaxMs: 500 });

afterAll(async () => {
  await broker.close();
  await cleanupNamespace(ns);
});

describe('Broker consumer cancelled by the broker', () => {
  it('re-declares the deleted queue and resumes consuming', async () => {
    await broker.start();
    const seen: number[] = [];
    await broker.consume({ queue: broker.topology.queues.saga, validator: anything, prefetch: 4, handler: async (m) => void seen.push(m.body.n) });
    const send = (n: number) =>
      broker.publish(broker.topology.exchanges.events, 'job.submitted', { n }, { messageId: `m-${n}`, correlationId: `c-${n}` });

    await send(1);
    await expect.poll(() => seen, { timeout: 10_000 }).toContain(1);

    // Delete the queue behind the consumer's back, as an operator or a failed node would.
    const raw = await amqp.connect(AMQP_URL);
    const ch = await raw.createChannel();
    await ch.deleteQueue(broker.topology.queues.saga);
    await raw.close();

    // Publishes succeed again once the queue exists again (mandatory: unroutable until then), and are consumed.
    await expect
      .poll(async () => send(2).then(() => true, () => false), { timeout: 15_000, interval: 200 })
      .toBe(true);
    await expect.poll(() => seen, { timeout: 15_000 }).toContain(2);
  });
});
