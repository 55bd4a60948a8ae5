import { SCHEMA_VERSION, type JobCompleted } from './messages.ts';
import { jobCompletedMessageId } from './message-ids.ts';

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
