import {
  MessageValidators,
  RoutingKeys,
  dispatchSpecOf,
  firstCommands,
  outcomeOf,
  serviceName,
  type DispatchSpec,
  type JobSubmitted,
  type TaskCompleted,
  type Validator,
} from '@lookup/contracts';
import { withSpan, type Logger } from '@lookup/logging';
import type { JobEndMetrics } from '@lookup/metrics';
import { PoisonMessageError, announceJobEnd, type Publishers, type ReceivedMessage } from '@lookup/messaging';
import type { JobStore, TenantDispatch } from '@lookup/store';

export interface SagaDeps {
  jobs: Pick<JobStore, 'startDispatch' | 'recordOutcome' | 'markNotified' | 'resultLocation' | 'getStatus'>;
  /** Commands to the workers, job.completed (for any listener), a job's callback to the callbacks queue (createPublishers). */
  publish: Pick<Publishers, 'command' | 'jobCompleted' | 'callbackDelivery'>;
  logger: Logger;
  metrics?: JobEndMetrics;
  /**
   * TENANT_DISPATCH_WINDOW > 0: a tenant's jobs are dispatched through its window (tenant-dispatch.ts in libs/store);
   * absent (0): every job is dispatched at once. Jobs without a tenant never touch it.
   */
  tenantDispatch?: TenantDispatch;
  /** How long a job taken from a tenant's queue may stay unpublished before the sweeper publishes it (ms). */
  unpublishedGraceMs?: number;
  /** Counts each job queued because its tenant's window was full (lookup_tenant_jobs_held_total). */
  tenantMetrics?: { held(): void };
}

/** What the saga queue carries: job.submitted from the API (a tenant's job), task.completed from the workers. */
export type SagaMessage = JobSubmitted | TaskCompleted;

/**
 * The orchestrator. Stateless between messages: job state lives in Redis and every step is idempotent,
 * so any number of replicas may consume the saga queue and any message may be redelivered.
 */
