import type { Config } from '@lookup/config';
import type { CallbackDelivery, JobCompleted, JobSubmitted, LookupCommand } from '@lookup/contracts';
import type { DeadLetter, DeadLetterSelector } from '@lookup/messaging';
import type { Logger } from '@lookup/logging';
import type { IdempotencyStore, JobStore, RateLimiter, TenantQuota } from '@lookup/store';
import type { ResourceRouter } from './resources/resource-router.ts';
import type { JobEventSource } from './job-events.ts';
import type { CallbackStatusSource } from './routes/lookup-callbacks.ts';

/** What the API needs to operate the dead-letter queue (main.ts backs it with the broker). */
export interface DeadLetterAdmin {
  list(limit: number): Promise<{ count: number; messages: DeadLetter[] }>;
  replay(selector: DeadLetterSelector): Promise<number>;
  discard(selector: DeadLetterSelector): Promise<number>;
}

/** Everything the API needs from the outside world; main.ts builds the real ones, tests pass fakes. */
export interface ApiDeps {
  config: Readonly<Config>;
  /** Root logger; becomes Fastify's loggerInstance (each request gets a child with its reqId). */
  logger: Logger;
  jobs: Pick<JobStore, 'create' | 'discard' | 'getDocument' | 'cancel' | 'markNotified'> &
    /** Some results alone, for event streams (without it they read the whole document). */
    Partial<Pick<JobStore, 'getResults'>>;
  /** Batch submissions (POST/GET /api/lookup/batch); when absent, those routes are not registered. */
  batches?: Pick<JobStore, 'createMany' | 'discardMany' | 'getBatch'>;
  /** The job listing (GET /api/lookup); when absent, that route is not registered. */
  jobList?: Pick<JobStore, 'list'>;
  /** Remembers Idempotency-Key headers of submissions. */
  idempotency: Pick<IdempotencyStore, 'claim' | 'release'>;
  /** Publishes job.submitted (a tenant's job, for the saga) with a publisher confirm; rejects if the broker does not confirm in time. */
  publishJobSubmitted(message: JobSubmitted): Promise<void>;
  /** Publishes a job's command to its service's work queue (a job without a tenant: dispatch-job.ts), confirmed likewise. */
  publishCommand(message: LookupCommand): Promise<void>;
  /** Announces a job's end (here: a cancellation) on job.completed. */
  publishJobCompleted(message: JobCompleted): Promise<void>;
  /** Broadcasts a cancellation to every worker process (job.cancelled), which aborts the job's lookups in flight. */
  publishJobCancelled?(message: JobCompleted): Promise<void>;
  /** Sends a cancelled job's completion callback (its first attempt) to the saga's callbacks queue, for a job that has one. */
  publishCallbackDelivery?(message: CallbackDelivery): Promise<void>;
  /** Whether RabbitMQ and Redis answer right now (for /health/ready). */
  readiness(): Promise<{ rabbitmq: boolean; redis: boolean }>;
  rateLimiter: RateLimiter;
  /** Per-tenant quotas (TENANTS); when absent, tenants' submissions are not counted and GET /api/usage is not registered. */
  tenantQuota?: TenantQuota;
  /** A job's recorded events and wake-ups when it changes; when absent, the event-stream routes are not registered. */
  jobEvents?: JobEventSource;
  /** Completion callbacks' delivery records; when absent, GET /api/lookup/{jobId}/callbacks is not registered. */
  callbacks?: CallbackStatusSource;
  /** Dead-letter queue operations; when absent, /api/admin/dead-letters is not registered. */
  deadLetters?: DeadLetterAdmin;
  /** Pinned-resource routing; when absent, the /api/resources and /api/admin/resources routes are not registered. */
  resources?: ResourceRouter;
}
