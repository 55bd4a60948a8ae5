import { requireAdmin } from '../admin-auth.ts';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { Type } from '@sinclair/typebox';
import {
  MoveResourceBodySchema,
  ResourceAdminResultSchema,
  ResourcePinSchema,
  ResourceWorkerInfoSchema,
  UnpinResourceBodySchema,
  resourceKeyProblem,
  type MoveResourceBody,
  type UnpinResourceBody,
} from '@lookup/contracts';
import type { Config } from '@lookup/config';
import type { AdminResult, ResourceRouter } from '../resources/resource-router.ts';
import { handleError, sendHttpError } from '../errors.ts';
import { InvalidResourceKey, ResourceDirectoryUnavailable, resourceAdminError } from '../http-errors.ts';
import { API_ERROR_RESPONSES, errorResponse } from '../schemas.ts';

export const ADMIN_SCHEMAS = [ResourceWorkerInfoSchema, ResourcePinSchema, MoveResourceBodySchema, UnpinResourceBodySchema, ResourceAdminResultSchema];

const ADMIN_ERRORS = {
  ...API_ERROR_RESPONSES,
  401: errorResponse('Missing or wrong admin key (X-Admin-Key), or API key when API_KEYS is set'),
  503: errorResponse('Redis is unavailable'),
};

const ResultRef = Type.Ref(ResourceAdminResultSchema);

/** Sends an admin result: 200/202 as the result object; a 4xx is thrown as its catalogue error (resourceAdminError). */
function sendAdminResult(reply: FastifyReply, { statusCode, ...result }: AdminResult): FastifyReply {
  if (statusCode < 400) return reply.code(statusCode).send(result);
  throw resourceAdminError(statusCode, result);
}

/**
 * Admin endpoints of the pinned resources, under `/api/admin/resources`. They need the admin key in the
 * `X-Admin-Key` header (compared in constant time), checked before the body: missing or wrong is 401. With
 * ADMIN_API_KEY unset they are not registered (404). (When API_KEYS is set, the usual API key is needed as well, like every /api route.)
 */
export async function registerAdminResourceRoutes(app: FastifyInstance, deps: { config: Readonly<Config>; resources: ResourceRouter }): Promise<void> {
  const { config, resources } = deps;
  for (const schema of ADMIN_SCHEMAS) app.addSchema(schema);

  await app.register(async (scope) => {
    // Client errors keep their 4xx; anything else here is the directory (Redis) failing: 503, not 500.
    scope.setErrorHandler((err: FastifyError, request, reply) => {
      if (err.validation || (typeof err.statusCode === 'number' && err.statusCode < 500)) return handleError(err, request, reply, config.bodyLimitBytes);
      request.log.warn({ err: err.message }, 'resource admin request failed');
      return sendHttpError(reply, new ResourceDirectoryUnavailable());
    });
    // onRequest: the admin key is checked before the body is read or validated (401, never 400, without it).
    scope.addHook('onRequest', requireAdmin(config));

    const adminSecurity = [{ adminKey: [] }];

    scope.get(
      '/api/admin/resources/workers',
      {
        schema: {
          tags: ['admin'],
          summary: 'List resource workers',
          description: 'Every known resource worker: id, whether its heartbeat is current, whether it is draining, its last beat and its keys.',
          security: adminSecurity,
          response: { 200: Type.Object({ workers: Type.Array(Type.Ref(ResourceWorkerInfoSchema)) }, { description: 'The workers' }), ...ADMIN_ERRORS },
        },
      },
      async () => ({ workers: await resources.listWorkers() }),
    );

    scope.get(
      '/api/admin/resources/pins',
      {
        schema: {
          tags: ['admin'],
          summary: 'List pinned resource keys',
          description: 'Every pinned key with its owner and lease epoch, whether the lease is live and whether the owner is healthy.',
          security: adminSecurity,
          response: { 200: Type.Object({ pins: Type.Array(Type.Ref(ResourcePinSchema)) }, { description: 'The pins' }), ...ADMIN_ERRORS },
        },
      },
      async () => ({ pins: await resources.listPins() }),
    );

    scope.post<{ Body: MoveResourceBody }>(
      '/api/admin/resources/move',
      {
        schema: {
          tags: ['admin'],
          summary: 'Move a pinned key to another worker',
          description:
            'The owner finishes the requests already queued for the key, closes it and releases its lease; the key is then ' +
            'pinned to `to` (or the least loaded other worker) with a higher epoch. 200 once moved, 202 if the owner has ' +
            'not released it yet (it moves when it does, or when its lease runs out).',
          security: adminSecurity,
          body: Type.Ref(MoveResourceBodySchema),
          response: {
            200: { ...ResultRef, description: 'Moved' },
            202: { ...ResultRef, description: 'Release requested; not moved yet' },
            400: errorResponse('Invalid body or key'),
            409: errorResponse('No usable target worker (code NO_TARGET or BAD_TARGET)'),
            ...ADMIN_ERRORS,
          },
        },
      },
      async (request, reply) => {
        const problem = resourceKeyProblem(request.body.key);
        if (problem) throw new InvalidResourceKey(problem);
        return sendAdminResult(reply, await resources.move(request.body.key, request.body.to));
      },
    );

    scope.post<{ Body: UnpinResourceBody }>(
      '/api/admin/resources/unpin',
      {
        schema: {
          tags: ['admin'],
          summary: 'Unpin a key',
          description: 'The owner closes the key and releases it; the next request places it afresh (on the least loaded worker).',
          security: adminSecurity,
          body: Type.Ref(UnpinResourceBodySchema),
          response: {
            200: { ...ResultRef, description: 'Unpinned' },
            202: { ...ResultRef, description: 'Release requested; not released yet' },
            400: errorResponse('Invalid body or key'),
            404: errorResponse('The key is not pinned (code NOT_PINNED)'),
            ...ADMIN_ERRORS,
          },
        },
      },
      async (request, reply) => {
        const problem = resourceKeyProblem(request.body.key);
        if (problem) throw new InvalidResourceKey(problem);
        return sendAdminResult(reply, await resources.unpin(request.body.key));
      },
    );

    scope.post<{ Params: { workerId: string } }>(
      '/api/admin/resources/workers/:workerId/drain',
      {
        schema: {
          tags: ['admin'],
          summary: 'Drain a resource worker',
          description: 'The worker takes no new keys from now on; on its next heartbeat it closes and releases its keys, which move to other workers on their next request.',
          security: adminSecurity,
          params: Type.Object({ workerId: Type.String({ minLength: 1, maxLength: 128 }) }),
          response: {
            202: { ...ResultRef, description: 'Draining' },
            404: errorResponse('Unknown worker (code UNKNOWN_WORKER)'),
            ...ADMIN_ERRORS,
          },
        },
      },
      async (request, reply) => {
        return sendAdminResult(reply, await resources.drain(request.params.workerId));
      },
    );
  });
}
