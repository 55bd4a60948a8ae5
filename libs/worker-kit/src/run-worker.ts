import { loadConfigOrExit, describeConfig } from '@lookup/config';
import { MessageValidators, serviceInfo, type LookupCommand } from '@lookup/contracts';
import { createLogger, createShutdown, installSignalHandlers } from '@lookup/logging';
import { createBroker } from '@lookup/messaging';
import { createRedis, createResultStore } from '@lookup/store';
import { createCommandHandler } from './command-handler.ts';
import type { LookupService } from './types.ts';

/**
 * The whole worker process for one lookup service: config, clients, the consume loop, shutdown.
 * A worker's main.ts is `await runWorker(myLookup)`.
 */
export async function runWorker(definition: LookupService): Promise<void> {
  const info = serviceInfo(definition.service);
  const config = loadConfigOrExit();
  const logger = createLogger({ service: `worker-${info.slug}`, level: config.logLevel });
  logger.info({ config: describeConfig(config) }, 'starting');

  const redis = createRedis({ url: config.redisUrl, logger, name: `${config.namespace}-worker-${info.slug}` });
  const broker = createBroker({ url: config.amqpUrl, namespace: config.namespace, logger, name: `${config.namespace}-worker-${info.slug}` });
  const results = createResultStore({ redis, namespace: config.namespace, ttlSeconds: config.jobTtlSeconds });
  const { lookup, close } = await definition.setup({ config, logger });
  const stop = new AbortController();

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
  installSignalHandlers(shutdown, logger);

  const handler = createCommandHandler({
    service: definition.service,
    lookup,
    results,
    logger,
    stopSignal: stop.signal,
    policy: {
      timeoutMs: definition.timeoutMs?.(config) ?? config.lookupTimeoutMs,
      maxAttempts: 3,
      baseBackoffMs: 200,
      maxBackoffMs: 5_000,
    },
    publishEvent: (routingKey, event) =>
      broker.publish(broker.topology.exchanges.events, routingKey, event, { messageId: event.messageId, correlationId: event.jobId }),
  });
  await broker.consume<LookupCommand>({
    queue: broker.topology.queues.lookup(info.slug),
    validator: MessageValidators.lookupCommand,
    prefetch: config.prefetch,
    handler,
  });
  await broker.start();
  logger.info({ queue: broker.topology.queues.lookup(info.slug) }, 'worker ready');
}
