import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type } from '@sinclair/typebox';
import { CallbackSpecSchema, JOB_STATUSES, ServiceNameEnum, UUID_RE, targetPolicyFromConfig } from '@lookup/contracts';
import type { ApiDeps } from '../deps.ts';
import { tenantSpend } from '../tenant-quota.ts';
import { BatchNotFound, InvalidBatchId, RateLimited, StoreUnavailable } from '../http-errors.ts';
import { tierLimit } from '../rate-limit.ts';
import { API_ERROR_RESPONSES, SUBMIT_ERROR_RESPONSES, errorResponse } from '../schemas.ts';
import { createSubmitLookupDeps, wantsFresh } from '../submit-lookup.ts';
import { submitBatch, type SubmitBatchInput } from '../submit-batch.ts';
import { createDomainPrecheck } from './lookup.ts';

/** Body bytes a batch may use per item (a 1024-character target and its services fit): BATCH_MAX_ITEMS of them. */
export const BATCH_BYTES_PER_ITEM = 1200;

/** The example of the OpenAPI document: loopback targets only (accepted with ALLOW_PRIVATE_TARGETS=true). */
const EXAMPLE_BODY = { items: [{ target: '127.0.0.2' }, { target: '127.0.0.3' }], services: ['GeoIP'] };

const ServicesField = Type.Array(ServiceNameEnum, { maxItems: 32, description: 'Services to run; omitted: the batch\'s `services`, else every service' });

const BatchItemSchema = Type.Object(
  {
    target: Type.String({ description: 'An IPv4/IPv6 address or a domain name', maxLength: 1024 }),
    services: Type.Optional(ServicesField),
    callback: Type.Optional(CallbackSpecSchema),
  },
  { additionalProperties: false },
);

function batchBodySchema(maxItems: number) {
  return Type.Object(
    {
      items: Type.Array(BatchItemSchema, { minItems: 1, maxItems, description: `The lookups, at most BATCH_MAX_ITEMS (here ${maxItems})` }),
      services: Type.Optional({ ...ServicesField, description: 'The services of every item that has no `services` of its own (omitted: every service)' }),
      priority: Type.Optional(
        Type.Union([Type.Literal('high'), Type.Literal('normal'), Type.Literal('low')], { description: 'The priority of every job of the batch (default normal; bulk work: low)' }),
      ),
    },
    { $id: 'SubmitBatchBody', additionalProperties: false, examples: [EXAMPLE_BODY] },
  );
}

const ErrorBodyRef = Type.Ref('ErrorBody');

const BatchAcceptedSchema = Type.Object(
  {
    batchId: Type.String({ format: 'uuid' }),
    jobs: Type.Array(Type.Object({ index: Type.Integer(), jobId: Type.String({ format: 'uuid' }), statusUrl: Type.String() }), {
      description: 'One job per accepted item, by the item\'s index in `items`',
    }),
    rejected: Type.Array(Type.Object({ index: Type.Integer(), error: ErrorBodyRef }), {
      description: 'The refused items, each with the error body a single POST /api/lookup would have answered',
    }),
  },
  { $id: 'SubmitBatchAccepted' },
);

const StatusCounts = Type.Object(
  Object.fromEntries([...JOB_STATUSES, 'Expired'].map((s) => [s, Type.Integer({ minimum: 0 })])),
  { description: 'How many jobs of the batch are in each status (Expired: the job record is gone)' },
);

const BatchDocumentSchema = Type.Object(
  {
    batchId: Type.String({ format: 'uuid' }),
    createdAt: Type.String({ format: 'date-time' }),
    total: Type.Integer({ description: 'Jobs of the batch (the accepted items)' }),
    counts: StatusCounts,
    jobs: Type.Array(Type.Object({ index: Type.Integer(), jobId: Type.String({ format: 'uuid' }), status: Type.String() })),
  },
  { $id: 'BatchDocument' },
);

/**
 * POST /api/lookup/batch and GET /api/lookup/batch/{batchId}: many lookups in one request, created together (one
 * Redis script) and announced together (submit-batch.ts). A batch of N valid items spends N submissions of the
 * submission tier at once, or is refused whole with 429.
 */
