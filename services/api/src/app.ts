import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.ts';
import { frameworkErrorHandler, installErrorHandling } from './errors.ts';
import { installApiGuard } from './guard.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerLookupRoutes } from './routes/lookup.ts';
import { registerResourceRoutes } from './routes/resources.ts';
import { registerAdminResourceRoutes } from './routes/admin-resources.ts';
import { registerDeadLetterRoutes } from './routes/admin-dead-letters.ts';
import { registerJobStreamRoute } from './routes/job-stream.ts';
import { SHARED_SCHEMAS } from './schemas.ts';
import { registerSwagger } from './swagger.ts';

export type { ApiDeps } from './deps.ts';

/**
 * Builds the API without listening (tests use `app.inject()`; main.ts listens). Routes may still be added
 * to the returned instance before it is ready.
 */
export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    trustProxy: config.trustProxy,
    bodyLimit: config.bodyLimitBytes,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    frameworkErrors: frameworkErrorHandler,
    ajv: {
      // Refuse what the schema does not allow instead of repairing it: no type coercion, no silent removal
      // of unknown properties, and every problem listed.
      customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true },
    },
  });

  // Small responses go out at once: with Nagle's algorithm a response written right after another small write
  // on the same connection (an event stream's last chunk, then the next request's answer) waits for the
  // client's delayed ACK, about 40 ms on Linux.
  app.server.on('connection', (socket: import('node:net').Socket) => socket.setNoDelay(true));

  // JSON only: without this, text/plain bodies would be parsed as strings and fail validation with a 400
  // instead of the 415 a wrong content type deserves.
  app.removeContentTypeParser('text/plain');
  installErrorHandling(app, config.bodyLimitBytes);

  await registerSwagger(app, { apiKeysRequired: config.apiKeys.length > 0 });
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);

  installApiGuard(app, { apiKeys: config.apiKeys, rateLimiter: deps.rateLimiter });
  registerHealthRoutes(app, deps);
  registerLookupRoutes(app, deps);
  if (deps.jobEvents) registerJobStreamRoute(app, { jobs: deps.jobs, events: deps.jobEvents });
  if (deps.deadLetters) registerDeadLetterRoutes(app, { config, deadLetters: deps.deadLetters });
  if (deps.resources) {
    await registerResourceRoutes(app, { config, resources: deps.resources });
    await registerAdminResourceRoutes(app, { config, resources: deps.resources });
  }
  return app;
}
