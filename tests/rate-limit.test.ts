import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { keysEverywhere, rawRedis } from './support/redis.ts';
import { createLogger } from '@lookup/logging';
import { createRateLimiter, deleteByPrefix, type RateLimiterDeps, type RateLimits, keys as storeKeys } from '@lookup/store';

/**
 * The rate limiter against the real Redis. Each test gets its own namespace and removes its keys. Tests that
 * need time to pass inject a clock (`now`) instead of sleeping; the Redis clock is used where noted.
 */
const redis = rawRedis();
const namespaces: string[] = [];

afterEach(async () => {
  for (const ns of namespaces.splice(0)) await deleteByPrefix(redis, `${ns}:`);
});
afterAll(() => {
  redis.disconnect();
});

const WINDOW = 60_000;
/** A segment-aligned start time, so tests know exactly which segment each request falls into. */
const T0 = Math.floor(Date.now() / WINDOW) * WINDOW;

function limiter(limits: Partial<RateLimits>, extra: Partial<RateLimiterDeps> = {}) {
  const namespace = `rl-${randomBytes(4).toString('hex')}`;
  namespaces.push(namespace);
  const rl = createRateLimiter({
    redis,
    namespace,
    limits: { submitPerMin: 20, apiPerMin: 100, globalPerMin: 1000, ...limits },
    ...extra,
  });
  return { rl, namespace };
}

/** A hand-driven clock. */
function clock(start = T0) {
  let t = start;
  return { now: () => t, set: (ms: number) => void (t = start + ms) };
}

async function allowedCount(check: () => Promise<{ allowed: boolean }>, n: number): Promise<number> {
  let allowed = 0;
  for (let i = 0; i < n; i++) if ((await check()).allowed) allowed++;
  return allowed;
}

async function sumBucket(key: string): Promise<number> {
  const h = await redis.hgetall(key);
  return Object.values(h).reduce((s, v) => s + Number(v), 0);
}

