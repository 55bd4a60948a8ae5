// GET /api/lookup (issue 16, job listing) against the real API process and Redis, and the listing index the
// job-creating scripts keep (trimmed to JOB_TTL_SECONDS).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_SHARDS, createJobStore, jobIndexMember, jobShard, keys as storeKeys, newIdInShard, type Redis } from '@lookup/store';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startSuite, type Suite } from './support/processes.ts';
import { rawRedis } from './support/redis.ts';

const ns = newNamespace('joblist');
const KEY = 'list-key';
const AUTH = { 'x-api-key': KEY, 'content-type': 'application/json' };
let suite: Suite;
let redis: Redis;

interface Summary { jobId: string; target: string; status: string; createdAt: string; completedAt?: string; requestedServices: string[] }
interface Page { jobs: Summary[]; nextCursor: string | null }

beforeAll(async () => {
  // The API alone: no workers, so jobs stay Processing (the API dispatched their commands) unless cancelled.
  suite = await startSuite({
    namespace: ns,
    services: ['api'],
    env: { API_KEYS: KEY, ALLOW_PRIVATE_TARGETS: 'true', RATE_LIMIT_SUBMIT_PER_MIN: '0', RATE_LIMIT_API_PER_MIN: '0', RATE_LIMIT_GLOBAL_PER_MIN: '0' },
  });
  redis = rawRedis();
});
afterAll(async () => {
  await suite?.stop();
  redis?.disconnect();
  await cleanupNamespace(ns);
});

async function submit(target: string, services?: string[]): Promise<string> {
  const res = await fetch(`${suite.apiUrl}/api/lookup`, { method: 'POST', headers: AUTH, body: JSON.stringify({ target, services }) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { jobId: string }).jobId;
}

async function list(query: string, headers: Record<string, string> = AUTH): Promise<{ status: number; body: Page & { code?: string } }> {
  const res = await fetch(`${suite.apiUrl}/api/lookup${query}`, { headers });
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return { status: res.status, body: (await res.json()) as Page & { code?: string } };
}

/** Every page from `query` on, following nextCursor. */
async function allPages(query: string, between?: () => Promise<void>): Promise<Page[]> {
  const pages: Page[] = [];
  let cursor: string | null = null;
  do {
    const sep = query ? '&' : '?';
    const { status, body } = await list(`${query}${cursor ? `${sep}cursor=${cursor}` : ''}`);
    expect(status).toBe(200);
    pages.push(body);
    cursor = body.nextCursor;
    await between?.();
  } while (cursor);
  return pages;
}

describe('GET /api/lookup', () => {
  const early: string[] = [];
  const batchIds: string[] = [];
  let since = '';
  let cancelled = '';

  beforeAll(async () => {
    for (let i = 0; i < 5; i++) early.push(await submit('127.0.0.5', ['GeoIP']));
    await new Promise((r) => setTimeout(r, 5)); // `since` lies strictly between the early jobs and the rest
    since = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5));
    // A batch: 25 jobs created in the same instant (the cursor must still tell them apart).
    const res = await fetch(`${suite.apiUrl}/api/lookup/batch`, {
      method: 'POST',
      headers: AUTH,
      body: JSON.stringify({ items: Array.from({ length: 25 }, (_, i) => ({ target: `127.0.1.${i + 1}` })), services: ['Ping', 'RDAP'] }),
    });
    expect(res.status).toBe(202);
    batchIds.push(...((await res.json()) as { jobs: { jobId: string }[] }).jobs.map((j) => j.jobId));
    cancelled = await submit('Example.TEST.', ['DNS']);
    const del = await fetch(`${suite.apiUrl}/api/lookup/${cancelled}`, { method: 'DELETE', headers: { 'x-api-key': KEY } });
    expect(del.status).toBe(202);
  });

  it('pages through more jobs than one page holds, newest first, each job once, stable while new jobs arrive', async () => {
    const added: string[] = [];
    const pages = await allPages('?limit=7', async () => void added.push(await submit('127.0.0.6', ['GeoIP'])));
    const seen = pages.flatMap((p) => p.jobs.map((j) => j.jobId));
    const all = [cancelled, ...batchIds, ...early];
    expect(pages.length).toBe(Math.ceil(all.length / 7));
    for (const p of pages.slice(0, -1)) expect(p.jobs).toHaveLength(7);
    expect(new Set(seen).size).toBe(seen.length); // no job twice
    expect(new Set(seen)).toEqual(new Set(all)); // jobs submitted while paging belong to a new first page
    expect(seen[0]).toBe(cancelled);
    expect(seen.slice(-5)).toEqual([...early].reverse());
    const created = pages.flatMap((p) => p.jobs.map((j) => Date.parse(j.createdAt)));
    expect(created).toEqual([...created].sort((a, b) => b - a));
    expect(pages.at(-1)!.nextCursor).toBeNull();

    // A new first page starts with what was submitted meanwhile.
    const first = await list(`?limit=${added.length}`);
    expect(first.body.jobs.map((j) => j.jobId)).toEqual([...added].reverse());
  });

  it('shows each job summary as the job document has it', async () => {
    const { body } = await list('?target=example.test');
    expect(body.jobs).toHaveLength(1);
    const doc = (await (await fetch(`${suite.apiUrl}/api/lookup/${cancelled}`, { headers: AUTH })).json()) as Summary;
    expect(body.jobs[0]).toEqual({
      jobId: cancelled, target: 'example.test', targetType: 'Domain', status: 'Cancelled', createdAt: doc.createdAt, completedAt: doc.completedAt, requestedServices: ['DNS'],
    });
    const open = await list(`?target=127.0.1.1`);
    expect(open.body.jobs).toHaveLength(1);
    expect(open.body.jobs[0]).not.toHaveProperty('completedAt');
    expect(open.body.jobs[0]!.requestedServices).toEqual(['Ping', 'RDAP']);
  });

  it('filters by status, target and since, and pages filtered results', async () => {
    const byStatus = await list('?status=Cancelled');
    expect(byStatus.body.jobs.map((j) => j.jobId)).toEqual([cancelled]);
    expect(byStatus.body.nextCursor).toBeNull();

    const byTarget = await allPages('?target=127.0.0.5&limit=2');
    expect(byTarget.flatMap((p) => p.jobs.map((j) => j.jobId))).toEqual([...early].reverse());
    expect(byTarget.flatMap((p) => p.jobs).every((j) => j.target === '127.0.0.5' && j.status === 'Processing')).toBe(true);

    const recent = await allPages(`?since=${encodeURIComponent(since)}&limit=10&status=Processing`);
    const recentIds = recent.flatMap((p) => p.jobs.map((j) => j.jobId));
    for (const id of batchIds) expect(recentIds).toContain(id);
    for (const id of [...early, cancelled]) expect(recentIds).not.toContain(id);
  });

  it('answers 400 from the error catalogue for a bad cursor, limit, status, since or target, and 401 without the key', async () => {
    const tampered = Buffer.from(`v1:${'9'.repeat(16)}:not-a-job`).toString('base64url');
    for (const cursor of ['garbage!', 'Zm9v', tampered]) {
      const res = await list(`?cursor=${encodeURIComponent(cursor)}`);
      expect(res.status, cursor).toBe(400);
      expect(res.body.code).toBe('INVALID_CURSOR');
    }
    for (const q of ['?limit=0', '?limit=101', '?limit=abc', '?limit=-1', '?status=Done', '?since=yesterday', '?colour=red']) {
      const res = await list(q);
      expect(res.status, q).toBe(400);
      expect(res.body.code, q).toBe('VALIDATION_FAILED');
    }
    const badTarget = await list('?target=1.2.3');
    expect(badTarget).toMatchObject({ status: 400, body: { code: 'INVALID_TARGET' } });
    const noKey = await list('', {});
    expect(noKey).toMatchObject({ status: 401, body: { code: 'API_KEY_REQUIRED' } });
  });
});

