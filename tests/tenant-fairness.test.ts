import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RoutingKeys, type JobDocument, type JobSubmitted } from '@lookup/contracts';
import { topology } from '@lookup/messaging';
import { createJobStore, keys } from '@lookup/store';
import { parseExposition, sampleValue } from '@lookup/metrics';
import { startRdapFixture } from './fixtures/index.ts';
import { rawAmqp } from './support/amqp.ts';
import { rawRedis } from './support/redis.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startService, startSuite, waitFor, type Suite } from './support/processes.ts';

// Fair dispatch across tenants (TENANT_DISPATCH_WINDOW) through the real suite on real RabbitMQ and Redis: API, saga,
// one RDAP worker taking one command at a time (PREFETCH=1, each lookup held by the fixture) and the GeoIP worker.
// No Ping worker: a Ping job, once dispatched, stays in its work queue, so the queue's depth counts dispatched jobs.
const WINDOW = 8;
const BATCH = 200;
const ns = newNamespace('fair');
const k = keys(ns);
const t = topology(ns);
const KEY_A = 'tenant-bulk-key-0123456789';
const KEY_B = 'tenant-interactive-key-0123';
const KEY_C = 'tenant-pinger-key-012345678';
const PLAIN = 'plain-key-0123456789';
let suite: Suite;
let rdap: Awaited<ReturnType<typeof startRdapFixture>>;
let amqp: Awaited<ReturnType<typeof rawAmqp>>;
const redis = rawRedis();
// The bulk tenant's jobs are read from Redis (a raw client), not through 200 GETs per poll.
const store = createJobStore({ redis, namespace: ns, ttlSeconds: 600 });

const ENV = {
  ALLOW_PRIVATE_TARGETS: 'true',
  PREFETCH: '1',
  RATE_LIMIT_SUBMIT_PER_MIN: '5000',
  RATE_LIMIT_API_PER_MIN: '0',
  JOB_DEADLINE_MS: '600000',
  DEADLINE_SWEEP_MS: '200',
  TENANT_DISPATCH_WINDOW: String(WINDOW),
  API_KEYS: PLAIN,
  TENANTS: `bulk:${KEY_A}:100000:0,interactive:${KEY_B}:100000:0,pinger:${KEY_C}:100000:0`,
};

beforeAll(async () => {
  rdap = await startRdapFixture({ delayMs: 40 });
  suite = await startSuite({ namespace: ns, services: ['api', 'saga', 'rdap', 'geoip'], env: { RDAP_BASE_URL: rdap.url, ...ENV } });
  amqp = await rawAmqp();
});

afterAll(async () => {
  await suite?.stop();
  await amqp?.close();
  await rdap?.close();
  redis.disconnect();
  await cleanupNamespace(ns);
});

const call = (key: string, path: string, init: RequestInit = {}) =>
  fetch(`${suite.apiUrl}${path}`, { ...init, headers: { ...(init.body ? { 'content-type': 'application/json' } : {}), 'x-api-key': key } });