export function registerBatchRoutes(app: FastifyInstance, deps: ApiDeps & { batches: NonNullable<ApiDeps['batches']> }): void {
  const { config, rateLimiter, batches } = deps;
  const targetPolicy = targetPolicyFromConfig(config);
  const batchDeps = { ...createSubmitLookupDeps(deps, targetPolicy, createDomainPrecheck(config, targetPolicy)), batches };
  const submitLimit = tierLimit(config, 'submit');
  app.addSchema(batchBodySchema(config.batchMaxItems));
  app.addSchema(BatchAcceptedSchema);
  app.addSchema(BatchDocumentSchema);

  /** Spends `count` submissions for the request's client, all or none; sets the X-RateLimit headers. */
  async function spendQuota(clientId: string, reply: FastifyReply, count: number): Promise<void> {
    if (submitLimit === 0) return;
    const decision = await rateLimiter.check('submit', clientId, count);
    if (!decision.allowed) {
      reply.header('X-RateLimit-Limit', submitLimit).header('X-RateLimit-Remaining', 0).header('X-RateLimit-Reset', decision.retryAfterSeconds);
      throw new RateLimited(decision.retryAfterSeconds);
    }
    if (decision.limit > 0) {
      reply
        .header('X-RateLimit-Limit', submitLimit)
        .header('X-RateLimit-Remaining', decision.remaining)
        .header('X-RateLimit-Reset', decision.resetSeconds ?? 0);
    }
  }

  app.post<{ Body: { items: SubmitBatchInput['items']; services?: unknown[]; priority?: 'high' | 'normal' | 'low' } }>(
    '/api/lookup/batch',
    {
      // The quota is spent inside submitBatch: one unit per valid item, all at once.
      config: { rateLimit: false },
      bodyLimit: Math.max(config.bodyLimitBytes, config.batchMaxItems * BATCH_BYTES_PER_ITEM),
      schema: {
        tags: ['lookup'],
        summary: 'Submit many lookups at once',
        description:
          'Each item is checked as POST /api/lookup checks its body (target, target policy with the DNS pre-check of ' +
          'domains, services; an item without `services` takes the batch\'s, else every service). The valid items ' +
          'become jobs, created together in one step and announced together: if Redis or RabbitMQ fails, none is ' +
          'created and the answer is 503. Refused items are listed in `rejected` with the error body a single ' +
          'submission would have answered; when every item is refused the answer is 400 BATCH_REJECTED with that list ' +
          'in `details.rejected`, and nothing is created. A batch counts as one submission per valid item against ' +
          'RATE_LIMIT_SUBMIT_PER_MIN, spent all at once (429 for the whole batch if they do not fit). An Idempotency-Key ' +
          'covers the batch as a whole: a retry with the same key and body gets the same answer. Follow the jobs at ' +
          'GET /api/lookup/batch/{batchId}. The example (loopback targets, GeoIP) is accepted with ALLOW_PRIVATE_TARGETS=true.',
        body: Type.Ref('SubmitBatchBody'),
        headers: {
          type: 'object',
          properties: {
            'idempotency-key': {
              type: 'string',
              description: 'Optional. A retry with the same key and the same body gets the same answer; the same key with a different body is a 409.',
            },
          },
        },
        response: {
          202: { ...Type.Ref('SubmitBatchAccepted'), description: 'Accepted (some items may be in `rejected`); a replayed Idempotency-Key has Idempotent-Replayed: true' },
          400: errorResponse('Malformed JSON, a schema failure (e.g. more than BATCH_MAX_ITEMS items), or every item refused (BATCH_REJECTED)'),
          404: errorResponse('A replayed Idempotency-Key whose batch has expired or is still being created'),
          409: errorResponse('The Idempotency-Key was already used with a different body'),
          413: errorResponse('The body is larger than allowed (BATCH_MAX_ITEMS × 1200 bytes, or API_BODY_LIMIT_BYTES if larger)'),
          415: errorResponse('The Content-Type is not application/json'),
          ...SUBMIT_ERROR_RESPONSES,
          503: errorResponse('Redis or RabbitMQ is unavailable (no job of the batch was created); see the Retry-After header'),
        },
      },
    },
    async (request, reply) => {
      const { accepted, replayed } = await submitBatch(
        batchDeps,
        {
          items: request.body.items,
          services: request.body.services,
          clientId: request.clientId,
          idempotencyKey: request.headers['idempotency-key'],
          fresh: wantsFresh(request.headers['cache-control']),
          priority: request.body.priority,
        },
        { log: request.log, spendQuota: (count) => spendQuota(request.clientId, reply, count), tenant: tenantSpend(deps.tenantQuota, request.tenant) },
      );
      reply.code(202).header('Location', `/api/lookup/batch/${accepted.batchId}`);
      if (replayed) reply.header('Idempotent-Replayed', 'true');
      return reply.send(accepted);
    },
  );

  app.get<{ Params: { batchId: string } }>(
    '/api/lookup/batch/:batchId',
    {
      attachValidation: true,
      schema: {
        tags: ['lookup'],
        summary: 'Get a batch: its jobs and how many are in each status',
        description: 'The jobs of a batch by item index with their current status, and the counts by status.',
        params: Type.Object({ batchId: Type.String({ format: 'uuid', description: 'The batchId returned by POST /api/lookup/batch' }) }),
        response: {
          200: { ...Type.Ref('BatchDocument'), description: 'The batch' },
          400: errorResponse('The batch id is not a UUID'),
          404: errorResponse('No batch with this id (unknown, or expired)'),
          ...API_ERROR_RESPONSES,
          503: errorResponse('Redis is unavailable; see the Retry-After header'),
        },
      },
    },
    async (request) => {
      const raw = request.params.batchId;
      if (request.validationError || !UUID_RE.test(raw)) throw new InvalidBatchId(raw);
      const batchId = raw.toLowerCase();
      let batch;
      try {
        batch = await batches.getBatch(batchId);
      } catch (err) {
        request.log.error({ err, batchId }, 'could not read the batch; answering 503');
        throw new StoreUnavailable();
      }
      if (!batch) throw new BatchNotFound(batchId);
      const counts: Record<string, number> = Object.fromEntries([...JOB_STATUSES, 'Expired'].map((s) => [s, 0]));
      batch.statuses.forEach((s) => (counts[s] = (counts[s] ?? 0) + 1));
      return {
        batchId: batch.batchId,
        createdAt: batch.createdAt,
        total: batch.jobs.length,
        counts,
        jobs: batch.jobs.map((j, i) => ({ index: j.index, jobId: j.jobId, status: batch.statuses[i] })),
      };
    },
  );
}
