import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InjectOptions } from 'fastify';
import type { Config } from '@lookup/config';
import type { LookupCommand } from '@lookup/contracts';
import type { ApiDeps } from '../deps.ts';
import { BATCH_DISPATCH_CONCURRENCY } from '../submit-batch.ts';
import { harness, UUID_RE, type Harness } from '../testing/app-harness.ts';
import { startDnsFixture, type DnsFixture } from '../../../../tests/fixtures/index.ts';

// Loopback targets only; 127.0.0.99 is on the deny list, so the target policy refuses it.
const CONFIG: Partial<Config> = { allowPrivateTargets: true, targetDenyCidrs: ['127.0.0.99/32'] };

const postBatch = (h: Harness, body: unknown, headers: Record<string, string> = {}) =>
  h.app.inject({ method: 'POST', url: '/api/lookup/batch', payload: body as InjectOptions['payload'], headers: { 'content-type': 'application/json', ...headers } });

/** n distinct loopback targets in 127.1.0.0/16 (none denied). */
const items = (n: number, from = 1) => Array.from({ length: n }, (_, i) => ({ target: `127.1.${Math.floor((from + i) / 250)}.${((from + i) % 250) + 1}` }));

describe('POST /api/lookup/batch', () => {
  it('accepts every valid item: one job each, created together, one job.submitted each, services defaulted from the batch', async () => {
    const h = await harness(CONFIG);
    const res = await postBatch(h, { items: [{ target: '127.0.0.2' }, { target: ' 127.0.0.3 ', services: ['Ping', 'GeoIP'] }], services: ['GeoIP'] });
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body.batchId).toMatch(UUID_RE);
    expect(res.headers.location).toBe(`/api/lookup/batch/${body.batchId}`);
    expect(body.rejected).toEqual([]);
    expect(body.jobs.map((j: { index: number }) => j.index)).toEqual([0, 1]);
    for (const j of body.jobs) {
      expect(j.jobId).toMatch(UUID_RE);
      expect(j.statusUrl).toBe(`/api/lookup/${j.jobId}`);
    }
    const [a, b] = body.jobs.map((j: { jobId: string }) => h.jobs.jobs.get(j.jobId)!);
    expect(a).toMatchObject({ target: '127.0.0.2', targetType: 'IPAddress', services: [0] });
    expect(b).toMatchObject({ target: '127.0.0.3', services: [1, 0] }); // Ping, GeoIP: in request order
    expect(h.jobs.batches.get(body.batchId)).toMatchObject({ total: 2, jobs: body.jobs.map(({ index, jobId }: { index: number; jobId: string }) => ({ index, jobId })) });
    expect(h.dispatched.map((m) => m.jobId).sort()).toEqual(body.jobs.map((j: { jobId: string }) => j.jobId).sort());
  });

  it('without any services, an item gets every service', async () => {
    const h = await harness(CONFIG);
    const res = await postBatch(h, { items: [{ target: '127.0.0.2' }] });
    expect(res.statusCode).toBe(202);
    expect(h.jobs.jobs.get(res.json().jobs[0].jobId)!.services).toHaveLength(5);
  });

  it('rejects invalid items with the error body a single submission gives, and accepts the rest', async () => {
    const h = await harness(CONFIG);
    const bad = [{ target: 'not a target!' }, { target: '127.0.0.99' }, { target: '127.0.0.5', services: ['Nope'] }, { target: '127.0.0.6', services: [] }];
    const res = await postBatch(h, { items: [{ target: '127.0.0.2' }, ...bad, { target: '127.0.0.7' }] });
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body.jobs.map((j: { index: number }) => j.index)).toEqual([0, 5]);
    expect(body.rejected.map((r: { index: number }) => r.index)).toEqual([1, 2, 3, 4]);
    // Each error is exactly what POST /api/lookup answers for that body.
    for (const r of body.rejected) {
      const single = await h.app.inject({ method: 'POST', url: '/api/lookup', payload: bad[r.index - 1]! });
      if (r.index === 4) {
        // An empty services list fails the single route's JSON schema; the batch checks it per item instead.
        expect(r.error).toMatchObject({ error: 'Invalid services', code: 'INVALID_SERVICES' });
        continue;
      }
      expect(single.statusCode).toBe(400);
      expect(r.error).toEqual(single.json());
    }
    expect(body.rejected[1].error.code).toBe('TARGET_REFUSED');
    expect(h.jobs.jobs.size).toBe(2 + 0); // the single submissions above were all refused
    expect(h.dispatched).toHaveLength(2);
  });

  it('answers 400 BATCH_REJECTED with every item\'s error when none is valid, creating and spending nothing', async () => {
    const h = await harness({ ...CONFIG, rateLimitSubmitPerMin: 5 });
    h.limiter.limits = { submit: 5 };
    const res = await postBatch(h, { items: [{ target: '127.0.0.99' }, { target: '' }] });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'Invalid request', code: 'BATCH_REJECTED' });
    expect(res.json().details.rejected.map((r: { index: number; error: { code: string } }) => [r.index, r.error.code])).toEqual([
      [0, 'TARGET_REFUSED'],
      [1, 'INVALID_TARGET'],
    ]);
    expect(h.jobs.jobs.size).toBe(0);
    expect(h.jobs.batches.size).toBe(0);
    expect(h.limiter.calls).toEqual([]);
  });

  it('refuses a body that breaks the schema: no items, too many items, unknown fields', async () => {
    const h = await harness({ ...CONFIG, batchMaxItems: 3 });
    for (const body of [{ items: [] }, { items: items(4) }, { items: [{ target: '127.0.0.2', extra: 1 }] }, { items: [{ target: 7 }] }, {}]) {
      const res = await postBatch(h, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
    }
    expect((await postBatch(h, { items: items(3) })).statusCode).toBe(202);
    expect(h.jobs.batches.size).toBe(1);
  });

  it('takes a body of BATCH_MAX_ITEMS items larger than API_BODY_LIMIT_BYTES (1000 items by default), and 413 beyond its own limit', async () => {
    const h = await harness(CONFIG); // API_BODY_LIMIT_BYTES 1024 in the harness
    const res = await postBatch(h, { items: items(1000), services: ['GeoIP'] });
    expect(res.statusCode).toBe(202);
    expect(res.json().jobs).toHaveLength(1000);
    expect(h.dispatched).toHaveLength(1000);
    expect((await postBatch(h, { items: items(1001) })).statusCode).toBe(400);
    const huge = await postBatch(h, { items: [{ target: 'a'.repeat(1_300_000) }] });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().message).toContain('1200000 bytes');
  });

  it('spends one submission per valid item at once, and refuses the whole batch with 429 when they do not fit', async () => {
    const h = await harness({ ...CONFIG, rateLimitSubmitPerMin: 5 });
    h.limiter.limits = { submit: 5 };
    const first = await postBatch(h, { items: [...items(3), { target: 'bad target' }] });
    expect(first.statusCode).toBe(202);
    expect(h.limiter.calls).toEqual([{ tier: 'submit', client: 'ip:127.0.0.1', cost: 3 }]);
    expect(first.headers['x-ratelimit-limit']).toBe('5');
    expect(first.headers['x-ratelimit-remaining']).toBe('2');
    const refused = await postBatch(h, { items: items(3, 10) });
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ code: 'RATE_LIMITED', retryAfter: 42 });
    expect(refused.headers['retry-after']).toBe('42');
    expect(h.jobs.jobs.size).toBe(3);
    // What fits still goes through, and a single submission shares the same quota.
    expect((await postBatch(h, { items: items(2, 20) })).statusCode).toBe(202);
    expect((await h.app.inject({ method: 'POST', url: '/api/lookup', payload: { target: '127.0.0.2' } })).statusCode).toBe(429);
  });

  it('replays the same answer for the same Idempotency-Key and body, without creating or spending anything', async () => {
    const h = await harness({ ...CONFIG, rateLimitSubmitPerMin: 100 });
    h.limiter.limits = { submit: 100 };
    const body = { items: [{ target: '127.0.0.2' }, { target: 'bad target' }, { target: '127.0.0.3' }], services: ['GeoIP'] };
    const first = await postBatch(h, body, { 'idempotency-key': 'batch-1' });
    const again = await postBatch(h, { ...body, items: [{ target: ' 127.0.0.2' }, ...body.items.slice(1)] }, { 'idempotency-key': 'batch-1' });
    expect(first.statusCode).toBe(202);
    expect(again.statusCode).toBe(202);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    expect(h.jobs.jobs.size).toBe(2);
    expect(h.dispatched).toHaveLength(2);
    expect(h.limiter.counted.get('submit ip:127.0.0.1')).toBe(2);
    const conflict = await postBatch(h, { items: [{ target: '127.0.0.4' }] }, { 'idempotency-key': 'batch-1' });
    expect(conflict.statusCode).toBe(409);
    expect((await postBatch(h, body, { 'idempotency-key': 'bad key' })).statusCode).toBe(400);
  });

  it('undoes the whole batch when a command is not confirmed midway: 503, no job and no batch left, key freed', async () => {
    let calls = 0;
    const published: LookupCommand[] = [];
    const publishCommand: ApiDeps['publishCommand'] = async (message) => {
      calls += 1;
      if (calls === 3) throw new Error('publish not confirmed');
      published.push(message);
    };
    const h = await harness(CONFIG, { publishCommand });
    const res = await postBatch(h, { items: items(5) }, { 'idempotency-key': 'undo-me' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'BROKER_UNAVAILABLE' });
    expect(res.headers['retry-after']).toBeDefined();
    expect(h.jobs.jobs.size).toBe(0);
    expect(h.jobs.batches.size).toBe(0);
    // Every job of the batch was discarded, including the ones whose commands had been confirmed.
    expect(new Set(h.jobs.discarded).size).toBe(5);
    expect(published.length).toBeGreaterThan(0);
    for (const m of published) expect(h.jobs.discarded).toContain(m.jobId);
    // The key was freed: the retry is a new batch.
    const retry = await postBatch(h, { items: items(5) }, { 'idempotency-key': 'undo-me' });
    expect(retry.statusCode).toBe(202);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(h.jobs.jobs.size).toBe(5);
  });

  it(`dispatches ${BATCH_DISPATCH_CONCURRENCY} jobs at a time, and none after a failure (the batch is discarded anyway)`, async () => {
    let inFlight = 0;
    let most = 0;
    let calls = 0;
    const publishCommand: ApiDeps['publishCommand'] = async () => {
      calls += 1;
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 1));
      inFlight -= 1;
      if (calls === 2 * BATCH_DISPATCH_CONCURRENCY + 1) throw new Error('publish not confirmed');
    };
    const h = await harness(CONFIG, { publishCommand });
    const res = await postBatch(h, { items: items(600), services: ['GeoIP'] });
    expect(res.statusCode).toBe(503);
    expect(most).toBe(BATCH_DISPATCH_CONCURRENCY);
    // The failure stopped the dispatch: the jobs already started finish, no new one starts.
    expect(calls).toBeLessThan(4 * BATCH_DISPATCH_CONCURRENCY);
    expect(h.jobs.jobs.size).toBe(0);
  });

  it('answers 503 and creates nothing when Redis fails', async () => {
    const h = await harness(CONFIG);
    h.jobs.failCreate = true;
    const res = await postBatch(h, { items: items(3) });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(h.dispatched).toHaveLength(0);
  });

  it('requires an API key like every /api route when API_KEYS is set', async () => {
    const h = await harness({ ...CONFIG, apiKeys: ['secret-key-1'] });
    expect((await postBatch(h, { items: items(1) })).statusCode).toBe(401);
    expect((await postBatch(h, { items: items(1) }, { 'x-api-key': 'secret-key-1' })).statusCode).toBe(202);
  });
});

