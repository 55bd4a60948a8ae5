import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { resourceKeyProblem } from '@lookup/contracts';
import type { Config } from '@lookup/config';
import type { ResourceRouter } from '../resources/resource-router.ts';
import { handleError, sendError, sendUnavailable, truncate } from '../errors.ts';
import { API_ERROR_RESPONSES, errorResponse } from '../schemas.ts';

export const RESOURCE_PREFIX = '/api/resources/';

/** Request headers never forwarded to a resource owner: hop-by-hop, framing, and the caller's credentials. */
const DROP_REQUEST_HEADERS = new Set([
  'host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'te', 'trailer',
  'proxy-authorization', 'proxy-connection', 'authorization', 'x-api-key', 'x-admin-key', 'cookie',
]);
/** Response headers the API sets itself. */
const DROP_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'trailer', 'x-resource-owner', 'x-resource-epoch']);

/**
 * The resource key of a request URL: the raw path after /api/resources/, percent-decoded, without the query
 * string. Returns the key and query, or the reason it is refused (400).
 */
export function parseResourceUrl(url: string): { key: string; query: string } | { problem: string } {
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q + 1);
  if (!rawPath.startsWith(RESOURCE_PREFIX)) return { problem: 'the resource key is empty' };
  let key: string;
  try {
    key = decodeURIComponent(rawPath.slice(RESOURCE_PREFIX.length));
  } catch {
    return { problem: 'the resource key is not valid percent-encoding' };
  }
  const problem = resourceKeyProblem(key);
  return problem ? { problem } : { key, query };
}

const METHODS = ['DELETE', 'GET', 'PATCH', 'POST', 'PUT', 'OPTIONS'] as const;

/**
 * `ANY /api/resources/{key...}`: forwards the request (method, headers, query, raw body up to
 * RESOURCE_BODY_LIMIT_BYTES) to the key's owner and relays its answer, plus X-Resource-Owner and X-Resource-Epoch.
 * Any content type is accepted: the body is passed through as bytes.
 */
export async function registerResourceRoutes(app: FastifyInstance, deps: { config: Readonly<Config>; resources: ResourceRouter }): Promise<void> {
  const { config, resources } = deps;
  const bodyLimit = config.resourceBodyLimitBytes;

  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_request, body, done) => done(null, body));
    scope.setErrorHandler((err: FastifyError, request, reply) => handleError(err, request, reply, bodyLimit));

    // `/api/resources` and `/api/resources/` (trailing slashes are ignored): no key at all.
    scope.route({
      method: [...METHODS],
      url: '/api/resources',
      schema: { hide: true },
      handler: async (_request, reply) => sendError(reply, 400, { error: 'Invalid resource key', message: 'the resource key is empty' }),
    });

    scope.route({
      method: [...METHODS],
      url: '/api/resources/*',
      bodyLimit,
      config: { rateLimitTier: 'api' },
      schema: {
        tags: ['resources'],
        summary: 'Proxy a request to the owner of a pinned resource',
        description:
          'The resource key is the path after /api/resources/ (percent-decoded, without the query string; exact and ' +
          'case-sensitive). Every request for a key goes to the one resource worker that owns it and is handled there ' +
          'one at a time, in arrival order. The answer is the owner\'s status, headers and body, plus X-Resource-Owner ' +
          'and X-Resource-Epoch (the lease epoch, which grows each time the key changes hands). The example worker ' +
          'serves SQLite databases: `POST /api/resources/db/{name}` with `{"query": "...", "params": [...]}` returns ' +
          '`{database, columns, rows, changes}`; a SQL error is 400 `{error, message}`.',
        params: Type.Object({ '*': Type.String({ description: 'The resource key, e.g. db/customers' }) }),
        response: {
          200: {
            description: "The owner's answer (any status and content type); headers X-Resource-Owner and X-Resource-Epoch",
            headers: {
              'X-Resource-Owner': { type: 'string', description: 'Id of the worker that answered' },
              'X-Resource-Epoch': { type: 'integer', description: 'Lease epoch (fencing token) of the owner' },
            },
            type: 'string',
            format: 'binary',
          },
          400: errorResponse('The key is empty, or has empty, "." or ".." segments, control characters or bad percent-encoding'),
          413: errorResponse('The body is larger than RESOURCE_BODY_LIMIT_BYTES'),
          ...API_ERROR_RESPONSES,
          503: errorResponse('No live resource worker (or Redis/RabbitMQ unavailable); see Retry-After'),
          504: errorResponse('The owner did not answer within RESOURCE_PROXY_TIMEOUT_MS; it was told to abandon the request'),
        },
      },
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const parsed = parseResourceUrl(request.url);
        if ('problem' in parsed) {
          return sendError(reply, 400, { error: 'Invalid resource key', message: parsed.problem });
        }
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(request.headers)) {
          if (value === undefined || DROP_REQUEST_HEADERS.has(name)) continue;
          headers[name] = Array.isArray(value) ? value.join(', ') : String(value);
        }
        headers['x-request-id'] = String(request.id);
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const result = await resources.forward({ key: parsed.key, method: request.method, query: parsed.query, headers, body, requestId: String(request.id) });
        switch (result.type) {
          case 'response': {
            for (const [name, value] of Object.entries(result.headers)) {
              if (!DROP_RESPONSE_HEADERS.has(name.toLowerCase())) reply.header(name, value);
            }
            reply.header('X-Resource-Owner', result.owner);
            reply.header('X-Resource-Epoch', String(result.epoch));
            return reply.code(result.status).send(result.body);
          }
          case 'no-workers':
            return sendError(
              reply,
              503,
              { error: 'Service unavailable', message: 'No live resource worker can take this key; retry shortly', retryAfter: result.retryAfterSeconds },
              { 'Retry-After': result.retryAfterSeconds },
            );
          case 'timeout':
            if (result.owner) reply.header('X-Resource-Owner', result.owner);
            if (result.epoch !== undefined) reply.header('X-Resource-Epoch', String(result.epoch));
            return sendError(reply, 504, {
              error: 'Gateway timeout',
              message: `The owner of '${truncate(parsed.key, 200)}' did not answer within ${config.resourceProxyTimeoutMs} ms; the request was abandoned`,
            });
          case 'unavailable':
            return sendUnavailable(reply, result.message, result.retryAfterSeconds);
        }
      },
    });
  });
}
