import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { ConfirmChannel, Channel, ConsumeMessage, Options } from 'amqplib';
import { tracingActive, type Logger } from '@lookup/logging';
import type { Validator } from '@lookup/contracts';
import type { Config } from '@lookup/config';
import { declarations, delayMsBucket, topology, type QueueType, type Topology } from './topology.ts';
import { MessagingError } from './errors.ts';
import { AmqpConnection, type Connection } from './connection.ts';
import { CONSUME_DEFAULTS, PUBLICATIONS, PUBLISH_DEFAULTS, QUEUE_DEFAULTS } from './defaults.ts';
import { isUtf8, jsonDepth, MAX_MESSAGE_BYTES, MAX_MESSAGE_DEPTH } from './json-safety.ts';
import { noteDeliveryFailure, traceDelivery, tracePublish } from './trace-context.ts';
import { countDeadLetter, declareDeadLetterMetric, type DeadLetterCode } from './dead-letter-codes.ts';
import { PublishCoalescer, type OutgoingMessage } from './coalescer.ts';
import { decodeEnvelope, ENVELOPE_HEADER, isEnvelope, type EnvelopeItem, type ItemProperties } from './envelope.ts';

export interface BrokerOptions {
  url: string;
  namespace: string;
  logger: Logger;
  /** Connection name shown in the RabbitMQ console. */
  name: string;
  /** Publisher-confirm wait before a publish is reported failed (default PUBLISH_DEFAULTS.confirmTimeoutMs). */
  publishTimeoutMs?: number;
  /** Backoff bounds for reconnecting (default CONNECTION_DEFAULTS). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** Highest attempt of a command (sizes the retry delay queues); every process of a suite must agree. */
  maxAttempts?: number;
  /**
   * The retry backoff (RETRY_BASE_DELAY_MS, RETRY_MAX_DELAY_MS): which delay queues to declare. Omitted: all of
   * them (16 ms to 70 min per service). Processes that disagree declare different queues, never conflicting ones.
   */
  retryDelays?: { baseMs: number; maxMs: number };
  /** QUEUE_TYPE of the durable queues (default classic); every process of a suite must agree (topology.ts). */
  queueType?: QueueType;
  /** CALLBACK_MAX_ATTEMPTS (the saga, which sends callbacks): sizes the callback delay queues. */
  callbackMaxAttempts?: number;
  /**
   * MESSAGE_BATCH_MAX: most items in one envelope of coalesced publishes (`coalesce` publishes of one event-loop
   * turn to the same exchange and routing key; envelope.ts). 1 (the default here) sends every message alone.
   */
  messageBatchMax?: number;
  /**
   * COMMAND_BATCH_MAX: most lookup commands in one envelope (publishes with `workQueue`), at most messageBatchMax. A
   * consumer's prefetch counts envelopes, so a smaller cap keeps a backlog shared between scaled-out workers.
   */
  commandBatchMax?: number;
}

export interface PublishOptions {
  /** Job id: travels as the AMQP correlation id (shown as correlation_id in the management UI). */
  correlationId: string;
  messageId: string;
  /** Unroutable messages are returned and the publish fails (default PUBLISH_DEFAULTS.mandatory: true). */
  mandatory?: boolean;
  headers?: Record<string, unknown>;
  /** Per-message TTL (the retry queue uses it). */
  expiration?: number;
  /** Survives a broker restart (default PUBLISH_DEFAULTS.persistent: true; see PUBLICATIONS). */
  persistent?: boolean;
  /**
   * May share an envelope with other publishes of this event-loop turn to the same exchange and routing key
   * (PUBLICATIONS' `coalesce`; only when messageBatchMax > 1 and without `expiration`). The promise still settles
   * with the confirm of the message it went in.
   */
  coalesce?: boolean;
  /** A command to a work queue: coalesced under commandBatchMax rather than messageBatchMax. */
  workQueue?: boolean;
}

export interface ReceivedMessage<T> {
  body: T;
  raw: ConsumeMessage;
  queue: string;
  redelivered: boolean;
  headers: Record<string, unknown>;
}

export type MessageHandler<T> = (message: ReceivedMessage<T>) => Promise<void>;

