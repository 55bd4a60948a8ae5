import { randomUUID } from 'node:crypto';
import {
  RoutingKeys,
  SCHEMA_VERSION,
  serviceName,
  type LookupCommand,
  type ResultLocation,
  type ServiceType,
  type StoredResult,
  type TaskCompleted,
} from '@lookup/contracts';
import type { Logger } from '@lookup/logging';
import type { ReceivedMessage } from '@lookup/messaging';
import { PoisonMessageError } from '@lookup/messaging';
import type { ResultStore } from '@lookup/store';
import type { LookupFn } from './types.ts';
import { runLookup, type AttemptPolicy } from './run-lookup.ts';

export interface CommandHandlerDeps {
  service: ServiceType;
  lookup: LookupFn;
  results: Pick<ResultStore, 'save' | 'find' | 'locate'>;
  publishEvent: (routingKey: string, event: TaskCompleted) => Promise<void>;
  policy: AttemptPolicy;
  logger: Logger;
  stopSignal?: AbortSignal;
}

/**
 * One command: run the lookup, store the result (first writer wins), publish task.completed with the
 * result's location, and only then return (the caller acks). A redelivered command whose result is
 * already stored skips the lookup and re-announces the stored result.
 */
export function createCommandHandler(deps: CommandHandlerDeps) {
  const { service, lookup, results, publishEvent, policy, logger, stopSignal } = deps;
  return async function handleCommand(message: ReceivedMessage<LookupCommand>): Promise<void> {
    const cmd = message.body;
    const log = logger.child({ jobId: cmd.jobId, messageId: cmd.messageId, service: serviceName(service) });
    if (cmd.serviceType !== service) {
      throw new PoisonMessageError(`command for service ${cmd.serviceType} reached the ${serviceName(service)} worker`);
    }
    if (message.redelivered) {
      const existing = await results.find(cmd.jobId, service);
      if (existing) {
        log.info('redelivered command already has a stored result; re-announcing it');
        await publishEvent(RoutingKeys.taskCompleted, eventFor(existing, results.locate(cmd.jobId, service), cmd));
        return;
      }
    }
    const outcome = await runLookup(lookup, { ...cmd, firstAttempt: cmd.attempt }, policy, log, stopSignal);
    const stored: StoredResult = {
      jobId: cmd.jobId,
      serviceType: service,
      status: outcome.status,
      success: outcome.status === 'Succeeded',
      data: outcome.data,
      errorMessage: outcome.errorMessage,
      durationMs: outcome.durationMs,
      attempts: outcome.attempts,
      completedAt: new Date().toISOString(),
    };
    const saved = await results.save(stored);
    if (!saved.created) log.info('a result was already stored for this task; announcing the stored one');
    await publishEvent(RoutingKeys.taskCompleted, eventFor(saved.result, saved.location, cmd));
    log.info({ status: saved.result.status, durationMs: saved.result.durationMs, attempts: saved.result.attempts }, 'lookup done');
  };
}

function eventFor(result: StoredResult, location: ResultLocation, cmd: LookupCommand): TaskCompleted {
  return {
    messageId: randomUUID(),
    correlationId: cmd.jobId,
    schemaVersion: SCHEMA_VERSION,
    occurredAt: new Date().toISOString(),
    jobId: cmd.jobId,
    serviceType: result.serviceType,
    status: result.status,
    success: result.success,
    errorMessage: result.errorMessage,
    durationMs: result.durationMs,
    attempts: result.attempts,
    completedAt: result.completedAt,
    location,
  };
}
