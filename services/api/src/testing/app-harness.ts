/**
 * The app under test with in-memory fakes (no Redis, no RabbitMQ), shared by the route test files. Importing it
 * registers an afterEach that closes every app a test built (push extra ones to `apps`).
 */
import { afterEach } from 'vitest';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { loadConfig, type Config } from '@lookup/config';
import { serviceName, type JobCompleted, type JobDocument, type JobSubmitted, type LookupCommand, type ServiceResult, type ServiceType } from '@lookup/contracts';
import { createLogger } from '@lookup/logging';
import type { BatchRecord, CancelDisposition, IdempotencyClaim, JobListPage, JobListQuery, NewBatch, NewJob, RateLimitDecision, RateLimiter, RateLimitTier } from '@lookup/store';
import { buildApp } from '../app.ts';
import type { ApiDeps } from '../deps.ts';

// ---------------------------------------------------------------------------------------------------------
// In-memory fakes: no Redis, no RabbitMQ.

export class FakeJobs {
  readonly jobs = new Map<string, NewJob>();
  readonly documents = new Map<string, JobDocument>();
  readonly discarded: string[] = [];
  readonly batches = new Map<string, NewBatch>();
  failCreate = false;
  failGet = false;
  /** Like the Redis script: every job and the batch record, or (failCreate) nothing. */
  async createMany(batch: NewBatch, jobs: readonly NewJob[]): Promise<void> {
    if (this.failCreate) throw new Error('redis down');
    for (const job of jobs) this.jobs.set(job.jobId, job);
    this.batches.set(batch.batchId, batch);
  }
  async discardMany(batchId: string, jobIds: readonly string[]): Promise<void> {
    for (const id of jobIds) await this.discard(id);
    this.batches.delete(batchId);
  }
  async getBatch(batchId: string): Promise<BatchRecord | undefined> {
    if (this.failGet) throw new Error('redis down');
    const batch = this.batches.get(batchId);
    if (!batch) return undefined;
    return { ...batch, statuses: batch.jobs.map((j) => this.statuses.get(j.jobId) ?? (this.jobs.has(j.jobId) ? 'Pending' : 'Expired')) };
  }
  async create(job: NewJob): Promise<void> {
    if (this.failCreate) throw new Error('redis down');
    this.jobs.set(job.jobId, job);
  }
  async discard(jobId: string): Promise<void> {
    this.discarded.push(jobId);
    this.jobs.delete(jobId);
  }
  /** The stored jobs, newest first, one page (filters and cursors are tested against Redis: tests/job-listing.test.ts). */
  async list(query: JobListQuery): Promise<JobListPage> {
    if (this.failGet) throw new Error('redis down');
    const all = [...this.jobs.values()].reverse().map((j) => ({
      jobId: j.jobId, target: j.target, targetType: j.targetType, status: this.statuses.get(j.jobId) ?? 'Pending', createdAt: j.createdAt,
      requestedServices: j.services.map((s) => serviceName(s)),
    }));
    return { jobs: all.slice(0, query.limit), next: null };
  }
  async getDocument(jobId: string): Promise<JobDocument | undefined> {
    if (this.failGet) throw new Error('redis down');
    return this.documents.get(jobId);
  }
  /** The results of the stored document (what the store reads for an event stream's `result` events). */
  async getResults(jobId: string, services: readonly ServiceType[]): Promise<ServiceResult[]> {
    if (this.failGet) throw new Error('redis down');
    const names: string[] = services.map((s) => serviceName(s));
    return (this.documents.get(jobId)?.results ?? []).filter((r) => names.includes(r.serviceType));
  }
  readonly statuses = new Map<string, 'Pending' | 'Processing' | 'Completed' | 'Cancelled'>();
  async cancel(jobId: string): Promise<{ disposition: CancelDisposition; status: '' | 'Completed' | 'Cancelled' | 'Pending' | 'Processing'; hasCallback: boolean }> {
    const status = this.statuses.get(jobId) ?? (this.jobs.has(jobId) ? 'Pending' : undefined);
    if (!status) return { disposition: 'missing', status: '', hasCallback: false };
    if (status === 'Completed' || status === 'Cancelled') return { disposition: 'finished', status, hasCallback: false };
    this.statuses.set(jobId, 'Cancelled');
    return { disposition: 'cancelled', status: 'Cancelled', hasCallback: this.jobs.get(jobId)?.callback !== undefined };
  }
  /** Jobs whose end this API announced (markNotified), in order. */
  readonly notified: string[] = [];
  async markNotified(jobId: string): Promise<boolean> {
    if (this.notified.includes(jobId)) return false;
    this.notified.push(jobId);
    return true;
  }
}