export function createSaga({ jobs, publish, logger, metrics, tenantDispatch, unpublishedGraceMs = 5000, tenantMetrics }: SagaDeps) {
  /** One command per requested service, published (confirmed) to the work queue of the job's priority. */
  async function publishCommands(jobId: string, spec: DispatchSpec): Promise<void> {
    await withSpan('saga dispatch commands', { 'lookup.job_id': jobId, 'lookup.services': spec.services.map(serviceName) }, () =>
      Promise.all(firstCommands(jobId, spec).map((command) => publish.command(command))),
    );
  }

  /**
   * job.submitted: mark the job Processing, then send one command per requested service. A tenant's job (with
   * TENANT_DISPATCH_WINDOW) first takes a slot of its tenant's window, or waits in the tenant's queue (Pending) until
   * one of the tenant's jobs ends (refillTenant).
   */
  async function onJobSubmitted(message: ReceivedMessage<JobSubmitted>): Promise<void> {
    const ev = message.body;
    const log = logger.child({ jobId: ev.jobId, messageId: ev.messageId });
    const { status, tenant } = await jobs.startDispatch(ev.jobId, new Date().toISOString(), tenantDispatch !== undefined);
    if (status === '') {
      // The API discards a job whose announcement it could not confirm; a late confirm lands here.
      log.warn('job.submitted for a job that does not exist; ignoring');
      return;
    }
    if (status === 'Completed' || status === 'Cancelled') {
      log.info({ status }, 'job already finished; not dispatching');
      return;
    }
    const spec = dispatchSpecOf(ev);
    if (!tenant || !tenantDispatch) {
      await publishCommands(ev.jobId, spec);
      log.info({ services: ev.services.map(serviceName) }, 'commands dispatched');
      return;
    }
    const { admission, waiting } = await tenantDispatch.admit(tenant, ev.jobId, spec);
    switch (admission) {
      case 'wait':
        tenantMetrics?.held();
        log.info({ tenant, waiting }, "the tenant's dispatch window is full; the job waits for its turn");
        return;
      case 'waiting':
        log.debug({ tenant }, 'duplicate job.submitted; the job already waits for its turn');
        return;
      case 'dispatched':
        // Holds a slot already: a duplicate announcement dispatches nothing more; a redelivery (the delivery that took
        // the slot may have died before publishing) publishes again (the commands' effects are idempotent).
        if (!message.redelivered) {
          log.debug({ tenant }, 'duplicate job.submitted; the job was already dispatched');
          return;
        }
        break;
      case 'dispatch':
        break;
    }
    await dispatchAdmitted(tenant, ev.jobId, spec, log);
  }

  /**
   * A tenant's job that holds a slot of its window: marked Processing and its commands published. One that ended
   * meanwhile (cancelled, expired) or whose deadline passed while it waited gives the slot back and is not dispatched
   * (the deadline sweep finishes it). Answers whether it was published.
   */
  async function dispatchAdmitted(tenant: string, jobId: string, spec: DispatchSpec, log: Logger): Promise<boolean> {
    const now = new Date();
    const { status, overdue } = await jobs.startDispatch(jobId, now.toISOString(), false, now.getTime());
    if (status !== 'Processing') {
      // Ended meanwhile (cancelled), or its deadline passed while it waited: the deadline sweep finishes it.
      await tenantDispatch!.release(tenant, [jobId]);
      log.info({ tenant, status: status || 'missing', overdue }, overdue ? 'job reached its deadline before its turn; not dispatched' : 'job ended before its turn; its slot is given back');
      return false;
    }
    await publishCommands(jobId, spec);
    log.info({ tenant, services: spec.services.map(serviceName) }, 'commands dispatched');
    return true;
  }

  /**
   * Fills the tenant's window from its queue and dispatches the jobs taken (after one of its jobs ended, and on every
   * sweep). A taken job is recorded unpublished until its commands are confirmed, so a saga dying in between leaves it
   * to the sweeper (sweepTenants). Answers how many jobs it dispatched.
   */
  async function refillTenant(tenant: string): Promise<number> {
    if (!tenantDispatch) return 0;
    let dispatched = 0;
    // A taken job that had ended gives its slot back at once: take again (bounded; the sweeper continues).
    for (let round = 0; round < 8; round++) {
      const { taken } = await tenantDispatch.refill(tenant);
      if (taken.length === 0) break;
      const published = await Promise.all(taken.map(({ jobId, spec }) => dispatchTaken(tenant, jobId, spec)));
      dispatched += published.filter(Boolean).length;
      if (published.every(Boolean)) break;
    }
    return dispatched;
  }

  async function dispatchTaken(tenant: string, jobId: string, spec: DispatchSpec | undefined): Promise<boolean> {
    const log = logger.child({ jobId, tenant });
    if (!spec) {
      // Written with the queue entry in one script, so never absent; without it the job runs into its deadline.
      await tenantDispatch!.release(tenant, [jobId]);
      log.error('a waiting job has no dispatch record; it will time out at its deadline');
      return false;
    }
    const published = await dispatchAdmitted(tenant, jobId, spec, log);
    if (published) await tenantDispatch!.published(tenant, jobId);
    return published;
  }

  /**
   * The elected sweeper's pass over the tenants with waiting jobs: drops window slots of jobs that ended without
   * releasing them (a crash between a job's end and its release), publishes jobs taken from the queue whose saga died
   * before publishing them, and refills each window (an end the saga did not see, such as the API's cancel).
   */
  async function sweepTenants(signal?: AbortSignal): Promise<void> {
    if (!tenantDispatch) return;
    for (const tenant of await tenantDispatch.tenants()) {
      if (signal?.aborted) return;
      const inWindow = await tenantDispatch.windowJobs(tenant);
      const statuses = await Promise.all(inWindow.map((jobId) => jobs.getStatus(jobId)));
      const ended = inWindow.filter((_, i) => statuses[i] === undefined || statuses[i] === 'Completed' || statuses[i] === 'Cancelled');
      if (ended.length > 0) {
        await tenantDispatch.release(tenant, ended);
        logger.warn({ tenant, jobs: ended.length }, "freed window slots of jobs that ended without releasing them");
      }
      for (const { jobId, spec } of await tenantDispatch.unpublished(tenant, Date.now() - unpublishedGraceMs)) {
        logger.warn({ jobId, tenant }, 'a job taken from its tenant queue was never published; publishing it');
        await dispatchTaken(tenant, jobId, spec);
      }
      await refillTenant(tenant);
      await tenantDispatch.forgetIfIdle(tenant);
    }
  }

  /** After a tenant's job ended: its freed slot goes to the tenant's next job (a failure here is the sweeper's to heal). */
  async function afterTenantJobEnded(tenant: string | undefined): Promise<void> {
    if (!tenant || !tenantDispatch) return;
    try {
      await refillTenant(tenant);
    } catch (err) {
      logger.warn({ tenant, err: (err as Error).message }, "could not refill the tenant's dispatch window; the sweeper will");
    }
  }

  /**
   * task.completed: record the outcome atomically; announce job.completed once the last one is in. A worker records
   * its outcome itself when it stores the result (lua/save-result.lua) and announces only the one that completes the
   * job, which arrives here as a duplicate of a Completed job not yet announced; an older worker announces every
   * outcome, recorded here.
   */
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
        log.debug('outcome already recorded');
        break;
      case 'late':
        log.info({ status: result.status }, 'outcome arrived after the job finished; not recorded');
        break;
      case 'recorded':
        log.info({ status: ev.status, jobStatus: result.status }, 'outcome recorded');
        break;
    }
    // Also on a duplicate: the worker that recorded the last outcome, or a delivery that completed the job but died
    // before announcing it.
    if (result.status === 'Completed' && !result.notified) {
      const first = await announceCompleted(ev.jobId, result.hasCallback);
      // Counted once per job, by whoever announced it first (not for a job the deadline sweep finished: no createdAt).
      if (first && result.createdAt) metrics?.finished('Completed', result.createdAt, at);
      log.info('job completed');
    }
    // This outcome ended a tenant's job: its window slot is free for the tenant's next waiting job.
    if (result.tenant) await afterTenantJobEnded(result.tenant);
  }

  /**
   * Publishes job.completed (and, for a job with a completion callback, its callback command), then records that
   * they were published: at-least-once, since a job not marked notified is announced again by the redelivered
   * message that finished it (or by the next deadline sweep). A job without a callback costs the callbacks queue nothing.
   * Answers whether this call was the first to mark the job announced. `status` Cancelled: the deadline sweep
   * announcing a cancellation the API could not.
   */
  async function announceCompleted(jobId: string, hasCallback: boolean, status: 'Completed' | 'Cancelled' = 'Completed'): Promise<boolean> {
    return withSpan('saga complete job', { 'lookup.job_id': jobId }, async () => {
      await announceJobEnd(publish, jobId, status, hasCallback);
      return jobs.markNotified(jobId);
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

  return { onJobSubmitted, onTaskCompleted, announceCompleted, afterTenantJobEnded, sweepTenants, validatorFor, handle };
}
