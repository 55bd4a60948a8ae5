import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  SCHEMA_VERSION,
  SERVICE_CATALOGUE,
  serviceName,
  targetPolicyFromConfig,
  validateTarget,
  type TargetPolicy,
  jobCompletedEvent,
  type JobSubmitted,
  type SubmitLookupAccepted,
  type SubmitLookupBody,
} from '@lookup/contracts';
import { jobCompletedMessageId } from '@lookup/contracts';
import type { Config } from '@lookup/config';
import { queryAddresses, resolverSettings } from '@lookup/dns';
import type { ApiDeps } from '../deps.ts';
import { jobIdOr400, sendError, sendUnavailable, truncate } from '../errors.ts';
import { parseServices } from '../services-param.ts';
import { rateLimitTier } from '../rate-limit.ts';
import {
  API_ERROR_RESPONSES,
  JOB_ROUTE_ERRORS,
  AcceptedRef,
  JobDocumentRef,
  JobIdParamsSchema,
  ServiceListSchema,
  SubmitBodyRef,
  errorResponse,
} from '../schemas.ts';

const RETRY_AFTER_SECONDS = 5;

const CATALOGUE = Object.freeze(SERVICE_CATALOGUE.map(({ name, value, description }) => ({ name, value, description })));

/** How long the API waits for DNS when it pre-checks a domain (the worker's check after its own resolution counts). */
export const DOMAIN_PRECHECK_TIMEOUT_MS = 1000;

/**
 * The API's pre-check of a domain: resolves A and AAAA through DNS_SERVERS with a short timeout, and refuses
 * the domain when it resolved and ANY address is refused by the policy, the rule the workers apply (so the
 * client hears it at once instead of in a Failed result). A DNS failure or a timeout is not refused here: the
 * workers check every address after their own resolution, and their check is the one that counts (answers
 * change).
 * Resolves to the refusal message, or undefined.
 */
export function createDomainPrecheck(config: Readonly<Config>, policy: TargetPolicy): ((name: string) => Promise<string | undefined>) | undefined {
  // With ALLOW_PRIVATE_TARGETS and no deny list the policy refuses nothing: no query at all.
  if (config.allowPrivateTargets && config.targetDenyCidrs.length === 0) return undefined;
  const settings = resolverSettings(config.dnsServers, DOMAIN_PRECHECK_TIMEOUT_MS);
  return async (name) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), DOMAIN_PRECHECK_TIMEOUT_MS);
    });
    try {
      const answers = await Promise.race([queryAddresses(name, settings).catch(() => undefined), timeout]);
      if (!answers) return undefined;
      const addresses = [...answers.a, ...answers.aaaa];
      if (addresses.length === 0) return undefined;
      for (const ip of addresses) {
        const verdict = policy.checkAddress(ip);
        if (!verdict.allowed) return `'${truncate(name, 100)}' resolves to ${ip}, which the target policy refuses: ${verdict.message}`;
      }
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  };
}