/** Same semantics as the Redis store: per client, first claim wins, same fingerprint replays. */
export class FakeIdempotency {
  readonly claims = new Map<string, { fingerprint: string; jobId: string }>();
  async claim(client: string, key: string, fingerprint: string, jobId: string): Promise<IdempotencyClaim> {
    const prev = this.claims.get(`${client} ${key}`);
    if (!prev) {
      this.claims.set(`${client} ${key}`, { fingerprint, jobId });
      return { state: 'new' };
    }
    return prev.fingerprint === fingerprint ? { state: 'replay', jobId: prev.jobId } : { state: 'conflict', jobId: prev.jobId };
  }
  async release(client: string, key: string, jobId: string): Promise<void> {
    if (this.claims.get(`${client} ${key}`)?.jobId === jobId) this.claims.delete(`${client} ${key}`);
  }
}

export class FakeLimiter implements RateLimiter {
  /** Each check; `cost` only when it is not 1 (a batch). */
  readonly calls: { tier: RateLimitTier; client: string; cost?: number }[] = [];
  refuse: RateLimitDecision | undefined;
  throws = false;
  /** When set, counts like the Redis limiter: per tier and client, a refused request counted nowhere. */
  limits: Partial<Record<RateLimitTier, number>> | undefined;
  readonly counted = new Map<string, number>();
  async check(tier: RateLimitTier, client: string, cost = 1): Promise<RateLimitDecision> {
    this.calls.push(cost === 1 ? { tier, client } : { tier, client, cost });
    if (this.throws) throw new Error('redis down');
    const limit = this.limits?.[tier];
    if (limit !== undefined) {
      const used = this.counted.get(`${tier} ${client}`) ?? 0;
      if (used + cost > limit) return { allowed: false, retryAfterSeconds: 42, limit, remaining: 0 };
      this.counted.set(`${tier} ${client}`, used + cost);
      return { allowed: true, retryAfterSeconds: 0, limit, remaining: limit - used - cost, resetSeconds: 60 };
    }
    return this.refuse ?? { allowed: true, retryAfterSeconds: 0, limit: 20, remaining: 19 };
  }
}

/** A job as the API dispatched it: by its commands (a job without a tenant), or by job.submitted to the saga. */
export type DispatchedJob = Pick<JobSubmitted, 'jobId' | 'target' | 'targetType' | 'services' | 'fresh' | 'priority'> & { via: 'commands' | 'saga' };

export interface Harness {
  app: FastifyInstance;
  jobs: FakeJobs;
  /** job.submitted messages published (tenants' jobs). */
  published: JobSubmitted[];
  /** Commands published (jobs without a tenant), in order. */
  commands: LookupCommand[];
  /** Every job dispatched, either way, in order (commands grouped by job). */
  dispatched: DispatchedJob[];
  completed: JobCompleted[];
  limiter: FakeLimiter;
  logs: Record<string, unknown>[];
  deps: ApiDeps;
  setPublishFails(fails: boolean): void;
  setReady(ready: { rabbitmq: boolean; redis: boolean }): void;
}

export const apps: FastifyInstance[] = [];
afterEach(async () => {
  while (apps.length > 0) await apps.pop()!.close();
});

