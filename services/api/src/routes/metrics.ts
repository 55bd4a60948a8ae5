import type { FastifyInstance } from 'fastify';
import { exposition } from '@lookup/metrics';

/**
 * `GET /metrics`: this process's Prometheus metrics (text format 0.0.4): the API's own counters, its view of
 * every finished job's per-service outcomes (api-service-outcomes.ts) and the default process metrics. Outside
 * /api like the health probes: not rate limited, no API key (bind the API to a private address, or put the
 * scrape behind the proxy that guards it). No label carries a job id, a target, a key or a client address.
 */
export function registerMetricsRoute(app: FastifyInstance): void {
  app.get(
    '/metrics',
    {
      logLevel: 'warn',
      schema: {
        tags: ['health'],
        summary: 'Prometheus metrics',
        description:
          'The API process\'s metrics in the Prometheus text format (`lookup_*`, `process_*`, `nodejs_*`): jobs submitted, ' +
          'jobs cancelled, rate-limit rejections by tier, dead letters, resource failovers, and per-service outcomes and ' +
          'durations of finished jobs (`lookup_api_service_outcomes_total`, `lookup_api_service_duration_seconds`). ' +
          'The saga and the workers serve theirs on METRICS_PORT.',
        produces: ['text/plain'],
        response: { 200: { description: 'The metrics (text/plain; version=0.0.4)', type: 'string' } },
      },
    },
    async (_request, reply) => {
      const { contentType, body } = await exposition();
      return reply.header('content-type', contentType).header('cache-control', 'no-store').send(body);
    },
  );
}
