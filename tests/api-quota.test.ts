// Finding 6 against the real API process and the real Redis: keyless requests must not spend the global quota
// (before the fix, 20 keyless 401s locked every valid key out with 429).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startSuite, type Suite } from './support/processes.ts';
import { REDIS_URL } from './support/env.ts';

const ns = newNamespace('quota');
const KEY = 'quota-test-key';
let suite: Suite;
let redis: Redis;

beforeAll(async () => {
  suite = await startSuite({
    namespace: ns,
    services: ['api'],
    env: {
      API_KEYS: KEY,
      RATE_LIMIT_GLOBAL_PER_MIN: '20',
      RATE_LIMIT_API_PER_MIN: '1000',
      RATE_LIMIT_UNAUTHENTICATED_PER_MIN: '5',
    },
  });
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  await suite?.stop();
  redis?.disconnect();
  await cleanupNamespace(ns);
});

const sumBucket = async (key: string) => Object.values(await redis.hgetall(key)).reduce((s, v) => s + Number(v), 0);

describe('quotas with API_KEYS set (finding 6)', () => {
  it('counts keyless and wrong-key requests in their own bucket; a valid key still gets the whole global quota', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 60; i++) {
      const headers: Record<string, string> = i % 2 === 0 ? {} : { 'x-api-key': `wrong-${i}` };
      const res = await fetch(`${suite.apiUrl}/api/lookup/services`, { headers });
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      statuses.push(res.status);
    }
    // 5 answered 401 (authentication first), then 429 once the address's unauthenticated bucket is full.
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(new Set(statuses.slice(5))).toEqual(new Set([429]));

    // Side effects in Redis (raw client): nothing in the global bucket, 5 in the address's unauthenticated one.
    expect(await redis.exists(`${ns}:rl:global:all`)).toBe(0);
    expect(await sumBucket(`${ns}:rl:unauthenticated:anon:127.0.0.1`)).toBe(5);

    // The valid key gets all 20 global slots.
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${suite.apiUrl}/api/lookup/services`, { headers: { 'x-api-key': KEY } });
      expect(res.status, `keyed request ${i + 1}`).toBe(200);
    }
    expect(await sumBucket(`${ns}:rl:global:all`)).toBe(20);
    const over = await fetch(`${suite.apiUrl}/api/lookup/services`, { headers: { 'x-api-key': KEY } });
    expect(over.status).toBe(429);
  });

  it('answers 404 on the admin routes while ADMIN_API_KEY is unset', async () => {
    // The test above spent the global quota; free it, so the answer is about the admin routes, not a 429.
    await redis.del(`${ns}:rl:global:all`);
    const res = await fetch(`${suite.apiUrl}/api/admin/dead-letters`, { headers: { 'x-api-key': KEY, 'x-admin-key': 'guess' } });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'Not found', message: 'No route for GET /api/admin/dead-letters' });
  });
});
