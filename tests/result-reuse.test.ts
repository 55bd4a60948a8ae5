import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobDocument } from '@lookup/contracts';
import { startRdapFixture } from './fixtures/index.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startSuite, waitFor, type Suite } from './support/processes.ts';

// Result reuse end to end: two RDAP workers with CACHE_TTL_RDAP=3600 against the loopback RDAP fixture, which counts
// the lookups that reached it. Each case uses a target of its own (127.0.0.x), so their counts are independent.
const ns = newNamespace('reuse');
let suite: Suite;
let rdap: Awaited<ReturnType<typeof startRdapFixture>>;

beforeAll(async () => {
  // Each answer takes a second, so concurrent identical lookups overlap.
  rdap = await startRdapFixture({ delayMs: 1000 });
  suite = await startSuite({
    namespace: ns,
    services: ['api', 'saga', 'rdap', 'rdap'],
    env: { RDAP_BASE_URL: rdap.url, ALLOW_PRIVATE_TARGETS: 'true', CACHE_TTL_RDAP: '3600', RATE_LIMIT_SUBMIT_PER_MIN: '1000' },
  });
});

afterAll(async () => {
  await suite?.stop();
  await rdap?.close();
  await cleanupNamespace(ns);
});

async function lookup(target: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(`${suite.apiUrl}/api/lookup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ target, services: ['RDAP'], ...extra }),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { jobId: string }).jobId;
}

const completed = (jobId: string) =>
  waitFor(async () => {
    const doc = (await (await fetch(`${suite.apiUrl}/api/lookup/${jobId}`)).json()) as JobDocument;
    return doc.status === 'Completed' ? doc.results[0]! : undefined;
  }, 60_000);
const fixtureLookups = (ip: string) => rdap.paths.filter((p) => p === `/ip/${ip}`).length;

describe('result reuse', () => {
  it('reuses a recent result of the same service and target, saying cached and its age', async () => {
    const first = await completed(await lookup('127.0.0.21'));
    expect(first).toMatchObject({ serviceType: 'RDAP', status: 'Succeeded' });
    expect(first.cached).toBeUndefined();
    expect(fixtureLookups('127.0.0.21')).toBe(1);

    const second = await completed(await lookup('127.0.0.21'));
    expect(second).toMatchObject({ serviceType: 'RDAP', status: 'Succeeded', cached: true, data: first.data });
    expect(second.ageMs).toBeGreaterThanOrEqual(0);
    expect(fixtureLookups('127.0.0.21')).toBe(1);
  });

  it('runs a new lookup for "fresh": true and for Cache-Control: no-cache', async () => {
    await completed(await lookup('127.0.0.22'));
    const fresh = await completed(await lookup('127.0.0.22', { fresh: true }));
    expect(fresh.cached).toBeUndefined();
    expect(fixtureLookups('127.0.0.22')).toBe(2);
    const noCache = await completed(await lookup('127.0.0.22', {}, { 'cache-control': 'no-cache' }));
    expect(noCache.cached).toBeUndefined();
    expect(fixtureLookups('127.0.0.22')).toBe(3);
    // The fresh result is what the next lookup reuses.
    expect(await completed(await lookup('127.0.0.22'))).toMatchObject({ cached: true });
    expect(fixtureLookups('127.0.0.22')).toBe(3);
  });

  it('collapses concurrent identical lookups on two workers into one', async () => {
    const ids = await Promise.all(Array.from({ length: 6 }, () => lookup('127.0.0.23')));
    const results = await Promise.all(ids.map(completed));
    expect(results.every((r) => r.status === 'Succeeded')).toBe(true);
    expect(fixtureLookups('127.0.0.23')).toBe(1);
    expect(results.filter((r) => r.cached === true)).toHaveLength(5);
    const workers = suite.processes.filter((p) => p.name === 'rdap');
    expect(workers).toHaveLength(2);
  });
});
