import {
  MessageValidators,
  RoutingKeys,
  SCHEMA_VERSION,
  commandMessageId,
  firstCallbackDelivery,
  jobCompletedEvent,
  outcomeOf,
  serviceName,
  type JobSubmitted,
  type LookupCommand,
  type TaskCompleted,
  type Validator,
} from '@lookup/contracts';
import { withSpan, type Logger } from '@lookup/logging';
import { PoisonMessageError, type Publishers, type ReceivedMessage } from '@lookup/messaging';
import type { JobStore } from '@lookup/store';

/** The saga's job-end metrics (jobEndMetrics): each job it finishes, once, with its duration. */
export interface JobEndMetrics {
  /** A job completed: `how` is Completed (every outcome in) or TimedOut (the deadline sweeper finished it). */
  finished(how: 'Completed' | 'TimedOut', createdAt: string | undefined, completedAt: string): void;
}

export interface SagaDeps {
  jobs: Pick<JobStore, 'markProcessing' | 'recordOutcome' | 'markNotified' | 'resultLocation'>;
  /** Commands to the workers, job.completed to the API processes, a job's callback to the callbacks queue (createPublishers). */
  publish: Pick<Publishers, 'command' | 'jobCompleted' | 'callbackDelivery'>;
  logger: Logger;
  metrics?: JobEndMetrics;
}

/** What the saga queue carries: job.submitted from the API, task.completed from the workers. */
export type SagaMessage = JobSubmitted | TaskCompleted;

/**
 * The orchestrator. Stateless between messages: job state lives in Redis and every step is idempotent,
 * so any number of replicas may consume the saga queue and any message may be redelivered.
 */
export function createSaga({ jobs, publish, logger, metrics }: SagaDeps) {
  /** job.submitted: mark the job Processing, then send one command per requested service. */
  async function onJobSubmitted(message: ReceivedMessage<JobSubmitted>): Promise<void> {
    const ev = message.body;
    const log = logger.child({ jobId: ev.jobId, messageId: ev.messageId });
    const status = await jobs.markProcessing(ev.jobId, new Date().toISOString());
    if (status === '') {
      // The API discards a job whose announcement it could not confirm; a late confirm lands here.
      log.warn('job.submitted for a job that does not exist; ignoring');
      return;
    }
    if (status !== 'Processing') {
      log.info({ status }, 'job already finished; not dispatching');
      return;
    }
    await withSpan('saga dispatch commands', { 'lookup.job_id': ev.jobId, 'lookup.services': ev.services.map(serviceName) }, () =>
      Promise.all(
        ev.services.map((service) => {
          const command: LookupCommand = {
            messageId: commandMessageId(ev.jobId, service, 1),
            correlationId: ev.jobId,
            schemaVersion: SCHEMA_VERSION,
            occurredAt: new Date().toISOString(),
            jobId: ev.jobId,
            target: ev.target,
            targetType: ev.targetType,
            serviceType: service,
            attempt: 1,
            ...(ev.fresh ? { fresh: true } : {}),
            ...(ev.priority && ev.priority !== 'normal' ? { priority: ev.priority } : {}),
          };
          return publish.command(command);
        }),
      ),
    );
    log.info({ services: ev.services.map(serviceName) }, 'commands dispatched');
  }

  /** task.completed: record the outcome atomically; announce job.completed once the last one is in. */
  async function onTaskCompleted(message: ReceivedMessage<TaskCompleted>): Promise<void> {
    const ev = message.body;
    const log = logger.child({ jobId: ev.jobId, messageId: ev.messageId, lookupService: serviceName(ev.serviceType) });
    // The location is derived, never trusted: a result lives at its job's own key for that service. An event
    // naming any other key (another job's result, any Redis key) is forged or broken and is dead-lettered.
    const own = jobs.resultLocation(ev.jobId, ev.serviceType);
    if (ev.location !== null && (ev.location.storage !== own.storage || ev.location.key !== own.key)) {
      throw new PoisonMessageError(
        `location ${JSON.stringify(ev.location.key.slice(0, 200))} is not job ${ev.jobId}'s result key for ${serviceName(ev.serviceType)} (${own.key})`,
      );
    }
    const at = new Date().toISOString();
    const result = await withSpan('saga record outcome', { 'lookup.job_id': ev.jobId, 'lookup.service': serviceName(ev.serviceType), 'lookup.outcome': ev.status }, () =>
      jobs.recordOutcome(ev.jobId, ev.serviceType, { ...outcomeOf(ev), location: ev.location === null ? null : own }, at),
    );
    switch (result.disposition) {
      case 'missing':
        log.warn('task.completed for a job that does not exist (expired?); ignoring');
        return;
      case 'unrequested':
        throw new PoisonMessageError(`job ${ev.jobId} did not request ${serviceName(ev.serviceType)}`);
      case 'duplicate':
        log.debug('duplicate task.completed; already recorded');
        break;
      case 'late':
        log.info({ status: result.status }, 'outcome arrived after the job finished; not recorded');
        break;
      case 'recorded':
        log.info({ status: ev.status, jobStatus: result.status }, 'outcome recorded');
        // Counted where the job completes: the one call whose outcome completed it.
        if (result.status === 'Completed') metrics?.finished('Completed', result.createdAt, at);
        break;
    }
    // Also on a duplicate: if a previous delivery completed the job but died before announcing it.
    if (result.status === 'Completed' && !result.notified) {
      await announceCompleted(ev.jobId, result.hasCallback);
      log.info('job completed');
    }
  }

  /**
   * Publishes job.completed (and, for a job with a completion callback, its callback command), then records that
   * they were published: at-least-once, since a job not marked notified is announced again by the redelivered
   * message that finished it (or by the next deadline sweep). A job without a callback costs the callbacks queue nothing.
   */
  async function announceCompleted(jobId: string, hasCallback: boolean): Promise<void> {
    await withSpan('saga complete job', { 'lookup.job_id': jobId }, async () => {
      const now = new Date().toISOString();
      await Promise.all([
        publish.jobCompleted(jobCompletedEvent(jobId, 'Completed', now)),
        hasCallback ? publish.callbackDelivery(firstCallbackDelivery(jobId, 'Completed', now)) : undefined,
      ]);
      await jobs.markNotified(jobId);
    });
  }

  /** The schema of a message on the saga queue, by its routing key; undefined for a key the saga does not take. */
  function validatorFor(routingKey: string): Validator<SagaMessage> | undefined {
    if (routingKey === RoutingKeys.jobSubmitted) return MessageValidators.jobSubmitted;
    if (routingKey === RoutingKeys.taskCompleted) return MessageValidators.taskCompleted;
    return undefined;
  }

  /** One message of the saga queue (validated by validatorFor), to its handler by routing key. */
  function handle(message: ReceivedMessage<SagaMessage>): Promise<void> {
    const routingKey = message.raw.fields.routingKey;
    if (routingKey === RoutingKeys.jobSubmitted) return onJobSubmitted(message as ReceivedMessage<JobSubmitted>);
    if (routingKey === RoutingKeys.taskCompleted) return onTaskCompleted(message as ReceivedMessage<TaskCompleted>);
    throw new PoisonMessageError(`the saga takes no '${routingKey}' messages`);
  }

  return { onJobSubmitted, onTaskCompleted, announceCompleted, validatorFor, handle };
}
