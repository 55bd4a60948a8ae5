import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { Channel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Logger } from '@lookup/logging';
import type { Validator } from '@lookup/contracts';
import { RecoveringChannel } from './connection.ts';
import { PUBLICATIONS, PUBLISH_DEFAULTS, QUEUE_DEFAULTS } from './defaults.ts';
import { countDeadLetter, type DeadLetterCode } from './dead-letter-codes.ts';

/**
 * Request/reply over RabbitMQ for the pinned-resource proxy: each resource worker consumes its own queue, each
 * API process an exclusive reply queue; replies are matched by correlation id. Both queues are exclusive and
 * auto-deleted, so they vanish with their process's connection: a request for a dead worker comes back as
 * unroutable (a mandatory publish) instead of waiting in a queue nobody reads. Requests carry a per-message TTL,
 * so a request nobody took in time is dropped by the broker rather than run late.
 *
 * Each side keeps its own connection and channel (a RecoveringChannel: connection.ts), separate from the Broker's,
 * so resource traffic cannot block job traffic. The queue names are the topology's (topology.ts: `resource`,
 * `resourceReply`).
 */

export type RpcOutcome<R> =
  | { type: 'reply'; body: R }
  /** No queue took the request: the worker's queue does not exist (the worker is gone). */
  | { type: 'unroutable' }
  /** No reply within the timeout. */
  | { type: 'timeout' }
  /** Not connected to RabbitMQ, or the broker refused the publish. */
  | { type: 'unavailable'; message: string }
  /** The encoded request is larger than `maxRequestBytes`: it was not sent. */
  | { type: 'too-large'; bytes: number; limit: number }
  /** A reply with this correlation id came back but is not JSON or fails its schema. */
  | { type: 'invalid-reply'; message: string };

export interface RpcClientOptions<R> {
  url: string;
  logger: Logger;
  /** Connection name shown in the RabbitMQ console. */
  name: string;
  /** This process's exclusive reply queue. */
  replyQueue: string;
  /** Schema of replies; an invalid reply answers its request with `invalid-reply`. */
  validator: Validator<R>;
  /** Largest encoded request this client publishes (keep it below RabbitMQ's max_message_size). */
  maxRequestBytes?: number;
}

interface Pending<R> {
  resolve: (outcome: RpcOutcome<R>) => void;
  timer: NodeJS.Timeout;
}

/**
 * The requesting side (the API): publishes requests with reply-to and a correlation id, and matches replies.
 * Its channel and reply queue are re-created when the broker closes them (see RecoveringChannel).
 */
export class RpcClient<R> {
  private readonly link: RecoveringChannel;
  private readonly pending = new Map<string, Pending<R>>();
  private readonly returned = new Set<string>();

  constructor(private readonly options: RpcClientOptions<R>) {
    this.link = new RecoveringChannel({ url: options.url, logger: options.logger, name: options.name, confirm: true, setup: (c) => this.setup(c) });
  }

  get ready(): boolean {
    return this.link.ready;
  }

  /** Connects (retrying until it succeeds or close() is called). */
  start(): Promise<void> {
    return this.link.start();
  }

  private async setup(channel: Channel): Promise<void> {
    channel.on('return', (msg: ConsumeMessage) => {
      if (msg.properties.messageId) this.returned.add(String(msg.properties.messageId));
    });
    await channel.assertQueue(this.options.replyQueue, QUEUE_DEFAULTS.exclusive);
    await channel.consume(
      this.options.replyQueue,
      (msg) => (msg ? this.onReply(msg) : this.link.recycle(channel, 'reply consumer cancelled by the broker')),
      { noAck: true },
    );
  }

  private onReply(msg: ConsumeMessage): void {
    const id = msg.properties.correlationId ? String(msg.properties.correlationId) : undefined;
    const pending = id ? this.pending.get(id) : undefined;
    if (!id || !pending) return; // late reply to a request already answered (e.g. 504)
    let outcome: RpcOutcome<R>;
    let body: unknown;
    try {
      body = JSON.parse(msg.content.toString('utf8'));
    } catch {
      body = undefined;
    }
    if (body === undefined) {
      this.options.logger.warn({ correlationId: id }, 'rpc reply is not JSON');
      outcome = { type: 'invalid-reply', message: 'the reply is not JSON' };
    } else if (!this.options.validator.check(body)) {
      const errors = this.options.validator.errors(body);
      this.options.logger.warn({ correlationId: id, errors }, 'rpc reply fails its schema');
      outcome = { type: 'invalid-reply', message: `the reply fails its schema: ${errors.join('; ').slice(0, 500)}` };
    } else {
      outcome = { type: 'reply', body };
    }
    this.pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(outcome);
  }

