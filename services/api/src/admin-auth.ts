import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '@lookup/config';
import { sendError } from './errors.ts';
import { apiKeyMatcher } from './guard.ts';

/**
 * preHandler for admin routes: the admin key in `X-Admin-Key` (constant-time compare). Missing or wrong is
 * 401; with ADMIN_API_KEY unset the admin endpoints are disabled (403).
 */
export function requireAdmin(config: Readonly<Config>) {
  const matches = config.adminApiKey ? apiKeyMatcher([config.adminApiKey]) : undefined;
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (!matches) {
      return sendError(reply, 403, { error: 'Forbidden', message: 'Admin endpoints are disabled: set ADMIN_API_KEY to enable them' });
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
