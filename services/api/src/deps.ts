import type { Config } from '@lookup/config';
import type { JobSubmitted } from '@lookup/contracts';
import type { Logger } from '@lookup/logging';
import type { JobStore, RateLimiter } from '@lookup/store';

/** Everything the API needs from the outside world; main.ts builds the real ones, tests pass fakes. */
export interface ApiDeps {
  config: Readonly<Config>;
  /** Root logger; becomes Fastify's loggerInstance (each request gets a child with its reqId). */
  logger: Logger;
  jobs: Pick<JobStore, 'create' | 'discard' | 'getDocument'>;
  /** Publishes job.submitted with a publisher confirm; rejects if the broker does not confirm in time. */
  publishJobSubmitted(message: JobSubmitted): Promise<void>;
  /** Whether RabbitMQ and Redis answer right now (for /health/ready). */
  readiness(): Promise<{ rabbitmq: boolean; redis: boolean }>;
  rateLimiter: RateLimiter;
}
