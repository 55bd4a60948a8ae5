import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { loadConfigOrExit } from '@lookup/config';
import { createLogger, logStartup } from '@lookup/logging';
import { createShutdown, installSignalHandlers } from '@lookup/runtime';
import { PUBLISH_DEFAULTS, brokerOptionsFromConfig, createBroker, createPublishers, deadLetterOps } from '@lookup/messaging';
import { enableProcessMetrics } from '@lookup/metrics';
import { createCallbackStore, createIdempotencyStore, createJobStore, createRateLimiter, createRedis, createTenantQuota, redisAnswers } from '@lookup/store';
import { buildApp } from './app.ts';
import { startupWarnings } from './startup-warnings.ts';
import { listenProblem } from './listen-problem.ts';
import { createJobEventHub } from './job-events.ts';
import { createResourceRouter } from './resources/resource-router.ts';
import { createServiceOutcomeMetrics } from './api-metrics.ts';
import { callbackStatusSource } from './routes/lookup-callbacks.ts';

const config = loadConfigOrExit();
const logger = createLogger({ service: 'api', level: config.logLevel, format: config.logFormat });
// Names this process's private queue (`<ns>.resource-reply.<instance>`).
const instanceId = `${hostname().replace(/[^a-zA-Z0-9_-]/g, '-').slice(0, 30) || 'host'}-${process.pid}-${randomBytes(3).toString('hex')}`;
logStartup(logger, config, { instanceId });
enableProcessMetrics();
for (const warning of startupWarnings(config)) logger.warn(warning);

// The HTTP path fails fast: a request is answered 503 at once rather than queued behind a dead connection.
const redis = createRedis({ target: config, logger, name: `${config.namespace}-api`, failFast: true });
const broker = createBroker(brokerOptionsFromConfig(config, { logger, name: `${config.namespace}-api`, publishTimeoutMs: PUBLISH_DEFAULTS.httpConfirmTimeoutMs }));
// Event streams read each job's Redis Stream and are woken through Redis pub/sub on one dedicated subscriber
// connection (job-events.ts says why). The API consumes nothing from RabbitMQ: the per-service outcome metrics come
// from Redis too (api-metrics.ts), so a job's end costs no message per API replica.
const jobStore = createJobStore({ redis, namespace: config.namespace, ttlSeconds: config.jobTtlSeconds });
const subscriber = createRedis({ target: config, logger, name: `${config.namespace}-api-events`, failFast: true });
const jobEvents = createJobEventHub({
  read: (jobId, afterId) => jobStore.readEvents(jobId, afterId),
  subscriber: { redis: subscriber, namespace: config.namespace, logger },
});
const stopOutcomeDrain = createServiceOutcomeMetrics({ drain: (max) => jobStore.drainOutcomes(max), logger }).start();
void broker.start();
const publishers = createPublishers(broker);

// Pinned resources: placement in Redis, requests to the owner over RabbitMQ (its own connection).
const resources = createResourceRouter({ redis, config, logger, instanceId });
void resources.start();

const app = await buildApp({
  resources,
  config,
  logger,
  jobs: jobStore,
  batches: jobStore,
  jobList: jobStore,
  // A job holds its tenant's in-flight slot until it ends, or at most until a minute past its deadline.
  tenantQuota: createTenantQuota({ redis, namespace: config.namespace, holdMs: config.jobDeadlineMs + 60_000 }),
  idempotency: createIdempotencyStore({ redis, namespace: config.namespace, ttlSeconds: config.idempotencyTtlSeconds }),
  rateLimiter: createRateLimiter({
    redis,
    logger,
    namespace: config.namespace,
    limits: {
      submitPerMin: config.rateLimitSubmitPerMin,
      apiPerMin: config.rateLimitApiPerMin,
      globalPerMin: config.rateLimitGlobalPerMin,
      resourcePerMin: config.rateLimitResourcePerMin,
      unauthenticatedPerMin: config.rateLimitUnauthenticatedPerMin,
    },
  }),
  publishJobSubmitted: publishers.jobSubmitted,
  publishCommand: publishers.command,
  publishJobCompleted: publishers.jobCompleted,
  publishJobCancelled: publishers.jobCancelled,
  publishCallbackDelivery: publishers.callbackDelivery,
  jobEvents: jobEvents.source,
  callbacks: (() => {
    const store = createCallbackStore({ redis, namespace: config.namespace, ttlSeconds: config.jobTtlSeconds });
    return callbackStatusSource((id) => jobStore.getCallback(id), (id) => store.get(id));
  })(),
  deadLetters: {
    list: (limit) => broker.withConfirmChannel((ch) => deadLetterOps(ch, broker.topology.queues.deadLetter).list(limit)),
    replay: (sel) => broker.withConfirmChannel((ch) => deadLetterOps(ch, broker.topology.queues.deadLetter).replay(sel)),
    discard: (sel) => broker.withConfirmChannel((ch) => deadLetterOps(ch, broker.topology.queues.deadLetter).discard(sel)),
  },
  readiness: async () => ({
    rabbitmq: broker.ready,
    redis: await redisAnswers(redis),
  }),
});

const shutdown = createShutdown({
  logger,
  timeoutMs: config.shutdownTimeoutMs,
  steps: [
    { name: 'stop draining job outcomes', run: async () => stopOutcomeDrain() },
    { name: 'close http server', run: () => app.close() },
    { name: 'close resource router', run: () => resources.close() },
    { name: 'close broker', run: () => broker.close() },
    { name: 'close redis', run: () => redis.quit() },
    { name: 'close redis subscriber', run: () => subscriber.quit() },
  ],
});
installSignalHandlers(shutdown, logger, { exitWithParent: config.exitWithParent });

try {
  await app.listen({ host: config.apiHost, port: config.apiPort });
} catch (err) {
  // A port or address the API cannot take is a configuration error: say which, exit 78 (EX_CONFIG, as a bad
  // value does) without a stack trace; the supervisor does not restart a service that exits 78.
  const problem = listenProblem(err, config.apiHost, config.apiPort);
  if (!problem) throw err;
  logger.fatal({ code: (err as NodeJS.ErrnoException).code, host: config.apiHost, port: config.apiPort }, problem);
  process.exit(78);
}