describe('the listing index', () => {
  const idxNs = newNamespace('jobindex');
  const k = storeKeys(idxNs);
  const store = createJobStore({ redis: rawRedis(), namespace: idxNs, ttlSeconds: 600 });
  const newJob = (createdAt: string, jobId: string = randomUUID()) => ({ jobId, target: '127.0.0.2', targetType: 'IPAddress' as const, services: [0 as const], createdAt, deadlineAt: Date.now() + 60_000 });
  afterAll(async () => cleanupNamespace(idxNs));

  it("is one index per job shard, trimmed of jobs older than the TTL whenever jobs are created, singly or in a batch, and expires with them", async () => {
    const single = newJob(new Date().toISOString());
    const index = k.jobIndex(single.jobId);
    const old = jobIndexMember(new Date(Date.now() - 601_000).toISOString(), randomUUID());
    const young = jobIndexMember(new Date(Date.now() - 590_000).toISOString(), randomUUID());
    await redis.zadd(index, 0, old, 0, young);
    await store.create(single);
    expect(await redis.zrange(index, 0, -1)).toEqual([young, jobIndexMember(single.createdAt, single.jobId)]);
    const ttl = await redis.ttl(index);
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);

    // A batch in the same shard: its jobs join that shard's index, which the batch's script trims.
    const older = jobIndexMember(new Date(Date.now() - 700_000).toISOString(), randomUUID());
    await redis.zadd(index, 0, older);
    const batchId = newIdInShard(jobShard(single.jobId));
    const batch = [newJob(new Date().toISOString(), newIdInShard(jobShard(batchId))), newJob(new Date().toISOString(), newIdInShard(jobShard(batchId)))];
    await store.createMany({ batchId, createdAt: new Date().toISOString(), total: 2, jobs: batch.map((j, i) => ({ index: i, jobId: j.jobId })), rejected: [] }, batch);
    const members = await redis.zrange(index, 0, -1);
    expect(members).not.toContain(older);
    for (const j of [single, ...batch]) expect(members).toContain(jobIndexMember(j.createdAt, j.jobId));
  });

  it('merges the shard indexes: pages in global creation order, each job once', async () => {
    const base = Date.now() + 10_000; // newer than every other job of this namespace
    // Two jobs per shard, creation times interleaved across shards (shard order is not creation order).
    const jobs = Array.from({ length: 2 * JOB_SHARDS }, (_, i) => newJob(new Date(base + ((i * 7) % (2 * JOB_SHARDS))).toISOString(), newIdInShard(i % JOB_SHARDS)));
    for (const j of jobs) await store.create(j);
    const expected = [...jobs].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt)).map((j) => j.jobId);
    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 2 * JOB_SHARDS && seen.length < expected.length; page++) {
      const p = await store.list({ limit: 5, after, sinceMs: base });
      seen.push(...p.jobs.map((j) => j.jobId));
      if (!p.next) break;
      after = p.next;
    }
    expect(seen).toEqual(expected);
  });

  it('lists only jobs that still exist (an entry whose job hash is gone is skipped)', async () => {
    const a = newJob(new Date().toISOString());
    const b = newJob(new Date(Date.now() + 1).toISOString());
    await store.create(a);
    await store.create(b);
    expect(await redis.del(k.job(b.jobId))).toBe(1);
    const page = await store.list({ limit: 100 });
    expect(page.jobs.map((j) => j.jobId)).toContain(a.jobId);
    expect(page.jobs.map((j) => j.jobId)).not.toContain(b.jobId);
  });
});
