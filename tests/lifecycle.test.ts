import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JobDocument } from '@lookup/contracts';
import type { Redis } from 'ioredis';
import { rawRedis } from './support/redis.ts';
import { RoutingKeys } from '@lookup/contracts';
import { createJobStore, keys as storeKeys } from '@lookup/store';
import { topology } from '@lookup/messaging';
import { startDnsFixture, startRdapFixture } from './fixtures/index.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startService, startSuite, stopService, waitFor, type ServiceProcess, type Suite } from './support/processes.ts';
import { rawAmqp } from './support/amqp.ts';
import { fixtureEnv } from './support/env.ts';

// Retries, deadlines, cancellation, idempotent submission and dead-lettered commands, on the real processes.
let rdap: Awaited<ReturnType<typeof startRdapFixture>>;
let dns: Awaited<ReturnType<typeof startDnsFixture>>;
const started: { suite?: Suite; extra: ServiceProcess[]; ns: string }[] = [];

beforeAll(async () => {
  [rdap, dns] = await Promise.all([startRdapFixture({}), startDnsFixture({})]);
});
afterEach(async () => {
  for (const s of started.splice(0)) {
    await Promise.all(s.extra.map((p) => stopService(p)));
    await s.suite?.stop();
    await cleanupNamespace(s.ns);
  }
});
afterAll(async () => {
  await Promise.all([rdap?.close(), dns?.close()]);
});

function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  return fixtureEnv({ rdapUrl: rdap.url, dnsAddress: dns.address }, { DEADLINE_SWEEP_MS: '100', ...extra });
}

async function suiteOf(services: string[], env: Record<string, string> = {}) {
  const ns = newNamespace('life');
  const entry: { suite?: Suite; extra: ServiceProcess[]; ns: string } = { extra: [], ns };
  started.push(entry);
  entry.suite = await startSuite({ namespace: ns, services, env: baseEnv(env) });
  const suite = entry.suite;
  return {
    suite,
    ns,
    env: { NAMESPACE: ns, ...baseEnv(env) },
    async startLater(name: string) {
      const p = await startService(name, { NAMESPACE: ns, ...baseEnv(env) });
      entry.extra.push(p);
      return p;
    },
    async post(body: unknown, headers: Record<string, string> = {}) {
      const res = await fetch(`${suite.apiUrl}/api/lookup`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
      return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, string> };
    },
    async get(jobId: string): Promise<JobDocument> {
      return (await (await fetch(`${suite.apiUrl}/api/lookup/${jobId}`)).json()) as JobDocument;
    },
    async finished(jobId: string, timeoutMs = 20_000): Promise<JobDocument> {
      return waitFor(async () => {
        const d = (await (await fetch(`${suite.apiUrl}/api/lookup/${jobId}`)).json()) as JobDocument;
        return d.status === 'Completed' || d.status === 'Cancelled' ? d : undefined;
      }, timeoutMs);
    },
  };
}

describe('retries', () => {
  it('retries a transient failure through the broker up to RETRY_MAX_ATTEMPTS, then records it Failed', async () => {
    const s = await suiteOf(['api', 'saga', 'rdap']);
    const before = rdap.requests;
    const { body } = await s.post({ target: 'status-503.test', services: ['rdap'] });
    const doc = await s.finished(body.jobId!);
    expect(doc.status).toBe('Completed');
    expect(doc.results).toEqual([expect.objectContaining({ serviceType: 'RDAP', status: 'Failed', success: false, attempts: 3, data: null })]);
    expect(doc.results[0]!.errorMessage).toMatch(/503/);
    expect(rdap.requests - before).toBe(3);
    const worker = s.suite.processes.find((p) => p.name === 'rdap')!;
    expect(worker.lines.filter((l) => l.includes('retry scheduled') && l.includes(body.jobId!))).toHaveLength(2);
  });

  it('fails a permanent error at once, without retrying', async () => {
    const s = await suiteOf(['api', 'saga', 'rdap']);
    const before = rdap.requests;
    const { body } = await s.post({ target: 'status-400.test', services: ['rdap'] });
    const doc = await s.finished(body.jobId!);
    expect(doc.results).toEqual([expect.objectContaining({ status: 'Failed', attempts: 1 })]);
    expect(rdap.requests - before).toBe(1);
  });
});

