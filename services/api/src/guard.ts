import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RateLimitDecision, RateLimiter, RateLimitTier } from '@lookup/store';
import { clientAddressKey } from './client-address.ts';
import { sendError } from './errors.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Rate-limit tier of an /api route ('api' when unset). */
    rateLimitTier?: RateLimitTier;
  }
}

export interface GuardOptions {
  apiKeys: readonly string[];
  rateLimiter: RateLimiter;
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** The key a request presents, from `X-API-Key` or `Authorization: Bearer <key>`. */
export function presentedApiKey(request: FastifyRequest): string | undefined {
  const header = request.headers['x-api-key'];
  const xKey = Array.isArray(header) ? header[0] : header;
  if (xKey) return xKey.trim();
  const auth = request.headers.authorization;
  const m = auth ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
  return m ? m[1] : undefined;
}

/** Compares against every configured key in constant time (digests of equal length, no early exit). */
export function apiKeyMatcher(apiKeys: readonly string[]): (presented: string) => boolean {
  const digests = apiKeys.map(sha256);
  return (presented) => {
    const d = sha256(presented);
    let ok = false;
    for (const k of digests) ok = timingSafeEqual(d, k) || ok;
    return ok;
  };
}

/** Whether a request is an /api request: the matched route's pattern, or the raw path for unknown routes. */
function isApiRequest(request: FastifyRequest): boolean {
  const pattern = request.routeOptions.url;
  const path = pattern ?? (request.url.split('?')[0] ?? '');
  return path === '/api' || path.startsWith('/api/');
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the request counts against: its API key (hashed) when it sent a valid one, else its address
     *  (IPv6: its /64). */
    clientId: string;
  }
}

/**
 * Guards every /api route (health and docs stay open). Authentication comes first: with API_KEYS set, a
 * request without a valid key is counted only in the `unauthenticated` bucket of its address (429 once that
 * is full, else 401) and never spends a keyed client's or the global quota. Requests with a valid key, and
 * every request when API_KEYS is unset, are counted in their route's tier (per key, else per address) and in
 * the global bucket. All of this runs before the body is read, so a 401 or 429 answers at once.
 */
export function installApiGuard(app: FastifyInstance, { apiKeys, rateLimiter }: GuardOptions): void {
  app.decorateRequest('clientId', '');
  const keysRequired = apiKeys.length > 0;
  const matches = apiKeyMatcher(apiKeys);

  async function decide(request: FastifyRequest, tier: RateLimitTier, client: string): Promise<RateLimitDecision | undefined> {
    try {
      return await rateLimiter.check(tier, client);
    } catch (err) {
      // Fail open: readiness reports Redis; a limiter outage must not take the API down.
      request.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'rate limit check failed; allowing the request');
      return undefined;
    }
  }

  function refuse(request: FastifyRequest, reply: FastifyReply, tier: RateLimitTier, decision: RateLimitDecision): FastifyReply {
    const retryAfter = Math.max(1, decision.retryAfterSeconds);
    request.log.info({ tier, retryAfter }, 'rate limit exceeded');
    return sendError(
      reply,
      429,
      {
        error: 'Rate limit exceeded',
        message: `Too many requests; at most ${decision.limit} per minute. Retry in ${retryAfter} s.`,
        retryAfter,
      },
      { 'Retry-After': retryAfter, 'X-RateLimit-Limit': decision.limit, 'X-RateLimit-Remaining': 0 },
    );
  }

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (!isApiRequest(request)) return;
    const presented = presentedApiKey(request);
    const validKey = keysRequired && presented !== undefined && matches(presented);
    const address = clientAddressKey(request.ip);

    if (keysRequired && !validKey) {
      request.clientId = `anon:${address}`;
      const decision = await decide(request, 'unauthenticated', request.clientId);
      if (decision && !decision.allowed) return refuse(request, reply, 'unauthenticated', decision);
      return sendError(
        reply,
        401,
        {
          error: 'Unauthorized',
          message: presented === undefined
            ? 'An API key is required: send it in the X-API-Key header or as Authorization: Bearer <key>'
            : 'The API key is not valid',
        },
        { 'WWW-Authenticate': 'Bearer' },
      );
    }

    request.clientId = validKey ? `key:${sha256(presented!).toString('hex').slice(0, 24)}` : `ip:${address}`;
    const tier = request.routeOptions.config?.rateLimitTier ?? 'api';
    const decision = await decide(request, tier, request.clientId);
    if (decision && !decision.allowed) return refuse(request, reply, tier, decision);
    if (decision && decision.limit > 0) {
      reply.header('X-RateLimit-Limit', decision.limit);
      reply.header('X-RateLimit-Remaining', decision.remaining);
    }
  });
}
