import { SERVICE_CATALOGUE, RoutingKeys } from '@lookup/contracts';

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
      lookup: (slug: string) => `${ns}.lookup.${slug}`,
      /** Where a command waits before its attempt `attempt` (2, 3, ...) runs. */
      retry: (slug: string, attempt: number) => `${ns}.retry.${slug}.${attempt}`,
      deadLetter: `${ns}.dead-letter`,
    },
    /** Routing key on the retry exchange for a command's next attempt. */
    retryKey: (slug: string, attempt: number) => `${slug}.${attempt}`,
  };
}
export type Topology = ReturnType<typeof topology>;

export interface QueueDeclaration {
  name: string;
  bindings: { exchange: string; routingKey: string }[];
  arguments?: Record<string, unknown>;
}

export interface TopologyOptions {
  /** Highest attempt number a command may reach: delay queues exist for attempts 2..maxAttempts. */
  maxAttempts: number;
}

/**
 * The whole topology. Every process declares all of it (idempotent), so no message is published before its
 * queue exists.
 *
 * Retries wait in the broker, not in a worker: a command whose attempt failed transiently is published to
 * `<ns>.retry.<slug>.<n>` with a per-message TTL (its backoff, with jitter); when the TTL passes, RabbitMQ
 * dead-letters it back to the command exchange and the work queue. One delay queue per (service, attempt)
 * because a queue only expires messages at its head: within one attempt level the delays differ only by
 * jitter, so no retry waits long behind a slower one. (Quorum queues' delivery limit was the alternative; it
 * bounds redeliveries but cannot delay them, so a failing dependency would be hammered.)
 */
export function declarations(namespace: string, options: TopologyOptions = { maxAttempts: 3 }): { exchanges: { name: string; type: string }[]; queues: QueueDeclaration[] } {
  const t = topology(namespace);
  const retryQueues: QueueDeclaration[] = SERVICE_CATALOGUE.flatMap((s) =>
    Array.from({ length: Math.max(0, options.maxAttempts - 1) }, (_, i) => ({
      name: t.queues.retry(s.slug, i + 2),
      arguments: { 'x-dead-letter-exchange': t.exchanges.commands, 'x-dead-letter-routing-key': RoutingKeys.command(s.slug) },
      bindings: [{ exchange: t.exchanges.retry, routingKey: t.retryKey(s.slug, i + 2) }],
    })),
  );
  const dlArgs = { 'x-dead-letter-exchange': t.exchanges.deadLetter };
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
      ...retryQueues,
      { name: t.queues.deadLetter, bindings: [{ exchange: t.exchanges.deadLetter, routingKey: '' }] },
    ],
  };
}
