import { SERVICE_CATALOGUE, RoutingKeys } from '@lookup/contracts';
import { QUORUM_DELIVERY_LIMIT } from '@lookup/config';
import { QUEUE_DEFAULTS } from './defaults.ts';

/** Exchange and queue names of one suite; every name starts with its NAMESPACE. */
export function topology(namespace: string) {
  const ns = namespace;
  return {
    exchanges: {
      /** Topic exchange for events (`entity.event`). */
      events: `${ns}.events`,
      /** Direct exchange for commands (`lookup.<slug>`). */
      commands: `${ns}.commands`,
      /** Delayed redelivery: messages wait in a TTL queue and dead-letter back to their work queue. */
      retry: `${ns}.retry`,
      /** Fanout exchange into the dead-letter queue. */
      deadLetter: `${ns}.dead-letter`,
    },
    queues: {
      saga: `${ns}.saga`,
      /** The saga's completion-callback dispatcher: the first attempt of each job's callback, and retries back from their delay queue. */
      callbacks: `${ns}.callbacks`,
      lookup: (slug: string) => `${ns}.lookup.${slug}`,
      /** The work queues of high and low priority commands of a service (normal ones: `lookup`). */
      lookupPriority: (slug: string, priority: 'high' | 'low') => `${ns}.lookup.${slug}.${priority}`,
      /**
       * Where a command waits before its next attempt: one delay queue per service (per priority: `slug` from
       * delaySlug) and delay bucket (ms, the queue's x-message-ttl). `bucketMs` comes from delayMsBucket().
       */
      delay: (slug: string, bucketMs: number) => `${ns}.delay.${slug}.${bucketMs}ms`,
      deadLetter: `${ns}.dead-letter`,
      /**
       * A resource worker's request queue for the resource RPC (exclusive, auto-deleted, declared by the worker's
       * RpcServer on its own connection, so not in declarations()). `workerId` is unique per process.
       */
      resource: (workerId: string) => `${ns}.resource.${workerId}`,
      /**
       * A lookup worker process's private queue for `job.cancelled` (exclusive, auto-deleted, not in declarations()):
       * the cancellations that abort its lookups in flight. `instanceId` is unique per process.
       */
      workerControl: (instanceId: string) => `${ns}.worker-control.${instanceId}`,
      /** An API process's reply queue for the resource RPC (exclusive, auto-deleted, declared by its RpcClient). */
      resourceReply: (instanceId: string) => `${ns}.resource-reply.${instanceId}`,
    },
    /** Routing key on the retry exchange for a command that must wait `delayMs` (its per-message TTL). */
    delayKey: (slug: string, delayMs: number) => `${slug}.delay.${delayMsBucket(delayMs)}ms`,
    /**
     * A queue's role, for metric labels: its name without the namespace, with a process's private queues reduced to
     * their kind (`saga`, `callbacks`, `lookup.ping`, `lookup.ping.high`, `resource`, `resource-reply`; `api` for the
     * `<ns>.api.<instance>` queue an API replica of an earlier version declared, still seen during a rolling upgrade);
     * `other` for a name outside the suite.
     */
    queueRole: (queue: string): string => {
      if (!queue.startsWith(`${ns}.`)) return 'other';
      const rest = queue.slice(ns.length + 1);
      const kind = /^(api|resource|resource-reply)\./.exec(rest);
      if (kind) return kind[1]!;
      return /^(saga|callbacks|dead-letter|lookup\.[a-z0-9-]+(\.(high|low))?|delay\.[a-z0-9-]+(\.(high|low))?\.[0-9]+ms)$/.test(rest) ? rest : 'other';
    },
    /** The delay bucket (ms) of one of this suite's delay queues, or undefined when `queue` is not one. */
    delayQueueBucket: (queue: string): number | undefined => {
      const m = DELAY_QUEUE_RE.exec(queue.startsWith(`${ns}.delay.`) ? queue.slice(ns.length) : '');
      return m ? Number(m[1]) : undefined;
    },
  };
}
export type Topology = ReturnType<typeof topology>;

