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
      deadLetter: `${ns}.dead-letter`,
    },
  };
}
export type Topology = ReturnType<typeof topology>;

export interface QueueDeclaration {
  name: string;
  bindings: { exchange: string; routingKey: string }[];
  arguments?: Record<string, unknown>;
}

/** The whole topology. Every process declares all of it (idempotent), so no message is published before its queue exists. */
export function declarations(namespace: string): { exchanges: { name: string; type: string }[]; queues: QueueDeclaration[] } {
  const t = topology(namespace);
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
      { name: t.queues.deadLetter, bindings: [{ exchange: t.exchanges.deadLetter, routingKey: '' }] },
    ],
  };
}
