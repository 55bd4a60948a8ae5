import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import cors from '@fastify/cors';
import type { ApiDeps } from './deps.ts';
import { capConnectionsPerClient } from './connection-limits.ts';
import { API_SECURITY_HEADERS } from './security-headers.ts';
import { fastifyTrustProxy } from './proxy-trust.ts';
import { clientErrorHandler, frameworkErrorHandler, installErrorHandling } from './errors.ts';
import { ExpectationFailed, UrlTooLong } from './http-errors.ts';
import { installApiGuard } from './guard.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerMetricsRoute } from './routes/metrics.ts';
import { registerLookupRoutes } from './routes/lookup.ts';
import { registerBatchRoutes } from './routes/lookup-batch.ts';
import { registerJobListRoute } from './routes/lookup-list.ts';
import { registerUsageRoute } from './routes/usage.ts';
import { registerCallbackRoutes } from './routes/lookup-callbacks.ts';
import { registerResourceRoutes } from './routes/resources.ts';
import { registerAdminResourceRoutes } from './routes/admin-resources.ts';
import { registerDeadLetterRoutes } from './routes/admin-dead-letters.ts';
import { registerQueueRoutes } from './routes/admin-queues.ts';
import { registerJobStreamRoute } from './routes/job-stream.ts';
import { registerDashboardRoutes } from './routes/dashboard.ts';
import { SHARED_SCHEMAS } from './schemas.ts';
import { registerSwagger } from './swagger.ts';
import { RequestLogController } from './request-log.ts';

export type { ApiDeps } from './deps.ts';

/**
 * Builds the API without listening (tests use `app.inject()`; main.ts listens). Routes may still be added
 * to the returned instance before it is ready.
 */
export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const { config } = deps;
  // Node checks the request and header timeouts on a timer (30 s by default): check often enough that a slow
  // client is cut close to the configured time.
  const headersTimeout = Math.min(config.apiHeadersTimeoutMs, config.apiRequestTimeoutMs);
  const checkEveryMs = Math.max(50, Math.min(1000, Math.floor(headersTimeout / 2)));
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // One line per request instead of Fastify's two.
    logController: new RequestLogController(),
    trustProxy: fastifyTrustProxy(config.trustProxy),
    bodyLimit: config.bodyLimitBytes,
    // Finding 7: a request (headers and body) must arrive within requestTimeout (else 408 and the connection is
    // closed); a connection with no traffic either way is closed after connectionTimeout; an idle keep-alive
    // connection after keepAliveTimeout. The request timeout covers receiving the request only, so a long
    // response (the event stream) is not cut by it; the stream's 15 s heartbeat keeps it under the idle timeout.
    requestTimeout: config.apiRequestTimeoutMs,
    // Never shorter than a resource request may wait for its owner (no byte flows meanwhile), nor than the
    // keep-alive timeout (else an idle keep-alive connection is cut silently, before the Keep-Alive hint says).
    connectionTimeout: Math.max(config.apiIdleTimeoutMs, config.resourceProxyTimeoutMs + 5000, config.apiKeepAliveTimeoutMs + 1000),
    keepAliveTimeout: config.apiKeepAliveTimeoutMs,
    http: { maxHeaderSize: config.apiMaxHeaderBytes, headersTimeout, connectionsCheckingInterval: checkEveryMs },
    clientErrorHandler: clientErrorHandler(config),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    frameworkErrors: frameworkErrorHandler(config.apiMaxUrlLength),
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
  app.server.maxConnections = config.apiMaxConnections;
  // An Expect header other than 100-continue: node would answer a bare 417 itself; answer it in JSON.
  app.server.on('checkExpectation', (_req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    const error = new ExpectationFailed();
    const body = JSON.stringify(error.toBody());
    res.writeHead(error.statusCode, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  });
  capConnectionsPerClient(app.server, {
    maxPerClient: config.apiMaxConnectionsPerClient,
    exempt: Array.isArray(config.trustProxy) ? config.trustProxy : [],
    logger: app.log,
  });

  // JSON only: without this, text/plain bodies would be parsed as strings and fail validation with a 400
  // instead of the 415 a wrong content type deserves.
  app.removeContentTypeParser('text/plain');
  installErrorHandling(app, config.bodyLimitBytes);

  // Security headers on every answer. Helmet's default CSP minus upgrade-insecure-requests (the API is often
  // reached over plain HTTP on a private network, where upgrading Swagger UI's assets to https would break it).
  // Swagger UI at /swagger loads only same-origin scripts and styles and data: images, which the default allows.
  // helmet's headers on every answer (errors and docs too), computed once (security-headers.ts).
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(API_SECURITY_HEADERS);
    done();
  });
  app.addHook('onRequest', async (request) => {
    if (request.url.length > config.apiMaxUrlLength) throw new UrlTooLong(request.url.length, config.apiMaxUrlLength);
  });
  if (config.corsOrigins.length > 0) {
    // Registered before the API guard: a preflight (no credentials) is answered here, before the key check.
    await app.register(cors, {
      origin: config.corsOrigins.includes('*') ? '*' : [...config.corsOrigins],
      methods: ['GET', 'HEAD', 'POST', 'DELETE'],
      allowedHeaders: ['Content-Type', 'X-API-Key', 'Authorization', 'Idempotency-Key'], // no X-Admin-Key: admin is not for browsers
      exposedHeaders: ['Retry-After', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'Location', 'X-Job-Id'],
      maxAge: 600,
      // Any OPTIONS is answered as a preflight (204, no body) instead of the plugin's text/plain 400 for one
      // without Origin: every error of the API stays JSON.
      strictPreflight: false,
    });
  }

  await registerSwagger(app, { apiKeysRequired: config.apiKeys.length > 0 });
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);

  // Authentication, then @fastify/rate-limit (registered here, before the routes, so it sees every route).
  await installApiGuard(app, { config, rateLimiter: deps.rateLimiter });
  registerHealthRoutes(app, deps);
  registerDashboardRoutes(app);
  registerMetricsRoute(app);
  registerLookupRoutes(app, deps);
  if (deps.jobList) registerJobListRoute(app, { jobs: deps.jobList });
  if (deps.batches) registerBatchRoutes(app, { ...deps, batches: deps.batches });
  if (deps.tenantQuota) registerUsageRoute(app, { tenantQuota: deps.tenantQuota });
  if (deps.callbacks) registerCallbackRoutes(app, { callbacks: deps.callbacks });
  if (deps.jobEvents) registerJobStreamRoute(app, { jobs: deps.jobs, events: deps.jobEvents, heartbeatMs: config.eventsHeartbeatMs });
  // Admin routes exist only when ADMIN_API_KEY is set; otherwise they answer 404 like any unknown path.
  const adminEnabled = config.adminApiKey !== undefined && config.adminApiKey !== '';
  if (deps.deadLetters && adminEnabled) registerDeadLetterRoutes(app, { config, deadLetters: deps.deadLetters });
  if (adminEnabled) registerQueueRoutes(app, { config });
  if (deps.resources) {
    await registerResourceRoutes(app, { config, resources: deps.resources });
    if (adminEnabled) await registerAdminResourceRoutes(app, { config, resources: deps.resources });
  }
  return app;
}
