import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { coalesceWrites } from './socket-tuning.ts';
import type { Channel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Logger } from '@lookup/logging';
import { maskUrl } from '@lookup/config';
import type { Validator } from '@lookup/contracts';

/**
 * Request/reply over RabbitMQ for the pinned-resource proxy: each resource worker consumes its own queue, each
 * API process an exclusive reply queue; replies are matched by correlation id. Both queues are exclusive and
 * auto-deleted, so they vanish with their process's connection: a request for a dead worker comes back as
 * unroutable (a mandatory publish) instead of waiting in a queue nobody reads. Requests carry a per-message TTL,
 * so a request nobody took in time is dropped by the broker rather than run late.
 *
 * Each side keeps its own connection (reconnecting with backoff), separate from the Broker's.
 */

type Connection = Awaited<ReturnType<typeof amqp.connect>>;

/** Queue names of the resource RPC, all under the suite's NAMESPACE. */
export function resourceQueues(namespace: string) {
  return {
    worker: (workerId: string) => `${namespace}.resource.${workerId}`,
    reply: (instanceId: string) => `${namespace}.resource-reply.${instanceId}`,
  };
}

interface LinkOptions {
  url: string;
  logger: Logger;
  name: string;
  /** Declares queues and consumers on a fresh connection. */
  setup: (connection: Connection) => Promise<void>;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

/** One self-healing AMQP connection: emits 'connected' after setup, 'disconnected' when lost. */
class Link extends EventEmitter {
  connection?: Connection;
  private closing = false;
  private connecting?: Promise<void>;

  constructor(private readonly options: LinkOptions) {
    super();
  }

  get ready(): boolean {
    return this.connection !== undefined && !this.closing;
  }

