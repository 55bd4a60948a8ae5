// Issue 10, findings 3, 8 and 11a, against real API and resource-worker processes, RabbitMQ and Redis:
// - a reply over RESOURCE_REPLY_LIMIT_BYTES is a 413 for that request only, and both RPC ends recover a channel or
//   connection the broker takes away (a deleted queue cancels the consumer; an operator closes the connection);
// - over-long keys and query strings are refused by the API at once (414), and what the worker cannot accept is
//   answered (400/414) or dead-lettered with its reason, never dropped;
// - hop-by-hop headers, including those the Connection header names, and credentials never cross the proxy.
// The library-level recovery from a real broker-side channel error is in rpc-channel-recovery.test.ts.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import amqp from 'amqplib';
import type { Redis } from 'ioredis';
import { rawRedis } from './support/redis.ts';
import { createResourceDirectory } from '@lookup/coordination';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { AMQP_URL } from './support/env.ts';
import { rawAmqp } from './support/amqp.ts';
import {
  closeNamedConnection,
  hasRabbitmqctl,
  rabbitmqctl,
  rawHttp,
  resourceEnv,
  sql,
  sqlUntilOk,
  startApi,
  startWorker,
  stopAll,
  type Api,
  type Worker,
} from './support/resources.ts';

const REPLY_LIMIT = 65_536;
const ns = newNamespace('rpch');
const re = resourceEnv(ns, { RESOURCE_REPLY_LIMIT_BYTES: String(REPLY_LIMIT) });
let api: Api;
let worker: Worker;
const started: { process: Api['process'] }[] = [];
const haveCtl = hasRabbitmqctl();

beforeAll(async () => {
  api = await startApi(re.env);
  worker = await startWorker(re.env, 'h');
  started.push(api, worker);
});

afterAll(async () => {
  await stopAll(started);
  await cleanupNamespace(ns);
  re.cleanup();
});

const json = (r: { body: string }) => JSON.parse(r.body) as Record<string, any>;

describe('resource RPC: oversized replies (finding 3)', () => {
  it('answers 413 {error, message} for a reply over RESOURCE_REPLY_LIMIT_BYTES; the next requests on that key and another succeed', async () => {
    const first = await sqlUntilOk(api.url, 'big', 'CREATE TABLE t (v INTEGER)');
    expect(first.owner).toBe(worker.id);
    // 100,000 random bytes: about 180 KB once base64-encoded twice (SQLite row, then the RPC body), over 64 KiB.
    const big = await sql(api.url, 'big', 'SELECT randomblob(100000) AS b');
    expect(big.status).toBe(413);
    expect(big.body.error).toBe('Payload too large');
    expect(big.body.message).toContain('RESOURCE_REPLY_LIMIT_BYTES');
    expect(big.owner).toBe(worker.id);
    const same = await sql(api.url, 'big', 'INSERT INTO t VALUES (1) RETURNING v');
    expect(same.status).toBe(200);
    expect(same.body.rows).toEqual([{ v: 1 }]);
    expect(same.epoch).toBe(first.epoch);
    const other = await sqlUntilOk(api.url, 'other', 'SELECT 2 AS two');
    expect(other.body.rows).toEqual([{ two: 2 }]);
    // The worker's RPC channel was never closed: the limit is ours, not the broker's.
    expect(worker.process.lines.some((l) => l.includes('rpc channel closed'))).toBe(false);
  });
});

