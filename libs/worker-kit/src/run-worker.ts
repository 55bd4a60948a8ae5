import { setMaxListeners } from 'node:events';
import { loadConfigOrExit } from '@lookup/config';
import { MessageValidators, serviceInfo, targetPolicyFromConfig, UUID_RE, type LookupCommand } from '@lookup/contracts';
import { createLogger, logStartup } from '@lookup/logging';
import { createShutdown, installSignalHandlers } from '@lookup/runtime';
import { createBroker, createPublishers } from '@lookup/messaging';
import { createDeliveryCounter, createJobStore, createRedis, createResultStore } from '@lookup/store';
import { createCommandHandler, eventFor } from './command-handler.ts';
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
  const broker = createBroker({ url: config.amqpUrl, namespace: config.namespace, logger, name, maxAttempts: config.retryMaxAttempts, retryDelays: { baseMs: config.retryBaseDelayMs, maxMs: config.retryMaxDelayMs } });
  const results = createResultStore({ redis, namespace: config.namespace, ttlSeconds: config.jobTtlSeconds });
  const jobs = createJobStore({ redis, namespace: config.namespace, ttlSeconds: config.jobTtlSeconds });
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
    ],
  });
  installSignalHandlers(shutdown, logger, { exitWithParent: config.exitWithParent });

  const publishers = createPublishers(broker);

  const handler = createCommandHandler({
    service: definition.service,
    lookup,
    dataSchema: definition.dataSchema,
    results,
    jobs,
    logger,
    stopSignal: stop.signal,
    targetPolicy: targetPolicyFromConfig(config),
    policy: {
      timeoutMs: definition.timeoutMs?.(config) ?? config.lookupTimeoutMs,
      maxAttempts: Math.min(config.retryMaxAttempts, definition.maxAttempts?.(config) ?? config.retryMaxAttempts),
      baseBackoffMs: config.retryBaseDelayMs,
      maxBackoffMs: config.retryMaxDelayMs,
    },
    publishTaskCompleted: publishers.taskCompleted,
    publishRetry: publishers.commandRetry,
  });
  await broker.consume<LookupCommand>({
    queue: broker.topology.queues.lookup(info.slug),
    validator: MessageValidators.lookupCommand,
    prefetch: config.prefetch,
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
    },
  });
  await broker.start();
  logger.info({ queue: broker.topology.queues.lookup(info.slug) }, 'worker ready');
}
