import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TenantQuota } from '@lookup/store';
import { NoTenant, StoreUnavailable } from '../http-errors.ts';
import { API_ERROR_RESPONSES, errorResponse } from '../schemas.ts';

const limit = (description: string) => Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: `${description} (null: unlimited)` });

export const TenantUsageSchema = Type.Object(
  {
    tenant: Type.String(),
    day: Type.String({ description: 'The UTC day jobsToday counts (YYYY-MM-DD); the daily quota renews at 00:00 UTC' }),
    jobsToday: Type.Integer({ minimum: 0, description: 'Jobs submitted today (a batch of N counts N)' }),
    jobsPerDay: limit('The daily quota'),
    jobsInFlight: Type.Integer({ minimum: 0, description: 'Jobs submitted and not yet ended (completed, timed out or cancelled)' }),
    jobsInFlightLimit: limit('The in-flight quota'),
  },
  { $id: 'TenantUsage', additionalProperties: false },
);

/** GET /api/usage: the caller's tenant, its usage and its quotas (TENANTS). */
export function registerUsageRoute(app: FastifyInstance, deps: { tenantQuota: Pick<TenantQuota, 'usage'> }): void {
  app.addSchema(TenantUsageSchema);
  app.get(
    '/api/usage',
    {
      schema: {
        tags: ['lookup'],
        summary: "The caller's tenant quotas and usage",
        description:
          'The tenant of the API key (TENANTS), its jobs submitted today (UTC) against jobsPerDay, and its jobs in ' +
          'flight against jobsInFlightLimit. A submission that would exceed either is refused whole with 429 ' +
          'TENANT_QUOTA_EXCEEDED (the daily quota with Retry-After until 00:00 UTC). The in-flight quota bounds how ' +
          "much of the work queues one tenant can hold, so one tenant's bulk batches cannot starve another's jobs.",
        response: {
          200: { ...Type.Ref('TenantUsage'), description: 'The usage and quotas' },
          404: errorResponse('The API key belongs to no tenant (TENANT_NOT_CONFIGURED)'),
          ...API_ERROR_RESPONSES,
          503: errorResponse('Redis is unavailable; see the Retry-After header'),
        },
      },
    },
    async (request, reply) => {
      const tenant = request.tenant;
      if (!tenant) throw new NoTenant();
      let usage;
      try {
        usage = await deps.tenantQuota.usage(tenant.name);
      } catch (err) {
        request.log.error({ err }, 'could not read the tenant usage; answering 503');
        throw new StoreUnavailable();
      }
      return reply.send({
        tenant: tenant.name,
        day: usage.day,
        jobsToday: usage.jobsToday,
        jobsPerDay: tenant.jobsPerDay || null,
        jobsInFlight: usage.jobsInFlight,
        jobsInFlightLimit: tenant.jobsInFlight || null,
      });
    },
  );
}
