import { loadConfigOrExit } from '@lookup/config';
import { createLogger, logStartup } from '@lookup/logging';
import { createShutdown, installSignalHandlers } from '@lookup/runtime';
import { createBroker, createPublishers } from '@lookup/messaging';
import { LeaderElection, leaseTimings } from '@lookup/coordination';
import { createDeliveryCounter, createJobStore, createRedis } from '@lookup/store';
import { createSaga } from './saga.ts';
import { sweepDeadlines } from './deadline-sweeper.ts';

const config = loadConfigOrExit();
const logger = createLogger({ service: 'saga', level: config.logLevel, format: config.logFormat });
logStartup(logger, config);

const redis = createRedis({ target: config, logger, name: `${config.namespace}-saga` });
const broker = createBroker({ url: config.amqpUrl, namespace: config.namespace, logger, name: `${config.namespace}-saga`, maxAttempts: config.retryMaxAttempts, retryDelays: { baseMs: config.retryBaseDelayMs, maxMs: config.retryMaxDelayMs } });
const jobs = createJobStore({ redis, namespace: config.namespace, ttlSeconds: config.jobTtlSeconds });

const saga = createSaga({ jobs, logger, publish: createPublishers(broker) });

// Exactly one replica sweeps deadlines; if it dies, another takes over within one lease period (3 s).
const election = new LeaderElection({
  redis,
  namespace: config.namespace,
  name: 'deadline-sweeper',
  timings: leaseTimings({ heartbeatMs: 1000, maxMissed: 3 }),
  logger,
});
election.on('elected', ({ signal, epoch }) => {
  logger.info({ epoch }, 'elected deadline sweeper');
  void sweepDeadlines({ jobs, announce: saga.announceCompleted, intervalMs: config.deadlineSweepMs, logger }, signal);
});
election.on('lost', ({ reason }) => logger.info({ reason }, 'no longer the deadline sweeper'));

const shutdown = createShutdown({
  logger,
  timeoutMs: config.shutdownTimeoutMs,
  steps: [
    { name: 'stop sweeping', run: () => election.stop() },
    { name: 'stop consuming', run: () => broker.stopConsuming(config.shutdownTimeoutMs / 2) },
    { name: 'close broker', run: () => broker.close() },
    { name: 'close redis', run: () => redis.quit() },
  ],
});
installSignalHandlers(shutdown, logger, { exitWithParent: config.exitWithParent });

await broker.consume({
  queue: broker.topology.queues.saga,
  prefetch: config.prefetch,
  validator: saga.validatorFor,
  deliveryLimit: { max: config.deliveryLimit, count: createDeliveryCounter({ redis, namespace: config.namespace }) },
  handler: saga.handle,
});
await broker.start();
election.start();
logger.info({ queue: broker.topology.queues.saga }, 'saga ready');
