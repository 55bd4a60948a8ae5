import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { resourceKeyProblem, resourceRequestLimitProblem, RESOURCE_KEY_MAX_LENGTH, RESOURCE_QUERY_MAX_LENGTH } from '@lookup/contracts';
import type { Config } from '@lookup/config';
import type { ResourceRouter } from '../resources/resource-router.ts';
import { forwardedRequestHeaders, relayedResponseHeaders } from '../resources/proxy-headers.ts';
import { handleError } from '../errors.ts';
import {
  InvalidResourceKey,
  NoResourceWorker,
  ResourceHeadersTooLarge,
  ResourceTimeout,
  ResourceUnavailable,
  ResourceUriTooLong,
  resourceRequestFailed,
} from '../http-errors.ts';
import { API_ERROR_RESPONSES, errorResponse } from '../schemas.ts';
import { rateLimitTier } from '../rate-limit.ts';

export const RESOURCE_PREFIX = '/api/resources/';

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
  // Length first: an over-long key is 414 (resourceRequestLimitProblem), not a malformed one.
  if (key.length > RESOURCE_KEY_MAX_LENGTH) return { key, query };
  const problem = resourceKeyProblem(key);
  return problem ? { problem } : { key, query };
}

/** The catalogue error for a request over a resource request's limits (resourceRequestLimitProblem). */
const LIMIT_ERRORS: Record<number, new (problem: string) => Error> = { 400: InvalidResourceKey, 414: ResourceUriTooLong, 431: ResourceHeadersTooLarge };

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
      handler: async () => {
        throw new InvalidResourceKey('the resource key is empty');
      },
    });

    scope.route({
      method: [...METHODS],
      url: '/api/resources/*',
      bodyLimit,
      config: { rateLimit: rateLimitTier(config, 'resource') }, // its own tier: RATE_LIMIT_RESOURCE_PER_MIN
      schema: {
        tags: ['resources'],
        summary: 'Proxy a request to the owner of a pinned resource',
        description:
          'The resource key is the path after /api/resources/ (percent-decoded, without the query string; exact and ' +
          'case-sensitive). Every request for a key goes to the one resource worker that owns it and is handled there ' +
          'one at a time, in arrival order. The answer is the owner\'s status, headers and body, plus X-Resource-Owner ' +
          'and X-Resource-Epoch (the lease epoch, which grows each time the key changes hands). The example worker ' +
          'serves SQLite databases: `POST /api/resources/db/{name}` with `{"query": "...", "params": [...]}` returns ' +
          '`{database, columns, rows, changes}`; a SQL error is 400 `{error, message}`; a statement the sandbox refuses ' +
          '(ATTACH, DETACH, VACUUM INTO, load_extension and other file functions, PRAGMAs outside an allow-list) is 403 ' +
          '`{error, rule, message}`; SQL running past RESOURCE_STATEMENT_TIMEOUT_MS is interrupted, 504 "Statement ' +
          'timeout"; a worker whose RESOURCE_MAX_OPEN keys are all busy answers 503 "Too many open resources" with ' +
          'Retry-After.',
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
          413: errorResponse(
            'The body is larger than RESOURCE_BODY_LIMIT_BYTES, or the owner\'s answer is larger than RESOURCE_REPLY_LIMIT_BYTES (that request only)',
          ),
          414: errorResponse(`The key is longer than ${RESOURCE_KEY_MAX_LENGTH} characters or the query string longer than ${RESOURCE_QUERY_MAX_LENGTH}`),
          431: errorResponse('The headers to forward exceed what a resource request may carry'),
          ...API_ERROR_RESPONSES,
          502: errorResponse("The owner's reply could not be read"),
          503: errorResponse('No live resource worker (or Redis/RabbitMQ unavailable), or the owner has RESOURCE_MAX_OPEN busy keys; see Retry-After'),
          504: errorResponse('The owner did not answer within RESOURCE_PROXY_TIMEOUT_MS (it was told to abandon the request), or its SQL ran past RESOURCE_STATEMENT_TIMEOUT_MS and was interrupted'),
        },
      },
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const parsed = parseResourceUrl(request.url);
        if ('problem' in parsed) throw new InvalidResourceKey(parsed.problem);
        const headers = forwardedRequestHeaders(request.headers);
        headers['x-request-id'] = String(request.id);
        // The worker's message schema, checked here: refused at once rather than dropped by the worker.
        const limit = resourceRequestLimitProblem({ key: parsed.key, query: parsed.query, method: request.method, headers });
        if (limit) throw new (LIMIT_ERRORS[limit.status] ?? InvalidResourceKey)(limit.message);
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const result = await resources.forward({ key: parsed.key, method: request.method, query: parsed.query, headers, body, requestId: String(request.id) });
        switch (result.type) {
          case 'response': {
            for (const [name, value] of Object.entries(relayedResponseHeaders(result.headers))) reply.header(name, value);
            reply.header('X-Resource-Owner', result.owner);
            reply.header('X-Resource-Epoch', String(result.epoch));
            return reply.code(result.status).send(result.body);
          }
          case 'no-workers':
            throw new NoResourceWorker(result.retryAfterSeconds);
          case 'timeout':
            throw new ResourceTimeout(parsed.key, config.resourceProxyTimeoutMs, result);
          case 'unavailable':
            throw new ResourceUnavailable(result.message, result.retryAfterSeconds);
          case 'error':
            throw resourceRequestFailed(result);
        }
      },
    });
  });
}
