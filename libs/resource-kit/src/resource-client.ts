import {
  ResourceMessageValidators,
  type ResourceCancelMessage,
  type ResourceReplyMessage,
  type ResourceRequestMessage,
} from '@lookup/contracts';
import type { Logger } from '@lookup/logging';
import { RpcClient, resourceQueues, type RpcOutcome } from '@lookup/messaging';

/**
 * Largest encoded request a client publishes: the body (base64, so 4/3 of RESOURCE_BODY_LIMIT_BYTES) plus room for
 * headers, key and query. RESOURCE_BODY_LIMIT_BYTES is at most 64 MiB, so this stays below RabbitMQ's 128 MiB.
 */
export function maxRequestBytes(bodyLimitBytes: number): number {
  return Math.ceil((bodyLimitBytes * 4) / 3) + 256 * 1024;
}

export interface ResourceClientOptions {
  url: string;
  namespace: string;
  logger: Logger;
  /** Connection name shown in the RabbitMQ console. */
  name: string;
  /** Names this process's reply queue (`<ns>.resource-reply.<instanceId>`); unique per process. */
  instanceId: string;
  /** RESOURCE_BODY_LIMIT_BYTES: sizes the largest request sent (maxRequestBytes). */
  bodyLimitBytes: number;
}

/**
 * The requesting end of the resource protocol, the counterpart of ResourceHost (the API uses it): sends a request
 * to the queue of the worker that owns its key (`<ns>.resource.<workerId>`) and waits for the reply on this
 * process's reply queue, or tells a worker to abandon a request. On its own RPC connection (rpc.ts), apart from
 * the job traffic's. Replies are checked against the protocol's schema.
 */
export class ResourceClient {
  private readonly rpc: RpcClient<ResourceReplyMessage>;
  private readonly queues: ReturnType<typeof resourceQueues>;

  constructor(options: ResourceClientOptions) {
    this.queues = resourceQueues(options.namespace);
    this.rpc = new RpcClient<ResourceReplyMessage>({
      url: options.url,
      logger: options.logger,
      name: options.name,
      replyQueue: this.queues.reply(options.instanceId),
      validator: ResourceMessageValidators.reply,
      maxRequestBytes: maxRequestBytes(options.bodyLimitBytes),
    });
  }

  get ready(): boolean {
    return this.rpc.ready;
  }

  /** Connects (retrying until it succeeds or close() is called). */
  start(): Promise<void> {
    return this.rpc.start();
  }

  close(): Promise<void> {
    return this.rpc.close();
  }

  /** Sends `message` to worker `owner` and waits up to `timeoutMs` for its reply (the request expires with it). */
  request(owner: string, message: ResourceRequestMessage, timeoutMs: number): Promise<RpcOutcome<ResourceReplyMessage>> {
    return this.rpc.request(this.queues.worker(owner), message, { correlationId: message.requestId, timeoutMs });
  }

  /** Tells worker `owner` to abandon a request (fire-and-forget with a confirm); false when it was not sent. */
  cancel(owner: string, message: ResourceCancelMessage, expirationMs: number): Promise<boolean> {
    return this.rpc.send(this.queues.worker(owner), message, { correlationId: message.requestId, expirationMs });
  }
}
