import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { rawRedis } from './support/redis.ts';
import { RoutingKeys, SCHEMA_VERSION, type JobDocument } from '@lookup/contracts';
import { topology } from '@lookup/messaging';
import { createJobStore } from '@lookup/store';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startSuite, waitFor, type Suite } from './support/processes.ts';
import { rawAmqp } from './support/amqp.ts';
import { AMQP_URL, REPO_ROOT } from './support/env.ts';

const ns = newNamespace('dlqadm');
const t = topology(ns);
const KEY = 'test-admin-key';
let suite: Suite;
let amqp: Awaited<ReturnType<typeof rawAmqp>>;
let redis: Redis;

beforeAll(async () => {
  suite = await startSuite({ namespace: ns, services: ['api', 'saga', 'geoip'], env: { ADMIN_API_KEY: KEY, ALLOW_PRIVATE_TARGETS: 'true' } });
  amqp = await rawAmqp();
  redis = rawRedis();
});
afterAll(async () => {
  await suite?.stop();
  await amqp?.close();
  redis?.disconnect();
  await cleanupNamespace(ns);
});

const admin = (path: string, init: RequestInit = {}, key: string | null = KEY) =>
  fetch(`${suite.apiUrl}${path}`, {
    ...init,
    headers: { ...(key ? { 'x-admin-key': key } : {}), ...(init.body ? { 'content-type': 'application/json' } : {}), ...(init.headers ?? {}) },
  });

describe('dead letters, operable', () => {
  it('lists, replays and discards through the admin API and the CLI; the key is required', async () => {
    // Two poison messages, and one good message that had been dead-lettered (say past its delivery limit).
    await amqp.publish(t.exchanges.events, RoutingKeys.taskCompleted, '{oops', { messageId: 'poison-1' });
    await amqp.publish(t.exchanges.events, RoutingKeys.jobSubmitted, { nope: true }, { messageId: 'poison-2' });
    const jobId = randomUUID();
    await createJobStore({ redis, namespace: ns, ttlSeconds: 600 }).create({
      jobId, target: '127.0.0.2', targetType: 'IPAddress', services: [0], createdAt: new Date().toISOString(), deadlineAt: Date.now() + 60_000,
    });
    await amqp.sendToQueue(t.queues.deadLetter, {
      messageId: 'good-1', correlationId: jobId, schemaVersion: SCHEMA_VERSION, occurredAt: new Date().toISOString(),
      jobId, target: '127.0.0.2', targetType: 'IPAddress', services: [0],
    }, {
      messageId: 'good-1', correlationId: jobId, contentType: 'application/json',
      headers: { 'x-dead-letter-reason': 'delivery limit exceeded', 'x-original-queue': t.queues.saga, 'x-original-exchange': t.exchanges.events, 'x-original-routing-key': RoutingKeys.jobSubmitted },
    });
    await waitFor(async () => ((await amqp.channel.checkQueue(t.queues.deadLetter)).messageCount === 3 ? true : undefined));

    expect((await admin('/api/admin/dead-letters', {}, null)).status).toBe(401);
    expect((await admin('/api/admin/dead-letters', {}, 'wrong')).status).toBe(401);
    const listed = (await (await admin('/api/admin/dead-letters')).json()) as { count: number; messages: { messageId: string; reason: string; originalQueue: string }[] };
    expect(listed.count).toBe(3);
    expect(listed.messages.map((m) => m.messageId).sort()).toEqual(['good-1', 'poison-1', 'poison-2']);
    expect(listed.messages.find((m) => m.messageId === 'poison-1')).toMatchObject({ reason: 'invalid JSON', originalQueue: t.queues.saga });
    expect((await amqp.channel.checkQueue(t.queues.deadLetter)).messageCount).toBe(3); // listing leaves them

    // Replay the good one: back through its original exchange to the saga, and the job completes.
    expect((await admin('/api/admin/dead-letters/replay', { method: 'POST', body: '{}' })).status).toBe(400);
    const replay = await admin('/api/admin/dead-letters/replay', { method: 'POST', body: JSON.stringify({ messageId: 'good-1' }) });
    expect(await replay.json()).toEqual({ replayed: 1 });
    const doc = await waitFor(async () => {
      const d = (await (await fetch(`${suite.apiUrl}/api/lookup/${jobId}`)).json()) as JobDocument;
      return d.status === 'Completed' ? d : undefined;
    });
    expect(doc.results).toEqual([expect.objectContaining({ serviceType: 'GeoIP', status: 'Succeeded' })]);

    // The CLI sees the same queue.
    const cli = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/dlq.ts', 'list'], {
      cwd: REPO_ROOT, env: { ...process.env, NAMESPACE: ns, AMQP_URL },
    });
    expect(JSON.parse(cli.stdout).count).toBe(2);

    const one = await admin('/api/admin/dead-letters?messageId=poison-2', { method: 'DELETE' });
    expect(await one.json()).toEqual({ discarded: 1 });
    // An id that matches nothing (already discarded, or never there) is a 404 for replay and discard alike.
    const gone = await admin('/api/admin/dead-letters?messageId=poison-2', { method: 'DELETE' });
    expect(gone.status).toBe(404);
    expect(await gone.json()).toMatchObject({ error: 'Dead letter not found' });
    expect((await admin('/api/admin/dead-letters/replay', { method: 'POST', body: JSON.stringify({ messageId: 'no-such' }) })).status).toBe(404);
    const rest = await admin('/api/admin/dead-letters?all=true', { method: 'DELETE' });
    expect(await rest.json()).toEqual({ discarded: 1 });
    expect((await amqp.channel.checkQueue(t.queues.deadLetter)).messageCount).toBe(0);
  });
});
