import type { FastifyInstance } from 'fastify';
import {
  SERVICE_CATALOGUE,
  targetPolicyFromConfig,
  type TargetPolicy,
  firstCallbackDelivery,
  jobCompletedEvent,
  type SubmitLookupBody,
} from '@lookup/contracts';
import type { Config } from '@lookup/config';
import { queryAddresses, resolverSettings } from '@lookup/dns';
import { jobsCompleted, zeroed } from '@lookup/metrics';
import type { ApiDeps } from '../deps.ts';
import { tenantSpend } from '../tenant-quota.ts';
import { parseJobId } from '../errors.ts';
import { JobAlreadyFinished, JobNotFound, StoreUnavailable, truncate } from '../http-errors.ts';
import { createSubmitLookupDeps, submitLookup, wantsFresh } from '../submit-lookup.ts';
import { rateLimitTier } from '../rate-limit.ts';
import {
  API_ERROR_RESPONSES,
  SUBMIT_ERROR_RESPONSES,
  JOB_ROUTE_ERRORS,
  AcceptedRef,
  JobDocumentRef,
  JobIdParamsSchema,
  ServiceListSchema,
  SubmitBodyRef,
  errorResponse,
} from '../schemas.ts';

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
  const { config, jobs, publishJobCompleted, publishJobCancelled, publishCallbackDelivery } = deps;
  // lookup_jobs_completed_total{status="Cancelled"}: a job is cancelled here and nowhere else.
  const cancelled = zeroed(jobsCompleted().labels('Cancelled'));
  const targetPolicy = targetPolicyFromConfig(config);
  const submitDeps = createSubmitLookupDeps(deps, targetPolicy, createDomainPrecheck(config, targetPolicy));
  // The submission quota, spent by submitLookup itself once the submission is valid and not a replay (the route is
  // exempt from the guard's api tier: `config.rateLimit: false`).
  const spendSubmitQuota = app.rateLimit(rateLimitTier(config, 'submit'));

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

  app.post<{ Body: SubmitLookupBody }>(
    '/api/lookup',
    {
      // The submission quota is spent inside submitLookup, after validation and the Idempotency-Key claim: an
      // invalid submission (400, 415, 413) or an idempotent replay spends nothing.
      config: { rateLimit: false },
      schema: {
        tags: ['lookup'],
        summary: 'Submit a lookup',
        description:
          'Validates the target (IPv4, IPv6 or domain; trimmed, domains converted to punycode), stores the job and ' +
          "dispatches it: Processing, its lookups sent to the workers (a tenant's job: Pending until its tenant's " +
          'dispatch window has room). Poll the statusUrl (also in the Location header) for the results. The target ' +
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
          ...SUBMIT_ERROR_RESPONSES,
          503: errorResponse('Redis or RabbitMQ is unavailable; see the Retry-After header'),
        },
      },
    },
    async (request, reply) => {
      const submission = await submitLookup(
        submitDeps,
        {
          target: request.body.target,
          services: request.body.services,
          callback: request.body.callback,
          fresh: request.body.fresh === true || wantsFresh(request.headers['cache-control']),
          priority: request.body.priority,
          clientId: request.clientId,
          idempotencyKey: request.headers['idempotency-key'],
        },
        { log: request.log, spendQuota: async () => void (await spendSubmitQuota.call(app, request, reply)), tenant: tenantSpend(deps.tenantQuota, request.tenant) },
      );
      reply.code(202).header('Location', submission.accepted.statusUrl).header('X-Job-Id', submission.jobId);
      if (submission.replayed) reply.header('Idempotent-Replayed', 'true');
      return reply.send(submission.accepted);
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
      const jobId = parseJobId(request);
      let document;
      try {
        document = await jobs.getDocument(jobId);
      } catch (err) {
        request.log.error({ err, jobId }, 'could not read the job; answering 503');
        throw new StoreUnavailable();
      }
      if (!document) throw new JobNotFound(jobId);
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
          'Cancelled, workers skip its remaining commands, and lookups already running are aborted (a broadcast ' +
          'every worker hears). Results already recorded are kept.',
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
      const jobId = parseJobId(request);
      const log = request.log.child({ jobId });
      const now = new Date().toISOString();
      let result;
      try {
        result = await jobs.cancel(jobId, now);
      } catch (err) {
        log.error({ err }, 'could not cancel the job; answering 503');
        throw new StoreUnavailable();
      }
      if (result.disposition === 'missing') throw new JobNotFound(jobId);
      if (result.disposition === 'finished') throw new JobAlreadyFinished(jobId, result.status);
      cancelled.inc();
      const event = jobCompletedEvent(jobId, 'Cancelled', now);
      // The cancellation is recorded; the announcement is a notification, so a broker outage does not undo it. One
      // this process could not make (or never made: killed here) is made by the deadline sweep (cancel-job.lua keeps
      // the job due until it is marked announced).
      let announced = true;
      const failed = (what: string, level: 'warn' | 'error') => (err: unknown) => {
        announced = false;
        log[level]({ err }, `could not ${what}; the deadline sweep will`);
      };
      await Promise.all([
        publishJobCompleted(event).catch(failed('announce the cancellation', 'warn')),
        // Workers running one of its lookups abort it; without the broadcast they finish it and its result is dropped.
        publishJobCancelled?.(event).catch((err) => log.warn({ err }, 'could not broadcast the cancellation to the workers')),
        // Only a job with a completion callback sends one (the saga's callbacks queue takes nothing else).
        result.hasCallback ? publishCallbackDelivery?.(firstCallbackDelivery(jobId, 'Cancelled', now)).catch(failed('send the cancellation callback', 'error')) : undefined,
      ]);
      if (announced) await jobs.markNotified(jobId).catch((err) => log.warn({ err }, 'could not mark the cancellation announced; the deadline sweep will announce it again'));
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