/** The resource RPC's queue names (the topology's `resource` and `resourceReply`), as its ends use them. */
export function resourceQueues(namespace: string) {
  const { queues } = topology(namespace);
  return { worker: queues.resource, reply: queues.resourceReply };
}

/** The delay queues of completion callbacks are `<ns>.delay.callback.<bucket>ms` (no lookup service has this slug). */
export const CALLBACK_DELAY_SLUG = 'callback';

const DELAY_QUEUE_RE = /^\.delay\.[a-z0-9-]+(?:\.(?:high|low))?\.([0-9]+)ms$/;

/**
 * The delay-queue slug of a command's retries: the service's slug for a normal command, `<slug>.high` / `<slug>.low`
 * for the others, whose delay queues (`<ns>.delay.<slug>.<priority>.<bucket>ms`) dead-letter back to the work queue of
 * that priority, so a retried command keeps its priority.
 */
export function delaySlug(slug: string, priority?: 'high' | 'normal' | 'low'): string {
  return priority === 'high' || priority === 'low' ? `${slug}.${priority}` : slug;
}

/**
 * Delay buckets: four per doubling (steps of 2^(1/4), about 19 %) from 16 ms to 2^22 ms (70 min, above
 * RETRY_MAX_DELAY_MS's ceiling of 60 min). A retry waits exactly its bucket, so the backoff's jitter survives as
 * a choice among a few buckets per attempt.
 */
export const MIN_DELAY_BUCKET_MS = 16;
export const MAX_DELAY_BUCKET_MS = 2 ** 22;
export const DELAY_BUCKETS_MS: readonly number[] = Object.freeze(
  Array.from({ length: 4 * Math.log2(MAX_DELAY_BUCKET_MS / MIN_DELAY_BUCKET_MS) + 1 }, (_, i) => Math.round(MIN_DELAY_BUCKET_MS * 2 ** (i / 4))),
);

/** The smallest delay bucket >= `delayMs` (the largest for anything longer): what a retry of `delayMs` waits. */
export function delayMsBucket(delayMs: number): number {
  return DELAY_BUCKETS_MS.find((b) => b >= delayMs) ?? MAX_DELAY_BUCKET_MS;
}

export interface QueueDeclaration {
  name: string;
  bindings: { exchange: string; routingKey: string }[];
  /** Bindings an earlier version declared and this one removes (unbinding is idempotent), so upgrades drop them too. */
  unbindings?: { exchange: string; routingKey: string }[];
  arguments?: Record<string, unknown>;
}

/** QUEUE_TYPE: the type of the durable queues (the exclusive per-process queues are always classic). */
export type QueueType = 'classic' | 'quorum';

/** What a durable queue of declarations() is for, which decides the arguments its queue type adds. */
export type QueueRole = 'work' | 'delay' | 'dead-letter';

/**
 * The arguments a durable queue gets from its queue type, on top of its own (TTL, dead-letter target): the one place
 * to add per-type arguments. Classic: none. Quorum (RabbitMQ 3.10+, "Quorum Queues" and "Dead Lettering" guides):
 * - `x-queue-type: quorum` on every durable queue, the dead-letter queue too: on a cluster a classic queue lives on
 *   one node, and while that node is down it is unavailable and cannot even be re-declared.
 * - Work queues (saga and `lookup.<slug>`) and delay queues dead-letter at least once
 *   (`x-dead-letter-strategy: at-least-once`, which requires `x-overflow: reject-publish`): a message leaves the queue
 *   only once its dead-letter target confirmed it, so a retry expiring from a delay queue, or a message the broker
 *   dead-letters, is not lost on the way. (No length limit is set, so reject-publish never refuses a publish.)
 * - Work queues get `x-delivery-limit: QUORUM_DELIVERY_LIMIT`: a quorum queue counts every return of a message
 *   (a nack with requeue, a channel or consumer lost) and dead-letters it, reason `delivery_limit`, past the limit.
 *   It is a backstop above DELIVERY_LIMIT (which config keeps at or below it): the consumer's own poison guard
 *   dead-letters first with its reason and records the failure on the job; the broker's catches the messages the
 *   guard cannot count (Redis unreachable). A fixed number, since arguments are immutable.
 * Delay queues work as on classic queues: quorum queues support x-message-ttl and per-message TTLs since 3.10, and
 * record `original-expiration` in x-death (checked on 3.10.8); as every message of a delay queue has the same TTL,
 * they leave it in arrival order whichever way a queue type expires messages.
 */
