import { SCHEMA_VERSION, type CallbackDelivery, type JobCompleted, type JobSubmitted, type LookupCommand } from './messages.ts';
import { callbackAttemptMessageId, callbackDeliveryId, commandMessageId, jobCompletedMessageId } from './message-ids.ts';
import type { CallbackEvent } from './callbacks.ts';

/**
 * The one `job.completed` event of a job that finished at `now` (ISO 8601): Completed (the saga, when the last
 * outcome is in or the deadline passed) or Cancelled (the API's cancel route). Its message id is fixed per job,
 * so a repeated announcement is the same message.
 */
export function jobCompletedEvent(jobId: string, status: JobCompleted['status'], now: string): JobCompleted {
  return {
    messageId: jobCompletedMessageId(jobId),
    correlationId: jobId,
    schemaVersion: SCHEMA_VERSION,
    occurredAt: now,
    jobId,
    status,
    completedAt: now,
  };
}

/**
 * The first attempt of a job's completion callback (`callback.deliver`), sent by whoever ends a job that has a
 * callback (the saga on completion or at the deadline, the API on cancel). Its ids are fixed per job and event, so
 * a repeated send is the same message (the dispatcher's claim in Redis de-duplicates it).
 */
export function firstCallbackDelivery(jobId: string, status: JobCompleted['status'], now: string): CallbackDelivery {
  const event: CallbackEvent = status === 'Cancelled' ? 'cancelled' : 'completed';
  return {
    messageId: callbackAttemptMessageId(jobId, event, 1),
    correlationId: jobId,
    schemaVersion: SCHEMA_VERSION,
    occurredAt: now,
    jobId,
    deliveryId: callbackDeliveryId(jobId, event),
    event,
    attempt: 1,
  };
}

/** What dispatching a job needs: what its commands carry (a job.submitted's fields, kept in Redis while a tenant's job waits). */
export type DispatchSpec = Pick<JobSubmitted, 'target' | 'targetType' | 'services' | 'fresh' | 'priority'>;

/** A spec's `fresh` and `priority`, only where they say something (what a job.submitted and a command carry of them). */
function dispatchFlags(spec: DispatchSpec): Pick<DispatchSpec, 'fresh' | 'priority'> {
  return { ...(spec.fresh ? { fresh: true } : {}), ...(spec.priority && spec.priority !== 'normal' ? { priority: spec.priority } : {}) };
}

/** The dispatch spec of a job.submitted (fresh and priority only where they say something). */
export function dispatchSpecOf(ev: DispatchSpec): DispatchSpec {
  return { target: ev.target, targetType: ev.targetType, services: ev.services, ...dispatchFlags(ev) };
}

/**
 * A job's first commands, one per requested service (attempt 1, message id fixed per job, service and attempt), as
 * whoever dispatches it sends them: the API for a job without a tenant, the saga for a tenant's job (its window).
 */
export function firstCommands(jobId: string, spec: DispatchSpec, now: string = new Date().toISOString()): LookupCommand[] {
  const flags = dispatchFlags(spec);
  return spec.services.map((service) => ({
    messageId: commandMessageId(jobId, service, 1),
    correlationId: jobId,
    schemaVersion: SCHEMA_VERSION,
    occurredAt: now,
    jobId,
    target: spec.target,
    targetType: spec.targetType,
    serviceType: service,
    attempt: 1,
    ...flags,
  }));
}
