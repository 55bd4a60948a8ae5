import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '@lookup/config';
import { sendError, truncate } from './errors.ts';
import { apiKeyMatcher } from './guard.ts';

/**
 * onRequest hook of the admin routes: the admin key in `X-Admin-Key` (constant-time compare). Missing or wrong
 * is 401. It runs before the body is read and validated, so someone without the key learns nothing about what
 * the route accepts (401, never 400). With ADMIN_API_KEY unset the admin routes are not registered at all
 * (buildApp), so they answer 404 like any unknown path; this hook answers the same 404 should it ever run then.
 */
export function requireAdmin(config: Readonly<Config>) {
  const matches = config.adminApiKey ? apiKeyMatcher([config.adminApiKey]) : undefined;
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (!matches) {
      const path = request.url.split('?')[0] ?? '/';
      return sendError(reply, 404, { error: 'Not found', message: `No route for ${request.method} ${truncate(path, 200)}` });
    }
    const header = request.headers['x-admin-key'];
    const presented = (Array.isArray(header) ? header[0] : header)?.trim();
    if (!presented || !matches(presented)) {
      return sendError(
        reply,
        401,
        { error: 'Unauthorized', message: presented ? 'The admin key is not valid' : 'The admin key is required in the X-Admin-Key header' },
        { 'WWW-Authenticate': 'X-Admin-Key' },
      );
    }
  };
}