export interface ConsumeOptions<T> {
  /** A queue of the topology; or, with `exclusive`, the name of a private queue of this process ('' = server-named). */
  queue: string;
  /**
   * Declare a private queue for this process (exclusive, deleted with its connection, re-declared on every
   * reconnect) bound to these routing keys: for notifications every replica must see (e.g. job.cancelled).
   */
  exclusive?: { bindings: { exchange: string; routingKey: string }[] };
  /** The message's schema; a function picks one by routing key (a queue that takes several message types). */
  validator: Validator<T> | ((routingKey: string) => Validator<T> | undefined);
  prefetch: number;
  handler: MessageHandler<T>;
  /**
   * What to do when the handler throws: 'dead-letter' with a reason, or 'requeue' after `delayMs`.
   * Defaults: errors whose `retryable` is false are dead-lettered, others requeued after a backoff.
   */
  onError?: (err: unknown, message: ReceivedMessage<T>) => { action: 'dead-letter'; reason: string } | { action: 'requeue'; delayMs: number };
  /**
   * Poison guard for messages that crash their consumer: counts deliveries of a redelivered message (the
   * broker only flags redelivery) and dead-letters it past `max`. `count` returns the delivery number.
   */
  deliveryLimit?: { max: number; count: (queue: string, messageId: string) => Promise<number> };
  /** Called after a message was dead-lettered (e.g. to record the failure on its job). Errors are logged. */
  onDeadLetter?: (reason: string, message: ConsumeMessage, body: unknown) => Promise<void>;
}

interface Consumer {
  options: ConsumeOptions<any>;
  channel?: Channel;
  tag?: string;
  stopped?: boolean;
  inFlight: Set<Promise<void>>;
  /** At most `prefetch` handlers at once, whether their messages came alone or in envelopes. */
  slots: Slots;
}

/** What became of one message (plain, or an envelope's item) once it went through validation and its handler. */
type Outcome = { action: 'ack' } | { action: 'requeue'; delayMs: number } | { action: 'dead-letter'; code: DeadLetterCode; reason: string };

