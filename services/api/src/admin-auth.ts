import type { FastifyRequest } from 'fastify';
import type { Config } from '@lookup/config';
import { AdminKeyInvalid, AdminKeyRequired, NotFound } from './http-errors.ts';
import { apiKeyMatcher } from './guard.ts';

/**
 * onRequest hook of the admin routes: the admin key in `X-Admin-Key` (constant-time compare). Missing or wrong
 * is 401. It runs before the body is read and validated, so someone without the key learns nothing about what
 * the route accepts (401, never 400). With ADMIN_API_KEY unset the admin routes are not registered at all
 * (buildApp), so they answer 404 like any unknown path; this hook answers the same 404 should it ever run then.
 */
export function requireAdmin(config: Readonly<Config>) {
  const matches = config.adminApiKey ? apiKeyMatcher([config.adminApiKey]) : undefined;
  return async (request: FastifyRequest) => {
    if (!matches) throw new NotFound(request.method, request.url.split('?')[0] ?? '/');
    const header = request.headers['x-admin-key'];
    const presented = (Array.isArray(header) ? header[0] : header)?.trim();
    if (!presented) throw new AdminKeyRequired();
    if (!matches(presented)) throw new AdminKeyInvalid();
  };
}
