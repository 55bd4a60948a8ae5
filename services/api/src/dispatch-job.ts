import { randomUUID } from 'node:crypto';
import { SCHEMA_VERSION, dispatchSpecOf, firstCommands, serviceName, type DispatchSpec, type JobSubmitted } from '@lookup/contracts';
import { withSpan } from '@lookup/logging';
import type { ApiDeps } from './deps.ts';

/**
 * Announces an accepted job (already stored), resolving once the broker confirmed every message of it and rejecting
 * as the publishes do. `viaSaga` false (a job without a tenant, created Processing): its commands, one per requested
 * service, go straight to the workers' queues. `viaSaga` true (a tenant's job, created Pending): job.submitted goes
 * to the saga, which dispatches it when the tenant's window (TENANT_DISPATCH_WINDOW) has room.
 */
export type DispatchJob = (message: JobSubmitted, viaSaga: boolean) => Promise<void>;

/** The job.submitted of a stored job (what dispatchJob takes, single or batch): `fresh` and `priority` only where they say something. */
export function jobSubmittedMessage(jobId: string, spec: DispatchSpec, occurredAt: string): JobSubmitted {
  return { messageId: randomUUID(), correlationId: jobId, schemaVersion: SCHEMA_VERSION, occurredAt, jobId, ...dispatchSpecOf(spec) };
}

/**
 * Why the API publishes the commands itself: the saga's dispatch step (a job.submitted delivered, a Redis call, the
 * commands published, an ack) was one persistent message and one hop per job that did nothing a job without a tenant
 * needs. The commands are the same as the saga's (contracts' firstCommands: attempt 1, fixed message ids), so a
 * repeated dispatch is the same commands.
 */
export function createDispatchJob(deps: Pick<ApiDeps, 'publishJobSubmitted' | 'publishCommand'>): DispatchJob {
  return async (message, viaSaga) => {
    if (viaSaga) return deps.publishJobSubmitted(message);
    const commands = firstCommands(message.jobId, message, message.occurredAt);
    await withSpan('api dispatch commands', { 'lookup.job_id': message.jobId, 'lookup.services': message.services.map(serviceName) }, () =>
      Promise.all(commands.map((command) => deps.publishCommand(command))),
    );
  };
}
