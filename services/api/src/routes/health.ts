import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps.ts';
import { LiveSchema, ReadySchema } from '../schemas.ts';

const READINESS_TIMEOUT_MS = 3_000;

type Checks = { rabbitmq: boolean; redis: boolean };

/** The dependencies' answers, or both down when the probe fails or takes too long. */
async function probe(readiness: ApiDeps['readiness']): Promise<Checks> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Checks>((resolve) => {
    timer = setTimeout(() => resolve({ rabbitmq: false, redis: false }), READINESS_TIMEOUT_MS);
  });
  try {
    return await Promise.race([readiness().catch(() => ({ rabbitmq: false, redis: false })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Liveness and readiness probes; never rate limited, never behind the API key. */
export function registerHealthRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/health/live',
    {
      logLevel: 'warn',
      schema: {
        tags: ['health'],
        summary: 'Liveness probe',
        description: 'Answers 200 while the process runs; checks nothing external.',
        response: { 200: { ...LiveSchema, description: 'The process is running' } },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/health/ready',
    {
      logLevel: 'warn',
      schema: {
        tags: ['health'],
        summary: 'Readiness probe',
        description: 'Answers 200 when RabbitMQ and Redis answer, else 503 naming the one that failed.',
        response: {
          200: { ...ReadySchema, description: 'RabbitMQ and Redis answer' },
          503: { ...ReadySchema, description: 'A dependency does not answer' },
        },
      },
    },
    async (request, reply) => {
      const checks = await probe(deps.readiness);
      const state = {
        rabbitmq: checks.rabbitmq ? ('up' as const) : ('down' as const),
        redis: checks.redis ? ('up' as const) : ('down' as const),
      };
      if (checks.rabbitmq && checks.redis) return { status: 'ready' as const, checks: state };
      const down = (Object.keys(state) as (keyof typeof state)[]).filter((k) => state[k] === 'down');
      request.log.warn({ checks: state }, 'not ready');
      return reply.code(503).header('Retry-After', 5).send({
        status: 'not ready' as const,
        checks: state,
        error: 'Not ready',
        message: `${down.join(' and ')} ${down.length > 1 ? 'do' : 'does'} not answer`,
      });
    },
  );
}