  start(): Promise<void> {
    this.connecting ??= this.loop().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async loop(): Promise<void> {
    const min = this.options.reconnectMinMs ?? 500;
    const max = this.options.reconnectMaxMs ?? 30_000;
    for (let attempt = 0; !this.closing; attempt++) {
      let connection: Connection | undefined;
      try {
        const url = new URL(this.options.url);
        if (!url.searchParams.has('heartbeat')) url.searchParams.set('heartbeat', '10');
        // Low latency, frames coalesced per event-loop turn (see socket-tuning.ts).
        connection = await amqp.connect(url.toString(), { clientProperties: { connection_name: this.options.name }, noDelay: true });
        coalesceWrites(connection);
        connection.on('error', (err: Error) => this.options.logger.warn({ err: err.message }, 'rpc connection error'));
        await this.options.setup(connection);
        if (this.closing) {
          await connection.close().catch(() => undefined);
          return;
        }
        this.connection = connection;
        const c = connection;
        connection.on('close', () => {
          if (this.connection !== c) return;
          this.connection = undefined;
          if (this.closing) return;
          this.options.logger.warn('rpc connection lost; reconnecting');
          this.emit('disconnected');
          void this.start().catch(() => undefined);
        });
        this.options.logger.info({ amqp: maskUrl(this.options.url) }, 'rpc connected');
        this.emit('connected');
        return;
      } catch (err) {
        await connection?.close().catch(() => undefined);
        const base = Math.min(max, min * 2 ** Math.min(attempt, 10));
        const delay = Math.round(base / 2 + Math.random() * (base / 2));
        this.options.logger.warn({ err: (err as Error).message, retryInMs: delay }, 'rpc connect failed');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    const c = this.connection;
    this.connection = undefined;
    if (c) await c.close().catch(() => undefined);
  }
}

export type RpcOutcome<R> =
  | { type: 'reply'; body: R }
  /** No queue took the request: the worker's queue does not exist (the worker is gone). */
  | { type: 'unroutable' }
  /** No reply within the timeout. */
  | { type: 'timeout' }
  /** Not connected to RabbitMQ, or the broker refused the publish. */
  | { type: 'unavailable'; message: string };

export interface RpcClientOptions<R> {
  url: string;
  logger: Logger;
  /** Connection name shown in the RabbitMQ console. */
  name: string;
  /** This process's exclusive reply queue. */
  replyQueue: string;
  /** Schema of replies; an invalid reply is logged and dropped. */
  validator: Validator<R>;
}

interface Pending<R> {
  resolve: (outcome: RpcOutcome<R>) => void;
  timer: NodeJS.Timeout;
}

/** The requesting side (the API): publishes requests with reply-to and a correlation id, and matches replies. */
export class RpcClient<R> {
  private readonly link: Link;
  private channel?: ConfirmChannel;
  private readonly pending = new Map<string, Pending<R>>();
  private readonly returned = new Set<string>();

  constructor(private readonly options: RpcClientOptions<R>) {
    this.link = new Link({ url: options.url, logger: options.logger, name: options.name, setup: (c) => this.setup(c) });
  }

  get ready(): boolean {
    return this.link.ready && this.channel !== undefined;
  }

  /** Connects (retrying until it succeeds or close() is called). */
  start(): Promise<void> {
    return this.link.start();
  }

  private async setup(connection: Connection): Promise<void> {
    const channel = await connection.createConfirmChannel();
    channel.on('error', (err: Error) => this.options.logger.warn({ err: err.message }, 'rpc channel error'));
    channel.on('return', (msg: ConsumeMessage) => {
      if (msg.properties.messageId) this.returned.add(String(msg.properties.messageId));
    });
    channel.on('close', () => {
      if (this.channel === channel) this.channel = undefined;
    });
    await channel.assertQueue(this.options.replyQueue, { exclusive: true, autoDelete: true, durable: false });
    await channel.consume(this.options.replyQueue, (msg) => msg && this.onReply(msg), { noAck: true });
    this.channel = channel;
  }

  private onReply(msg: ConsumeMessage): void {
    const id = msg.properties.correlationId ? String(msg.properties.correlationId) : undefined;
    const pending = id ? this.pending.get(id) : undefined;
    if (!id || !pending) return; // late reply to a request already answered (e.g. 504)
    let body: unknown;
    try {
      body = JSON.parse(msg.content.toString('utf8'));
    } catch {
      this.options.logger.warn({ correlationId: id }, 'rpc reply is not JSON; dropped');
      return;
    }
    if (!this.options.validator.check(body)) {
      this.options.logger.warn({ correlationId: id, errors: this.options.validator.errors(body) }, 'rpc reply fails its schema; dropped');
      return;
    }
    this.pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve({ type: 'reply', body });
  }

  /**
   * Sends `body` to `queue` and waits up to `timeoutMs` for the reply with the same correlation id. The request
   * expires in the queue after `timeoutMs`, so a worker that frees up later never runs it.
   */
  async request(queue: string, body: unknown, { correlationId, timeoutMs }: { correlationId: string; timeoutMs: number }): Promise<RpcOutcome<R>> {
    const wait = new Promise<RpcOutcome<R>>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(correlationId);
        resolve({ type: 'timeout' });
      }, Math.max(1, timeoutMs));
      this.pending.set(correlationId, { resolve, timer });
    });
    const sent = await this.publish(queue, body, { correlationId, replyTo: this.options.replyQueue, expirationMs: timeoutMs });
    if (sent !== 'ok') {
      const p = this.pending.get(correlationId);
      if (p) {
        this.pending.delete(correlationId);
        clearTimeout(p.timer);
        p.resolve(sent === 'unroutable' ? { type: 'unroutable' } : { type: 'unavailable', message: sent });
      }
    }
    return wait;
  }

  /** Fire-and-forget (with a publisher confirm): e.g. telling a worker to abandon a request. */
  async send(queue: string, body: unknown, { correlationId, expirationMs }: { correlationId: string; expirationMs: number }): Promise<boolean> {
    return (await this.publish(queue, body, { correlationId, expirationMs })) === 'ok';
  }

