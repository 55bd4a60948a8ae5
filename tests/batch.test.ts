import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobDocument } from '@lookup/contracts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startSuite, waitFor, type Suite } from './support/processes.ts';

// POST /api/lookup/batch through the real suite (API, saga, the GeoIP worker) on real RabbitMQ and Redis: every job of
// a batch of loopback targets completes, and GET /api/lookup/batch/{id} counts them. Nothing leaves this machine.
const ns = newNamespace('batch');
let suite: Suite;

beforeAll(async () => {
  suite = await startSuite({
    namespace: ns,
    services: ['api', 'saga', 'geoip'],
    env: { ALLOW_PRIVATE_TARGETS: 'true', RATE_LIMIT_SUBMIT_PER_MIN: '25', RATE_LIMIT_GLOBAL_PER_MIN: '100000' },
  });
});

afterAll(async () => {
  await suite?.stop();
  await cleanupNamespace(ns);
});

type Batch = { batchId: string; total: number; counts: Record<string, number>; jobs: { index: number; jobId: string; status: string }[] };

describe('batch submission (real suite)', () => {
  it('creates and completes every job of a 20-item batch, reports the refused item, and counts the batch by status', async () => {
    const items = Array.from({ length: 20 }, (_, i) => ({ target: `127.0.0.${i + 2}` }));
    items.splice(7, 0, { target: 'not a target!' });
    const res = await fetch(`${suite.apiUrl}/api/lookup/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'batch-e2e' },
      body: JSON.stringify({ items, services: ['GeoIP'] }),
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('x-ratelimit-remaining')).toBe('5'); // 20 of 25 spent at once; the refused item spends nothing
    const accepted = (await res.json()) as { batchId: string; jobs: { index: number; jobId: string; statusUrl: string }[]; rejected: { index: number; error: { code: string } }[] };
    expect(accepted.jobs).toHaveLength(20);
    expect(accepted.rejected).toEqual([{ index: 7, error: expect.objectContaining({ code: 'INVALID_TARGET' }) }]);

    const done = await waitFor(async () => {
      const batch = (await (await fetch(`${suite.apiUrl}/api/lookup/batch/${accepted.batchId}`)).json()) as Batch;
      return batch.counts.Completed === 20 ? batch : undefined;
    }, 60_000);
    expect(done).toMatchObject({ batchId: accepted.batchId, total: 20, counts: { Pending: 0, Processing: 0, Completed: 20, Cancelled: 0, Expired: 0 } });
    expect(done.jobs.map((j) => j.jobId)).toEqual(accepted.jobs.map((j) => j.jobId));
    const doc = (await (await fetch(`${suite.apiUrl}${accepted.jobs[0]!.statusUrl}`)).json()) as JobDocument;
    expect(doc).toMatchObject({ target: '127.0.0.2', status: 'Completed', requestedServices: ['GeoIP'] });
    expect(doc.results[0]).toMatchObject({ serviceType: 'GeoIP', status: 'Succeeded' });

    // The same key and body: the same answer, nothing new created or spent; then 6 more do not fit in the 5 left.
    const replay = await fetch(`${suite.apiUrl}/api/lookup/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'batch-e2e' },
      body: JSON.stringify({ items, services: ['GeoIP'] }),
    });
    expect(replay.status).toBe(202);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(await replay.json()).toEqual(accepted);
    const tooMany = await fetch(`${suite.apiUrl}/api/lookup/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ items: items.slice(0, 6), services: ['GeoIP'] }),
    });
    expect(tooMany.status).toBe(429);
    expect(tooMany.headers.get('retry-after')).not.toBeNull();
  });
});