describe('rate limiter (real Redis)', () => {
  it('isolates clients: A exhausted, B still allowed', async () => {
    const c = clock();
    const { rl } = limiter({ submitPerMin: 3 }, { now: c.now });
    expect(await allowedCount(() => rl.check('submit', 'ip:10.0.0.1'), 5)).toBe(3);
    const b = await rl.check('submit', 'ip:10.0.0.2');
    expect(b).toEqual({ allowed: true, retryAfterSeconds: 0, limit: 3, remaining: 2, resetSeconds: 60 });
    // The tiers are separate buckets too: A's api calls are unaffected by its exhausted submissions.
    expect((await rl.check('api', 'ip:10.0.0.1')).allowed).toBe(true);
  });

  it('reports limit and remaining on allowed checks, retryAfter on refused ones', async () => {
    const c = clock();
    const { rl } = limiter({ apiPerMin: 3 }, { now: c.now });
    expect(await rl.check('api', 'x')).toEqual({ allowed: true, retryAfterSeconds: 0, limit: 3, remaining: 2, resetSeconds: 60 });
    c.set(10_000);
    expect(await rl.check('api', 'x')).toMatchObject({ remaining: 1, resetSeconds: 50 }); // a fixed window: its end
    expect(await rl.check('api', 'x')).toMatchObject({ remaining: 0 });
    c.set(15_000);
    expect(await rl.check('api', 'x')).toEqual({ allowed: false, retryAfterSeconds: 45, limit: 3, remaining: 0, resetSeconds: 45 });
  });

  it('caps all clients together at the global limit', async () => {
    const c = clock();
    const { rl, namespace } = limiter({ apiPerMin: 100, globalPerMin: 5 }, { now: c.now });
    const results = [];
    for (let i = 0; i < 10; i++) results.push(await rl.check('api', `ip:10.0.1.${i}`));
    expect(results.map((r) => r.allowed)).toEqual([true, true, true, true, true, false, false, false, false, false]);
    expect(results[5]).toMatchObject({ limit: 5, remaining: 0 });
    expect(results[5]!.retryAfterSeconds).toBe(60);
    // Submissions count against the same global cap.
    expect((await rl.check('submit', 'ip:10.0.1.99')).allowed).toBe(false);
    expect(await sumBucket(storeKeys(namespace).rateLimit('global', 'all'))).toBe(5);
  });

  it('reports the most constrained bucket', async () => {
    const c = clock();
    const { rl } = limiter({ apiPerMin: 100, globalPerMin: 3 }, { now: c.now });
    expect(await rl.check('api', 'a')).toMatchObject({ allowed: true, limit: 3, remaining: 2 });
  });

  it('slides the submission window in 10 s segments (a fixed window would reset at 60 s)', async () => {
    const c = clock();
    const { rl } = limiter({ submitPerMin: 6 }, { now: c.now });
    const submit = () => rl.check('submit', 'ip:10.0.2.1');
    for (const at of [0, 10_000, 20_000]) {
      c.set(at);
      expect(await allowedCount(submit, 2)).toBe(2);
    }
    c.set(30_000);
    const refused = await submit();
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterSeconds).toBe(30); // the first segment (2 requests) leaves the window at 60 s
    c.set(59_999);
    expect((await submit()).allowed).toBe(false);
    c.set(60_000);
    // Only the 2 requests of the first segment have left: 2 more fit, the third does not.
    expect(await allowedCount(submit, 3)).toBe(2);
    const again = await submit();
    expect(again.allowed).toBe(false);
    expect(again.retryAfterSeconds).toBe(10); // the 10 s segment leaves at 70 s
    c.set(70_000);
    expect(await allowedCount(submit, 3)).toBe(2);
  });

  it('counts a cost of N (a batch of N submissions) in full or not at all, in the tier and the global bucket', async () => {
    const c = clock();
    const { rl, namespace } = limiter({ submitPerMin: 6, globalPerMin: 100 }, { now: c.now });
    expect(await rl.check('submit', 'ip:10.0.3.1', 4)).toMatchObject({ allowed: true, limit: 6, remaining: 2 });
    c.set(10_000);
    // 3 do not fit in the 2 left: refused whole, nothing counted; it fits once the first segment (4) leaves at 60 s.
    expect(await rl.check('submit', 'ip:10.0.3.1', 3)).toMatchObject({ allowed: false, retryAfterSeconds: 50 });
    expect(await sumBucket(storeKeys(namespace).rateLimit('submit', 'ip:10.0.3.1'))).toBe(4);
    expect(await sumBucket(storeKeys(namespace).rateLimit('global', 'all'))).toBe(4);
    expect(await rl.check('submit', 'ip:10.0.3.1', 2)).toMatchObject({ allowed: true, remaining: 0 });
    // A cost above the limit never fits.
    expect((await rl.check('submit', 'ip:10.0.3.2', 7)).allowed).toBe(false);
    expect(await sumBucket(storeKeys(namespace).rateLimit('global', 'all'))).toBe(6);
    await expect(rl.check('submit', 'ip:10.0.3.2', 0)).rejects.toThrow(RangeError);
  });

  it('reports when the oldest counted request leaves a sliding window (X-RateLimit-Reset)', async () => {
    const c = clock();
    const { rl } = limiter({ submitPerMin: 6 }, { now: c.now });
    const submit = () => rl.check('submit', 'ip:10.0.2.9');
    c.set(5_000);
    expect(await submit()).toMatchObject({ allowed: true, remaining: 5, resetSeconds: 55 }); // segment 0 leaves at 60 s
    c.set(42_000);
    expect(await submit()).toMatchObject({ allowed: true, remaining: 4, resetSeconds: 18 }); // still segment 0 first
    c.set(61_000);
    expect(await submit()).toMatchObject({ allowed: true, remaining: 4, resetSeconds: 39 }); // now segment 4 (40-50 s)
  });

  it('counts the resource tier in its own bucket and in the global one', async () => {
    const c = clock();
    const { rl, namespace } = limiter({ apiPerMin: 2, resourcePerMin: 3, globalPerMin: 100 }, { now: c.now });
    expect(await allowedCount(() => rl.check('resource', 'ip:10.0.9.1'), 5)).toBe(3);
    expect(await allowedCount(() => rl.check('api', 'ip:10.0.9.1'), 5)).toBe(2);
    expect(await sumBucket(storeKeys(namespace).rateLimit('resource', 'ip:10.0.9.1'))).toBe(3);
    expect(await sumBucket(storeKeys(namespace).rateLimit('api', 'ip:10.0.9.1'))).toBe(2);
    expect(await sumBucket(storeKeys(namespace).rateLimit('global', 'all'))).toBe(5);
    // Unset or 0: only the global cap applies.
    const open = limiter({ globalPerMin: 4 }, { now: c.now });
    expect(await allowedCount(() => open.rl.check('resource', 'ip:10.0.9.2'), 6)).toBe(4);
    expect(await redis.exists(storeKeys(open.namespace).rateLimit('resource', 'ip:10.0.9.2'))).toBe(0);
  });

  it('uses a fixed window for other API calls', async () => {
    const c = clock();
    const { rl } = limiter({ apiPerMin: 3 }, { now: c.now });
    const call = () => rl.check('api', 'ip:10.0.3.1');
    c.set(50_000);
    expect(await allowedCount(call, 5)).toBe(3);
    c.set(59_000);
    expect(await call()).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
    c.set(60_000);
    expect(await allowedCount(call, 5)).toBe(3);
  });

  it('does not count refused requests', async () => {
    const c = clock();
    const { rl, namespace } = limiter({ submitPerMin: 2, globalPerMin: 3 }, { now: c.now });
    expect(await allowedCount(() => rl.check('submit', 'a'), 12)).toBe(2);
    // A's 10 refusals took nothing from the global bucket: B gets the third global slot.
    expect((await rl.check('submit', 'b')).allowed).toBe(true);
    expect((await rl.check('submit', 'c')).allowed).toBe(false);
    expect(await sumBucket(storeKeys(namespace).rateLimit('submit', 'a'))).toBe(2);
    expect(await sumBucket(storeKeys(namespace).rateLimit('global', 'all'))).toBe(3);
    // And refusals do not extend the wait: one window after the first requests, A is allowed again.
    c.set(WINDOW);
    expect((await rl.check('submit', 'a')).allowed).toBe(true);
  });

  it('answers Retry-After between 1 and 60 s with the Redis clock', async () => {
    // The api tier is a fixed one-minute window: start well clear of a minute boundary (Redis runs on this
    // machine's clock), so the three requests fall into one window even on a loaded machine.
    const intoMinute = Date.now() % WINDOW;
    if (intoMinute > WINDOW - 5000) await new Promise((r) => setTimeout(r, WINDOW - intoMinute + 100));
    const { rl } = limiter({ submitPerMin: 2, apiPerMin: 2 });
    for (const tier of ['submit', 'api'] as const) {
      await rl.check(tier, 'ip:10.0.4.1');
      await rl.check(tier, 'ip:10.0.4.1');
      const r = await rl.check(tier, 'ip:10.0.4.1');
      expect(r.allowed).toBe(false);
      expect(r.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(r.retryAfterSeconds).toBeLessThanOrEqual(60);
    }
  });

  it('allows again once Retry-After has passed (short window, Redis clock)', async () => {
    const { rl } = limiter({ apiPerMin: 2 }, { windowMs: 500 });
    const call = () => rl.check('api', 'ip:10.0.5.1');
    let r = await call();
    if (r.allowed) r = await call();
    while (r.allowed) r = await call();
    expect(r.retryAfterSeconds).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, r.retryAfterSeconds * 1000));
    expect((await call()).allowed).toBe(true);
  });

  it('treats a limit of 0 as unlimited, and touches no keys when everything is disabled', async () => {
    const { rl, namespace } = limiter({ submitPerMin: 0, apiPerMin: 0, globalPerMin: 0 });
    expect(await allowedCount(() => rl.check('submit', 'a'), 50)).toBe(50);
    expect(await allowedCount(() => rl.check('api', 'a'), 50)).toBe(50);
    expect(await keysEverywhere(redis, `${namespace}:*`)).toEqual([]);

    const c = clock();
    const onlyGlobal = limiter({ submitPerMin: 0, apiPerMin: 0, globalPerMin: 4 }, { now: c.now });
    expect(await allowedCount(() => onlyGlobal.rl.check('submit', 'a'), 10)).toBe(4);
    expect(await keysEverywhere(redis, storeKeys(onlyGlobal.namespace).rateLimit('submit', '*'))).toEqual([]);

    const noGlobal = limiter({ submitPerMin: 3, globalPerMin: 0 }, { now: c.now });
    expect(await allowedCount(() => noGlobal.rl.check('submit', 'a'), 10)).toBe(3);
    expect(await redis.exists(storeKeys(noGlobal.namespace).rateLimit('global', 'all'))).toBe(0);
  });

  it('sets an expiry on every key it writes', async () => {
    const { rl, namespace } = limiter({ submitPerMin: 5, apiPerMin: 5, globalPerMin: 50 });
    await rl.check('submit', 'ip:10.0.6.1');
    await rl.check('api', 'ip:10.0.6.1');
    const keys = await keysEverywhere(redis, `${namespace}:*`);
    expect(keys.sort()).toEqual([storeKeys(namespace).rateLimit('api', 'ip:10.0.6.1'), storeKeys(namespace).rateLimit('global', 'all'), storeKeys(namespace).rateLimit('submit', 'ip:10.0.6.1')]);
    for (const key of keys) {
      const ttl = await redis.pttl(key);
      expect(ttl, key).toBeGreaterThan(0);
      expect(ttl, key).toBeLessThanOrEqual(2 * WINDOW);
    }
  });

  it('forgets segments that left the window', async () => {
    const c = clock();
    const { rl, namespace } = limiter({ submitPerMin: 100 }, { now: c.now });
    for (let s = 0; s < 12; s++) {
      c.set(s * 10_000);
      await rl.check('submit', 'a');
    }
    expect(Object.keys(await redis.hgetall(storeKeys(namespace).rateLimit('submit', 'a'))).length).toBeLessThanOrEqual(6);
  });

  it('allows exactly the limit under concurrency', async () => {
    const c = clock();
    const { rl, namespace } = limiter({ submitPerMin: 20 }, { now: c.now });
    const results = await Promise.all(Array.from({ length: 50 }, () => rl.check('submit', 'ip:10.0.7.1')));
    expect(results.filter((r) => r.allowed)).toHaveLength(20);
    expect(await sumBucket(storeKeys(namespace).rateLimit('submit', 'ip:10.0.7.1'))).toBe(20);

    // The same with the Redis clock and the global bucket as the constraint, across many clients.
    const shared = limiter({ apiPerMin: 100, globalPerMin: 20 });
    const spread = await Promise.all(Array.from({ length: 50 }, (_, i) => shared.rl.check('api', `ip:10.0.8.${i}`)));
    expect(spread.filter((r) => r.allowed)).toHaveLength(20);
  });

  it('hashes client ids that are long or unprintable', async () => {
    const c = clock();
    const { rl, namespace } = limiter({ apiPerMin: 1 }, { now: c.now });
    const weird = `key with spaces\n${'x'.repeat(500)}`;
    expect((await rl.check('api', weird)).allowed).toBe(true);
    expect((await rl.check('api', weird)).allowed).toBe(false);
    const keys = await keysEverywhere(redis, storeKeys(namespace).rateLimit('api', '*'));
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/:rl:api:h-[0-9a-f]{32}$/);
  });

  it('fails open with a warning when Redis does not answer', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({ service: 'test', level: 'warn', destination: { write: (l: string) => void lines.push(JSON.parse(l)) } });
    // A client that cannot connect (nothing listens on port 1) and fails commands at once.
    const dead = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    dead.on('error', () => undefined);
    try {
      const rl = createRateLimiter({ redis: dead, namespace: 'unused', limits: { submitPerMin: 1, apiPerMin: 1, globalPerMin: 1 }, logger });
      expect(await allowedCount(() => rl.check('submit', 'a'), 3)).toBe(3);
      expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1); // repeated failures are not logged each time
      expect(String(lines[0]!.msg)).toMatch(/fail open/);
    } finally {
      dead.disconnect();
    }
  });

  it('counts unauthenticated requests in their own bucket, never in the global one (finding 6)', async () => {
    const c = clock();
    const { rl, namespace } = limiter({ apiPerMin: 100, globalPerMin: 5, unauthenticatedPerMin: 3 }, { now: c.now });
    // 50 keyless requests from one address: 3 allowed, the rest refused, and none touches the global bucket.
    expect(await allowedCount(() => rl.check('unauthenticated', 'anon:198.51.100.1'), 50)).toBe(3);
    expect(await redis.exists(storeKeys(namespace).rateLimit('global', 'all'))).toBe(0);
    expect(await sumBucket(storeKeys(namespace).rateLimit('unauthenticated', 'anon:198.51.100.1'))).toBe(3);
    // Another address has its own unauthenticated bucket.
    expect((await rl.check('unauthenticated', 'anon:198.51.100.2')).allowed).toBe(true);
    // A keyed client still gets the whole global quota.
    expect(await allowedCount(() => rl.check('api', 'key:abc'), 5)).toBe(5);
    expect(await sumBucket(storeKeys(namespace).rateLimit('global', 'all'))).toBe(5);
    // Unset: unlimited, and no key is written.
    const open = limiter({ globalPerMin: 1 }, { now: c.now });
    expect(await allowedCount(() => open.rl.check('unauthenticated', 'anon:x'), 10)).toBe(10);
    expect(await keysEverywhere(redis, `${open.namespace}:*`)).toEqual([]);
  });

  it('rejects invalid options', () => {
    expect(() => limiter({ submitPerMin: -1 })).toThrow(RangeError);
    expect(() => limiter({}, { windowMs: 3 })).toThrow(RangeError);
  });
});