  private async publish(
    queue: string,
    body: unknown,
    { correlationId, replyTo, expirationMs }: { correlationId: string; replyTo?: string; expirationMs: number },
  ): Promise<'ok' | 'unroutable' | string> {
    const channel = this.channel;
    if (!channel) return 'not connected to RabbitMQ';
    const messageId = randomUUID();
    return new Promise((resolve) => {
      try {
        channel.publish('', queue, Buffer.from(JSON.stringify(body)), {
          mandatory: true,
          persistent: false,
          contentType: 'application/json',
          messageId,
          correlationId,
          replyTo,
          expiration: String(Math.max(1, Math.ceil(expirationMs))),
          timestamp: Math.floor(Date.now() / 1000),
        }, (err) => {
          if (err) return resolve(`broker refused the message: ${String((err as Error)?.message ?? err)}`);
          resolve(this.returned.delete(messageId) ? 'unroutable' : 'ok');
        });
      } catch (err) {
        resolve(`publish failed: ${(err as Error).message}`);
      }
    });
  }

  async close(): Promise<void> {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve({ type: 'unavailable', message: 'shutting down' });
      this.pending.delete(id);
    }
    await this.link.close();
  }
}

export interface RpcRequestMeta {
  correlationId: string;
  replyTo: string | undefined;
  messageId: string | undefined;
}

export interface RpcServerOptions<T> {
  url: string;
  logger: Logger;
  name: string;
  /** The queue this process serves (exclusive to its connection). */
  queue: string;
  validator: Validator<T>;
  /** Called for each valid message, in arrival order; replies go through `reply()`. */
  handler: (body: T, meta: RpcRequestMeta) => void;
}

/**
 * The serving side (a resource worker): consumes its own exclusive queue (auto-ack: a request is at most once;
 * a worker that dies mid-request leaves the API to time out), validates each message, and replies to its
 * reply-to queue. Emits 'connected' and 'disconnected'.
 */
export class RpcServer<T> extends EventEmitter {
  private readonly link: Link;
  private channel?: Channel;

  constructor(private readonly options: RpcServerOptions<T>) {
    super();
    this.link = new Link({ url: options.url, logger: options.logger, name: options.name, setup: (c) => this.setup(c) });
    this.link.on('connected', () => this.emit('connected'));
    this.link.on('disconnected', () => this.emit('disconnected'));
  }

  get ready(): boolean {
    return this.link.ready && this.channel !== undefined;
  }

  start(): Promise<void> {
    return this.link.start();
  }

  private async setup(connection: Connection): Promise<void> {
    const channel = await connection.createChannel();
    channel.on('error', (err: Error) => this.options.logger.warn({ err: err.message }, 'rpc channel error'));
    channel.on('close', () => {
      if (this.channel === channel) this.channel = undefined;
    });
    await channel.assertQueue(this.options.queue, { exclusive: true, autoDelete: true, durable: false });
    await channel.consume(this.options.queue, (msg) => msg && this.onMessage(msg), { noAck: true });
    this.channel = channel;
  }

  private onMessage(msg: ConsumeMessage): void {
    let body: unknown;
    try {
      body = JSON.parse(msg.content.toString('utf8'));
    } catch {
      this.options.logger.warn({ messageId: msg.properties.messageId }, 'rpc request is not JSON; dropped');
      return;
    }
    if (!this.options.validator.check(body)) {
      this.options.logger.warn({ messageId: msg.properties.messageId, errors: this.options.validator.errors(body) }, 'rpc request fails its schema; dropped');
      return;
    }
    this.options.handler(body, {
      correlationId: String(msg.properties.correlationId ?? ''),
      replyTo: msg.properties.replyTo ? String(msg.properties.replyTo) : undefined,
      messageId: msg.properties.messageId ? String(msg.properties.messageId) : undefined,
    });
  }

  /** Sends a reply; false when it could not be sent (not connected). The API then times out. */
  reply(replyTo: string, correlationId: string, body: unknown): boolean {
    const channel = this.channel;
    if (!channel) return false;
    try {
      // sendToQueue returning false only means "write buffer full": the message is still queued for sending.
      channel.sendToQueue(replyTo, Buffer.from(JSON.stringify(body)), {
        correlationId,
        contentType: 'application/json',
        persistent: false,
      });
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.link.close();
  }
}
