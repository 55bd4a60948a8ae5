import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RoutingKeys, SCHEMA_VERSION, SERVICE_CATALOGUE, type JobDocument } from '@lookup/contracts';
import { declarations, topology } from '@lookup/messaging';
import { createJobStore, keys } from '@lookup/store';
import { startDnsFixture, startRdapFixture } from './fixtures/index.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { ChaosSuite } from './support/chaos.ts';
import { awaitJobs, report, submitLoad } from './support/load.ts';
import { rawAmqp } from './support/amqp.ts';
import { keysEverywhere, rawRedis } from './support/redis.ts';
import { waitFor } from './support/processes.ts';
import { fixtureEnv } from './support/env.ts';

// Fault tests: the real processes under load, killed (SIGKILL) and restarted mid-work, with duplicate,
// out-of-order and malformed messages. After each: every job terminal, every service recorded exactly once
// and Succeeded (so nothing was papered over by the deadline), and the services still serving.
const ns = newNamespace('faults');
/** A job without `services` runs every catalogue service (sorted names, as the results are compared). */
const ALL = SERVICE_CATALOGUE.map((s) => s.name).sort();
const WORKERS = SERVICE_CATALOGUE.map((s) => s.slug);
const BODY = { target: '127.0.0.2' };
let rdap: Awaited<ReturnType<typeof startRdapFixture>>;
let dns: Awaited<ReturnType<typeof startDnsFixture>>;
let suite: ChaosSuite;

beforeAll(async () => {
  [rdap, dns] = await Promise.all([startRdapFixture({}), startDnsFixture({})]);
  suite = await ChaosSuite.start(ns, ['api', 'saga', 'saga', ...WORKERS], fixtureEnv({ rdapUrl: rdap.url, dnsAddress: dns.address }, { JOB_DEADLINE_MS: '120000', PREFETCH: '16' }));
});

afterAll(async () => {
  await suite?.stop();
  await Promise.all([rdap?.close(), dns?.close()]);
  await cleanupNamespace(ns);
});