describe('POST /api/lookup/batch: domains pre-checked through DNS_SERVERS (the loopback DNS fixture)', () => {
  let dns: DnsFixture;
  beforeAll(async () => {
    dns = await startDnsFixture({ records: { a: { 'public.example.test': ['8.8.8.8'], 'mixed.example.test': ['8.8.8.8', '10.0.0.1'] }, aaaa: { 'mixed.example.test': [] } } });
  });
  afterAll(async () => {
    await dns?.close();
  });

  it('refuses each domain that resolves to a refused address with the single submission\'s error, after spending the quota', async () => {
    const h = await harness({ dnsServers: [dns.address], rateLimitSubmitPerMin: 10 });
    h.limiter.limits = { submit: 10 };
    const targets = ['public.example.test', 'example.test', 'mixed.example.test', 'PUBLIC.example.test.'];
    const res = await postBatch(h, { items: targets.map((target) => ({ target })), services: ['GeoIP'] });
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body.jobs.map((j: { index: number }) => j.index)).toEqual([0, 3]);
    expect(body.rejected.map((r: { index: number }) => r.index)).toEqual([1, 2]);
    for (const r of body.rejected) {
      const single = await h.app.inject({ method: 'POST', url: '/api/lookup', payload: { target: targets[r.index], services: ['GeoIP'] } });
      expect(single.statusCode).toBe(400);
      expect(r.error).toEqual(single.json());
    }
    // The pre-check costs DNS queries, so every valid item spent its unit (as a single submission does), once.
    expect(h.limiter.calls[0]).toEqual({ tier: 'submit', client: 'ip:127.0.0.1', cost: 4 });
    expect(h.dispatched.map((m) => m.target)).toEqual(['public.example.test', 'public.example.test']);
  });

  it('answers BATCH_REJECTED when every domain is refused, freeing the Idempotency-Key', async () => {
    const h = await harness({ dnsServers: [dns.address] });
    const body = { items: [{ target: 'example.test' }] };
    const res = await postBatch(h, body, { 'idempotency-key': 'dns-1' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'BATCH_REJECTED', details: { rejected: [{ index: 0, error: { code: 'TARGET_REFUSED' } }] } });
    expect(h.jobs.jobs.size).toBe(0);
    expect(h.jobs.batches.size).toBe(0);
    // The key was released: the same key with another body is not a conflict.
    expect((await postBatch(h, { items: [{ target: 'public.example.test' }] }, { 'idempotency-key': 'dns-1' })).statusCode).toBe(202);
  });
});

