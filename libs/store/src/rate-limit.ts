import { createHash } from 'node:crypto';
import type { Logger } from '@lookup/logging';
import { rateLimitRejections, zeroed } from '@lookup/metrics';
import { defineScript, type Redis } from './redis.ts';
import { keys as makeKeys } from './keys.ts';

/**
 * `submit`: accepted submissions (POST /api/lookup). `resource`: the resource proxy (/api/resources/*).
 * `api`: every other /api route. `unauthenticated`: any /api request without a valid API key while keys are
 * required; counted in its own bucket only, never in the global one, so keyless traffic cannot lock out clients
 * that hold a key.
 */
export type RateLimitTier = 'submit' | 'api' | 'resource' | 'unauthenticated';

/** Requests per window (one minute unless `windowMs` says otherwise). 0 disables that bucket. */
export interface RateLimits {
  submitPerMin: number;
  apiPerMin: number;
  globalPerMin: number;
  /** Resource proxy requests per client (0 or unset: only the global cap applies). */
  resourcePerMin?: number;
  /** Requests without a valid API key, per client address (0 or unset: unlimited). Not part of the global cap. */
  unauthenticatedPerMin?: number;
}

export interface RateLimitDecision {
  allowed: boolean;
  /** Seconds until a retry can succeed (0 when allowed). */
  retryAfterSeconds: number;
  /** Limit of the most constrained bucket (0 when every bucket is disabled, or when failing open). */
  limit: number;
  /** Requests left in that bucket after this one. */
  remaining: number;
  /** Seconds until the oldest request counted in that bucket leaves the window (when refused: retryAfterSeconds;
   *  0 or unset when no bucket is counted). */
  resetSeconds?: number;
}

export interface RateLimiter {
  /** Checks and counts `cost` requests (default 1; a batch of N submissions costs N): all of them or none. */
  check(tier: RateLimitTier, client: string, cost?: number): Promise<RateLimitDecision>;
}

export interface RateLimiterDeps {
  redis: Redis;
  namespace: string;
  limits: RateLimits;
  /** Window length; 60 000 ms in production, shorter in tests. */
  windowMs?: number;
  /** Segments of the submission tier's sliding window (the seed's 6 segments of 10 s). */
  submitSegments?: number;
  /** Where fail-open warnings go. */
  logger?: Logger;
  /** Clock override for tests; by default the Redis server's clock, shared by every API replica. */
  now?: () => number;
}

const UNLIMITED: RateLimitDecision = Object.freeze({ allowed: true, retryAfterSeconds: 0, limit: 0, remaining: 0, resetSeconds: 0 });
const WARN_INTERVAL_MS = 10_000;

/**
 * Per-client rate limits kept in Redis, so every API replica shares them. One Lua call per request
 * checks and counts the client's tier bucket and the global bucket together: a request is counted in
 * both or in neither, so a refused request consumes no quota. Submissions use a sliding window
 * (`submitSegments` segments), other API calls and the global cap a fixed window. Keys expire on
 * their own. When Redis cannot answer, the limiter fails open (allows) and logs a warning; the
 * readiness probe already reports Redis.
 */
export function createRateLimiter({
  redis,
  namespace,
  limits,
  windowMs = 60_000,
  submitSegments = 6,
  logger,
  now,
}: RateLimiterDeps): RateLimiter {
  for (const [name, value] of Object.entries(limits)) {
    if (value === undefined && (name === 'unauthenticatedPerMin' || name === 'resourcePerMin')) continue;
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`rate limit ${name} must be a whole number >= 0, got ${value}`);
  }
  if (!Number.isInteger(submitSegments) || submitSegments < 1) throw new RangeError('submitSegments must be >= 1');
  if (!Number.isInteger(windowMs) || windowMs < submitSegments) throw new RangeError(`windowMs must be an integer >= ${submitSegments}`);

  const k = makeKeys(namespace);
  // A counter lost in a failover only lets a few more requests through: no replica wait on the HTTP path.
  const script = defineScript(redis, 'rate-limit', { replicated: false });
  const tiers: Record<RateLimitTier, { limit: number; segments: number; global: boolean }> = {
    submit: { limit: limits.submitPerMin, segments: submitSegments, global: true },
    api: { limit: limits.apiPerMin, segments: 1, global: true },
    resource: { limit: limits.resourcePerMin ?? 0, segments: 1, global: true },
    unauthenticated: { limit: limits.unauthenticatedPerMin ?? 0, segments: 1, global: false },
  };
  const globalKey = k.rateLimit('global', 'all');
  // lookup_rate_limit_rejections_total{tier}: bound once per tier; counted here, where every 429 is decided.
  const rejected = Object.fromEntries((Object.keys(tiers) as RateLimitTier[]).map((tier) => [tier, zeroed(rateLimitRejections().labels(tier))])) as Record<
    RateLimitTier,
    ReturnType<ReturnType<typeof rateLimitRejections>['labels']>
  >;

  let lastWarn = 0;
  let suppressed = 0;
  function warnFailOpen(err: unknown): void {
    const t = Date.now();
    if (t - lastWarn < WARN_INTERVAL_MS) {
      suppressed += 1;
      return;
    }
    logger?.warn(
      { err: err instanceof Error ? err.message : String(err), suppressed },
      'rate limiter cannot reach redis; allowing requests (fail open)',
    );
    lastWarn = t;
    suppressed = 0;
  }

  async function check(tier: RateLimitTier, client: string, cost = 1): Promise<RateLimitDecision> {
    const t = tiers[tier];
    if (!t) throw new RangeError(`unknown rate-limit tier '${String(tier)}'`);
    if (!Number.isInteger(cost) || cost < 1) throw new RangeError(`rate-limit cost must be a whole number >= 1, got ${cost}`);
    // A limit of 0 disables a bucket in the script: it is neither read nor counted.
    const globalLimit = t.global ? limits.globalPerMin : 0;
    if (t.limit === 0 && globalLimit === 0) return { ...UNLIMITED };
    let reply: unknown;
    try {
      reply = await script(
        [k.rateLimit(tier, clientId(client)), globalKey],
        [now ? Math.floor(now()) : '', windowMs, t.limit, t.segments, globalLimit, 1, cost],
      );
    } catch (err) {
      warnFailOpen(err);
      return { ...UNLIMITED };
    }
    const [allowed, retryMs, limit, remaining, resetMs] = (reply as (number | string)[]).map(Number) as [number, number, number, number, number];
    const retryAfterSeconds = allowed === 1 ? 0 : Math.max(1, Math.ceil(retryMs / 1000));
    if (allowed !== 1) rejected[tier].inc();
    return {
      allowed: allowed === 1,
      retryAfterSeconds,
      limit,
      remaining: Math.max(0, remaining),
      resetSeconds: allowed === 1 ? Math.max(0, Math.ceil(resetMs / 1000)) : retryAfterSeconds,
    };
  }

  return { check };
}

/** Client ids become part of a Redis key: keep short printable ones, hash anything else. */
function clientId(client: string): string {
  if (/^[\x21-\x7e]{1,100}$/.test(client)) return client;
  return `h-${createHash('sha256').update(client).digest('hex').slice(0, 32)}`;
}