export async function harness(overrides: Partial<Config> = {}, extraDeps: Partial<ApiDeps> = {}): Promise<Harness> {
  // DNS_SERVERS on loopback, where nothing answers: the API's domain pre-check fails at once and accepts (no
  // query leaves the machine). The pre-check itself is tested in routes/lookup-target-policy.test.ts.
  const config: Readonly<Config> = Object.freeze({ ...loadConfig({}), bodyLimitBytes: 1024, dnsServers: ['127.0.0.1:9'], ...overrides });
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({
    service: 'api-test',
    level: 'info',
    destination: { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
  });
  const jobs = new FakeJobs();
  const published: JobSubmitted[] = [];
  const commands: LookupCommand[] = [];
  const dispatched: DispatchedJob[] = [];
  const byCommands = new Map<string, DispatchedJob>();
  const completed: JobCompleted[] = [];
  const limiter = new FakeLimiter();
  let publishFails = false;
  let ready = { rabbitmq: true, redis: true };
  const deps: ApiDeps = {
    config,
    logger,
    jobs,
    batches: jobs,
    jobList: jobs,
    idempotency: new FakeIdempotency(),
    rateLimiter: limiter,
    async publishJobSubmitted(message) {
      if (publishFails) throw new Error('publish not confirmed');
      published.push(message);
      const { jobId, target, targetType, services, fresh, priority } = message;
      dispatched.push({ jobId, target, targetType, services, ...(fresh ? { fresh } : {}), ...(priority ? { priority } : {}), via: 'saga' });
    },
    async publishCommand(command) {
      if (publishFails) throw new Error('publish not confirmed');
      commands.push(command);
      const { jobId, target, targetType, serviceType, fresh, priority } = command;
      const job = byCommands.get(jobId);
      if (job) {
        job.services.push(serviceType);
        return;
      }
      const first: DispatchedJob = { jobId, target, targetType, services: [serviceType], ...(fresh ? { fresh } : {}), ...(priority ? { priority } : {}), via: 'commands' };
      byCommands.set(jobId, first);
      dispatched.push(first);
    },
    async publishJobCompleted(message) {
      completed.push(message);
    },
    async readiness() {
      return ready;
    },
    ...extraDeps,
  };
  const app = await buildApp(deps);
  apps.push(app);
  return {
    app,
    jobs,
    published,
    commands,
    dispatched,
    completed,
    limiter,
    logs,
    deps,
    setPublishFails: (f) => void (publishFails = f),
    setReady: (r) => void (ready = r),
  };
}

export const post = (app: FastifyInstance, payload: unknown, extra: Partial<InjectOptions> = {}) =>
  app.inject({ method: 'POST', url: '/api/lookup', payload: payload as InjectOptions['payload'], ...extra });

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export const JOB_ID = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';

export function sampleDocument(): JobDocument {
  return {
    jobId: JOB_ID,
    target: 'example.com',
    targetType: 'Domain',
    status: 'Processing',
    createdAt: '2025-01-01T00:00:00.000Z',
    completedAt: null,
    completionPercentage: 50,
    requestedServices: ['GeoIP', 'RDAP'],
    results: [
      {
        serviceType: 'GeoIP',
        status: 'Succeeded',
        success: true,
        data: {
          country: { iso: 'US', names: { en: 'United States' } },
          location: { latitude: 37.751, longitude: -97.822, accuracyRadius: 1000 },
          asn: 15169,
          tags: ['anycast', { kind: 'cdn', weight: 0.5 }],
          nothing: null,
          flag: false,
          deep: { a: { b: { c: { d: [1, [2, [3]]] } } } },
        },
        errorMessage: null,
        errorCode: null,
        completedAt: '2025-01-01T00:00:01.000Z',
        durationMs: 12.5,
        attempts: 1,
      },
      {
        serviceType: 'RDAP',
        status: 'Failed',
        success: false,
        data: null,
        errorMessage: 'registry answered 503',
        errorCode: 'RDAP_SERVER_ERROR',
        completedAt: '2025-01-01T00:00:02.000Z',
        durationMs: 900,
        attempts: 3,
      },
    ],
  };
}
