import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fastifyRateLimit from '@fastify/rate-limit';
import type { Config, TenantConfig } from '@lookup/config';
import type { RateLimiter } from '@lookup/store';
import { clientAddressKey } from './client-address.ts';
import { ApiKeyInvalid, ApiKeyRequired } from './http-errors.ts';
import { luaRateLimitStore, RATE_LIMIT_WINDOW_MS, rateLimitErrorResponse, rateLimitTier } from './rate-limit.ts';

export interface GuardOptions {
  config: Readonly<Config>;
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
    /** The tenant of the request's API key (TENANTS), or null. */
    tenant: TenantConfig | null;
  }
}

/**
 * Guards every /api route (health and docs stay open). Authentication comes first, in this onRequest hook: with
 * API_KEYS set, a request without a valid key is counted only in the `unauthenticated` bucket of its address (429
 * once that is full, else 401) and never spends a keyed client's or the global quota. Every other /api request is
 * counted by @fastify/rate-limit in its route's tier and in the global bucket (per key hash, else per address, IPv6
 * by /64), through a store backed by our Lua script; the plugin sends X-RateLimit-Limit/-Remaining/-Reset, and
 * Retry-After with the 429.
 * - A route with its own `config.rateLimit` object (the resource proxy) is checked by the plugin's route hook, in
 *   onRequest. Submissions (`config.rateLimit: false` here) spend the submit tier inside submitLookup, through
 *   `fastify.rateLimit()`, after validation and the Idempotency-Key claim (submit-lookup.ts), so an invalid
 *   submission or a replay spends nothing.
 * - Every other /api route, and an unknown /api path or method, is in the api tier and checked here, through the
 *   plugin's `fastify.rateLimit()` handler: before any hook of the route itself (route hooks run after the
 *   instance's), so the admin routes' key check (their own onRequest hook) cannot be probed without quota.
 * Both run before the body is read, except the submission check.
 */
export async function installApiGuard(app: FastifyInstance, { config, rateLimiter }: GuardOptions): Promise<void> {
  app.decorateRequest('clientId', '');
  app.decorateRequest('tenant', null);
  const keysRequired = config.apiKeys.length > 0;
  const matches = apiKeyMatcher(config.apiKeys);
  // By key digest (looked up only once the key matched, in constant time, above).
  const tenantsByDigest = new Map(config.tenants.map((t) => [sha256(t.key).toString('hex'), t]));

  await app.register(fastifyRateLimit, {
    global: false, // only routes with their own config.rateLimit get the plugin's route hook; the rest: see below
    ...rateLimitTier(config, 'api'),
    hook: 'onRequest',
    timeWindow: RATE_LIMIT_WINDOW_MS,
    // Who a request counts against, set by the hook below: `key:<hash>` for a valid API key, else `ip:<address>`
    // (IPv6: its /64, IPv4-mapped IPv6: the IPv4; client-address.ts). The plugin's ipv6Subnet applies only to its
    // own key generator, which cannot key authenticated clients by their key.
    keyGenerator: (request: FastifyRequest) => request.clientId,
    store: luaRateLimitStore(rateLimiter, app.log),
    skipOnError: true, // fail open when the limiter throws (the Redis limiter already fails open on its own)
    errorResponseBuilder: rateLimitErrorResponse,
  });
  const limitUnauthenticated = app.rateLimit(rateLimitTier(config, 'unauthenticated'));
  const limitApi = app.rateLimit(); // the plugin-wide options: the api tier

  app.addHook('onRequest', async (request, reply) => {
    if (!isApiRequest(request)) return;
    const presented = presentedApiKey(request);
    const validKey = keysRequired && presented !== undefined && matches(presented);
    const address = clientAddressKey(request.ip);

    if (keysRequired && !validKey) {
      request.clientId = `anon:${address}`;
      await limitUnauthenticated.call(app, request, reply); // throws the 429 once the address's bucket is full
      throw presented === undefined ? new ApiKeyRequired() : new ApiKeyInvalid();
    }

    const digest = validKey ? sha256(presented!).toString('hex') : undefined;
    request.clientId = digest ? `key:${digest.slice(0, 24)}` : `ip:${address}`;
    request.tenant = (digest && tenantsByDigest.get(digest)) || null;
    // A route's `config.rateLimit` object is checked by the plugin's route hook; `false` exempts a route.
    if (request.routeOptions.config?.rateLimit === undefined) await limitApi.call(app, request, reply); // throws the 429
  });
}