export function registerLookupRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { config, jobs, idempotency, publishJobSubmitted, publishJobCompleted } = deps;
  const targetPolicy = targetPolicyFromConfig(config);
  const precheckDomain = createDomainPrecheck(config, targetPolicy);

  app.get(
    '/api/lookup/services',
    {
      schema: {
        tags: ['lookup'],
        summary: 'List the lookup services',
        description: 'The services a lookup can run, by name and number; `services` in POST /api/lookup takes either.',
        response: { 200: { ...ServiceListSchema, description: 'The services, by name and number' }, ...API_ERROR_RESPONSES },
      },
    },
    async () => CATALOGUE,
  );

  /** A submission that passed validation, with its job id (and the Idempotency-Key it claimed for that id). */
  interface Submission {
    target: { target: string; targetType: JobSubmitted['targetType'] };
    services: JobSubmitted['services'];
    jobId: string;
    idemKey: string | undefined;
  }
  const submissions = new WeakMap<FastifyRequest, Submission>();

  const accepted = (id: string, target: string, services: JobSubmitted['services']): SubmitLookupAccepted => ({
    jobId: id,
    statusUrl: `/api/lookup/${id}`,
    message: `Lookup accepted: ${services.map(serviceName).join(', ')} for ${target}. Poll statusUrl for the results.`,
  });

  /**
   * Everything that can refuse a submission before it is counted and costs no I/O beyond Redis: the target, the
   * target policy for IP literals, the services, the Idempotency-Key; then the key's claim, so a replay is answered
   * here (202, the earlier job) and never reaches the quota check. The domain pre-check (DNS) runs after the quota.
   */
  async function prepareSubmission(request: FastifyRequest<{ Body: SubmitLookupBody }>, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const { target: rawTarget, services: rawServices } = request.body;
    const problems: string[] = [];
    let errorTitle = 'Invalid request';

    const target = validateTarget(rawTarget);
    if (!target.ok) {
      problems.push(target.error);
      errorTitle = 'Invalid target';
    } else if (target.targetType === 'IPAddress') {
      const verdict = targetPolicy.checkAddress(target.target);
      if (!verdict.allowed) {
        request.log.info({ target: truncate(target.target, 100), rule: verdict.rule }, 'target refused by the target policy');
        return sendError(reply, 400, { error: 'Target not allowed', message: verdict.message });
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
    const log = request.log.child({ jobId });

    const idemKey = request.headers['idempotency-key'];
    if (idemKey !== undefined && (typeof idemKey !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(idemKey))) {
      return sendError(reply, 400, { error: 'Invalid Idempotency-Key', message: 'Idempotency-Key must be 1-255 printable ASCII characters without spaces' });
    }
    if (typeof idemKey === 'string') {
      // The fingerprint is the normalised request: ' 8.8.8.8' and '8.8.8.8' are the same lookup.
      const fingerprint = JSON.stringify([target.target, services.services]);
      let claim;
      try {
        claim = await idempotency.claim(request.clientId, idemKey, fingerprint, jobId);
      } catch (err) {
        log.error({ err }, 'could not check the Idempotency-Key; answering 503');
        return sendUnavailable(reply, 'The job store is unavailable; try again shortly', RETRY_AFTER_SECONDS);
      }
      if (claim.state === 'conflict') {
        return sendError(reply, 409, {
          error: 'Idempotency key reused',
          message: `Idempotency-Key '${truncate(idemKey, 60)}' was already used for job ${claim.jobId} with a different body`,
        });
      }
      if (claim.state === 'replay') {
        log.info({ existingJobId: claim.jobId }, 'idempotent replay');
        const body = accepted(claim.jobId, target.target, services.services);
        return reply.code(202).header('Location', body.statusUrl).header('X-Job-Id', claim.jobId).header('Idempotent-Replayed', 'true').send(body);
      }
    }
    submissions.set(request, { target, services: services.services, jobId, idemKey });
    return undefined;
  }

  /** A claimed Idempotency-Key whose submission the quota refused (429) is freed, so the retry can use it. */
  async function releaseClaimWhenRefused(request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
    const submission = submissions.get(request);
    if (reply.statusCode === 429 && submission?.idemKey !== undefined) {
      await idempotency.release(request.clientId, submission.idemKey, submission.jobId).catch(() => undefined);
    }
    return payload;
  }

  app.post<{ Body: SubmitLookupBody }>(
    '/api/lookup',
    {
      // The submission quota is checked in preHandler, after prepareSubmission (validation and the Idempotency-Key
      // claim, which runs first: the plugin's hook is added after the route's own): an invalid submission (400,
      // 415, 413) or an idempotent replay spends nothing.
      config: { rateLimit: { ...rateLimitTier(config, 'submit'), hook: 'preHandler' } },
      preHandler: prepareSubmission,
      onSend: releaseClaimWhenRefused,
      schema: {
        tags: ['lookup'],
        summary: 'Submit a lookup',
        description:
          'Validates the target (IPv4, IPv6 or domain; trimmed, domains converted to punycode), stores the job as ' +
          'Pending and announces it. Poll the statusUrl (also in the Location header) for the results. The target ' +
          'policy refuses loopback, private, link-local, multicast, documentation and other special-purpose ' +
          'addresses (IANA registries, every IPv4/IPv6 encoding) unless ALLOW_PRIVATE_TARGETS or TARGET_ALLOW_CIDRS ' +
          'allow them, and always refuses TARGET_DENY_CIDRS; a domain with any refused address is refused ' +
          'here too. Workers check every address again after their own resolution: a job whose target resolves to ' +
          'a refused address later has that service Failed with a message naming the rule. Only a submission that ' +
          'creates a job, or a domain refused after its DNS pre-check (that cost a DNS query), counts against the ' +
          'submission quota (RATE_LIMIT_SUBMIT_PER_MIN, X-RateLimit-* headers): any other invalid one (400, 413, ' +
          '415), a 409 or an idempotent replay does not. The example body (loopback 127.0.0.2, GeoIP and ReverseDNS) ' +
          'sends nothing off the machine; it is accepted when the suite runs against the fixtures with ' +
          'ALLOW_PRIVATE_TARGETS=true (README, "Trying it with no network"), and refused with 400 "Target not allowed" otherwise.',
        body: SubmitBodyRef,
        headers: {
          type: 'object',
          properties: {
            'idempotency-key': {
              type: 'string',
              description:
                'Optional. A retry with the same key and the same body gets the same job (for IDEMPOTENCY_TTL_SECONDS); ' +
                'the same key with a different body is a 409.',
            },
          },
        },
        response: {
          202: { ...AcceptedRef, description: 'Accepted; poll statusUrl (also for a replayed Idempotency-Key: Idempotent-Replayed: true)' },
          400: errorResponse(
            'Malformed JSON, schema failure, invalid target or services, or a target the target policy refuses ' +
              '(error "Target not allowed"; the message names the rule, e.g. loopback or 6to4-embedded-private)',
          ),
          409: errorResponse('The Idempotency-Key was already used with a different body'),
          413: errorResponse('The body is larger than API_BODY_LIMIT_BYTES'),
          415: errorResponse('The Content-Type is not application/json'),
          ...API_ERROR_RESPONSES,
          503: errorResponse('Redis or RabbitMQ is unavailable; see the Retry-After header'),
        },
      },
    },
    async (request, reply) => {
      // prepareSubmission (a preHandler, before the quota check) has validated the request and claimed its key.
      const { target, services, jobId, idemKey } = submissions.get(request)!;
      const now = Date.now();
      const createdAt = new Date(now).toISOString();
      const log = request.log.child({ jobId });
      const releaseKey = async () => {
        if (idemKey !== undefined) await idempotency.release(request.clientId, idemKey, jobId).catch(() => undefined);
      };

      // The domain pre-check sends DNS queries, so it runs after the quota check: a client cannot make the API
      // query DNS_SERVERS without spending submissions (a domain refused here counts as a submission).
      if (target.targetType === 'Domain' && precheckDomain) {
        const refusal = await precheckDomain(target.target);
        if (refusal) {
          log.info({ target: target.target }, 'domain refused by the target policy: it resolves to a refused address');
          await releaseKey();
          return sendError(reply, 400, { error: 'Target not allowed', message: refusal });
        }
      }

      try {
        await jobs.create({ jobId, target: target.target, targetType: target.targetType, services, createdAt, deadlineAt: now + config.jobDeadlineMs });
      } catch (err) {
        log.error({ err }, 'could not store the job; answering 503');
        await releaseKey();
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
        services,
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
        await releaseKey();
        return sendUnavailable(reply, 'The message broker is unavailable; the lookup was not accepted, try again shortly', RETRY_AFTER_SECONDS);
      }

      log.info(
        { target: target.target, targetType: target.targetType, services: services.map(serviceName), messageId: message.messageId },
        'job accepted',
      );
      const body = accepted(jobId, target.target, services);
      return reply.code(202).header('Location', body.statusUrl).header('X-Job-Id', jobId).send(body);
    },
  );

  app.get<{ Params: { jobId: string } }>(
    '/api/lookup/:jobId',
    {
      attachValidation: true,
      schema: {
        tags: ['lookup'],
        summary: 'Get a lookup job and its results',
        description:
          'The job with every result recorded so far. `status` is Pending, Processing, Completed or Cancelled; ' +
          'each result is Succeeded, Failed, TimedOut or Cancelled, and its `data` is an object whose schema depends on ' +
          `its \`serviceType\` (ServiceResult: one of ${SERVICE_CATALOGUE.map((s) => `${s.name}Result`).join(', ')}, each with its service's data schema).`,
        params: JobIdParamsSchema,
        response: {
          200: { ...JobDocumentRef, description: 'The job' },
          ...JOB_ROUTE_ERRORS,
        },
      },
    },
    async (request, reply) => {
      const jobId = jobIdOr400(request, reply);
      if (!jobId) return reply;
      let document;
      try {
        document = await jobs.getDocument(jobId);
      } catch (err) {
        request.log.error({ err, jobId }, 'could not read the job; answering 503');
        return sendUnavailable(reply, 'The job store is unavailable; try again shortly', RETRY_AFTER_SECONDS);
      }
      if (!document) return sendError(reply, 404, { error: 'Job not found', message: `No job with id ${jobId}` });
      reply.header('X-Job-Id', document.jobId);
      return document;
    },
  );

  app.delete<{ Params: { jobId: string } }>(
    '/api/lookup/:jobId',
    {
      attachValidation: true,
      schema: {
        tags: ['lookup'],
        summary: 'Cancel a lookup job',
        description:
          'Cancels a job that has not finished: it becomes Cancelled, every service without a result is recorded ' +
          'Cancelled, and workers skip its remaining commands. Results already recorded are kept.',
        params: JobIdParamsSchema,
        response: {
          202: {
            type: 'object',
            description: 'Cancelled',
            properties: { jobId: { type: 'string' }, status: { type: 'string' }, statusUrl: { type: 'string' }, message: { type: 'string' } },
          },
          ...JOB_ROUTE_ERRORS,
          409: errorResponse('The job has already finished (Completed or Cancelled)'),
        },
      },
    },
    async (request, reply) => {
      const jobId = jobIdOr400(request, reply);
      if (!jobId) return reply;
      const log = request.log.child({ jobId });
      const now = new Date().toISOString();
      let result;
      try {
        result = await jobs.cancel(jobId, now);
      } catch (err) {
        log.error({ err }, 'could not cancel the job; answering 503');
        return sendUnavailable(reply, 'The job store is unavailable; try again shortly', RETRY_AFTER_SECONDS);
      }
      if (result.disposition === 'missing') return sendError(reply, 404, { error: 'Job not found', message: `No job with id ${jobId}` });
      if (result.disposition === 'finished') {
        return sendError(reply, 409, { error: 'Job already finished', message: `Job ${jobId} is already ${result.status}` });
      }
      const event = jobCompletedEvent(jobId, 'Cancelled', now);
      // The cancellation is recorded; the announcement is a notification, so a broker outage does not undo it.
      await publishJobCompleted(event).catch((err) => log.warn({ err }, 'could not announce the cancellation'));
      log.info('job cancelled');
      return reply.code(202).header('X-Job-Id', jobId).send({
        jobId,
        status: 'Cancelled',
        statusUrl: `/api/lookup/${jobId}`,
        message: 'The job was cancelled; results already recorded are kept.',
      });
    },
  );
}
