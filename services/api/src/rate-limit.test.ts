import { describe, expect, it } from 'vitest';
import type { FastifyBaseLogger } from 'fastify';
import type { FastifyRateLimitStore } from '@fastify/rate-limit';
import { loadConfig } from '@lookup/config';
import type { RateLimitDecision, RateLimitTier } from '@lookup/store';
import { luaRateLimitStore, pluginCount, rateLimitTier, tierLimit } from './rate-limit.ts';

describe('pluginCount (how @fastify/rate-limit reads a decision: remaining = max - current, refused when current > max)', () => {
  it('maps an allowed decision to the remaining requests and the reset time', () => {
    const count = pluginCount({ allowed: true, retryAfterSeconds: 0, limit: 20, remaining: 7, resetSeconds: 42 }, 20);
    expect(count).toEqual({ current: 13, ttl: 42_000 });
    expect(20 - count.current).toBe(7);
  });

  it('reports the global bucket when it is nearer than the tier (remaining below the tier limit, never negative current)', () => {
    expect(pluginCount({ allowed: true, retryAfterSeconds: 0, limit: 1000, remaining: 3, resetSeconds: 10 }, 100)).toEqual({ current: 97, ttl: 10_000 });
    expect(pluginCount({ allowed: true, retryAfterSeconds: 0, limit: 1000, remaining: 500, resetSeconds: 10 }, 100).current).toBe(0);
  });

  it('maps a refusal to one over the limit, with Retry-After as the ttl (at least 1 s)', () => {
    expect(pluginCount({ allowed: false, retryAfterSeconds: 17, limit: 20, remaining: 0, resetSeconds: 17 }, 20)).toEqual({ current: 21, ttl: 17_000 });
    expect(pluginCount({ allowed: false, retryAfterSeconds: 0, limit: 20, remaining: 0 }, 20).ttl).toBe(1000);
  });

  it('counts nothing when no bucket was counted (disabled, or the limiter failing open)', () => {
    expect(pluginCount({ allowed: true, retryAfterSeconds: 0, limit: 0, remaining: 0 }, 20)).toEqual({ current: 0, ttl: 0 });
  });
});

describe('tiers', () => {
  const config = loadConfig({});
  it('report their own limit, else the global cap they count in; unauthenticated requests never count globally', () => {
    expect(tierLimit(config, 'submit')).toBe(20);
    expect(tierLimit(config, 'api')).toBe(100);
    expect(tierLimit(config, 'resource')).toBe(600);
    expect(tierLimit({ ...config, rateLimitResourcePerMin: 0 }, 'resource')).toBe(1000);
    expect(tierLimit({ ...config, rateLimitUnauthenticatedPerMin: 0, rateLimitGlobalPerMin: 5 }, 'unauthenticated')).toBe(0);
  });

  it('put a tier whose buckets are all disabled on the allow list', () => {
    const off = rateLimitTier({ ...config, rateLimitApiPerMin: 0, rateLimitGlobalPerMin: 0 }, 'api');
    const on = rateLimitTier(config, 'api');
    const allow = (o: typeof on) => (o.allowList as () => boolean)();
    expect(allow(off)).toBe(true);
    expect(allow(on)).toBe(false);
  });
});

describe('luaRateLimitStore', () => {
  const silent = { warn: () => undefined } as unknown as FastifyBaseLogger;
  const incr = (store: FastifyRateLimitStore, key: string) =>
    new Promise<{ err: Error | null; result?: { current: number; ttl: number } }>((resolve) => {
      store.incr(key, (err, result) => resolve({ err, result }), 60_000, 20);
    });

  it("counts in the tier of the route's options (the plugin-wide store: api)", async () => {
    const calls: [RateLimitTier, string][] = [];
    const limiter = {
      check: async (tier: RateLimitTier, client: string): Promise<RateLimitDecision> => {
        calls.push([tier, client]);
        return { allowed: true, retryAfterSeconds: 0, limit: 20, remaining: 19, resetSeconds: 60 };
      },
    };
    const Store = luaRateLimitStore(limiter, silent);
    const root = new Store({});
    const submit = root.child({ tier: 'submit' } as unknown as Parameters<FastifyRateLimitStore['child']>[0]);
    expect(await incr(root, 'ip:a')).toEqual({ err: null, result: { current: 1, ttl: 60_000 } });
    await incr(submit, 'key:b');
    expect(calls).toEqual([['api', 'ip:a'], ['submit', 'key:b']]);
  });

  it('hands a limiter failure to the plugin (skipOnError lets the request through) and logs a warning', async () => {
    const warnings: unknown[] = [];
    const log = { warn: (...args: unknown[]) => void warnings.push(args) } as unknown as FastifyBaseLogger;
    const Store = luaRateLimitStore({ check: async () => { throw new Error('redis down'); } }, log);
    const { err } = await incr(new Store({}), 'ip:a');
    expect(err?.message).toBe('redis down');
    expect(warnings).toHaveLength(1);
  });
});
