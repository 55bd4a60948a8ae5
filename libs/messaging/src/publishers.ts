import { RoutingKeys, firstCallbackDelivery, jobCancelledMessageId, jobCompletedEvent, serviceInfo, type CallbackDelivery, type JobCompleted, type JobSubmitted, type LookupCommand, type TaskCompleted } from '@lookup/contracts';
import type { Broker } from './broker.ts';
import { PUBLICATIONS } from './defaults.ts';
import { CALLBACK_DELAY_SLUG, delaySlug } from './topology.ts';

/**
 * The suite's publications, typed: each one's exchange, routing key, AMQP properties (messageId; correlationId is
 * the job id) and persistence and mandatory-ness (PUBLICATIONS, defaults.ts) are stated here once. Each resolves
 * when the broker confirmed the message and rejects as Broker.publish does.
 */
export interface Publishers {
  /** API to saga: a new tenant's job (its dispatch window decides when its commands go). */
  jobSubmitted(message: JobSubmitted): Promise<void>;
  /** API or saga to the worker of the command's service (routing key `lookup.<slug>`). */
  command(message: LookupCommand): Promise<void>;
  /** A command's next attempt, after waiting `delayMs` (rounded up to a delay bucket) in the broker. */
  commandRetry(message: LookupCommand, delayMs: number): Promise<void>;
  /** Worker to saga: one service's outcome (see TaskCompleted for when). */
  taskCompleted(message: TaskCompleted): Promise<void>;
  /** Whoever announces a job's end (announceJobEnd): the job finished, for any listener (nobody has to be listening; the
   *  suite's own processes learn of a job's end from Redis). */
  jobCompleted(message: JobCompleted): Promise<void>;
  /** The API's cancel to every worker process: abort the job's lookups in flight (nobody has to be listening). */
  jobCancelled(message: JobCompleted): Promise<void>;
  /** Whoever ended a job with a completion callback to the saga's callbacks queue: its first attempt (firstCallbackDelivery). */
  callbackDelivery(message: CallbackDelivery): Promise<void>;
  /** A completion callback's next attempt, after waiting `delayMs` (rounded up to a delay bucket) in the broker. */
  callbackRetry(message: CallbackDelivery, delayMs: number): Promise<void>;
}

export function createPublishers(broker: Pick<Broker, 'publish' | 'publishDelayed' | 'topology'>): Publishers {
  const { exchanges } = broker.topology;
  const props = (m: { messageId: string; jobId: string }, publication: { persistent: boolean; mandatory: boolean; coalesce: boolean; workQueue?: boolean }) => ({
    messageId: m.messageId,
    correlationId: m.jobId,
    persistent: publication.persistent,
    mandatory: publication.mandatory,
    // Only set where true, so a publication that never shares an envelope passes the options it always did.
    ...(publication.coalesce ? { coalesce: true } : {}),
    ...(publication.workQueue ? { workQueue: true } : {}),
  });
  return {
    jobSubmitted: (m) => broker.publish(exchanges.events, RoutingKeys.jobSubmitted, m, props(m, PUBLICATIONS.jobSubmitted)),
    command: (m) => {
      const slug = serviceInfo(m.serviceType).slug;
      const key = m.priority === 'high' || m.priority === 'low' ? RoutingKeys.priorityCommand(slug, m.priority) : RoutingKeys.command(slug);
      return broker.publish(exchanges.commands, key, m, props(m, PUBLICATIONS.command));
    },
    // The retry exchange, its routing key and the per-message TTL are the Broker's (publishDelayed: topology.ts).
    // A high or low command waits in its priority's delay queues, which lead back to its priority's work queue.
    commandRetry: (m, delayMs) =>
      broker.publishDelayed(delaySlug(serviceInfo(m.serviceType).slug, m.priority), m, { messageId: m.messageId, correlationId: m.jobId, delayMs }).then(() => undefined),
    taskCompleted: (m) => broker.publish(exchanges.events, RoutingKeys.taskCompleted, m, props(m, PUBLICATIONS.taskCompleted)),
    jobCompleted: (m) => broker.publish(exchanges.events, RoutingKeys.jobCompleted, m, props(m, PUBLICATIONS.jobCompleted)),
    callbackDelivery: (m) => broker.publish(exchanges.commands, RoutingKeys.callbackDelivery, m, props(m, PUBLICATIONS.callbackDelivery)),
    callbackRetry: (m, delayMs) =>
      broker.publishDelayed(CALLBACK_DELAY_SLUG, m, { messageId: m.messageId, correlationId: m.jobId, delayMs }).then(() => undefined),
    jobCancelled: (m) =>
      broker.publish(exchanges.events, RoutingKeys.jobCancelled, m, { ...props(m, PUBLICATIONS.jobCancelled), messageId: jobCancelledMessageId(m.jobId) }),
  };
}

/**
 * Publishes a job's end: job.completed and, for a job with a completion callback, its first callback delivery (the
 * saga's callbacks queue takes nothing else); resolves once both are confirmed. Used by whoever announces a completed
 * job: the worker whose outcome completed it (a job without a tenant), else the saga (also at the deadline). The
 * caller then marks the job announced (JobStore.markNotified); both messages have ids fixed per job, so announcing
 * again after a crash in between repeats the same messages.
 */
export async function announceJobEnd(
  publish: Pick<Publishers, 'jobCompleted' | 'callbackDelivery'>,
  jobId: string,
  status: JobCompleted['status'],
  hasCallback: boolean,
  now: string = new Date().toISOString(),
): Promise<void> {
  await Promise.all([
    publish.jobCompleted(jobCompletedEvent(jobId, status, now)),
    hasCallback ? publish.callbackDelivery(firstCallbackDelivery(jobId, status, now)) : undefined,
  ]);
}
