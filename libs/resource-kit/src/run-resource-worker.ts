import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { loadConfigOrExit } from '@lookup/config';
import { ResourceMessageValidators, resourceRequestLimitProblem, type ResourceReplyMessage, type ResourceWorkerMessage } from '@lookup/contracts';
import { createResourceDirectory, leaseTimings } from '@lookup/coordination';
import { createLogger, logStartup } from '@lookup/logging';
import { createShutdown, installSignalHandlers } from '@lookup/runtime';
import { RpcServer, deadLetterArguments, resourceQueues, topology } from '@lookup/messaging';
import { createRedis, redisAnswers, waitForRedis } from '@lookup/store';
import { resourceOwnedKeys, serveMetrics } from '@lookup/metrics';
import { ResourceHost } from './resource-host.ts';
import type { ResourceType } from './types.ts';

/** A worker id that is safe in queue names and Redis keys: host, pid and a random suffix. */
export function generateWorkerId(): string {
  const host = hostname().replace(/[^a-zA-Z0-9_-]/g, '-').slice(0, 30) || 'host';
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/**
 * The whole resource worker process: `await runResourceWorker(myType)` is a worker's main.ts. It consumes its
 * own queue (`<NAMESPACE>.resource.<workerId>`), registers in the resource directory with a heartbeat, and serves
 * the keys the API places on it.
 */
export async function runResourceWorker<R>(type: ResourceType<R>): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger({ service: `resource-worker`, level: config.logLevel, format: config.logFormat });
  const workerId = config.resourceWorkerId ?? generateWorkerId();
  const log = logger.child({ workerId, type: type.name });
  logStartup(log, config);

  const timings = leaseTimings({ heartbeatMs: config.resourceHeartbeatMs, maxMissed: config.resourceMaxMissed });
  const redis = createRedis({ target: config, logger: log, name: `${config.namespace}-resource-${workerId}` });
  const directory = createResourceDirectory({ redis, namespace: config.namespace, ttlMs: timings.ttlMs });
  await type.setup?.({ config, logger: log });

  const queues = resourceQueues(config.namespace);
  const queue = queues.worker(workerId);
  const t = topology(config.namespace);
  let host: ResourceHost<R> | undefined;
  const errorReply = (requestId: string, status: number, error: string, message: string): ResourceReplyMessage => ({
    type: 'error',
    requestId: requestId.slice(0, 128),
    worker: workerId,
    status,
    error,
    message: message.slice(0, 2000),
  });
  const server = new RpcServer<ResourceWorkerMessage>({
    url: config.amqpUrl,
    logger: log,
    name: `${config.namespace}-resource-${workerId}`,
    queue,
    validator: ResourceMessageValidators.toWorker,
    handler: (message, meta) => host?.onMessage(message, { replyTo: meta.replyTo, correlationId: meta.correlationId }),
    // Only the API processes' reply queues are answered; a request that names none is not run.
    replyToPrefix: queues.reply(''),
    expectsReply: (message) => message.type === 'request',
    // A message this worker cannot accept gets an error answer (the API relays it): 414/431 for what is too long, else 400.
    rejectedReply: ({ reason, body }, meta) => {
      const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
      const limit =
        typeof b.key === 'string' && typeof b.query === 'string'
          ? resourceRequestLimitProblem({
              key: b.key,
              query: b.query,
              method: typeof b.method === 'string' ? b.method : undefined,
              headers: isStringRecord(b.headers) ? b.headers : undefined,
            })
          : undefined;
      return errorReply(meta.correlationId, limit?.status ?? 400, limit ? 'Request not accepted' : 'Bad request', `the resource worker cannot accept this request: ${limit?.message ?? reason}`);
    },
    maxReplyBytes: config.resourceReplyLimitBytes,
    oversizedReply: (original, bytes, limit) =>
      errorReply(
        String((original as { requestId?: unknown }).requestId ?? ''),
        413,
        'Payload too large',
        `the answer is ${bytes} bytes encoded, over RESOURCE_REPLY_LIMIT_BYTES (${limit}); narrow the request (e.g. fewer rows or columns)`,
      ),
    deadLetter: { exchange: t.exchanges.deadLetter, queue: t.queues.deadLetter, ...deadLetterArguments(config.queueType), queueRole: t.queueRole(queue) },
  });
  host = new ResourceHost<R>({
    type,
    workerId,
    directory,
    timings,
    config,
    logger: log,
    reply: (target, body) => (target.replyTo ? server.reply(target.replyTo, target.correlationId, body) : false),
    transportReady: () => server.ready,
  });
  const owner = host;
  resourceOwnedKeys(() => owner.held.length);
  const listener = await serveMetrics({ config, logger: log, readiness: async () => ({ rabbitmq: server.ready, redis: await redisAnswers(redis) }) });

  const shutdown = createShutdown({
    logger: log,
    timeoutMs: config.shutdownTimeoutMs,
    steps: [
      { name: 'close and release resources', run: () => host!.stop(config.shutdownTimeoutMs / 2) },
      { name: 'close rpc', run: () => server.close() },
      { name: 'close redis', run: () => redis.quit() },
      { name: 'close metrics listener', run: () => listener.close() },
    ],
  });
  installSignalHandlers(shutdown, log, { exitWithParent: config.exitWithParent });

  await waitForRedis(redis, 60_000);
  // The queue exists before the worker is registered, so the API never routes to a worker it cannot reach.
  await server.start();
  await host.start();
  log.info({ queue, ttlMs: timings.ttlMs, renewEveryMs: timings.renewEveryMs, safetyMarginMs: timings.safetyMarginMs }, 'worker ready');
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}