describe('GET /api/lookup/batch/{batchId}', () => {
  it('gives the jobs by index with their status, and the counts by status', async () => {
    const h = await harness(CONFIG);
    const submitted = (await postBatch(h, { items: [{ target: '127.0.0.2' }, { target: 'bad target' }, { target: '127.0.0.3' }, { target: '127.0.0.4' }] })).json();
    const [j0, j2, j3] = submitted.jobs.map((j: { jobId: string }) => j.jobId);
    h.jobs.statuses.set(j0, 'Completed');
    h.jobs.statuses.set(j2, 'Processing');
    h.jobs.jobs.delete(j3); // expired
    const res = await h.app.inject({ method: 'GET', url: `/api/lookup/batch/${submitted.batchId.toUpperCase()}` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      batchId: submitted.batchId,
      createdAt: expect.any(String),
      total: 3,
      counts: { Pending: 0, Processing: 1, Completed: 1, Cancelled: 0, Expired: 1 },
      jobs: [
        { index: 0, jobId: j0, status: 'Completed' },
        { index: 2, jobId: j2, status: 'Processing' },
        { index: 3, jobId: j3, status: 'Expired' },
      ],
    });
  });

  it('answers 404 for an unknown batch, 400 for a malformed id, 503 when Redis fails', async () => {
    const h = await harness(CONFIG);
    const unknown = await h.app.inject({ method: 'GET', url: '/api/lookup/batch/3f2504e0-4f89-41d3-9a0c-0305e82c3301' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: 'Batch not found', code: 'BATCH_NOT_FOUND' });
    const bad = await h.app.inject({ method: 'GET', url: '/api/lookup/batch/nope' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'INVALID_BATCH_ID' });
    h.jobs.failGet = true;
    expect((await h.app.inject({ method: 'GET', url: '/api/lookup/batch/3f2504e0-4f89-41d3-9a0c-0305e82c3301' })).statusCode).toBe(503);
  });
});
