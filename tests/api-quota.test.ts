// Finding 6 against the real API process and the real Redis: keyless requests must not spend the global quota
// (before the fix, 20 keyless 401s locked every valid key out with 429).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys as storeKeys } from '@lookup/store';
import type { Redis } from 'ioredis';
import { rawRedis } from './support/redis.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startSuite, type Suite } from './support/processes.ts';

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
  redis = rawRedis();
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
    expect(await redis.exists(storeKeys(ns).rateLimit('global', 'all'))).toBe(0);
    expect(await sumBucket(storeKeys(ns).rateLimit('unauthenticated', 'anon:127.0.0.1'))).toBe(5);

    // The valid key gets all 20 global slots.
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${suite.apiUrl}/api/lookup/services`, { headers: { 'x-api-key': KEY } });
      expect(res.status, `keyed request ${i + 1}`).toBe(200);
    }
    expect(await sumBucket(storeKeys(ns).rateLimit('global', 'all'))).toBe(20);
    const over = await fetch(`${suite.apiUrl}/api/lookup/services`, { headers: { 'x-api-key': KEY } });
    expect(over.status).toBe(429);
  });

  it('answers 404 on the admin routes while ADMIN_API_KEY is unset', async () => {
    // The test above spent the global quota; free it, so the answer is about the admin routes, not a 429.
    await redis.del(storeKeys(ns).rateLimit('global', 'all'));
    const res = await fetch(`${suite.apiUrl}/api/admin/dead-letters`, { headers: { 'x-api-key': KEY, 'x-admin-key': 'guess' } });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'Not found', message: 'No route for GET /api/admin/dead-letters', code: 'NOT_FOUND' });
  });
});

// Issue 12: the submission quota is spent only by accepted submissions. Invalid ones (400, 415) and idempotent
// replays spend nothing; before, 15 invalid POSTs left a newcomer 2 of the 20 submissions a minute.
describe('the submission quota (RATE_LIMIT_SUBMIT_PER_MIN=20) against the real API and Redis', () => {
  const ns2 = newNamespace('quota-submit');
  let submitSuite: Suite;

  beforeAll(async () => {
    submitSuite = await startSuite({
      namespace: ns2,
      services: ['api'], // every process declares the topology: the saga's queue takes the submissions
      env: {
        RATE_LIMIT_SUBMIT_PER_MIN: '20',
        RATE_LIMIT_API_PER_MIN: '1000',
        RATE_LIMIT_GLOBAL_PER_MIN: '1000',
        // Loopback targets (nothing runs a lookup here), except one address the policy refuses.
        ALLOW_PRIVATE_TARGETS: 'true',
        TARGET_DENY_CIDRS: '127.0.0.99/32',
      },
    });
  });
  afterAll(async () => {
    await submitSuite?.stop();
    await cleanupNamespace(ns2);
  });

  const submit = (body: string, headers: Record<string, string> = {}) =>
    fetch(`${submitSuite.apiUrl}/api/lookup`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });

  it('accepts 20 valid submissions after 15 invalid ones and any number of replays, then answers 429', async () => {
    const invalid: [string, Record<string, string>, number][] = [
      ['{}', {}, 400], // schema: no target
      ['{"target": "not a target!"}', {}, 400],
      ['{"target": "127.0.0.99"}', {}, 400], // the target policy (TARGET_DENY_CIDRS)
      ['{"target": "127.0.0.1", "services": ["Nope"]}', {}, 400],
      ['target=127.0.0.1', { 'content-type': 'text/plain' }, 415],
    ];
    for (let i = 0; i < 15; i++) {
      const [body, headers, status] = invalid[i % invalid.length]!;
      const res = await submit(body, headers);
      expect(res.status, `invalid ${i + 1}`).toBe(status);
      expect(res.headers.get('x-ratelimit-remaining'), `invalid ${i + 1}`).toBeNull(); // not counted, so no quota headers
    }
    expect(await redis.exists(storeKeys(ns2).rateLimit('submit', 'ip:127.0.0.1'))).toBe(0);

    const first = await submit('{"target": "127.0.0.1", "services": ["Ping"]}', { 'idempotency-key': 'newcomer-1' });
    expect(first.status).toBe(202);
    expect(first.headers.get('x-ratelimit-limit')).toBe('20');
    expect(first.headers.get('x-ratelimit-remaining')).toBe('19');
    expect(Number(first.headers.get('x-ratelimit-reset'))).toBeGreaterThan(0);
    const jobId = ((await first.json()) as { jobId: string }).jobId;
    for (let i = 0; i < 5; i++) {
      const replay = await submit('{"target": "127.0.0.1", "services": ["Ping"]}', { 'idempotency-key': 'newcomer-1' });
      expect(replay.status).toBe(202);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(((await replay.json()) as { jobId: string }).jobId).toBe(jobId);
    }
    for (let i = 2; i <= 20; i++) {
      const res = await submit(`{"target": "127.0.0.${i}", "services": ["Ping"]}`);
      expect(res.status, `valid submission ${i}`).toBe(202);
    }

    // Raw Redis: exactly the 20 accepted submissions were counted, in the client's bucket and the global one.
    const sum = async (key: string) => Object.values(await redis.hgetall(key)).reduce((s, v) => s + Number(v), 0);
    expect(await sum(storeKeys(ns2).rateLimit('submit', 'ip:127.0.0.1'))).toBe(20);
    expect(await sum(storeKeys(ns2).rateLimit('global', 'all'))).toBe(20);

    const over = await submit('{"target": "127.0.0.21", "services": ["Ping"]}');
    expect(over.status).toBe(429);
    const retryAfter = Number(over.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(over.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(await over.json()).toEqual({ error: 'Rate limit exceeded', message: expect.stringContaining(`${retryAfter} s`), code: 'RATE_LIMITED', retryAfter });
    // A refused submission spends nothing either.
    expect(await sum(storeKeys(ns2).rateLimit('submit', 'ip:127.0.0.1'))).toBe(20);
  });
});
