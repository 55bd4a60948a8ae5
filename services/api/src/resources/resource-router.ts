import { randomUUID } from 'node:crypto';
import type { Redis } from '@lookup/store';
import type { Config } from '@lookup/config';
import {
  ResourceMessageValidators,
  resourceRequestLimitProblem,
  type ResourceAdminResult,
  type ResourceCancelMessage,
  type ResourcePin,
  type ResourceRequestMessage,
  type ResourceWorkerInfo,
} from '@lookup/contracts';
import { createResourceDirectory, leaseTimings, type ResourceDirectory } from '@lookup/coordination';
import type { Logger } from '@lookup/logging';
import { ResourceClient } from '@lookup/resource-kit';
import { resourceFailovers } from '@lookup/metrics';

export interface ProxyRequest {
  key: string;
  method: string;
  query: string;
  headers: Record<string, string>;
  body: Buffer;
  /** The API's request id, for logs. */
  requestId: string;
}

export type ProxyResult =
  | { type: 'response'; status: number; headers: Record<string, string>; body: Buffer; owner: string; epoch: number }
  /** No live worker can take the key. */
  | { type: 'no-workers'; retryAfterSeconds: number }
  /** The owner did not answer within the proxy timeout; it has been told to abandon the request. */
  | { type: 'timeout'; owner?: string; epoch?: number }
  /** Redis or RabbitMQ cannot be reached, or the key could not be placed before the proxy timeout. */
  | { type: 'unavailable'; message: string; retryAfterSeconds: number }
  /**
   * This request only failed, with `status` and `{error, message}`: the worker could not accept it (400/414/431)
   * or its answer was over RESOURCE_REPLY_LIMIT_BYTES (413); the request was too large to send (413); the owner's
   * reply was unreadable (502).
   */
  | { type: 'error'; status: number; error: string; message: string; owner?: string; epoch?: number };

export type AdminResult = ResourceAdminResult & { statusCode: 200 | 202 | 404 | 409 };

/** What the API's resource routes need; main.ts builds the real one, tests pass fakes. */
export interface ResourceRouter {
  forward(request: ProxyRequest): Promise<ProxyResult>;
  listWorkers(): Promise<ResourceWorkerInfo[]>;
  listPins(): Promise<ResourcePin[]>;
  move(key: string, to?: string): Promise<AdminResult>;
  unpin(key: string): Promise<AdminResult>;
  drain(workerId: string): Promise<AdminResult>;
}

export interface ResourceRouterDeps {
  redis: Redis;
  config: Readonly<Config>;
  logger: Logger;
  /** Overrides, for tests. */
  directory?: ResourceDirectory;
  instanceId?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Routes pinned-resource requests: places the key in the Redis directory (so every API replica agrees and
 * restarts lose nothing), sends the request to the owner through the ResourceClient (resource-kit) and waits for
 * the reply. A refusal (the worker no longer holds the key at that epoch) or an unroutable request (the worker is
 * gone) makes it wait for the lease to be released or to run out, then place the key again, all within
 * RESOURCE_PROXY_TIMEOUT_MS.
 */
export class AmqpResourceRouter implements ResourceRouter {
  readonly directory: ResourceDirectory;
  private readonly client: ResourceClient;
  private readonly ttlMs: number;
  /** lookup_resource_failovers_total: counted where a key is placed on a new owner (directory.place). */
  private readonly failovers = resourceFailovers();

  constructor(private readonly deps: ResourceRouterDeps) {
    const { config } = deps;
    this.ttlMs = leaseTimings({ heartbeatMs: config.resourceHeartbeatMs, maxMissed: config.resourceMaxMissed }).ttlMs;
    this.directory = deps.directory ?? createResourceDirectory({ redis: deps.redis, namespace: config.namespace, ttlMs: this.ttlMs });
    this.client = new ResourceClient({
      url: config.amqpUrl,
      namespace: config.namespace,
      logger: deps.logger.child({ component: 'resource-router' }),
      name: `${config.namespace}-api-resources`,
      instanceId: deps.instanceId ?? `${process.pid}-${randomUUID().slice(0, 8)}`,
      bodyLimitBytes: config.resourceBodyLimitBytes,
    });
  }