/** A small counting semaphore. */
class Slots {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly size: number) {}
  /** Resolves when a slot is taken; undefined (no await) when one was free. */
  acquire(): Promise<void> | undefined {
    if (this.active < this.size) {
      this.active++;
      return undefined;
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One AMQP connection per process (an AmqpConnection: connection.ts), with a confirm channel for publishing and one
 * channel per consumer. On every (re)connect it re-declares the topology and resumes consumers; a channel the
 * broker closes while the connection lives starts it over on a new connection. Emits 'connected' and 'disconnected'.
 */
export class Broker extends EventEmitter {
  readonly topology: Topology;
  private readonly amqp: AmqpConnection;
  /** The live connection once the topology is declared and the publish channel open (set in setup). */
  private connection?: Connection;
  private publishChannel?: ConfirmChannel;
  private readonly consumers: Consumer[] = [];
  private readonly returned = new Set<string>();
  private closing = false;
  private readonly log: Logger;
  /** Whether this process traces (the SDK is started before any service code runs): decided once. */
  private readonly tracing = tracingActive();
  /** Coalesces `coalesce` publishes into envelopes (undefined when messageBatchMax is 1). */
  private readonly coalescer?: PublishCoalescer;
  /** Most commands in one envelope (COMMAND_BATCH_MAX, at most MESSAGE_BATCH_MAX). */
  private readonly commandBatchMax?: number;

  constructor(private readonly options: BrokerOptions) {
    super();
    this.topology = topology(options.namespace);
    this.log = options.logger.child({ component: 'broker' });
    declareDeadLetterMetric();
    if ((options.messageBatchMax ?? 1) > 1) {
      this.coalescer = new PublishCoalescer({ max: options.messageBatchMax!, send: (m) => this.sendMessage(m) });
      this.commandBatchMax = Math.min(options.messageBatchMax!, options.commandBatchMax ?? options.messageBatchMax!);
    }
    this.amqp = new AmqpConnection({
      url: options.url,
      name: options.name,
      logger: this.log,
      label: 'rabbitmq',
      reconnectMinMs: options.reconnectMinMs,
      reconnectMaxMs: options.reconnectMaxMs,
      setup: (connection) => this.setup(connection),
    });
    this.amqp.on('connected', () => this.emit('connected'));
    this.amqp.on('disconnected', () => {
      this.connection = undefined;
      this.publishChannel = undefined;
      for (const c of this.consumers) c.channel = undefined;
      this.emit('disconnected');
    });
  }

  get ready(): boolean {
    return !!this.publishChannel && !this.closing;
  }

  /** Connects (retrying until it succeeds or close() is called) and declares the topology. */
  async start(): Promise<void> {
    await this.amqp.start();
  }

  /** Every new connection: the publish channel, the topology, then every consumer. */
  private async setup(connection: Connection): Promise<void> {
    const publishChannel = await this.amqp.createChannel(connection, true, 'publish');
    publishChannel.on('return', (msg: ConsumeMessage) => {
      if (msg.properties.messageId) this.returned.add(String(msg.properties.messageId));
    });
    await this.declareTopology(publishChannel);
    this.connection = connection;
    this.publishChannel = publishChannel;
    publishChannel.on('close', () => {
      if (this.publishChannel !== publishChannel) return;
      this.publishChannel = undefined;
      // A channel closed by a channel-level error while the connection lives: start over on a new connection.
      if (this.connection === connection) this.amqp.restart(connection);
    });
    try {
      for (const consumer of this.consumers) await this.startConsumer(consumer);
    } catch (err) {
      if (this.connection === connection) {
        this.connection = undefined;
        this.publishChannel = undefined;
      }
      throw err;
    }
  }

  private async declareTopology(channel: Channel): Promise<void> {
    const { maxAttempts = QUEUE_DEFAULTS.maxAttempts, retryDelays, queueType, callbackMaxAttempts } = this.options;
    const d = declarations(this.options.namespace, { maxAttempts, retryDelays, queueType, callbackMaxAttempts });
    for (const e of d.exchanges) await channel.assertExchange(e.name, e.type, QUEUE_DEFAULTS.durable);
    for (const q of d.queues) {
      await channel.assertQueue(q.name, { ...QUEUE_DEFAULTS.durable, arguments: q.arguments });
      for (const b of q.bindings) await channel.bindQueue(q.name, b.exchange, b.routingKey);
      for (const b of q.unbindings ?? []) await channel.unbindQueue(q.name, b.exchange, b.routingKey);
    }
  }

  /**
   * Publishes a persistent JSON message and resolves when the broker confirms it. Rejects (retryable)
   * when not connected, nacked, returned as unroutable, or not confirmed within the timeout.
   */
  async publish(exchange: string, routingKey: string, body: unknown, options: PublishOptions): Promise<void> {
    if (!this.tracing) return this.send(exchange, routingKey, body, options);
    return tracePublish(exchange, routingKey, options, (headers) => this.send(exchange, routingKey, body, { ...options, headers }));
  }

  private async send(exchange: string, routingKey: string, body: unknown, options: PublishOptions): Promise<void> {
    if (!this.publishChannel) throw new MessagingError('AMQP_NOT_CONNECTED', 'not connected to RabbitMQ');
    const persistent = options.persistent ?? PUBLISH_DEFAULTS.persistent;
    const mandatory = options.mandatory ?? PUBLISH_DEFAULTS.mandatory;
    const timestamp = Math.floor(Date.now() / 1000);
    // A message with a per-message TTL (a retry) always goes alone: its delay queue reads the TTL of each message.
    if (options.coalesce && this.coalescer && options.expiration === undefined) {
      const p = { messageId: options.messageId, correlationId: options.correlationId, timestamp, headers: options.headers as ItemProperties['headers'] };
      return this.coalescer.add(exchange, routingKey, body, p, { persistent, mandatory, max: options.workQueue ? this.commandBatchMax : undefined });
    }
    return this.sendMessage({
      exchange,
      routingKey,
      content: Buffer.from(JSON.stringify(body)),
      messageId: options.messageId,
      correlationId: options.correlationId,
      timestamp,
      // No header table unless asked for: encoding it (and the broker decoding it) was per-message work for a
      // copy of the correlation id.
      headers: options.headers,
      persistent,
      mandatory,
      expiration: options.expiration,
    });
  }

  /** Publishes one AMQP message (plain, or an envelope from the coalescer) and waits for its confirm. */
  private async sendMessage(m: OutgoingMessage & { expiration?: number }): Promise<void> {
    const channel = this.publishChannel;
    if (!channel) throw new MessagingError('AMQP_NOT_CONNECTED', 'not connected to RabbitMQ');
    const { exchange, routingKey, mandatory } = m;
    const props: Options.Publish = {
      persistent: m.persistent,
      contentType: PUBLISH_DEFAULTS.contentType,
      messageId: m.messageId,
      correlationId: m.correlationId,
      type: routingKey,
      timestamp: m.timestamp,
      mandatory,
      headers: m.headers,
      expiration: m.expiration === undefined ? undefined : String(m.expiration),
    };
    const timeoutMs = this.options.publishTimeoutMs ?? PUBLISH_DEFAULTS.confirmTimeoutMs;
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        reject(new MessagingError('AMQP_PUBLISH_TIMEOUT', `no publisher confirm within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) return reject(new MessagingError('AMQP_PUBLISH_NACKED', `broker did not accept the message: ${String((err as Error)?.message ?? err)}`));
        // A mandatory message that no queue took comes back (basic.return) before its confirm.
        if (mandatory && this.returned.delete(m.messageId)) {
          return reject(new MessagingError('AMQP_UNROUTABLE', `no queue is bound to ${exchange} with key ${routingKey}`, false));
        }
        resolve();
      };
      try {
        channel.publish(exchange, routingKey, m.content, props, done);
      } catch (err) {
        done(err ?? new Error('publish failed'));
      }
    });
  }

  /**
   * Publishes a command to wait in a delay queue and then return to `<ns>.lookup.<slug>`: it waits the smallest
   * delay bucket >= delayMs (its per-message TTL is the bucket, like every message of that queue: see topology.ts).
   * Resolves with the wait in ms.
   */
  async publishDelayed(slug: string, body: unknown, options: Omit<PublishOptions, 'expiration' | 'mandatory'> & { delayMs: number }): Promise<number> {
    const bucket = delayMsBucket(options.delayMs);
    const { delayMs: _delay, ...rest } = options;
    const { persistent, mandatory } = PUBLICATIONS.commandRetry;
    await this.publish(this.topology.exchanges.retry, this.topology.delayKey(slug, bucket), body, { ...rest, persistent, mandatory, expiration: bucket });
    return bucket;
  }

  /** Starts consuming a queue (and resumes after every reconnect). Messages are validated before the handler sees them. */
  async consume<T>(options: ConsumeOptions<T>): Promise<void> {
    const consumer: Consumer = { options, inFlight: new Set(), slots: new Slots(options.prefetch) };
    this.consumers.push(consumer);
    if (this.connection) await this.startConsumer(consumer);
  }

  private async startConsumer(consumer: Consumer): Promise<void> {
    const connection = this.connection;
    if (!connection) return;
    const { prefetch } = consumer.options;
    let queue = consumer.options.queue;
    const channel = await this.amqp.createChannel(connection, false, `consumer (${queue})`);
    channel.on('close', () => {
      if (consumer.channel !== channel) return;
      consumer.channel = undefined;
      // As the publish channel: a consumer channel lost while the connection lives starts over on a new connection.
      if (!this.closing && this.connection === connection && !consumer.stopped) this.amqp.restart(connection);
    });
    await channel.prefetch(prefetch);
    if (consumer.options.exclusive) {
      // Non-durable and unmirrored by design: a notification missed while disconnected is recovered by the
      // subscriber re-reading state after a reconnect, not by the queue.
      // Named by the caller (e.g. `<ns>.resource-reply.<instance>`), or by the server (`amq.gen-...`) when the name is ''.
      const declared = await channel.assertQueue(consumer.options.queue, QUEUE_DEFAULTS.exclusive);
      queue = declared.queue;
      for (const b of consumer.options.exclusive.bindings) await channel.bindQueue(queue, b.exchange, b.routingKey);
    }
    consumer.channel = channel;
    const { consumerTag } = await channel.consume(queue, (msg) => {
      if (!msg) {
        // Cancelled by the broker (its queue was deleted, or a cluster node holding it went away). Nothing would
        // ever be delivered on this channel again: close it, and the close handler reconnects, which re-declares
        // the topology (the queue too) and resumes every consumer.
        this.log.warn({ queue }, 'consumer cancelled by the broker; reconnecting to re-declare the queue');
        void channel.close().catch(() => undefined);
        return;
      }
      const task = this.deliver(consumer, channel, msg, queue).finally(() => consumer.inFlight.delete(task));
      consumer.inFlight.add(task);
    });
    consumer.tag = consumerTag;
    this.log.info({ queue, prefetch }, 'consuming');
  }

  /** One delivery: an envelope (its items each handled as a plain message), or a plain message in its own CONSUMER span. */
  private deliver(consumer: Consumer, channel: Channel, msg: ConsumeMessage, queue: string): Promise<void> {
    if (isEnvelope(msg.properties.headers as Record<string, unknown> | undefined)) return this.dispatchEnvelope(consumer, channel, msg, queue);
    const dispatch = () => this.dispatch(consumer, channel, msg, queue);
    return this.tracing ? traceDelivery(msg, queue, dispatch) : dispatch();
  }

  /** Before parsing: size, encoding and nesting (see json-safety.ts; no message of the suite comes near), then JSON. */
  private parse(msg: ConsumeMessage): { body: unknown } | { code: DeadLetterCode; reason: string } {
    if (msg.content.length > MAX_MESSAGE_BYTES) {
      return { code: 'too_large', reason: `message too large: ${msg.content.length} bytes (limit ${MAX_MESSAGE_BYTES})` };
    }
    if (!isUtf8(msg.content)) return { code: 'invalid_json', reason: 'invalid JSON: the body is not valid UTF-8' };
    const text = msg.content.toString('utf8');
    if (jsonDepth(text, MAX_MESSAGE_DEPTH) > MAX_MESSAGE_DEPTH) {
      return { code: 'too_deep', reason: `invalid message: JSON nested deeper than ${MAX_MESSAGE_DEPTH} levels` };
    }
    try {
      return { body: JSON.parse(text) as unknown };
    } catch {
      return { code: 'invalid_json', reason: 'invalid JSON' };
    }
  }

  /** The schema check of one message (by the routing key it was published with); undefined when it passes. */
  private validate(consumer: Consumer, routingKey: string, body: unknown): Outcome | undefined {
    const { validator } = consumer.options;
    const schema = typeof validator === 'function' ? validator(routingKey) : validator;
    if (!schema) return { action: 'dead-letter', code: 'no_schema', reason: `no schema for routing key '${routingKey}'` };
    if (!schema.check(body)) return { action: 'dead-letter', code: 'schema_invalid', reason: `schema validation failed: ${schema.errors(body).join('; ')}` };
    return undefined;
  }

  /** Why a redelivered message (or envelope) is past the delivery limit; undefined when it is not. */
  private async overDeliveryLimit(consumer: Consumer, msg: ConsumeMessage, queue: string): Promise<string | undefined> {
    const { deliveryLimit } = consumer.options;
    if (!deliveryLimit || !msg.fields.redelivered || !msg.properties.messageId) return undefined;
    let deliveries = 0;
    try {
      deliveries = await deliveryLimit.count(queue, String(msg.properties.messageId));
    } catch (err) {
      this.log.warn({ err: (err as Error).message, queue }, 'could not count deliveries; handling the message');
    }
    if (deliveries <= deliveryLimit.max) return undefined;
    return `delivery limit exceeded: delivered ${deliveries} times (limit ${deliveryLimit.max}); its consumer may be crashing on it`;
  }

  /** Runs the handler on one validated message (within the consumer's `prefetch` concurrent handlers). */
  private async handle(consumer: Consumer, raw: ConsumeMessage, body: unknown, queue: string): Promise<Outcome> {
    const received: ReceivedMessage<unknown> = {
      body,
      raw,
      queue,
      redelivered: raw.fields.redelivered,
      headers: (raw.properties.headers ?? {}) as Record<string, unknown>,
    };
    const wait = consumer.slots.acquire();
    if (wait) await wait;
    try {
      await consumer.options.handler(received);
      return { action: 'ack' };
    } catch (err) {
      const decision = consumer.options.onError?.(err, received) ?? defaultErrorDecision(err);
      if (decision.action === 'dead-letter') return { action: 'dead-letter', code: 'rejected', reason: decision.reason };
      this.log.warn({ err: (err as Error)?.message, queue, jobId: raw.properties.correlationId, retryInMs: decision.delayMs }, 'handler failed; requeueing');
      if (this.tracing) noteDeliveryFailure('requeued', String((err as Error)?.message ?? err));
      return { action: 'requeue', delayMs: decision.delayMs };
    } finally {
      consumer.slots.release();
    }
  }

  private async dispatch(consumer: Consumer, channel: Channel, msg: ConsumeMessage, queue: string): Promise<void> {
    const deadLetter = (code: DeadLetterCode, reason: string, body?: unknown) => this.deadLetter(channel, msg, queue, { code, reason }, consumer, body);
    const parsed = this.parse(msg);
    if ('code' in parsed) {
      await deadLetter(parsed.code, parsed.reason);
      return;
    }
    const { body } = parsed;
    const notRetry = this.unscheduledRetry(msg);
    if (notRetry) {
      await deadLetter('unscheduled_retry', notRetry, body);
      return;
    }
    const invalid = this.validate(consumer, msg.fields.routingKey, body);
    if (invalid?.action === 'dead-letter') {
      await deadLetter(invalid.code, invalid.reason, body);
      return;
    }
    const overLimit = await this.overDeliveryLimit(consumer, msg, queue);
    if (overLimit) {
      await deadLetter('delivery_limit', overLimit, body);
      return;
    }
    const outcome = await this.handle(consumer, msg, body, queue);
    if (outcome.action === 'ack') safeAck(channel, msg);
    else if (outcome.action === 'dead-letter') await deadLetter(outcome.code, outcome.reason, body);
    else {
      await sleep(outcome.delayMs);
      safeNack(channel, msg, true);
    }
  }

  /**
   * An envelope (envelope.ts): checked as a whole as any message is (size, UTF-8, depth, JSON), then its structure;
   * a malformed one is dead-lettered whole. Each item then takes a plain message's path (schema, handler, trace,
   * dead-lettering alone as a plain message with its own body and properties) while its siblings go on. The
   * envelope is acked once every item is handled or dead-lettered. If an item's handler fails transiently, or an
   * item's dead-letter copy is not confirmed, the envelope is requeued after the others finish and all its items
   * come again: safe because every handler is idempotent (invariant 2: the saga's markProcessing and recordOutcome
   * are no-ops the second time and re-dispatch deterministic command ids; a worker re-announces a stored result),
   * and an item that was dead-lettered is dead-lettered again (a second copy in the dead-letter queue, as when a
   * plain message's dead-letter follow-up fails). The delivery limit counts the envelope's own messageId.
   */
  private async dispatchEnvelope(consumer: Consumer, channel: Channel, msg: ConsumeMessage, queue: string): Promise<void> {
    const whole = (code: DeadLetterCode, reason: string, body?: unknown) => this.deadLetter(channel, msg, queue, { code, reason }, consumer, body, false);
    const parsed = this.parse(msg);
    if ('code' in parsed) {
      await whole(parsed.code, parsed.reason);
      return;
    }
    const headers = msg.properties.headers as Record<string, unknown>;
    if (headers['x-death'] !== undefined) {
      await whole('unscheduled_retry', 'not a scheduled retry: an envelope came back dead-lettered (retries are never sent in envelopes)', parsed.body);
      return;
    }
    const decoded = decodeEnvelope(parsed.body, headers[ENVELOPE_HEADER], msg.fields.routingKey);
    if ('error' in decoded) {
      await whole('invalid_envelope', decoded.error, parsed.body);
      return;
    }
    const overLimit = await this.overDeliveryLimit(consumer, msg, queue);
    let requeueAfterMs = -1;
    const requeue = (ms: number) => {
      requeueAfterMs = Math.max(requeueAfterMs, ms);
    };
    await Promise.all(
      decoded.items.map(async (item) => {
        const raw = itemMessage(msg, item);
        const run = async () => {
          const outcome: Outcome = overLimit
            ? { action: 'dead-letter', code: 'delivery_limit', reason: overLimit }
            : (this.validate(consumer, msg.fields.routingKey, item.b) ?? (await this.handle(consumer, raw, item.b, queue)));
          if (outcome.action === 'requeue') requeue(outcome.delayMs);
          else if (outcome.action === 'dead-letter' && !(await this.deadLetterCopy(raw, queue, outcome, consumer, item.b))) {
            requeue(CONSUME_DEFAULTS.deadLetterRetryDelayMs);
          }
        };
        try {
          await (this.tracing ? traceDelivery(raw, queue, run) : run());
        } catch (err) {
          this.log.warn({ err: (err as Error)?.message, queue, messageId: item.p.messageId }, 'envelope item failed unexpectedly; requeueing the envelope');
          requeue(CONSUME_DEFAULTS.requeueDelayMs);
        }
      }),
    );
    if (requeueAfterMs < 0) {
      safeAck(channel, msg);
      return;
    }
    this.log.warn({ queue, messageId: msg.properties.messageId, items: decoded.items.length, retryInMs: requeueAfterMs }, 'envelope requeued: all its items come again');
    await sleep(requeueAfterMs);
    safeNack(channel, msg, true);
  }

  /**
   * Why a message that came back from one of our delay queues was not a retry a worker scheduled (undefined
   * when it is fine or did not come from one). A scheduled retry carries a per-message TTL within its queue's
   * bucket (RabbitMQ records it as `original-expiration` in the x-death entry it adds when the TTL passes); a
   * message published there without one, or with a longer one, expired on the queue's own TTL instead.
   */
  private unscheduledRetry(msg: ConsumeMessage): string | undefined {
    const deaths = msg.properties.headers?.['x-death'];
    if (!Array.isArray(deaths) || deaths.length === 0) return undefined;
    const last = deaths[0] as unknown as Record<string, unknown> | null;
    if (!last || typeof last !== 'object' || last.reason !== 'expired') return undefined;
    const bucket = typeof last.queue === 'string' ? this.topology.delayQueueBucket(last.queue) : undefined;
    if (bucket === undefined) return undefined;
    const raw = last['original-expiration'];
    const ttl = raw === undefined || raw === null ? NaN : Number(String(raw));
    if (Number.isFinite(ttl) && ttl >= 0 && ttl <= bucket) return undefined;
    return raw === undefined || raw === null
      ? `not a scheduled retry: it reached delay queue ${String(last.queue)} without a per-message TTL (expiration)`
      : `not a scheduled retry: its per-message TTL (${String(raw).slice(0, 40)}) exceeds delay queue ${String(last.queue)}'s ${bucket} ms`;
  }

  /**
   * Moves a message to the dead-letter queue with the reason in its headers, then acks the original.
   * If the dead-letter publish (or its follow-up) is not confirmed the original is requeued, so nothing is lost.
   */
  private async deadLetter(channel: Channel, msg: ConsumeMessage, queue: string, why: { code: DeadLetterCode; reason: string }, consumer: Consumer, body?: unknown, followUp = true): Promise<void> {
    if (await this.deadLetterCopy(msg, queue, why, consumer, body, followUp)) {
      safeAck(channel, msg);
      return;
    }
    await sleep(CONSUME_DEFAULTS.deadLetterRetryDelayMs);
    safeNack(channel, msg, true);
  }

  /**
   * Publishes a copy of a message (a plain one, or an envelope's item as the plain message it would have been) to
   * the dead-letter queue with the reason in its headers, then runs the consumer's onDeadLetter (unless `followUp`
   * is false: a malformed envelope is no message of the consumer's). False when either failed: the caller requeues.
   */
  private async deadLetterCopy(msg: ConsumeMessage, queue: string, why: { code: DeadLetterCode; reason: string }, consumer: Consumer, body?: unknown, followUp = true): Promise<boolean> {
    const { reason } = why;
    this.log.error({ queue, reason, messageId: msg.properties.messageId, jobId: msg.properties.correlationId }, 'dead-lettering message');
    if (this.tracing) noteDeliveryFailure('dead-lettered', reason);
    try {
      await this.publishRaw(this.topology.exchanges.deadLetter, msg, {
        'x-dead-letter-reason': reason.slice(0, 2000),
        'x-original-queue': queue,
        'x-original-exchange': msg.fields.exchange,
        'x-original-routing-key': msg.fields.routingKey,
        'x-dead-lettered-at': new Date().toISOString(),
      });
    } catch (err) {
      this.log.warn({ err: (err as Error).message, queue }, 'dead-letter publish failed; requeueing');
      return false;
    }
    countDeadLetter(this.topology.queueRole(queue), why.code);
    if (!followUp) return true;
    try {
      await consumer.options.onDeadLetter?.(reason, msg, body);
      return true;
    } catch (err) {
      // The copy is in the dead-letter queue; the follow-up failed, so let the original come back and retry it.
      this.log.warn({ err: (err as Error).message, queue }, 'dead-letter follow-up failed; requeueing');
      return false;
    }
  }

  private async publishRaw(exchange: string, msg: ConsumeMessage, extraHeaders: Record<string, unknown>): Promise<void> {
    const channel = this.publishChannel;
    if (!channel) throw new MessagingError('AMQP_NOT_CONNECTED', 'not connected to RabbitMQ');
    const props: Options.Publish = {
      ...msg.properties,
      // A dead letter stays until an operator acts: the original's per-message TTL must not make it vanish
      // from the dead-letter queue (RabbitMQ's own dead-lettering drops it too, keeping it in x-death).
      expiration: undefined,
      persistent: PUBLICATIONS.deadLetter.persistent,
      messageId: msg.properties.messageId ?? randomUUID(),
      headers: { ...withoutTtlHeaders(msg.properties.headers), ...extraHeaders },
    };
    if (msg.properties.expiration !== undefined) props.headers!['x-original-expiration'] = String(msg.properties.expiration);
    await new Promise<void>((resolve, reject) => {
      channel.publish(exchange, msg.fields.routingKey, msg.content, props, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Runs fn on a fresh confirm channel of this connection, closed afterwards (admin operations). */
  async withConfirmChannel<T>(fn: (channel: ConfirmChannel) => Promise<T>): Promise<T> {
    const connection = this.connection;
    if (!connection) throw new MessagingError('AMQP_NOT_CONNECTED', 'not connected to RabbitMQ');
    const channel = await this.amqp.createChannel(connection, true, 'admin');
    try {
      return await fn(channel);
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  /** Stops taking new messages and waits (up to timeoutMs) for in-flight handlers. */
  async stopConsuming(timeoutMs: number = CONSUME_DEFAULTS.drainTimeoutMs): Promise<void> {
    await Promise.all(
      this.consumers.map(async (c) => {
        c.stopped = true;
        if (c.channel && c.tag) await c.channel.cancel(c.tag).catch(() => undefined);
      }),
    );
    const inFlight = this.consumers.flatMap((c) => [...c.inFlight]);
    await Promise.race([Promise.allSettled(inFlight), sleep(timeoutMs)]);
  }

  /** Closes the connection for good; safe to call twice. */
  async close(): Promise<void> {
    this.closing = true;
    this.connection = undefined;
    this.publishChannel = undefined;
    await this.amqp.close();
  }
}

/** Headers that would give a message a TTL where it lands (none of our queues read them, but a policy might). */
function withoutTtlHeaders(headers: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(headers ?? {}) };
  for (const k of ['x-message-ttl', 'x-expires', 'expiration']) delete out[k];
  return out;
}

function defaultErrorDecision(err: unknown): { action: 'dead-letter'; reason: string } | { action: 'requeue'; delayMs: number } {
  const e = err as { retryable?: boolean; message?: string; code?: string };
  if (e && e.retryable === false) return { action: 'dead-letter', reason: `${e.code ?? 'error'}: ${e.message ?? String(err)}` };
  return { action: 'requeue', delayMs: CONSUME_DEFAULTS.requeueDelayMs };
}

/**
 * An envelope's item as the plain message it would have been: the envelope's delivery fields (exchange, routing key,
 * redelivered) with the item's own properties (messageId, correlationId, type, timestamp, headers with its trace
 * context). Its content (the item's body as JSON) is made only when asked for (dead-lettering it).
 */
function itemMessage(envelope: ConsumeMessage, item: EnvelopeItem): ConsumeMessage {
  const { p } = item;
  let content: Buffer | undefined;
  return {
    fields: envelope.fields,
    // Spelled out rather than spread from the envelope's: one small object per item.
    properties: {
      contentType: envelope.properties.contentType,
      contentEncoding: undefined,
      headers: p.headers ? { ...p.headers } : {},
      deliveryMode: envelope.properties.deliveryMode,
      priority: undefined,
      correlationId: p.correlationId,
      replyTo: undefined,
      expiration: undefined,
      messageId: p.messageId,
      timestamp: p.timestamp,
      type: p.type,
      userId: undefined,
      appId: undefined,
      clusterId: undefined,
    },
    get content() {
      return (content ??= Buffer.from(JSON.stringify(item.b)));
    },
  };
}

function safeAck(channel: Channel, msg: ConsumeMessage): void {
  try {
    channel.ack(msg);
  } catch {
    // channel already closed: the broker redelivers the message, and handlers are idempotent
  }
}

function safeNack(channel: Channel, msg: ConsumeMessage, requeue: boolean): void {
  try {
    channel.nack(msg, false, requeue);
  } catch {
    // as above
  }
}

/**
 * The broker options every process derives from its configuration (broker URL, namespace, retry sizing, queue type),
 * in one place so that all processes of a suite declare the same topology; `own` adds the process's name, logger
 * and anything it alone sets.
 */
export function brokerOptionsFromConfig(
  config: Pick<Config, 'amqpUrl' | 'namespace' | 'retryMaxAttempts' | 'retryBaseDelayMs' | 'retryMaxDelayMs' | 'queueType' | 'messageBatchMax' | 'commandBatchMax'>,
  own: Pick<BrokerOptions, 'logger' | 'name'> & Partial<BrokerOptions>,
): BrokerOptions {
  return {
    url: config.amqpUrl,
    namespace: config.namespace,
    maxAttempts: config.retryMaxAttempts,
    retryDelays: { baseMs: config.retryBaseDelayMs, maxMs: config.retryMaxDelayMs },
    queueType: config.queueType,
    messageBatchMax: config.messageBatchMax,
    commandBatchMax: config.commandBatchMax,
    ...own,
  };
}

export function createBroker(options: BrokerOptions): Broker {
  return new Broker(options);
}
