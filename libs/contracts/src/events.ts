import { SCHEMA_VERSION, type CallbackDelivery, type JobCompleted } from './messages.ts';
import { callbackAttemptMessageId, callbackDeliveryId, jobCompletedMessageId } from './message-ids.ts';
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