  /**
   * Sends `body` to `queue` and waits up to `timeoutMs` for the reply with the same correlation id. The request
   * expires in the queue after `timeoutMs`, so a worker that frees up later never runs it.
   */
  request(queue: string, body: unknown, { correlationId, timeoutMs }: { correlationId: string; timeoutMs: number }): Promise<RpcOutcome<R>> {
    const settle = (outcome: RpcOutcome<R>) => {
      const p = this.pending.get(correlationId);
      if (!p) return;
      this.pending.delete(correlationId);
      clearTimeout(p.timer);
      p.resolve(outcome);
    };
    const wait = new Promise<RpcOutcome<R>>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(correlationId);
        resolve({ type: 'timeout' });
      }, Math.max(1, timeoutMs));
      this.pending.set(correlationId, { resolve, timer });
    });
    // Not awaited before `wait`: a confirm that never comes (channel lost mid-publish) ends in the timeout.
    void this.publish(queue, body, { correlationId, replyTo: this.options.replyQueue, expirationMs: timeoutMs }).then((sent) => {
      if (sent === 'ok') return;
      if (sent === 'unroutable') settle({ type: 'unroutable' });
      else if (typeof sent === 'object') settle({ type: 'too-large', ...sent });
      else settle({ type: 'unavailable', message: sent });
    });
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
  ): Promise<'ok' | 'unroutable' | { bytes: number; limit: number } | string> {
    const channel = this.link.channel as ConfirmChannel | undefined;
    if (!channel) return 'not connected to RabbitMQ';
    const content = Buffer.from(JSON.stringify(body));
    const limit = this.options.maxRequestBytes;
    if (limit !== undefined && content.length > limit) {
      this.options.logger.warn({ correlationId, bytes: content.length, limit }, 'rpc request over the size limit; not sent');
      return { bytes: content.length, limit };
    }
    const messageId = randomUUID();
    return new Promise((resolve) => {
      try {
        channel.publish(PUBLICATIONS.rpcRequest.exchange, queue, content, {
          mandatory: PUBLICATIONS.rpcRequest.mandatory,
          persistent: PUBLICATIONS.rpcRequest.persistent,
          contentType: PUBLISH_DEFAULTS.contentType,
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
  /** Replies go only to queues whose name starts with this (the requesters' reply queues); others are not answered. */
  replyToPrefix?: string;
  /** Whether a valid message needs an answer (a request does, a cancel does not); one that cannot get one is not run. */
  expectsReply?: (body: T) => boolean;
  /** The answer to a message this server cannot accept (not JSON, fails its schema); undefined: none. */
  rejectedReply?: (problem: { reason: string; body: unknown }, meta: RpcRequestMeta) => unknown;
  /** Largest encoded reply; a larger one is replaced by `oversizedReply` (keep it below RabbitMQ's max_message_size). */
  maxReplyBytes?: number;
  /** The small reply sent instead of one over `maxReplyBytes`. */
  oversizedReply?: (original: unknown, bytes: number, limit: number) => unknown;
  /**
   * Where a message that cannot be accepted nor answered goes, with its reason in `x-dead-letter-reason` (the
   * suite's dead-letter exchange and queue, declared here as the Broker declares them).
   */
  deadLetter?: {
    exchange: string;
    queue: string;
    /** The queue's declaration arguments (deadLetterArguments()). */
    arguments?: Record<string, unknown>;
    /** `queue` label of lookup_dead_letters_total (topology queueRole). */
    queueRole?: string;
  };
}

/** A correlation id fits an AMQP short string and a reply's requestId. */
const MAX_CORRELATION_ID = 128;

/**
 * The serving side (a resource worker): consumes its own exclusive queue (auto-ack: a request is at most once;
 * a worker that dies mid-request leaves the API to time out), validates each message, and replies to its
 * reply-to queue. A message it cannot accept is answered with `rejectedReply` when it names a usable reply queue
 * and correlation id, and dead-lettered with the reason otherwise; never dropped silently. Its channel, queue and
 * consumer are re-created when the broker closes them (see RecoveringChannel). Emits 'connected' and 'disconnected'.
 */
export class RpcServer<T> extends EventEmitter {
  private readonly link: RecoveringChannel;

  constructor(private readonly options: RpcServerOptions<T>) {
    super();
    this.link = new RecoveringChannel({ url: options.url, logger: options.logger, name: options.name, confirm: false, setup: (c) => this.setup(c) });
    this.link.on('connected', () => this.emit('connected'));
    this.link.on('disconnected', () => this.emit('disconnected'));
  }

  get ready(): boolean {
    return this.link.ready;
  }

  start(): Promise<void> {
    return this.link.start();
  }

  private async setup(channel: Channel): Promise<void> {
    const dl = this.options.deadLetter;
    if (dl) {
      // Same declarations as the Broker's topology (idempotent), so a dead letter is never published to a missing
      // exchange (which would close this channel with 404).
      await channel.assertExchange(dl.exchange, 'fanout', QUEUE_DEFAULTS.durable);
      await channel.assertQueue(dl.queue, { ...QUEUE_DEFAULTS.durable, arguments: dl.arguments });
      await channel.bindQueue(dl.queue, dl.exchange, '');
    }
    await channel.assertQueue(this.options.queue, QUEUE_DEFAULTS.exclusive);
    await channel.consume(
      this.options.queue,
      (msg) => (msg ? this.onMessage(msg) : this.link.recycle(channel, 'consumer cancelled by the broker')),
      { noAck: true },
    );
  }

  private replyToAllowed(replyTo: string | undefined): boolean {
    if (!replyTo) return false;
    return this.options.replyToPrefix === undefined || (replyTo.startsWith(this.options.replyToPrefix) && replyTo.length > this.options.replyToPrefix.length);
  }

  private onMessage(msg: ConsumeMessage): void {
    const rawReplyTo = msg.properties.replyTo ? String(msg.properties.replyTo) : undefined;
    const correlationId = String(msg.properties.correlationId ?? '');
    const answerable = this.replyToAllowed(rawReplyTo) && correlationId.length > 0 && correlationId.length <= MAX_CORRELATION_ID;
    const meta: RpcRequestMeta = {
      correlationId,
      replyTo: answerable ? rawReplyTo : undefined,
      messageId: msg.properties.messageId ? String(msg.properties.messageId) : undefined,
    };
    let body: unknown;
    try {
      body = JSON.parse(msg.content.toString('utf8'));
    } catch {
      this.reject(msg, meta, 'invalid_json', 'invalid JSON', undefined);
      return;
    }
    if (!this.options.validator.check(body)) {
      this.reject(msg, meta, 'schema_invalid', `schema validation failed: ${this.options.validator.errors(body).join('; ')}`, body);
      return;
    }
    if (!answerable && this.options.expectsReply?.(body)) {
      const why = !rawReplyTo
        ? 'no reply-to'
        : !this.replyToAllowed(rawReplyTo)
          ? `reply-to '${rawReplyTo.slice(0, 200)}' is not a reply queue of this suite`
          : 'no usable correlation id';
      this.deadLetter(msg, 'unanswerable', `request cannot be answered: ${why}`);
      return;
    }
    this.options.handler(body, meta);
  }

  /** A message that cannot be accepted: answered when possible, else dead-lettered; logged with its reason either way. */
  private reject(msg: ConsumeMessage, meta: RpcRequestMeta, code: DeadLetterCode, reason: string, body: unknown): void {
    if (meta.replyTo && this.options.rejectedReply) {
      const answer = this.options.rejectedReply({ reason, body }, meta);
      if (answer !== undefined && this.reply(meta.replyTo, meta.correlationId, answer)) {
        this.options.logger.warn({ messageId: meta.messageId, correlationId: meta.correlationId, reason: reason.slice(0, 500) }, 'rpc request rejected; answered with an error');
        return;
      }
    }
    this.deadLetter(msg, code, reason);
  }

  private deadLetter(msg: ConsumeMessage, code: DeadLetterCode, reason: string): void {
    const log = { messageId: msg.properties.messageId, correlationId: msg.properties.correlationId, reason: reason.slice(0, 500) };
    const dl = this.options.deadLetter;
    const channel = this.link.channel;
    if (!dl || !channel) {
      this.options.logger.error(log, 'rpc message rejected and not answerable; dropped');
      return;
    }
    this.options.logger.error(log, 'rpc message rejected and not answerable; dead-lettering it');
    try {
      channel.publish(dl.exchange, msg.fields.routingKey, msg.content, {
        ...msg.properties,
        // A dead letter keeps no TTL: it stays in the dead-letter queue until an operator looks at it.
        expiration: undefined,
        persistent: PUBLICATIONS.deadLetter.persistent,
        messageId: msg.properties.messageId ?? randomUUID(),
        headers: {
          ...(msg.properties.headers ?? {}),
          'x-dead-letter-reason': reason.slice(0, 2000),
          'x-original-queue': this.options.queue,
          'x-original-exchange': msg.fields.exchange,
          'x-original-routing-key': msg.fields.routingKey,
          'x-dead-lettered-at': new Date().toISOString(),
        },
      });
      countDeadLetter(dl.queueRole ?? 'other', code);
    } catch (err) {
      this.options.logger.warn({ ...log, err: (err as Error).message }, 'dead-letter publish failed');
    }
  }

  /**
   * Sends a reply; false when it could not be sent (not connected, or a reply-to that is not a reply queue). A reply
   * whose encoding exceeds `maxReplyBytes` is replaced by `oversizedReply` (the requester gets an error for that
   * request; the channel stays open).
   */
  reply(replyTo: string, correlationId: string, body: unknown): boolean {
    const channel = this.link.channel;
    if (!channel || !this.replyToAllowed(replyTo)) return false;
    try {
      let content = Buffer.from(JSON.stringify(body));
      const limit = this.options.maxReplyBytes;
      if (limit !== undefined && content.length > limit) {
        this.options.logger.warn({ correlationId, bytes: content.length, limit }, 'rpc reply over the size limit; answering with an error instead');
        const replacement = this.options.oversizedReply?.(body, content.length, limit);
        if (replacement === undefined) return false;
        content = Buffer.from(JSON.stringify(replacement));
        if (content.length > limit) return false;
      }
      // sendToQueue returning false only means "write buffer full": the message is still queued for sending.
      channel.sendToQueue(replyTo, content, {
        correlationId,
        contentType: PUBLISH_DEFAULTS.contentType,
        persistent: PUBLICATIONS.rpcReply.persistent,
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
