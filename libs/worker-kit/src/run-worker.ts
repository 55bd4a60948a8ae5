import { setMaxListeners } from 'node:events';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { loadConfigOrExit } from '@lookup/config';
import { MessageValidators, RoutingKeys, serviceInfo, targetPolicyFromConfig, UUID_RE, type JobCompleted, type LookupCommand } from '@lookup/contracts';
import { createLogger, logStartup } from '@lookup/logging';
import { createShutdown, installSignalHandlers } from '@lookup/runtime';
import { CONSUME_DEFAULTS, announceJobEnd, brokerOptionsFromConfig, createBroker, createPublishers } from '@lookup/messaging';
import { createDeliveryCounter, createJobStore, createRedis, createResultCache, createResultStore, redisAnswers } from '@lookup/store';
import { jobEndMetrics, serveMetrics, taskInstruments } from '@lookup/metrics';
import { createCommandHandler, eventFor } from './command-handler.ts';
import { createCancellations } from './cancellations.ts';
import { createResultReuse } from './reuse.ts';
import type { LookupService } from './types.ts';


/**
 * The whole worker process for one lookup service: config, clients, the consume loop, shutdown.
 * A worker's main.ts is `await runWorker(myLookup)`.
 */
export async function runWorker(definition: LookupService): Promise<void> {
  const info = serviceInfo(definition.service);
  const config = loadConfigOrExit();
  const logger = createLogger({ service: `worker-${info.slug}`, level: config.logLevel, format: config.logFormat });
  logStartup(logger, config, { lookupService: info.name });

  const name = `${config.namespace}-worker-${info.slug}`;
  const redis = createRedis({ target: config, logger, name });
  const broker = createBroker(brokerOptionsFromConfig(config, { logger, name }));
  const results = createResultStore({ redis, namespace: config.namespace, ttlSeconds: config.jobTtlSeconds });
  const jobs = createJobStore({ redis, namespace: config.namespace, ttlSeconds: config.jobTtlSeconds });
  const metrics = taskInstruments(info.name);
  // Up before anything slow: /health/live answers at once, /health/ready says 503 until RabbitMQ and Redis answer.
  const listener = await serveMetrics({ config, logger, readiness: async () => ({ rabbitmq: broker.ready, redis: await redisAnswers(redis) }) });
  const { lookup, close } = await definition.setup({ config, logger });
  const stop = new AbortController();
  // Every attempt in flight (up to PREFETCH at once) listens for the stop and removes its listener when it
  // ends: many listeners at once is the design, not a leak.
  setMaxListeners(0, stop.signal);

  const shutdown = createShutdown({
    logger,
    timeoutMs: config.shutdownTimeoutMs,
    steps: [
      { name: 'stop consuming', run: () => broker.stopConsuming(config.shutdownTimeoutMs / 2) },
      { name: 'abort lookups', run: () => stop.abort() },
      { name: 'close lookup', run: () => close?.() },
      { name: 'close broker', run: () => broker.close() },
      { name: 'close redis', run: () => redis.quit() },
      { name: 'close metrics listener', run: () => listener.close() },
    ],
  });
  installSignalHandlers(shutdown, logger, { exitWithParent: config.exitWithParent });

  const publishers = createPublishers(broker);
  const cancellations = createCancellations();

  const timeoutMs = definition.timeoutMs?.(config) ?? config.lookupTimeoutMs;
  const handler = createCommandHandler({
    service: definition.service,
    reuse: createResultReuse({
      service: definition.service,
      cache: createResultCache({ redis, namespace: config.namespace }),
      ttlSeconds: config.cacheTtlSeconds[info.slug] ?? 0,
      // A claim outlives its lookup's timeout a little; a follower never waits longer than that.
      flightMs: timeoutMs + 2_000,
      logger,
    }),
    lookup,
    dataSchema: definition.dataSchema,
    results,
    jobs,
    logger,
    metrics,
    stopSignal: stop.signal,
    cancellations,
    targetPolicy: targetPolicyFromConfig(config),
    policy: {
      timeoutMs,
      maxAttempts: Math.min(config.retryMaxAttempts, definition.maxAttempts?.(config) ?? config.retryMaxAttempts),
      baseBackoffMs: config.retryBaseDelayMs,
      maxBackoffMs: config.retryMaxDelayMs,
    },
    publishTaskCompleted: publishers.taskCompleted,
    announceJobEnd: async (jobId, hasCallback) => {
      await announceJobEnd(publishers, jobId, 'Completed', hasCallback);
      return jobs.markNotified(jobId);
    },
    jobEnd: jobEndMetrics(),
    publishRetry: publishers.commandRetry,
  });
  // One consumer per priority queue (README, Priorities): high and normal with PREFETCH each, low with a quarter of
  // it, so a high command is taken at once whatever waits in the others, and bulk (low) work yields to normal work.
  const queues = [
    { queue: broker.topology.queues.lookupPriority(info.slug, 'high'), prefetch: config.prefetch },
    { queue: broker.topology.queues.lookup(info.slug), prefetch: config.prefetch },
    { queue: broker.topology.queues.lookupPriority(info.slug, 'low'), prefetch: Math.max(1, Math.floor(config.prefetch / 4)) },
  ];
  for (const { queue, prefetch } of queues) await broker.consume<LookupCommand>({
    queue,
    validator: MessageValidators.lookupCommand,
    prefetch,
    handler,
    deliveryLimit: { max: config.deliveryLimit, count: createDeliveryCounter({ redis, namespace: config.namespace }) },
    // A dead-lettered command still ends its task: the job records this service as Failed rather than
    // waiting for its deadline. (Not for a command that reached the wrong worker: this service has no task.)
    onDeadLetter: async (reason, raw, body) => {
      if (reason.startsWith('MESSAGE_POISON')) return;
      const candidate = (body as { jobId?: unknown } | undefined)?.jobId ?? raw.properties.correlationId;
      if (typeof candidate !== 'string' || !UUID_RE.test(candidate)) return;
      const jobId = candidate.toLowerCase();
      const event = eventFor(
        {
          jobId,
          serviceType: definition.service,
          status: 'Failed',
          success: false,
          data: null,
          errorMessage: `the command was dead-lettered: ${reason}`.slice(0, 2000),
          durationMs: 0,
          attempts: Number((body as { attempt?: unknown } | undefined)?.attempt) || 0,
          completedAt: new Date().toISOString(),
        },
        null,
        { jobId },
      );
      await publishers.taskCompleted(event);
      metrics.failed.inc();
    },
  });
  // Every worker process hears every cancellation (job.cancelled) on a private queue of its own, and aborts that
  // job's lookups running here.
  const instanceId = `${info.slug}-${hostname().replace(/[^a-zA-Z0-9_-]/g, '-').slice(0, 30) || 'host'}-${process.pid}-${randomBytes(3).toString('hex')}`;
  await broker.consume<JobCompleted>({
    queue: broker.topology.queues.workerControl(instanceId),
    exclusive: { bindings: [{ exchange: broker.topology.exchanges.events, routingKey: RoutingKeys.jobCancelled }] },
    validator: MessageValidators.jobCompleted,
    prefetch: CONSUME_DEFAULTS.notificationPrefetch,
    handler: async ({ body }) => {
      const aborted = cancellations.cancel(body.jobId);
      if (aborted > 0) logger.info({ jobId: body.jobId, aborted }, 'job cancelled: aborting its lookups in flight');
    },
  });
  await broker.start();
  logger.info({ queue: broker.topology.queues.lookup(info.slug) }, 'worker ready');
}