  get ready(): boolean {
    return this.client.ready;
  }

  start(): Promise<void> {
    return this.client.start();
  }

  close(): Promise<void> {
    return this.client.close();
  }

  async forward(request: ProxyRequest): Promise<ProxyResult> {
    const { config, logger } = this.deps;
    const deadline = Date.now() + config.resourceProxyTimeoutMs;
    const retryAfterSeconds = Math.max(1, Math.ceil(this.ttlMs / 1000));
    // What the worker's schema refuses is refused here, at once, before any placement or RPC.
    const limit = resourceRequestLimitProblem(request);
    if (limit) return { type: 'error', status: limit.status, error: HTTP_ERROR_TITLES[limit.status] ?? 'Bad request', message: limit.message };
    const body = request.body.toString('base64');
    const probe: ResourceRequestMessage = { type: 'request', requestId: randomUUID(), key: request.key, epoch: 1, method: request.method, query: request.query, headers: request.headers, body, deadline };
    if (!ResourceMessageValidators.toWorker.check(probe)) {
      return { type: 'error', status: 400, error: 'Bad request', message: `the request cannot be forwarded: ${ResourceMessageValidators.toWorker.errors(probe).join('; ').slice(0, 500)}` };
    }
    let refusals = 0;
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) return { type: 'unavailable', message: `could not reach an owner for '${request.key}' in time`, retryAfterSeconds };
      let placement;
      try {
        placement = await this.directory.place(request.key);
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'resource placement failed');
        return { type: 'unavailable', message: 'Redis is unavailable', retryAfterSeconds: 5 };
      }
      if (!placement) return { type: 'no-workers', retryAfterSeconds };
      if (placement.failover) {
        this.failovers.inc();
        logger.info({ key: request.key, owner: placement.owner, epoch: placement.epoch }, 'resource failed over to a new owner');
      }
      const requestId = randomUUID();
      const message: ResourceRequestMessage = {
        type: 'request',
        requestId,
        key: request.key,
        epoch: placement.epoch,
        method: request.method,
        query: request.query,
        headers: request.headers,
        body,
        deadline,
      };
      const outcome = await this.client.request(placement.owner, message, remaining);
      switch (outcome.type) {
        case 'reply': {
          const reply = outcome.body;
          if (reply.type === 'response') {
            return {
              type: 'response',
              status: reply.status,
              headers: reply.headers,
              body: Buffer.from(reply.body, 'base64'),
              owner: reply.worker,
              epoch: reply.epoch,
            };
          }
          if (reply.type === 'error') {
            logger.info({ key: request.key, owner: reply.worker, status: reply.status, reason: reply.message }, 'owner answered with an error');
            return { type: 'error', status: reply.status, error: reply.error, message: reply.message, owner: reply.worker, epoch: placement.epoch };
          }
          // Refused: the worker does not (or no longer) hold the key at that epoch. Wait a little (the lease is
          // being released or running out), then place again.
          refusals += 1;
          logger.info({ key: request.key, owner: placement.owner, epoch: placement.epoch, reason: reply.reason }, 'owner refused; placing again');
          await sleep(Math.min(25 * 2 ** Math.min(refusals, 5), Math.max(0, deadline - Date.now())));
          continue;
        }
        case 'unroutable':
          // The owner's queue is gone with its connection: it is dead or cut off. Its lease runs out on its own;
          // nobody else may have the key before that.
          logger.info({ key: request.key, owner: placement.owner, remainingMs: placement.remainingMs }, 'owner unreachable; waiting for its lease to run out');
          await sleep(Math.min(Math.max(20, placement.remainingMs + 10), Math.max(0, deadline - Date.now())));
          continue;
        case 'unavailable':
          return { type: 'unavailable', message: `RabbitMQ is unavailable (${outcome.message})`, retryAfterSeconds: 5 };
        case 'too-large':
          return {
            type: 'error',
            status: 413,
            error: 'Payload too large',
            message: `the request is ${outcome.bytes} bytes encoded, over the ${outcome.limit} bytes a resource request may take`,
          };
        case 'invalid-reply':
          return { type: 'error', status: 502, error: 'Bad gateway', message: `the owner's reply was unreadable: ${outcome.message}`, owner: placement.owner, epoch: placement.epoch };
        case 'timeout': {
          const cancel: ResourceCancelMessage = { type: 'cancel', requestId, key: request.key, reason: 'proxy timeout' };
          void this.client.cancel(placement.owner, cancel, config.resourceProxyTimeoutMs).catch(() => false);
          logger.warn({ key: request.key, owner: placement.owner, epoch: placement.epoch }, 'owner did not answer in time; told it to abandon the request');
          return { type: 'timeout', owner: placement.owner, epoch: placement.epoch };
        }
      }
    }
  }

  listWorkers(): Promise<ResourceWorkerInfo[]> {
    return this.directory.listWorkers();
  }

  listPins(): Promise<ResourcePin[]> {
    return this.directory.listPins();
  }

  /** Waits (up to about two lease periods) until the key has no lease; true when released. */
  private async waitReleased(key: string): Promise<boolean> {
    const until = Date.now() + Math.max(2_000, this.ttlMs * 2 + this.deps.config.resourceHeartbeatMs);
    while (Date.now() < until) {
      if (!(await this.directory.lease(key))) return true;
      await sleep(Math.max(10, Math.min(100, this.deps.config.resourceHeartbeatMs / 2)));
    }
    return false;
  }

  async move(key: string, to?: string): Promise<AdminResult> {
    const current = await this.directory.lease(key);
    let target = to;
    if (target === undefined) {
      const candidates = (await this.directory.listWorkers()).filter((w) => w.healthy && !w.draining && w.id !== current?.owner);
      candidates.sort((a, b) => a.resources.length - b.resources.length || a.id.localeCompare(b.id));
      target = candidates[0]?.id;
      if (!target) return { statusCode: 409, key, status: 'no-target', message: 'no other live, non-draining worker to move the key to' };
    }
    const r = await this.directory.requestRelease(key, target);
    if (r.status === 'bad-target') return { statusCode: 409, key, status: 'bad-target', message: `worker '${target}' is not live or is draining` };
    if (r.status === 'already-there') return { statusCode: 200, key, status: 'moved', owner: target, epoch: current?.epoch ?? null, message: `'${key}' is already on ${target}` };
    if (r.status === 'pending' && !(await this.waitReleased(key))) {
      return { statusCode: 202, key, status: 'pending', owner: r.owner ?? null, message: `asked ${r.owner} to release '${key}'; it moves to ${target} once released` };
    }
    const placed = await this.directory.place(key);
    if (!placed) return { statusCode: 202, key, status: 'pending', owner: null, message: 'released; no live worker took it yet' };
    return { statusCode: 200, key, status: 'moved', owner: placed.owner, epoch: placed.epoch, message: `'${key}' is now pinned to ${placed.owner}` };
  }

  async unpin(key: string): Promise<AdminResult> {
    const r = await this.directory.requestRelease(key);
    if (r.status === 'not-pinned') return { statusCode: 404, key, status: 'not-pinned', message: `'${key}' is not pinned` };
    if (r.status === 'pending' && !(await this.waitReleased(key))) {
      return { statusCode: 202, key, status: 'pending', owner: r.owner ?? null, message: `asked ${r.owner} to release '${key}'` };
    }
    return { statusCode: 200, key, status: 'released', owner: null, message: `'${key}' is unpinned; the next request places it afresh` };
  }

  async drain(workerId: string): Promise<AdminResult> {
    const n = await this.directory.drain(workerId);
    if (n === undefined) return { statusCode: 404, worker: workerId, status: 'unknown-worker', message: `no resource worker '${workerId}'` };
    return { statusCode: 202, worker: workerId, status: 'draining', message: `${workerId} takes no new keys and releases its ${n} key(s) on its next heartbeat` };
  }
}

const HTTP_ERROR_TITLES: Record<number, string> = { 400: 'Bad request', 414: 'URI too long', 431: 'Request header fields too large' };

export function createResourceRouter(deps: ResourceRouterDeps): AmqpResourceRouter {
  return new AmqpResourceRouter(deps);
}
