import type { FastifyInstance } from 'fastify';
import { JOB_STATUSES, SERVICE_CATALOGUE, validateTarget, type JobStatus } from '@lookup/contracts';
import type { JobStore } from '@lookup/store';
import { decodeJobCursor, encodeJobCursor } from '../job-cursor.ts';
import { InvalidTarget, StoreUnavailable } from '../http-errors.ts';
import { API_ERROR_RESPONSES, errorResponse } from '../schemas.ts';

export const JOB_LIST_DEFAULT_LIMIT = 20;
export const JOB_LIST_MAX_LIMIT = 100;

interface ListQuery {
  status?: JobStatus;
  target?: string;
  since?: string;
  limit?: string;
  cursor?: string;
}

const JobSummarySchema = {
  type: 'object',
  required: ['jobId', 'target', 'targetType', 'status', 'createdAt', 'requestedServices'],
  properties: {
    jobId: { type: 'string', format: 'uuid' },
    target: { type: 'string' },
    targetType: { type: 'string', enum: ['IPAddress', 'Domain'] },
    status: { type: 'string', enum: [...JOB_STATUSES] },
    createdAt: { type: 'string', format: 'date-time' },
    completedAt: { type: 'string', format: 'date-time', description: 'Present once the job has finished' },
    requestedServices: { type: 'array', items: { type: 'string', enum: SERVICE_CATALOGUE.map((s) => s.name) } },
  },
} as const;

/**
 * GET /api/lookup: the jobs of this suite, newest first, from the Redis listing index (@lookup/store job-index.ts),
 * with cursor pagination that stays exact while new jobs arrive. API keys apply as on every /api route.
 */
export function registerJobListRoute(app: FastifyInstance, deps: { jobs: Pick<JobStore, 'list'> }): void {
  app.get<{ Querystring: ListQuery }>(
    '/api/lookup',
    {
      schema: {
        tags: ['lookup'],
        summary: 'List lookup jobs',
        description:
          'The jobs still stored (JOB_TTL_SECONDS), newest first, optionally only those with a `status`, an exact ' +
          '`target` (normalised like a submission: domains lower-case punycode) or created at or after `since`. Pass ' +
          '`nextCursor` back as `cursor` for the next page; pages never overlap or skip a job, also while new jobs ' +
          'arrive (those appear on a new first page). `nextCursor` is null when no job is left. With a filter, one ' +
          'call examines at most 1000 jobs: a page may then hold fewer than `limit` jobs and still have a nextCursor.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            status: { type: 'string', enum: [...JOB_STATUSES], description: 'Only jobs with this status' },
            target: { type: 'string', minLength: 1, maxLength: 1024, description: 'Only jobs of this target (an IP address or domain)' },
            since: { type: 'string', format: 'date-time', description: 'Only jobs created at or after this time (ISO 8601)' },
            limit: {
              type: 'string',
              pattern: `^([1-9]|[1-9][0-9]|${JOB_LIST_MAX_LIMIT})$`,
              description: `Jobs per page, 1-${JOB_LIST_MAX_LIMIT} (default ${JOB_LIST_DEFAULT_LIMIT})`,
            },
            cursor: { type: 'string', minLength: 1, maxLength: 200, description: 'The nextCursor of the previous page' },
          },
        },
        response: {
          200: {
            type: 'object',
            description: 'A page of jobs, newest first',
            required: ['jobs', 'nextCursor'],
            properties: {
              jobs: { type: 'array', items: JobSummarySchema },
              nextCursor: { type: ['string', 'null'], description: 'Pass as `cursor` for the next page; null when there is none' },
            },
          },
          400: errorResponse('A bad query parameter (VALIDATION_FAILED), target (INVALID_TARGET) or cursor (INVALID_CURSOR)'),
          ...API_ERROR_RESPONSES,
          503: errorResponse('Redis is unavailable; see the Retry-After header'),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const after = q.cursor !== undefined ? decodeJobCursor(q.cursor) : undefined;
      let target: string | undefined;
      if (q.target !== undefined) {
        const check = validateTarget(q.target);
        if (!check.ok) throw new InvalidTarget([check.error]);
        target = check.target;
      }
      const limit = q.limit !== undefined ? Number(q.limit) : JOB_LIST_DEFAULT_LIMIT;
      let page;
      try {
        page = await deps.jobs.list({ status: q.status, target, sinceMs: q.since !== undefined ? Date.parse(q.since) : undefined, limit, after });
      } catch (err) {
        request.log.error({ err }, 'could not list the jobs; answering 503');
        throw new StoreUnavailable();
      }
      return { jobs: page.jobs, nextCursor: page.next === null ? null : encodeJobCursor(page.next) };
    },
  );
}
