import type { ServiceType } from './services.ts';

/**
 * The message ids of the job flow, built here and nowhere else. Exactly-once effects rest on them:
 * - a command's id names its attempt, so a retry (attempt + 1) is a new message with a fresh delivery count
 *   (the delivery limit counts redeliveries per message id), while a redelivery of one attempt keeps its id;
 * - every announcement of one task's outcome carries the same id (a re-announcement after a redelivery, the
 *   dead-letter handler's), and so does every `job.completed` of one job (the saga's, the cancel route's), so a
 *   duplicate is recognisable as one wherever it is logged, dead-lettered or replayed.
 * `job.submitted` ids are random (one per request).
 */
export const commandMessageId = (jobId: string, service: ServiceType, attempt: number): string => `${jobId}:${service}:${attempt}`;

export const taskCompletedMessageId = (jobId: string, service: ServiceType): string => `${jobId}:${service}:done`;

export const jobCompletedMessageId = (jobId: string): string => `${jobId}:completed`;

/** The cancel broadcast to the workers (`job.cancelled`): one per job, whoever repeats it. */
export const jobCancelledMessageId = (jobId: string): string => `${jobId}:cancelled`;

/** A completion callback's delivery id, stable over its attempts (X-Lookup-Delivery): one per job and event. */
export const callbackDeliveryId = (jobId: string, event: string): string => `${jobId}:callback:${event}`;

/** The message id of a callback delivery's attempt. */
export const callbackAttemptMessageId = (jobId: string, event: string, attempt: number): string => `${jobId}:callback:${event}:${attempt}`;
