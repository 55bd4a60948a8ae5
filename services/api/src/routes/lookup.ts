import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import {
  SCHEMA_VERSION,
  SERVICE_CATALOGUE,
  addressScope,
  serviceName,
  validateTarget,
  type JobSubmitted,
  type SubmitLookupAccepted,
  type SubmitLookupBody,
} from '@lookup/contracts';
import type { ApiDeps } from '../deps.ts';
import { sendError, sendUnavailable, truncate } from '../errors.ts';
import { parseServices } from '../services-param.ts';
import {
  API_ERROR_RESPONSES,
  AcceptedRef,
  JobDocumentRef,
  JobIdParamsSchema,
  ServiceListSchema,
  SubmitBodyRef,
  UUID_RE,
  errorResponse,
} from '../schemas.ts';

const RETRY_AFTER_SECONDS = 5;

const CATALOGUE = Object.freeze(SERVICE_CATALOGUE.map(({ name, value, description }) => ({ name, value, description })));

const SCOPE_WORDS: Record<string, string> = {
  loopback: 'a loopback',
  private: 'a private',
  'link-local': 'a link-local',
  reserved: 'a reserved',
  multicast: 'a multicast',
  unspecified: 'an unspecified',
};

export function registerLookupRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { config, jobs, publishJobSubmitted } = deps;

  app.get(
    '/api/lookup/services',
    {
      config: { rateLimitTier: 'api' },
      schema: {
        tags: ['lookup'],
        summary: 'List the lookup services',
        description: 'The services a lookup can run, by name and number; `services` in POST /api/lookup takes either.',
        response: { 200: { ...ServiceListSchema, description: 'The services, by name and number' }, ...API_ERROR_RESPONSES },
      },
    },
    async () => CATALOGUE,
  );

  app.post<{ Body: SubmitLookupBody }>(
    '/api/lookup',
    {
      config: { rateLimitTier: 'submit' },
      schema: {
        tags: ['lookup'],
        summary: 'Submit a lookup',
        description:
          'Validates the target (IPv4, IPv6 or domain; trimmed, domains converted to punycode), stores the job as ' +
          'Pending and announces it. Poll the statusUrl (also in the Location header) for the results. Loopback, ' +
          'private and reserved IP targets are refused unless ALLOW_PRIVATE_TARGETS is set.',
        body: SubmitBodyRef,
        response: {
          202: { ...AcceptedRef, description: 'Accepted; poll statusUrl' },
          400: errorResponse('Malformed JSON, schema failure, invalid target or services, or a refused private target'),
          413: errorResponse('The body is larger than API_BODY_LIMIT_BYTES'),
          415: errorResponse('The Content-Type is not application/json'),
          ...API_ERROR_RESPONSES,
          503: errorResponse('Redis or RabbitMQ is unavailable; see the Retry-After header'),
        },
      },
    },
    async (request, reply) => {
      const { target: rawTarget, services: rawServices } = request.body;
      const problems: string[] = [];
      let errorTitle = 'Invalid request';

      const target = validateTarget(rawTarget);
      if (!target.ok) {
        problems.push(target.error);
        errorTitle = 'Invalid target';
      } else if (target.targetType === 'IPAddress' && !config.allowPrivateTargets) {
        const scope = addressScope(target.target);
        if (scope !== 'public') {
          return sendError(reply, 400, {
            error: 'Target not allowed',
            message:
              `'${truncate(target.target, 100)}' is ${SCOPE_WORDS[scope] ?? 'a non-public'} address; loopback, private and ` +
              'reserved targets are refused unless the server sets ALLOW_PRIVATE_TARGETS=true',
          });
        }
      }
      const services = parseServices(rawServices);
      if (!services.ok) {
        problems.push(...services.problems);
        errorTitle = problems.length === services.problems.length ? 'Invalid services' : 'Invalid request';
      }
      if (!target.ok || !services.ok) {
        return sendError(reply, 400, { error: errorTitle, message: problems.join('; '), details: problems });
      }

      const jobId = randomUUID();
      const createdAt = new Date().toISOString();
      const log = request.log.child({ jobId });
      try {
        await jobs.create({ jobId, target: target.target, targetType: target.targetType, services: services.services, createdAt });
      } catch (err) {
        log.error({ err }, 'could not store the job; answering 503');
        return sendUnavailable(reply, 'The job store is unavailable; try again shortly', RETRY_AFTER_SECONDS);
      }

      const message: JobSubmitted = {
        messageId: randomUUID(),
        correlationId: jobId,
        schemaVersion: SCHEMA_VERSION,
        occurredAt: new Date().toISOString(),
        jobId,
        target: target.target,
        targetType: target.targetType,
        services: services.services,
      };
      try {
        await publishJobSubmitted(message);
      } catch (err) {
        log.error({ err }, 'job.submitted was not confirmed; discarding the job and answering 503');
        try {
          await jobs.discard(jobId);
        } catch (discardErr) {
          log.error({ err: discardErr }, 'could not discard the unannounced job; it expires with its TTL');
        }
        return sendUnavailable(reply, 'The message broker is unavailable; the lookup was not accepted, try again shortly', RETRY_AFTER_SECONDS);
      }

      const statusUrl = `/api/lookup/${jobId}`;
      log.info(
        { target: target.target, targetType: target.targetType, services: services.services.map(serviceName), messageId: message.messageId },
        'job accepted',
      );
      const body: SubmitLookupAccepted = {
        jobId,
        statusUrl,
        message: `Lookup accepted: ${services.services.map(serviceName).join(', ')} for ${target.target}. Poll statusUrl for the results.`,
      };
      return reply.code(202).header('Location', statusUrl).header('X-Job-Id', jobId).send(body);
    },
  );

  app.get<{ Params: { jobId: string } }>(
    '/api/lookup/:jobId',
    {
      config: { rateLimitTier: 'api' },
      attachValidation: true,
      schema: {
        tags: ['lookup'],
        summary: 'Get a lookup job and its results',
        description:
          'The job with every result recorded so far. `status` is Pending, Processing, Completed or Cancelled; ' +
          'each result is Succeeded, Failed, TimedOut or Cancelled, and its `data` is a JSON object.',
        params: JobIdParamsSchema,
        response: {
          200: { ...JobDocumentRef, description: 'The job' },
          400: errorResponse('The job id is not a UUID'),
          404: errorResponse('No job with this id (unknown, or expired)'),
          ...API_ERROR_RESPONSES,
          503: errorResponse('Redis is unavailable; see the Retry-After header'),
        },
      },
    },
    async (request, reply) => {
      const { jobId } = request.params;
      if (request.validationError || !UUID_RE.test(jobId)) {
        return sendError(reply, 400, { error: 'Invalid job id', message: `'${truncate(jobId, 100)}' is not a UUID` });
      }
      let document;
      try {
        document = await jobs.getDocument(jobId.toLowerCase());
      } catch (err) {
        request.log.error({ err, jobId }, 'could not read the job; answering 503');
        return sendUnavailable(reply, 'The job store is unavailable; try again shortly', RETRY_AFTER_SECONDS);
      }
      if (!document) return sendError(reply, 404, { error: 'Job not found', message: `No job with id ${jobId}` });
      reply.header('X-Job-Id', document.jobId);
      return document;
    },
  );
}