const job = async (key: string, jobId: string) => (await (await call(key, `/api/lookup/${jobId}`)).json()) as JobDocument;
const batch = async (key: string, n: number, services: string[], base: string) => {
  const res = await call(key, '/api/lookup/batch', { method: 'POST', body: JSON.stringify({ items: Array.from({ length: n }, (_, i) => ({ target: `${base}.${(i % 250) + 1}` })), services }) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { jobs: { jobId: string }[] }).jobs.map((j) => j.jobId);
};
const pingQueueDepth = async () => (await amqp.channel.checkQueue(t.queues.lookup('ping'))).messageCount;

describe('fair dispatch across tenants (real suite)', () => {
  it("a tenant's bulk batch does not starve another tenant's job, and every job of the batch completes", async () => {
    const bulk = await batch(KEY_A, BATCH, ['RDAP'], '127.0.3');
    // At most WINDOW of the bulk tenant's jobs are dispatched; the rest wait in its queue in Redis.
    expect(await waitFor(async () => ((await redis.zcard(k.tenantWaiting('bulk'))) > BATCH / 2 ? true : undefined), 30_000)).toBe(true);
    expect(await redis.zcard(k.tenantWindow('bulk'))).toBeLessThanOrEqual(WINDOW);

    const res = await call(KEY_B, '/api/lookup', { method: 'POST', body: JSON.stringify({ target: '127.0.4.1', services: ['RDAP'] }) });
    expect(res.status).toBe(202);
    const other = ((await res.json()) as { jobId: string }).jobId;
    const otherDoc = await waitFor(async () => {
      const d = await job(KEY_B, other);
      return d.status === 'Completed' ? d : undefined;
    }, 120_000);
    expect(otherDoc.results[0]).toMatchObject({ serviceType: 'RDAP', status: 'Succeeded' });

    const docs = await waitFor(async () => {
      const all = await Promise.all(bulk.map((id) => store.getRecord(id)));
      return all.every((d) => d?.status === 'Completed') ? all.map((d) => d!) : undefined;
    }, 240_000, 500);
    expect(docs.every((d) => d.outcomes.get(2)?.status === 'Succeeded')).toBe(true);
    // Order of completion, not timings: with one FIFO queue the other tenant's job would finish behind all BATCH jobs;
    // through the window it waits behind at most the WINDOW (plus the worker's one in hand) already dispatched.
    const finishedBefore = docs.filter((d) => d.completedAt! < otherDoc.completedAt!).length;
    expect(finishedBefore).toBeLessThan(BATCH / 2);
    // The saga counted the jobs it held back (lookup_tenant_jobs_held_total): at least those still waiting above.
    const saga = suite.processes.find((p) => p.name === 'saga')!;
    const port = (JSON.parse(saga.lines.find((l) => l.includes('"metrics listening"'))!) as { port: number }).port;
    const samples = parseExposition(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    expect(sampleValue(samples, 'lookup_tenant_jobs_held_total')).toBeGreaterThan(BATCH / 2);
    expect(sampleValue(samples, 'lookup_tenant_jobs_held_total')).toBeLessThanOrEqual(BATCH);
    // Every slot was released and nothing is left waiting.
    expect(await redis.zcard(k.tenantWaiting('bulk'))).toBe(0);
    expect(await redis.zcard(k.tenantWindow('bulk'))).toBe(0);
    expect(await redis.hlen(k.tenantSpecs('bulk'))).toBe(0);
  }, 300_000);

  it('duplicates of job.submitted take no second slot; a waiting job can be cancelled; lost slots and unpublished jobs heal', async () => {
    const ids = await batch(KEY_C, WINDOW + 4, ['Ping'], '127.0.5');
    await waitFor(async () => ((await redis.zcard(k.tenantWaiting('pinger'))) === 4 ? true : undefined), 20_000);
    expect(await redis.zcard(k.tenantWindow('pinger'))).toBe(WINDOW);
    expect(await waitFor(async () => ((await pingQueueDepth()) === WINDOW ? true : undefined), 20_000)).toBe(true);

    // Every job announced again (a publisher's retry, a replay): nothing more is dispatched or queued.
    for (const jobId of ids) {
      const d = await job(KEY_C, jobId);
      const duplicate: JobSubmitted = {
        messageId: `dup-${jobId}`,
        correlationId: jobId,
        schemaVersion: 1,
        occurredAt: new Date().toISOString(),
        jobId,
        target: d.target,
        targetType: d.targetType,
        services: [1],
      };
      await amqp.publish(t.exchanges.events, RoutingKeys.jobSubmitted, duplicate, { messageId: duplicate.messageId, correlationId: jobId });
    }
    // A job of a key without a tenant, submitted after the duplicates: once it completes, the saga (PREFETCH=1) has
    // handled every duplicate before it.
    const sentinel = await call(PLAIN, '/api/lookup', { method: 'POST', body: JSON.stringify({ target: '127.0.6.1', services: ['GeoIP'] }) });
    const sentinelId = ((await sentinel.json()) as { jobId: string }).jobId;
    await waitFor(async () => ((await job(PLAIN, sentinelId)).status === 'Completed' ? true : undefined), 30_000);
    expect(await pingQueueDepth()).toBe(WINDOW);
    expect(await redis.zcard(k.tenantWindow('pinger'))).toBe(WINDOW);
    expect(await redis.zcard(k.tenantWaiting('pinger'))).toBe(4);

    const waiting = await redis.zrange(k.tenantWaiting('pinger'), 0, -1);
    const dispatched = await redis.zrange(k.tenantWindow('pinger'), 0, -1);
    expect((await job(KEY_C, waiting[0]!)).status).toBe('Pending');
    expect((await job(KEY_C, dispatched[0]!)).status).toBe('Processing');

    // A waiting job is cancelled: it leaves the queue (and its dispatch record), and is never dispatched.
    expect((await call(KEY_C, `/api/lookup/${waiting[0]}`, { method: 'DELETE' })).status).toBe(202);
    expect(await redis.zscore(k.tenantWaiting('pinger'), waiting[0]!)).toBeNull();
    expect(await redis.hexists(k.tenantSpecs('pinger'), waiting[0]!)).toBe(0);
    expect((await job(KEY_C, waiting[0]!)).status).toBe('Cancelled');

    // A saga that died after taking waiting[1] from the queue and before publishing it (what tenant-refill.lua leaves):
    // the sweeper publishes it.
    await redis
      .multi()
      .zrem(k.tenantWaiting('pinger'), waiting[1]!)
      .zadd(k.tenantWindow('pinger'), Date.now() + 600_000, waiting[1]!)
      .zadd(k.tenantUnpublished('pinger'), Date.now() - 60_000, waiting[1]!)
      .exec();
    await waitFor(async () => ((await job(KEY_C, waiting[1]!)).status === 'Processing' ? true : undefined), 20_000);
    expect(await waitFor(async () => ((await pingQueueDepth()) === WINDOW + 1 ? true : undefined), 20_000)).toBe(true);
    // The sweeper takes the job off the unpublished set once the broker confirmed its commands: a moment after the
    // queue shows them (a CI run looked in between).
    expect(await waitFor(async () => ((await redis.zcard(k.tenantUnpublished('pinger'))) === 0 ? true : undefined), 20_000)).toBe(true);

    // A slot lost to a crash (a job that ended, or never existed, still in the window) is healed by the sweeper; a
    // dispatched job cancelled through the API frees its slot. With two cancelled, the window (WINDOW + 1 + the lost
    // slot) falls to WINDOW - 1 once healed: the oldest waiting job is dispatched, the last one still waits.
    await redis.zadd(k.tenantWindow('pinger'), Date.now() + 600_000, '00000000-0000-4000-8000-000000000000');
    for (const jobId of dispatched.slice(0, 2)) expect((await call(KEY_C, `/api/lookup/${jobId}`, { method: 'DELETE' })).status).toBe(202);
    expect(await waitFor(async () => ((await redis.zcard(k.tenantWaiting('pinger'))) === 1 ? true : undefined), 20_000)).toBe(true);
    expect(await waitFor(async () => ((await pingQueueDepth()) === WINDOW + 2 ? true : undefined), 20_000)).toBe(true);
    expect(await redis.zscore(k.tenantWindow('pinger'), '00000000-0000-4000-8000-000000000000')).toBeNull();
    expect(await redis.zcard(k.tenantWindow('pinger'))).toBe(WINDOW);
    expect((await job(KEY_C, waiting[2]!)).status).toBe('Processing');
    expect((await job(KEY_C, waiting[3]!)).status).toBe('Pending');
  }, 120_000);

  it("a saga killed (SIGKILL) while a tenant's jobs wait loses none: every job completes once, and the window drains", async () => {
    const N = 80;
    const ids = await batch(KEY_A, N, ['RDAP'], '127.0.7');
    const completed = async () => (await Promise.all(ids.map((id) => store.getStatus(id)))).filter((s) => s === 'Completed').length;
    await waitFor(async () => ((await completed()) >= 10 ? true : undefined), 60_000, 100);
    const saga = suite.processes.find((p) => p.name === 'saga')!;
    saga.child.kill('SIGKILL');
    await saga.exited;
    suite.processes.splice(suite.processes.indexOf(saga), 1);
    suite.processes.push(await startService('saga', { NAMESPACE: ns, RDAP_BASE_URL: rdap.url, ...ENV }));

    const records = await waitFor(async () => {
      const all = await Promise.all(ids.map((id) => store.getRecord(id)));
      return all.every((d) => d?.status === 'Completed') ? all.map((d) => d!) : undefined;
    }, 240_000, 500);
    // Each job's one service recorded once, by its lookup (none timed out, none lost).
    expect(records.map((r) => [r.outcomes.size, r.outcomes.get(2)?.status])).toEqual(ids.map(() => [1, 'Succeeded']));
    expect(await waitFor(async () => ((await redis.zcard(k.tenantWindow('bulk'))) === 0 ? true : undefined), 20_000)).toBe(true);
    expect(await redis.zcard(k.tenantWaiting('bulk'))).toBe(0);
    expect(await redis.zcard(k.tenantUnpublished('bulk'))).toBe(0);
    expect(await redis.hlen(k.tenantSpecs('bulk'))).toBe(0);
  }, 300_000);
});

describe('a waiting job and its deadline', () => {
  // Its own suite: a short deadline, no Ping worker (a dispatched Ping job never finishes by itself), a window of 2.
  const ns2 = newNamespace('fair-deadline');
  const k2 = keys(ns2);
  let suite2: Suite;

  beforeAll(async () => {
    suite2 = await startSuite({
      namespace: ns2,
      services: ['api', 'saga'],
      env: { ...ENV, JOB_DEADLINE_MS: '3000', TENANT_DISPATCH_WINDOW: '2' },
    });
  });

  afterAll(async () => {
    await suite2?.stop();
    await cleanupNamespace(ns2);
  });

  it('times out at its deadline like any job, and leaves the waiting queue', async () => {
    const res = await fetch(`${suite2.apiUrl}/api/lookup/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': KEY_C },
      body: JSON.stringify({ items: [1, 2, 3, 4].map((i) => ({ target: `127.0.8.${i}` })), services: ['Ping'] }),
    });
    expect(res.status).toBe(202);
    const ids = ((await res.json()) as { jobs: { jobId: string }[] }).jobs.map((j) => j.jobId);
    await waitFor(async () => ((await redis.zcard(k2.tenantWaiting('pinger'))) === 2 ? true : undefined), 20_000);
    const waiting = await redis.zrange(k2.tenantWaiting('pinger'), 0, -1);
    const store2 = createJobStore({ redis, namespace: ns2, ttlSeconds: 600 });
    const records = await waitFor(async () => {
      const all = await Promise.all(ids.map((id) => store2.getRecord(id)));
      return all.every((d) => d?.status === 'Completed') ? all.map((d) => d!) : undefined;
    }, 30_000, 200);
    for (const r of records) expect(r.outcomes.get(1)?.status).toBe('TimedOut');
    // The waiting ones were never dispatched: no command of theirs in the Ping queue.
    const commands = await amqp.drain(topology(ns2).queues.lookup('ping'));
    expect(new Set(commands.map((m) => String(m.properties.correlationId)))).toEqual(new Set(ids.filter((id) => !waiting.includes(id))));
    // A waiting job leaves the queue by being taken into the window, where the saga finds it ended and gives the slot
    // back: the window empties a moment after the queue does.
    expect(await waitFor(async () => ((await redis.zcard(k2.tenantWaiting('pinger'))) === 0 ? true : undefined), 10_000)).toBe(true);
    expect(await waitFor(async () => ((await redis.zcard(k2.tenantWindow('pinger'))) === 0 ? true : undefined), 10_000)).toBe(true);
    expect(await redis.hlen(k2.tenantSpecs('pinger'))).toBe(0);
  });
});
