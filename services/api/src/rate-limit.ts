import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import type { errorResponseBuilderContext, FastifyRateLimitStore, FastifyRateLimitStoreCtor, RateLimitOptions } from '@fastify/rate-limit';
import type { Config } from '@lookup/config';
import type { RateLimitDecision, RateLimiter, RateLimitTier } from '@lookup/store';
import { RateLimited, type HttpError } from './http-errors.ts';

/** The limiter's window; the tiers are per minute. The plugin passes it to the store, which ignores it. */
export const RATE_LIMIT_WINDOW_MS = 60_000;

/** Route-level `config.rateLimit` of an /api route: the plugin's options plus the tier our store counts in. */
export type TierRateLimitOptions = RateLimitOptions & { tier: RateLimitTier };

/** The limit a tier's answers report in X-RateLimit-Limit: the tier's own, else the global cap it counts in. */
export function tierLimit(config: Readonly<Config>, tier: RateLimitTier): number {
  switch (tier) {
    case 'submit':
      return config.rateLimitSubmitPerMin || config.rateLimitGlobalPerMin;
    case 'api':
      return config.rateLimitApiPerMin || config.rateLimitGlobalPerMin;
    case 'resource':
      return config.rateLimitResourcePerMin || config.rateLimitGlobalPerMin;
    case 'unauthenticated':
      return config.rateLimitUnauthenticatedPerMin; // never counted in the global bucket
  }
}

const ALWAYS = () => true;
const NEVER = () => false;

/**
 * The `config.rateLimit` of a route in `tier`. A tier whose buckets are all disabled (its limit and the global
 * cap it counts in are 0) is on the plugin's allow list: no Redis call, no X-RateLimit headers. (Its own allow
 * list also replaces the plugin-wide one, which lets every request outside /api through.)
 */
export function rateLimitTier(config: Readonly<Config>, tier: RateLimitTier): TierRateLimitOptions {
  const max = tierLimit(config, tier);
  return { tier, max, allowList: max === 0 ? ALWAYS : NEVER };
}

/**
 * How the plugin reads a decision of our limiter. The plugin computes `remaining = max - current`, refuses when
 * `current > max`, and sends `ttl` (rounded up to seconds) as X-RateLimit-Reset and, when refusing, Retry-After.
 * The Lua script has already counted the request (or refused it without counting anything), so `current` is
 * derived from its answer rather than counted here.
 */
export function pluginCount(decision: RateLimitDecision, max: number): { current: number; ttl: number } {
  if (!decision.allowed) return { current: max + 1, ttl: Math.max(1, decision.retryAfterSeconds) * 1000 };
  if (decision.limit === 0) return { current: 0, ttl: 0 }; // no bucket counted (disabled, or failing open)
  return { current: Math.max(0, max - decision.remaining), ttl: (decision.resetSeconds ?? 0) * 1000 };
}

/**
 * The plugin's `store`: every `incr` is one call of our Lua script (libs/store rate-limit.lua), which checks and
 * counts the client's tier bucket and the global bucket atomically, so a refused request spends nothing. The
 * plugin creates one child per route with that route's merged options; `tier` says which bucket it counts in
 * (the plugin-wide store, used by routes without their own options, counts in the `api` tier).
 */
export function luaRateLimitStore(limiter: RateLimiter, log: FastifyBaseLogger): FastifyRateLimitStoreCtor {
  class LuaRateLimitStore implements FastifyRateLimitStore {
    private readonly tier: RateLimitTier;

    constructor(options: { tier?: RateLimitTier } = {}) {
      this.tier = options.tier ?? 'api';
    }

    incr(key: string, callback: (error: Error | null, result?: { current: number; ttl: number }) => void, _timeWindow: number, max: number): void {
      limiter.check(this.tier, key).then(
        (decision) => callback(null, pluginCount(decision, max)),
        (err: unknown) => {
          // Fail open (the plugin's skipOnError): readiness reports Redis; a limiter outage must not take the API down.
          log.warn({ err: err instanceof Error ? err.message : String(err), tier: this.tier }, 'rate limit check failed; allowing the request');
          callback(err instanceof Error ? err : new Error(String(err)));
        },
      );
    }

    // The plugin passes the route's merged rate-limit options (its typings say route options): ours carry `tier`.
    child(options: Parameters<FastifyRateLimitStore['child']>[0]): FastifyRateLimitStore {
      return new LuaRateLimitStore(options as { tier?: RateLimitTier });
    }
  }
  return LuaRateLimitStore;
}

/** The 429 answer: our error body (the plugin has set Retry-After and the X-RateLimit headers). */
export function rateLimitErrorResponse(request: FastifyRequest, context: errorResponseBuilderContext): HttpError {
  const retryAfter = Math.max(1, Math.ceil(context.ttl / 1000));
  request.log.info({ retryAfter, limit: context.max }, 'rate limit exceeded');
  return new RateLimited(retryAfter);
}
