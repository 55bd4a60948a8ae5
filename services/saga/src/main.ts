import { loadConfigOrExit } from '@lookup/config';
import { createLogger, logStartup } from '@lookup/logging';
import { createShutdown, installSignalHandlers } from '@lookup/runtime';
import { brokerOptionsFromConfig, createBroker, createPublishers } from '@lookup/messaging';
import { LeaderElection, leaseTimings } from '@lookup/coordination';
import { createCallbackStore, createDeliveryCounter, createJobStore, createRedis, createTenantDispatch, redisAnswers } from '@lookup/store';
import { jobEndMetrics, serveMetrics, tenantJobsHeld, zeroed } from '@lookup/metrics';
import { resolverSettings } from '@lookup/dns';
import { targetPolicyFromConfig } from '@lookup/contracts';
import { createSaga } from './saga.ts';
import { sweepDeadlines } from './deadline-sweeper.ts';
import { createCallbackDispatcher, CallbackUndeliverable } from './callbacks.ts';
import { createCallbackSender } from './callback-sender.ts';

const config = loadConfigOrExit();
const logger = createLogger({ service: 'saga', level: config.logLevel, format: config.logFormat });
logStartup(logger, config);

const redis = createRedis({ target: config, logger, name: `${config.namespace}-saga` });
const broker = createBroker(brokerOptionsFromConfig(config, { logger, name: `${config.namespace}-saga`, callbackMaxAttempts: config.callbackMaxAttempts }));
const jobs = createJobStore({ redis, namespace: config.namespace, ttlSeconds: config.jobTtlSeconds });

const listener = await serveMetrics({ config, logger, readiness: async () => ({ rabbitmq: broker.ready, redis: await redisAnswers(redis) }) });
const metrics = jobEndMetrics();
const publishers = createPublishers(broker);
// Fair dispatch across tenants (TENANT_DISPATCH_WINDOW; 0 = off): a slot lapses as the in-flight quota's hold does.
const tenantDispatch =
  config.tenantDispatchWindow > 0
    ? createTenantDispatch({ redis, namespace: config.namespace, windowSize: config.tenantDispatchWindow, holdMs: config.jobDeadlineMs + 60_000 })
    : undefined;
const held = zeroed(tenantJobsHeld());
const saga = createSaga({ jobs, logger, publish: publishers, metrics, ...(tenantDispatch ? { tenantDispatch, tenantMetrics: { held: () => held.inc() } } : {}) });

// Completion callbacks: signed POSTs to the URL each job asked for, retried through the broker.
const sender = createCallbackSender({
  policy: targetPolicyFromConfig(config),
  dns: resolverSettings(config.dnsServers, config.callbackTimeoutMs),
  timeoutMs: config.callbackTimeoutMs,
});
const secret = config.callbackSecret;
const callbacks = createCallbackDispatcher({
  jobs,
  deliveries: createCallbackStore({ redis, namespace: config.namespace, ttlSeconds: config.jobTtlSeconds }),
  send: secret
    ? sender.send
    : async () => {
        throw new CallbackUndeliverable('CALLBACK_SECRET is not set in the saga: callbacks cannot be signed');
      },
  publishRetry: publishers.callbackRetry,
  secret: secret ?? '',
  maxAttempts: config.callbackMaxAttempts,
  backoff: { baseMs: config.retryBaseDelayMs, maxMs: config.retryMaxDelayMs },
  logger: logger.child({ component: 'callbacks' }),
});

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
  void sweepDeadlines(
    {
      jobs,
      announce: saga.announceCompleted,
      intervalMs: config.deadlineSweepMs,
      logger,
      metrics,
      ...(tenantDispatch ? { tenantJobEnded: saga.afterTenantJobEnded, sweepTenants: saga.sweepTenants } : {}),
    },
    signal,
  );
});
election.on('lost', ({ reason }) => logger.info({ reason }, 'no longer the deadline sweeper'));

const shutdown = createShutdown({
  logger,
  timeoutMs: config.shutdownTimeoutMs,
  steps: [
    { name: 'stop sweeping', run: () => election.stop() },
    { name: 'stop consuming', run: () => broker.stopConsuming(config.shutdownTimeoutMs / 2) },
    { name: 'close broker', run: () => broker.close() },
    { name: 'close callback sender', run: () => sender.close() },
    { name: 'close redis', run: () => redis.quit() },
    { name: 'close metrics listener', run: () => listener.close() },
  ],
});
installSignalHandlers(shutdown, logger, { exitWithParent: config.exitWithParent });

// Both queues count deliveries the same way (a poison message is dead-lettered after DELIVERY_LIMIT deliveries).
const deliveryLimit = { max: config.deliveryLimit, count: createDeliveryCounter({ redis, namespace: config.namespace }) };
await broker.consume({
  queue: broker.topology.queues.saga,
  prefetch: config.prefetch,
  validator: saga.validatorFor,
  deliveryLimit,
  handler: saga.handle,
});
await broker.consume({
  queue: broker.topology.queues.callbacks,
  prefetch: config.prefetch,
  validator: callbacks.validatorFor,
  deliveryLimit,
  handler: callbacks.handle,
});
await broker.start();
election.start();
logger.info({ queue: broker.topology.queues.saga }, 'saga ready');