export function queueTypeArguments(queueType: QueueType, role: QueueRole): Record<string, unknown> {
  if (queueType === 'classic') return {};
  const quorum = { 'x-queue-type': 'quorum' };
  if (role === 'dead-letter') return quorum;
  const atLeastOnce = { ...quorum, 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' };
  return role === 'work' ? { ...atLeastOnce, 'x-delivery-limit': QUORUM_DELIVERY_LIMIT } : atLeastOnce;
}

/** The dead-letter queue's declaration arguments (none for classic), also for the processes that declare only it. */
export function deadLetterArguments(queueType: QueueType = 'classic'): { arguments?: Record<string, unknown> } {
  const args = queueTypeArguments(queueType, 'dead-letter');
  return Object.keys(args).length > 0 ? { arguments: args } : {};
}

export interface TopologyOptions {
  /** Highest attempt number a command may reach: delay queues exist for attempts 2..maxAttempts. */
  maxAttempts: number;
  /** CALLBACK_MAX_ATTEMPTS: the callback delay queues exist for its attempts (omitted: as maxAttempts). */
  callbackMaxAttempts?: number;
  /**
   * The retry backoff (RETRY_BASE_DELAY_MS, RETRY_MAX_DELAY_MS): only the delay buckets its backoffs can reach are
   * declared. Omitted: every bucket (what cleanup and tools that do not know the suite's config use).
   */
  retryDelays?: { baseMs: number; maxMs: number };
  /** QUEUE_TYPE (default classic): see queueTypeArguments(). */
  queueType?: QueueType;
}

/**
 * The delay buckets a suite's retries use: attempt n (2..maxAttempts) waits between half and all of
 * min(maxMs, baseMs * 2^(n-2)) (the worker's backoff with jitter), so the buckets from half its cap to its cap.
 */
export function delayBuckets(options: TopologyOptions): number[] {
  const delays = options.retryDelays;
  if (!delays) return [...DELAY_BUCKETS_MS];
  const used = new Set<number>();
  for (let n = 2; n <= options.maxAttempts; n++) {
    const cap = Math.min(delays.maxMs, delays.baseMs * 2 ** (n - 2));
    const [low, high] = [delayMsBucket(Math.floor(cap / 2)), delayMsBucket(cap)];
    for (const b of DELAY_BUCKETS_MS) if (b >= low && b <= high) used.add(b);
  }
  return DELAY_BUCKETS_MS.filter((b) => used.has(b));
}

/**
 * The whole durable topology. Every process declares all of it (idempotent), so no message is published before its
 * queue exists. (The exclusive queues of topology(), `api`, `resource` and `resourceReply`, are declared by the
 * process that owns them and vanish with its connection.)
 *
 * Retries wait in the broker, not in a worker: a command whose attempt failed transiently is published to
 * `<ns>.delay.<slug>.<bucket>ms` (Broker.publishDelayed); when its TTL passes, RabbitMQ dead-letters it back to
 * the command exchange and the work queue. A queue only expires messages at its head, so with per-message TTLs a
 * message with no TTL (or a huge one) would hold back every retry behind it. Here every message of a delay queue
 * has the same TTL, the bucket: the queue's x-message-ttl caps whatever a publisher set, and a scheduled retry's
 * own TTL is the bucket itself. Messages then expire in arrival order, so no message, whatever its TTL, can make
 * a retry behind it wait longer than its bucket. The consumer dead-letters a message that comes back from a delay
 * queue without a per-message TTL, or with one over the bucket (Broker: no worker scheduled it). The names carry
 * the bucket because queue arguments are immutable: a new TTL is a new queue, never a PRECONDITION_FAILED.
 * (The queues before this scheme, `<ns>.retry.<slug>.<attempt>`, are no longer bound to any key used; delete
 * them once empty: README, Retries.)
 */
export function declarations(namespace: string, options: TopologyOptions = { maxAttempts: QUEUE_DEFAULTS.maxAttempts }): { exchanges: { name: string; type: string }[]; queues: QueueDeclaration[] } {
  const t = topology(namespace);
  const buckets = delayBuckets(options);
  const typeArgs = (role: QueueRole) => queueTypeArguments(options.queueType ?? 'classic', role);
  // Who waits in delay queues: each lookup service's commands, and completion callbacks (slug `callback`).
  const delayed = [
    ...SERVICE_CATALOGUE.flatMap((s) => [
      { slug: s.slug, routingKey: RoutingKeys.command(s.slug), buckets },
      // A retry of a high or low command comes back to the work queue of its priority (README, Priorities).
      ...(['high', 'low'] as const).map((p) => ({ slug: delaySlug(s.slug, p), routingKey: RoutingKeys.priorityCommand(s.slug, p), buckets })),
    ]),
    { slug: CALLBACK_DELAY_SLUG, routingKey: RoutingKeys.callbackDelivery, buckets: delayBuckets({ ...options, maxAttempts: options.callbackMaxAttempts ?? options.maxAttempts }) },
  ];
  const retryQueues: QueueDeclaration[] = delayed.flatMap((s) =>
    s.buckets.map((bucketMs) => ({
      name: t.queues.delay(s.slug, bucketMs),
      arguments: {
        'x-message-ttl': bucketMs,
        'x-dead-letter-exchange': t.exchanges.commands,
        'x-dead-letter-routing-key': s.routingKey,
        ...typeArgs('delay'),
      },
      bindings: [{ exchange: t.exchanges.retry, routingKey: t.delayKey(s.slug, bucketMs) }],
    })),
  );
  const dlArgs = { 'x-dead-letter-exchange': t.exchanges.deadLetter, ...typeArgs('work') };
  return {
    exchanges: [
      { name: t.exchanges.events, type: 'topic' },
      { name: t.exchanges.commands, type: 'direct' },
      { name: t.exchanges.retry, type: 'direct' },
      { name: t.exchanges.deadLetter, type: 'fanout' },
    ],
    queues: [
      {
        name: t.queues.saga,
        arguments: dlArgs,
        bindings: [
          { exchange: t.exchanges.events, routingKey: RoutingKeys.jobSubmitted },
          { exchange: t.exchanges.events, routingKey: RoutingKeys.taskCompleted },
        ],
      },
      ...SERVICE_CATALOGUE.map((s) => ({
        name: t.queues.lookup(s.slug),
        arguments: dlArgs,
        bindings: [{ exchange: t.exchanges.commands, routingKey: RoutingKeys.command(s.slug) }],
      })),
      // Priorities are separate queues (not x-max-priority, whose argument would need new names for the queues above):
      // every worker consumes all three, so a high command never waits behind a backlog (README, Priorities).
      ...SERVICE_CATALOGUE.flatMap((s) =>
        (['high', 'low'] as const).map((p) => ({
          name: t.queues.lookupPriority(s.slug, p),
          arguments: dlArgs,
          bindings: [{ exchange: t.exchanges.commands, routingKey: RoutingKeys.priorityCommand(s.slug, p) }],
        })),
      ),
      {
        name: t.queues.callbacks,
        arguments: dlArgs,
        // Only jobs with a callback send it one (callback.deliver, from whoever ended the job). It used to take every
        // job.completed: that binding is removed from existing deployments too.
        bindings: [{ exchange: t.exchanges.commands, routingKey: RoutingKeys.callbackDelivery }],
        unbindings: [{ exchange: t.exchanges.events, routingKey: RoutingKeys.jobCompleted }],
      },
      ...retryQueues,
      { name: t.queues.deadLetter, ...deadLetterArguments(options.queueType), bindings: [{ exchange: t.exchanges.deadLetter, routingKey: '' }] },
    ],
  };
}