describe('resource request limits (finding 8)', () => {
  it('answers 414 at once for a query string or key over the worker schema limits, and 431 for an over-long header name', async () => {
    const q = await rawHttp(api.port, 'GET', `/api/resources/db/q?${'a'.repeat(9000)}`);
    expect(q.status).toBe(414);
    expect(json(q)).toMatchObject({ error: 'URI too long' });
    expect(json(q).message).toContain('8192');
    const k = await rawHttp(api.port, 'GET', `/api/resources/db/${'k'.repeat(600)}`);
    expect(k.status).toBe(414);
    expect(json(k).message).toContain('512');
    const h = await rawHttp(api.port, 'GET', '/api/resources/db/q', undefined, { [`x-${'n'.repeat(300)}`]: '1' });
    expect(h.status).toBe(431);
    expect(json(h).error).toBeTruthy();
  });

  it('the worker answers a request it cannot accept (400/414) on its reply queue, and dead-letters what it cannot answer', async () => {
    const raw = await rawAmqp();
    const conn = await amqp.connect(AMQP_URL);
    try {
      const ch = await conn.createChannel();
      const replyQueue = `${ns}.resource-reply.test-${randomBytes(3).toString('hex')}`;
      await ch.assertQueue(replyQueue, { exclusive: true, autoDelete: true, durable: false });
      const replies = new Map<string, any>();
      await ch.consume(replyQueue, (m) => m && replies.set(String(m.properties.correlationId), JSON.parse(m.content.toString())), { noAck: true });
      const workerQueue = `${ns}.resource.${worker.id}`;
      const request = (over: Record<string, unknown> = {}) => ({
        type: 'request',
        requestId: randomUUID(),
        key: 'big',
        epoch: 1,
        method: 'POST',
        query: '',
        headers: { 'content-type': 'application/json' },
        body: Buffer.from('{"query":"INSERT INTO t VALUES (99)"}').toString('base64'),
        deadline: Date.now() + 10_000,
        ...over,
      });
      await raw.sendToQueue(workerQueue, request({ query: 'a'.repeat(9000) }), { replyTo: replyQueue, correlationId: 'too-long', persistent: false });
      await raw.sendToQueue(workerQueue, 'not json', { replyTo: replyQueue, correlationId: 'not-json', persistent: false });
      const deadline = Date.now() + 10_000;
      while ((!replies.has('too-long') || !replies.has('not-json')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(replies.get('too-long')).toMatchObject({ type: 'error', requestId: 'too-long', worker: worker.id, status: 414 });
      expect(replies.get('too-long').message).toContain('8192');
      expect(replies.get('not-json')).toMatchObject({ type: 'error', requestId: 'not-json', status: 400 });

      // Nobody to answer: no reply-to, or a reply-to that is not an API reply queue (this one would even be run).
      const epoch = (await sql(api.url, 'big', 'SELECT 1')).epoch!;
      await raw.sendToQueue(workerQueue, { type: 'request' }, { messageId: 'dl-no-reply-to', persistent: false });
      await raw.sendToQueue(workerQueue, request({ epoch }), { messageId: 'dl-foreign-reply-to', replyTo: `${ns}.saga`, correlationId: 'x', persistent: false });
      const dead = await raw.drain(`${ns}.dead-letter`, 2, 10_000);
      const byId = new Map(dead.map((m) => [String(m.properties.messageId), m]));
      expect(String(byId.get('dl-no-reply-to')?.properties.headers?.['x-dead-letter-reason'])).toMatch(/schema validation failed/);
      expect(String(byId.get('dl-foreign-reply-to')?.properties.headers?.['x-dead-letter-reason'])).toMatch(/cannot be answered/);
      expect(byId.get('dl-foreign-reply-to')?.properties.expiration).toBeUndefined();
      // The request without a usable reply queue was not run.
      expect((await sql(api.url, 'big', 'SELECT count(*) AS n FROM t WHERE v = 99')).body.rows).toEqual([{ n: 0 }]);
    } finally {
      await conn.close().catch(() => undefined);
      await raw.close();
    }
  });
});

describe.skipIf(!haveCtl)('resource RPC: recovery from what the broker takes away (finding 3)', () => {
  it("re-creates the worker's queue and consumer after the broker deletes its queue (consumer cancelled)", async () => {
    await sqlUntilOk(api.url, 'cancel', 'SELECT 1');
    rabbitmqctl(['delete_queue', `${ns}.resource.${worker.id}`]);
    const after = await sqlUntilOk(api.url, 'cancel', 'SELECT 3 AS three', undefined, 15_000);
    expect(after.body.rows).toEqual([{ three: 3 }]);
    expect(after.owner).toBe(worker.id);
    expect(worker.process.lines.some((l) => l.includes('rpc channel re-created'))).toBe(true);
  });

  it("re-creates the API's reply queue and consumer after the broker deletes it", async () => {
    const names = rabbitmqctl(['list_queues', 'name']).split('\n').map((l) => l.trim()).filter((n) => n.startsWith(`${ns}.resource-reply.`) && !n.includes('.test-'));
    expect(names).toHaveLength(1);
    rabbitmqctl(['delete_queue', names[0]!]);
    const after = await sqlUntilOk(api.url, 'cancel', 'SELECT 4 AS four', undefined, 15_000);
    expect(after.body.rows).toEqual([{ four: 4 }]);
    expect(api.process.lines.some((l) => l.includes('rpc channel re-created'))).toBe(true);
  });

  it('reconnects both ends after the broker closes their connections', async () => {
    expect(closeNamedConnection(`${ns}-resource-${worker.id}`)).toBe(1);
    expect(closeNamedConnection(`${ns}-api-resources`)).toBe(1);
    const after = await sqlUntilOk(api.url, 'reconnect', 'SELECT 5 AS five', undefined, 20_000);
    expect(after.body.rows).toEqual([{ five: 5 }]);
    expect((await sqlUntilOk(api.url, 'big', 'SELECT count(*) AS n FROM t')).body.rows).toEqual([{ n: 1 }]);
  });
});

describe('resource proxy headers (finding 11a)', () => {
  // A stand-in worker (registered in the directory, consuming its queue with amqplib) records exactly what the API
  // publishes, and answers with hop-by-hop headers of its own.
  const ns2 = newNamespace('rpchh');
  const re2 = resourceEnv(ns2);
  let api2: Api;
  let redis: Redis;
  let conn: Awaited<ReturnType<typeof amqp.connect>>;
  let beat: NodeJS.Timeout;
  const received: any[] = [];
  const fakeId = `fake-${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    redis = rawRedis();
    const directory = createResourceDirectory({ redis, namespace: ns2, ttlMs: 1000 });
    await directory.heartbeat(fakeId, [], { startedAt: new Date().toISOString() });
    beat = setInterval(() => void directory.heartbeat(fakeId, [], { startedAt: new Date().toISOString() }).catch(() => undefined), 200);
    conn = await amqp.connect(AMQP_URL);
    const ch = await conn.createChannel();
    const q = `${ns2}.resource.${fakeId}`;
    await ch.assertQueue(q, { exclusive: true, autoDelete: true, durable: false });
    await ch.consume(
      q,
      (m) => {
        if (!m) return;
        const body = JSON.parse(m.content.toString());
        received.push(body);
        if (body.type !== 'request') return;
        const reply = {
          type: 'response',
          requestId: body.requestId,
          worker: fakeId,
          epoch: body.epoch,
          status: 200,
          headers: { 'content-type': 'text/plain', connection: 'X-Private, close', 'x-private': 'leak', 'proxy-authenticate': 'Basic', 'x-ok': 'yes' },
          body: Buffer.from('hi').toString('base64'),
        };
        ch.sendToQueue(String(m.properties.replyTo), Buffer.from(JSON.stringify(reply)), { correlationId: m.properties.correlationId });
      },
      { noAck: true },
    );
    api2 = await startApi(re2.env);
  });

  afterAll(async () => {
    clearInterval(beat);
    await stopAll(api2 ? [api2] : []);
    await conn?.close().catch(() => undefined);
    redis?.disconnect();
    await cleanupNamespace(ns2);
    re2.cleanup();
  });

  it('never forwards headers named in Connection, hop-by-hop headers or credentials, in either direction', async () => {
    const send = () => rawHttp(api2.port, 'POST', '/api/resources/db/headers', '{}', {
      'content-type': 'application/json',
      Connection: 'x-secret, keep-alive',
      'X-Secret': '1',
      'Keep-Alive': 'timeout=5',
      TE: 'trailers',
      'Proxy-Authorization': 'Basic abc',
      'X-Api-Key': 'client-key',
      Authorization: 'Bearer token',
      'X-Admin-Key': 'admin-secret',
      'X-Kept': 'yes',
    });
    // The API's RPC connection comes up just after it listens: 503 until then.
    let r = await send();
    for (let i = 0; i < 100 && r.status === 503; i++) {
      await new Promise((res) => setTimeout(res, 100));
      r = await send();
    }
    expect(r.status, r.body).toBe(200);
    expect(r.body).toBe('hi');
    expect(r.headers['x-ok']).toBe('yes');
    expect(r.headers['x-private']).toBeUndefined();
    expect(r.headers['proxy-authenticate']).toBeUndefined();
    const request = received.find((m) => m.type === 'request' && m.key === 'db/headers');
    expect(request).toBeDefined();
    expect(request.headers['x-kept']).toBe('yes');
    for (const name of ['x-secret', 'connection', 'keep-alive', 'te', 'proxy-authorization', 'x-api-key', 'authorization', 'x-admin-key']) {
      expect(request.headers[name], name).toBeUndefined();
    }
  });
});
