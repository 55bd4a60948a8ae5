/**
 * Every messaging default in one place, in the spirit of rascal's `lib/config/baseline.js`: what a connection,
 * a queue, a publication and a consumer get unless a caller says otherwise. The code that uses a value imports it
 * from here; nothing in libs/messaging spells one of these numbers or flags itself.
 *
 * Values a deployment tunes (PREFETCH, RETRY_*, DELIVERY_LIMIT, ...) are configuration (libs/config), not defaults:
 * they are passed in by the services.
 */

/** AMQP connections (connection.ts). */
export const CONNECTION_DEFAULTS = Object.freeze({
  /**
   * Heartbeat (seconds) asked for when AMQP_URL does not name one (`?heartbeat=`): a dead peer behind a silent
   * network is noticed after about two missed beats.
   */
  heartbeatSeconds: 15,
  /** Reconnect backoff (equalJitterBackoff): the first retry after 0.5-1 s, growing to at most 60 s. */
  reconnectMinMs: 1000,
  reconnectMaxMs: 60_000,
  /** TCP_NODELAY; writes of one event-loop turn are corked together (socket-tuning.ts). */
  noDelay: true,
});

/**
 * The resource RPC's own connections (rpc.ts; one per API process and per resource worker, apart from the job
 * traffic's so that neither can block the other). They carry HTTP requests that wait at most
 * RESOURCE_PROXY_TIMEOUT_MS, so they notice a dead link sooner and come back faster than the job traffic's.
 */
export const RPC_CONNECTION_DEFAULTS = Object.freeze({
  ...CONNECTION_DEFAULTS,
  heartbeatSeconds: 10,
  reconnectMinMs: 500,
  reconnectMaxMs: 30_000,
  /**
   * A channel the broker closes while its connection lives is re-created at once the first time, then with the
   * reconnect backoff; the count of losses in a row starts over once a channel has lived this long.
   */
  channelStableAfterMs: 30_000,
});

/** Queues and exchanges (topology.ts, rpc.ts). */
export const QUEUE_DEFAULTS = Object.freeze({
  /**
   * The suite's exchanges and queues survive a broker restart. (No `x-queue-version` or `x-queue-type` is set:
   * queue arguments are immutable, and adding one to queues that exist without it would fail every declaration
   * with PRECONDITION_FAILED.)
   */
  durable: Object.freeze({ durable: true }),
  /**
   * A process's private queue (a lookup worker's job.cancelled queue, the resource RPC's request and reply queues):
   * exclusive to its connection and gone with it, so nothing waits in a queue nobody reads.
   */
  exclusive: Object.freeze({ exclusive: true, autoDelete: true, durable: false }),
  /** RETRY_MAX_ATTEMPTS's default: which delay queues to declare when a caller does not say. */
  maxAttempts: 3,
});

/**
 * Publications, each stated once: which exchange (by topology name), whether the message survives a broker restart
 * (`persistent`), whether a message no queue takes fails the publish (`mandatory`: returned, then rejected
 * with AMQP_UNROUTABLE) or is dropped, and whether the publishes of one event-loop turn may share an envelope
 * (`coalesce`, with MESSAGE_BATCH_MAX > 1: the per-job traffic only; envelope.ts).
 */
export const PUBLICATIONS = Object.freeze({
  /** API to saga (a tenant's job): a job nobody dispatches would wait for its deadline, so an unroutable one fails the submit. */
  jobSubmitted: Object.freeze({ exchange: 'events', persistent: true, mandatory: true, coalesce: true }),
  /** API (a job without a tenant) or saga (a tenant's job) to one worker type (routing key `lookup.<slug>`). */
  command: Object.freeze({ exchange: 'commands', persistent: true, mandatory: true, coalesce: true, workQueue: true }),
  /** A command's next attempt, through a delay queue (routing key `<slug>.delay.<bucket>ms`); alone (its TTL is its own). */
  commandRetry: Object.freeze({ exchange: 'retry', persistent: true, mandatory: true, coalesce: false }),
  /** Worker to saga (a tenant's job's last outcome, a redelivery's, a dead-lettered command's). */
  taskCompleted: Object.freeze({ exchange: 'events', persistent: true, mandatory: true, coalesce: true }),
  /** Whoever announces a job's end (the worker that completed it, the saga, the API's cancel) to the API processes: a notification nobody has to be listening to. */
  jobCompleted: Object.freeze({ exchange: 'events', persistent: true, mandatory: false, coalesce: false }),
  /**
   * The API's cancel to every worker process (each hears it on its private queue): abort that job's lookups in
   * flight. Only running lookups care, so it is not kept over a broker restart and nobody has to be listening.
   */
  jobCancelled: Object.freeze({ exchange: 'events', persistent: false, mandatory: false, coalesce: false }),
  /**
   * A job's completion callback, from whoever ended the job to the saga's callbacks queue: only jobs with a callback
   * send one; it is kept over a broker restart, and an unroutable one fails (the end is announced again).
   */
  callbackDelivery: Object.freeze({ exchange: 'commands', persistent: true, mandatory: true, coalesce: false }),
  /**
   * Resource RPC requests and replies: a request for a worker that is gone must come back at once (unroutable),
   * and neither is worth keeping over a broker restart (the requester has long timed out).
   */
  rpcRequest: Object.freeze({ exchange: '', persistent: false, mandatory: true, coalesce: false }),
  rpcReply: Object.freeze({ exchange: '', persistent: false, mandatory: false, coalesce: false }),
  /** A dead letter stays until an operator acts: persistent, and without the per-message TTL it came with. */
  deadLetter: Object.freeze({ exchange: 'deadLetter', persistent: true, mandatory: false, coalesce: false }),
});

/** Publishing (broker.ts). */
export const PUBLISH_DEFAULTS = Object.freeze({
  contentType: 'application/json',
  /** Whether a publish with no `persistent` of its own survives a broker restart (every job message does). */
  persistent: true,
  /** Publisher-confirm wait before a publish is reported failed (AMQP_PUBLISH_TIMEOUT). */
  confirmTimeoutMs: 10_000,
  /** On the HTTP path (the API) a publish fails sooner: the client gets a 503 rather than a hanging request. */
  httpConfirmTimeoutMs: 5_000,
  /** Whether a publish with no `mandatory` of its own is mandatory. */
  mandatory: true,
});

/** Consuming (broker.ts). */
export const CONSUME_DEFAULTS = Object.freeze({
  /**
   * Prefetch of notifications (a lookup worker's job.cancelled): each one only aborts lookups in flight (no I/O to
   * wait for), so a burst is taken at once. (Work queues use PREFETCH from the config.)
   */
  notificationPrefetch: 512,
  /** A handler that failed with a retryable error: its message is requeued after this wait. */
  requeueDelayMs: 1000,
  /** A dead-letter publish (or its follow-up) that failed: the original is requeued after this wait. */
  deadLetterRetryDelayMs: 1000,
  /** stopConsuming(): how long in-flight handlers may take before shutdown goes on without them. */
  drainTimeoutMs: 10_000,
});