async function loadWith(label: string, jobs: number, during: () => Promise<void>) {
  const load = await submitLoad(suite.apiUrl, { jobs, concurrency: 12, body: BODY, during });
  await load.fault;
  const docs = await awaitJobs(suite.apiUrl, load.accepted);
  // job.completed follows a job's completion by one saga step: wait a moment for the last announcements.
  let figures = await report(ns, load.accepted, docs, ALL.length);
  for (let i = 0; i < 50 && figures.unannounced > 0; i++) {
    await pause(200);
    figures = await report(ns, load.accepted, docs, ALL.length);
  }
  console.log(`[fault figures] ${JSON.stringify({ scenario: label, ...figures, refused: load.refused })}`);
  // Every job completed was announced (job.completed), whoever died between its last outcome and the announcement.
  expect(figures).toMatchObject({ submitted: jobs, lost: 0, recordedTwice: 0, notSucceeded: 0, unannounced: 0 });
  for (const id of load.accepted) expect(docs.get(id)!.results.map((r) => r.serviceType).sort()).toEqual(ALL);
  return { docs, ids: load.accepted };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('fault tolerance under load', () => {
  it('SIGKILL the saga mid-load and start it again', async () => {
    await loadWith('saga killed and restarted', 120, async () => {
      await suite.kill('saga');
      await suite.kill('saga');
      await pause(300);
      await suite.add('saga');
    });
    await suite.add('saga');
  });

  it('two saga replicas, one killed for good', async () => {
    expect(suite.live('saga')).toHaveLength(2);
    await loadWith('one of two sagas killed', 120, async () => {
      await suite.kill('saga');
    });
    await suite.add('saga');
  });

  it('SIGKILL each worker type mid-load and start it again', async () => {
    await loadWith('each worker type killed and restarted', 160, async () => {
      for (const name of WORKERS) {
        await suite.kill(name);
        await pause(150);
        await suite.add(name);
      }
    });
  });

  it('SIGKILL the API mid-load and start it again: every accepted job completes, and a job stored without its commands ends too', async () => {
    const redis = rawRedis();
    try {
      const jobKey = /:job:([0-9a-f-]{36})$/;
      const stored = async () => (await keysEverywhere(redis, `${ns}:*:job:*`)).map((k) => jobKey.exec(k)?.[1]).filter((id): id is string => id !== undefined);
      const before = new Set(await stored());
      const { ids } = await loadWith('api killed and restarted', 120, async () => {
        await suite.kill('api');
        await pause(300);
        await suite.add('api');
      });
      // A job the killed API had stored (Processing: the API dispatches it) but not answered was never accepted; its
      // commands may or may not have gone out. It must end all the same: it completes, or its deadline finishes it
      // (brought forward here, as the sweeper would find it at JOB_DEADLINE_MS).
      const strays = (await stored()).filter((id) => !before.has(id) && !ids.includes(id));
      console.log(`[fault figures] ${JSON.stringify({ scenario: 'api killed: jobs stored but not answered', strays: strays.length })}`);
      // The kill rarely lands between the two steps, so one such job is made here as the API stores it (Processing,
      // dispatchedAt) with no command ever published: it must end too.
      const orphan = randomUUID();
      const created = new Date().toISOString();
      await createJobStore({ redis, namespace: ns, ttlSeconds: 600 }).create({
        jobId: orphan, target: '127.0.0.2', targetType: 'IPAddress', services: [0, 2], createdAt: created, deadlineAt: Date.now() + 120_000, dispatchedAt: created,
      });
      strays.push(orphan);
      for (const id of strays) {
        if ((await redis.hget(keys(ns).job(id), 'status')) === 'Completed') continue;
        await redis.hset(keys(ns).job(id), 'deadlineAt', '1');
        await redis.zadd(keys(ns).deadlines(id), 1, id);
      }
      const ended = await awaitJobs(suite.apiUrl, strays, 30_000);
      for (const id of strays) expect(ended.get(id)?.status, id).toBe('Completed');
      expect(ended.get(orphan)!.results.map((r) => [r.serviceType, r.status])).toEqual([['GeoIP', 'TimedOut'], ['RDAP', 'TimedOut']]);
    } finally {
      redis.disconnect();
    }
  });

  it('duplicate and out-of-order task.completed, redelivered commands and job.submitted change nothing', async () => {
    const { docs, ids } = await loadWith('baseline for duplicates', 40, async () => undefined);
    const t = topology(ns);
    const amqp = await rawAmqp();
    try {
      const now = new Date().toISOString();
      const sends: Promise<void>[] = [];
      for (const jobId of ids) {
        // Out of order: every service, reversed, claiming a different outcome.
        for (const s of [...SERVICE_CATALOGUE].reverse()) {
          sends.push(amqp.publish(t.exchanges.events, RoutingKeys.taskCompleted, {
            messageId: randomUUID(), correlationId: jobId, schemaVersion: SCHEMA_VERSION, occurredAt: now, jobId,
            serviceType: s.value, status: 'Failed', success: false, errorMessage: 'duplicate', durationMs: 1, attempts: 9,
            completedAt: now, location: { storage: 'redis', key: keys(ns).result(jobId, s.value) },
          }));
          sends.push(amqp.publish(t.exchanges.commands, RoutingKeys.command(s.slug), {
            messageId: `${jobId}:${s.value}:1`, correlationId: jobId, schemaVersion: SCHEMA_VERSION, occurredAt: now, jobId,
            target: BODY.target, targetType: 'IPAddress', serviceType: s.value, attempt: 1,
          }));
        }
        sends.push(amqp.publish(t.exchanges.events, RoutingKeys.jobSubmitted, {
          messageId: randomUUID(), correlationId: jobId, schemaVersion: SCHEMA_VERSION, occurredAt: now, jobId,
          target: BODY.target, targetType: 'IPAddress', services: SERVICE_CATALOGUE.map((s) => s.value),
        }));
      }
      await Promise.all(sends);
      // Let every duplicate be consumed, then compare with what the user saw before.
      await waitFor(async () => {
        const counts = await Promise.all([t.queues.saga, ...SERVICE_CATALOGUE.map((s) => t.queues.lookup(s.slug))].map((q) => amqp.channel.checkQueue(q)));
        return counts.every((c) => c.messageCount === 0) ? true : undefined;
      });
      await pause(500);
      const after = await awaitJobs(suite.apiUrl, ids);
      for (const id of ids) expect(after.get(id)).toEqual(docs.get(id) as JobDocument);
      const figures = await report(ns, ids, after, ALL.length);
      console.log(`[fault figures] ${JSON.stringify({ scenario: 'duplicates, out-of-order events, redelivered commands', ...figures })}`);
      expect(figures.recordedTwice).toBe(0);
    } finally {
      await amqp.close();
    }
  });

  it('malformed messages on every queue go to the dead-letter queue with a reason; services keep serving', async () => {
    const t = topology(ns);
    const amqp = await rawAmqp();
    try {
      await amqp.drain(t.queues.deadLetter);
      const targets = [t.queues.saga, t.queues.callbacks, ...SERVICE_CATALOGUE.map((s) => t.queues.lookup(s.slug))];
      // The delay queues this suite declared (fixtureEnv: 3 attempts, RETRY_BASE_DELAY_MS 100, the default max).
      const retryQueues = declarations(ns, { maxAttempts: 3, retryDelays: { baseMs: 100, maxMs: 30_000 } }).queues.map((q) => q.name).filter((q) => q.startsWith(`${ns}.delay.`));
      expect(retryQueues.length).toBeGreaterThan(0);
      for (const q of targets) {
        await amqp.sendToQueue(q, '{"not": "closed"', { messageId: `bad-json-${q}` });
        await amqp.sendToQueue(q, { schemaVersion: 1, hello: 'world' }, { messageId: `bad-schema-${q}` });
      }
      // A malformed command waiting for a retry dead-letters back to its work queue, then to the dead-letter queue.
      for (const q of retryQueues) await amqp.sendToQueue(q, '<xml/>', { messageId: `bad-retry-${q}`, expiration: '10' });
      const expected = targets.length * 2 + retryQueues.length;
      const dead = await amqp.drain(t.queues.deadLetter, expected, 20_000);
      expect(dead).toHaveLength(expected);
      for (const m of dead) expect(String(m.properties.headers?.['x-dead-letter-reason'])).toMatch(/invalid JSON|schema validation failed|no schema/);
      const originals = new Set(dead.map((m) => String(m.properties.headers?.['x-original-queue'])));
      // A malformed retry comes back to the work queue of its delay queue's priority (high and low have their own).
      const priorityQueues = SERVICE_CATALOGUE.flatMap((s) => (['high', 'low'] as const).map((p) => t.queues.lookupPriority(s.slug, p)));
      expect([...originals].sort()).toEqual([...targets, ...priorityQueues].sort());
    } finally {
      await amqp.close();
    }
    await loadWith('after malformed messages on every queue', 40, async () => undefined);
    expect(suite.live()).toHaveLength(suite.processes.length);
  });
});
