import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobDocument } from '@lookup/contracts';
import { startRdapFixture } from './fixtures/index.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startSuite, waitFor, type Suite } from './support/processes.ts';

// Priorities end to end: one RDAP worker taking one command at a time (PREFETCH=1), each lookup held 150 ms by the
// fixture. A backlog of low-priority jobs is submitted first, then one high-priority job: it must finish before
// most of the backlog (order of completion, from the jobs' completedAt).
const BACKLOG = 40;
const ns = newNamespace('prio');
let suite: Suite;
let rdap: Awaited<ReturnType<typeof startRdapFixture>>;

beforeAll(async () => {
  rdap = await startRdapFixture({ delayMs: 150 });
  suite = await startSuite({
    namespace: ns,
    services: ['api', 'saga', 'rdap'],
    env: { RDAP_BASE_URL: rdap.url, ALLOW_PRIVATE_TARGETS: 'true', PREFETCH: '1', RATE_LIMIT_SUBMIT_PER_MIN: '1000', JOB_DEADLINE_MS: '600000' },
  });
});

afterAll(async () => {
  await suite?.stop();
  await rdap?.close();
  await cleanupNamespace(ns);
});

const job = async (jobId: string) => (await (await fetch(`${suite.apiUrl}/api/lookup/${jobId}`)).json()) as JobDocument;

describe('priorities', () => {
  it('a high-priority job finishes ahead of a backlog of low-priority jobs', async () => {
    const batch = await fetch(`${suite.apiUrl}/api/lookup/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ items: Array.from({ length: BACKLOG }, (_, i) => ({ target: `127.0.1.${i + 1}` })), services: ['RDAP'], priority: 'low' }),
    });
    expect(batch.status).toBe(202);
    const low = ((await batch.json()) as { jobs: { jobId: string }[] }).jobs.map((j) => j.jobId);
    // The backlog is queued: the worker has started on it.
    await waitFor(async () => (rdap.requests > 0 ? true : undefined), 30_000);

    const res = await fetch(`${suite.apiUrl}/api/lookup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ target: '127.0.2.1', services: ['RDAP'], priority: 'high' }),
    });
    expect(res.status).toBe(202);
    const high = ((await res.json()) as { jobId: string }).jobId;

    const docs = await waitFor(async () => {
      const all = await Promise.all([high, ...low].map(job));
      return all.every((d) => d.status === 'Completed') ? all : undefined;
    }, 120_000);
    const [highDoc, ...lowDocs] = docs;
    expect(highDoc!.results[0]).toMatchObject({ serviceType: 'RDAP', status: 'Succeeded' });
    const finishedAfterHigh = lowDocs.filter((d) => d.completedAt! > highDoc!.completedAt!).length;
    // Without priorities the high job would finish last (behind all BACKLOG); with them, behind at most a few.
    expect(finishedAfterHigh).toBeGreaterThanOrEqual(BACKLOG / 2);
  });

  it("a high-priority command's retries come back on the high queue, not behind a normal backlog", async () => {
    // A backlog of normal jobs, then a high job whose RDAP server answers 503 (transient) every time: attempts 2 and 3
    // go through the delay queues. Back on the high queue they are taken at once; back on the normal queue (what
    // happened before) they would wait behind the rest of the backlog.
    const NORMAL = 60;
    const batch = await fetch(`${suite.apiUrl}/api/lookup/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ items: Array.from({ length: NORMAL }, (_, i) => ({ target: `127.0.3.${i + 1}` })), services: ['RDAP'] }),
    });
    expect(batch.status).toBe(202);
    const normal = ((await batch.json()) as { jobs: { jobId: string }[] }).jobs.map((j) => j.jobId);
    const before = rdap.requests;
    await waitFor(async () => (rdap.requests > before ? true : undefined), 30_000);

    const res = await fetch(`${suite.apiUrl}/api/lookup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ target: 'status-503.test', services: ['RDAP'], priority: 'high' }),
    });
    expect(res.status).toBe(202);
    const high = ((await res.json()) as { jobId: string }).jobId;

    const docs = await waitFor(async () => {
      const all = await Promise.all([high, ...normal].map(job));
      return all.every((d) => d.status === 'Completed') ? all : undefined;
    }, 180_000, 500);
    const [highDoc, ...normalDocs] = docs;
    // Every attempt ran (two of them retries through the delay queues) and failed as the fixture answers.
    expect(highDoc!.results[0]).toMatchObject({ serviceType: 'RDAP', status: 'Failed', attempts: 3 });
    const finishedAfterHigh = normalDocs.filter((d) => d.completedAt! > highDoc!.completedAt!).length;
    expect(finishedAfterHigh).toBeGreaterThanOrEqual(NORMAL / 2);
  }, 240_000);
});
