// Issue 10, finding 3, at the library level against the real RabbitMQ: when the broker closes an RPC channel with a
// channel error (here 404 NOT_FOUND, provoked on the very channel the server or client uses; RabbitMQ 3.10 closes it
// the same way, 406 PRECONDITION_FAILED, for a message over max_message_size), the channel is re-created with its
// queue and consumer and requests flow again, without a new RpcServer/RpcClient or a process restart.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import type { Channel } from 'amqplib';
import { createLogger } from '@lookup/logging';
import { RpcClient, RpcServer, resourceQueues } from '@lookup/messaging';
import type { Validator } from '@lookup/contracts';
import { AMQP_URL } from './support/env.ts';
import { newNamespace } from './support/namespace.ts';

const ns = newNamespace('rpcc');
const queues = resourceQueues(ns);
const logger = createLogger({ service: 'rpc-test', level: 'silent' });
const anyObject: Validator<{ n: number }> = {
  check: (v: unknown): v is { n: number } => typeof v === 'object' && v !== null && typeof (v as { n?: unknown }).n === 'number',
  errors: () => ['not {n: number}'],
};

const serverQueue = queues.worker(`probe-${randomBytes(3).toString('hex')}`);
const server: RpcServer<{ n: number }> = new RpcServer<{ n: number }>({
  url: AMQP_URL,
  logger,
  name: `${ns}-probe-server`,
  queue: serverQueue,
  validator: anyObject,
  replyToPrefix: queues.reply(''),
  handler: (body, meta) => void server.reply(meta.replyTo!, meta.correlationId, { n: body.n * 2 }),
});
const client = new RpcClient<{ n: number }>({ url: AMQP_URL, logger, name: `${ns}-probe-client`, replyQueue: queues.reply('probe'), validator: anyObject });

afterAll(async () => {
  await client.close();
  await server.close();
});

/** The channel an RPC end uses right now (its internals: only to provoke a real broker-side channel error on it). */
function channelOf(end: object): Channel {
  const e = end as { link?: { channel?: Channel }; channel?: Channel };
  const ch = e.link?.channel ?? e.channel;
  if (!ch) throw new Error('no channel');
  return ch;
}

/** Publishing to an exchange that does not exist: RabbitMQ closes that channel with 404 NOT_FOUND. */
async function breakChannel(end: object): Promise<void> {
  const ch = channelOf(end);
  const closed = new Promise<void>((resolve) => ch.once('close', () => resolve()));
  ch.publish(`${ns}.no-such-exchange`, 'x', Buffer.from('x'));
  await closed;
}

async function roundTrip(n: number, timeoutMs = 10_000): Promise<number | undefined> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const out = await client.request(serverQueue, { n }, { correlationId: `c-${n}-${randomBytes(4).toString('hex')}`, timeoutMs: 1000 });
    if (out.type === 'reply') return out.body.n;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

describe('RPC channel recovery', () => {
  it('works before any fault', async () => {
    await server.start();
    await client.start();
    expect(await roundTrip(1)).toBe(2);
  });

  it("re-creates the server's channel, queue and consumer after the broker closes the channel", async () => {
    await breakChannel(server);
    expect(await roundTrip(2)).toBe(4);
    expect(server.ready).toBe(true);
  });

  it("re-creates the client's confirm channel and reply queue after the broker closes the channel", async () => {
    await breakChannel(client);
    expect(await roundTrip(3)).toBe(6);
    expect(client.ready).toBe(true);
  });

  it('keeps recovering when it happens again and again', async () => {
    for (let i = 0; i < 3; i++) {
      await breakChannel(server);
      await breakChannel(client);
      expect(await roundTrip(10 + i)).toBe(2 * (10 + i));
    }
  });

  it('refuses to publish a request over maxRequestBytes instead of letting the broker close the channel', async () => {
    const small = new RpcClient<{ n: number }>({ url: AMQP_URL, logger, name: `${ns}-probe-small`, replyQueue: queues.reply('small'), validator: anyObject, maxRequestBytes: 1024 });
    try {
      await small.start();
      const out = await small.request(serverQueue, { n: 1, pad: 'x'.repeat(2000) }, { correlationId: 'big', timeoutMs: 2000 });
      expect(out).toMatchObject({ type: 'too-large', limit: 1024 });
      const ok = await small.request(serverQueue, { n: 5 }, { correlationId: 'ok', timeoutMs: 5000 });
      expect(ok).toEqual({ type: 'reply', body: { n: 10 } });
    } finally {
      await small.close();
    }
  });
});