describe('deadlines', () => {
  it('completes a job at its deadline with the missing services TimedOut, and a late result does not reopen it', async () => {
    const s = await suiteOf(['api', 'saga', 'geoip'], { JOB_DEADLINE_MS: '1500' });
    const { body } = await s.post({ target: '127.0.0.2', services: ['geoip', 'rdap'] });
    const doc = await s.finished(body.jobId!);
    expect(doc.status).toBe('Completed');
    expect(doc.completionPercentage).toBe(100);
    const byName = Object.fromEntries(doc.results.map((r) => [r.serviceType, r]));
    expect(byName.GeoIP).toMatchObject({ status: 'Succeeded' });
    expect(byName.RDAP).toMatchObject({ status: 'TimedOut', success: false, data: null, errorMessage: 'no result before the job deadline' });

    // The RDAP worker arrives late: it finds the job finished and skips the lookup; nothing changes.
    const rdapWorker = await s.startLater('rdap');
    await waitFor(async () => (rdapWorker.lines.some((l) => l.includes(body.jobId!) && l.includes('job already finished')) ? true : undefined));
    expect(await s.get(body.jobId!)).toEqual(doc);
  });
});

describe('cancellation', () => {
  it('cancels an unfinished job; workers skip its commands; a second cancel is 409', async () => {
    const s = await suiteOf(['api', 'saga', 'geoip']);
    const { body } = await s.post({ target: '127.0.0.2', services: ['geoip', 'ping'] });
    await waitFor(async () => ((await s.get(body.jobId!)).results.length === 1 ? true : undefined));
    const del = await fetch(`${s.suite.apiUrl}/api/lookup/${body.jobId}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    const doc = await s.get(body.jobId!);
    expect(doc.status).toBe('Cancelled');
    expect(doc.completedAt).not.toBeNull();
    const byName = Object.fromEntries(doc.results.map((r) => [r.serviceType, r]));
    expect(byName.GeoIP).toMatchObject({ status: 'Succeeded' });
    expect(byName.Ping).toMatchObject({ status: 'Cancelled', success: false });

    // The Ping worker starts after the cancel. Its command either is checked before the lookup (older than
    // PRECHECK_AFTER_MS) or runs and finds the job finished when storing: either way nothing is stored.
    const ping = await s.startLater('ping');
    const skipped = /job already finished|job finished or gone during the lookup/;
    await waitFor(async () => (ping.lines.some((l) => l.includes(body.jobId!) && skipped.test(l)) ? true : undefined));
    expect(await s.get(body.jobId!)).toEqual(doc);
    const redis = rawRedis();
    try {
      expect(await redis.exists(storeKeys(s.ns).result(body.jobId, 1))).toBe(0);
    } finally {
      redis.disconnect();
    }
    expect((await fetch(`${s.suite.apiUrl}/api/lookup/${body.jobId}`, { method: 'DELETE' })).status).toBe(409);
  });
});

describe('idempotent submission', () => {
  it('returns the same job for the same key and body, 409 for a different body', async () => {
    const s = await suiteOf(['api']);
    const key = randomUUID();
    const a = await s.post({ target: '127.0.0.2', services: ['geoip'] }, { 'Idempotency-Key': key });
    const b = await s.post({ target: ' 127.0.0.2', services: [0] }, { 'Idempotency-Key': key });
    const c = await s.post({ target: '127.0.0.3', services: ['geoip'] }, { 'Idempotency-Key': key });
    expect([a.status, b.status, c.status]).toEqual([202, 202, 409]);
    expect(b.body.jobId).toBe(a.body.jobId);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    expect(c.body.error).toBe('Idempotency key reused');
  });
});

describe('dead-lettered commands', () => {
  it('records the service Failed at once when its only command is dead-lettered', async () => {
    const s = await suiteOf(['api', 'saga', 'ping']);
    const amqp = await rawAmqp();
    const redis = rawRedis();
    try {
      // A job whose one command is malformed: created in Redis directly (no job.submitted, so no real command).
      const jobId = randomUUID();
      const jobs = createJobStore({ redis, namespace: s.ns, ttlSeconds: 600 });
      await jobs.create({ jobId, target: '127.0.0.2', targetType: 'IPAddress', services: [1], createdAt: new Date().toISOString(), deadlineAt: Date.now() + 60_000 });
      const t = topology(s.ns);
      await amqp.publish(t.exchanges.commands, RoutingKeys.command('ping'), '{"broken": ', { correlationId: jobId, messageId: 'bad-1' });
      const doc = await s.finished(jobId, 10_000);
      expect(doc.status).toBe('Completed');
      expect(doc.results).toEqual([expect.objectContaining({ serviceType: 'Ping', status: 'Failed', success: false, data: null })]);
      expect(doc.results[0]!.errorMessage).toBe('the command was dead-lettered: invalid JSON');
      const dead = await amqp.drain(t.queues.deadLetter, 1);
      expect(dead.map((m) => String(m.properties.headers?.['x-dead-letter-reason']))).toEqual(['invalid JSON']);
      expect(s.suite.processes.every((p) => p.child.exitCode === null)).toBe(true);
    } finally {
      redis.disconnect();
      await amqp.close();
    }
  });
});
