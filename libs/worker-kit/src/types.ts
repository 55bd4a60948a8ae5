import type { Config } from '@lookup/config';
import type { Logger } from '@lookup/logging';
import type { ServiceType, TargetType } from '@lookup/contracts';
import type { TSchema } from '@sinclair/typebox';

/** What a lookup function receives for one attempt. */
export interface LookupContext {
  jobId: string;
  target: string;
  targetType: TargetType;
  /** 1-based attempt number. */
  attempt: number;
  /** Aborted when the attempt's timeout passes or the worker shuts down; pass it to I/O. */
  signal: AbortSignal;
  logger: Logger;
}

/**
 * The result data of a lookup: a JSON object. Throw a LookupError from @lookup/contracts
 * (permanentError / transientError) to fail; any other thrown error counts as transient.
 */
export type LookupData = Record<string, unknown>;
export type LookupFn = (ctx: LookupContext) => Promise<LookupData>;

export interface LookupSetupDeps {
  config: Readonly<Config>;
  logger: Logger;
}

/** A lookup service: all a new service has to write. The kit does queues, storage, events, retries. */
export interface LookupService {
  service: ServiceType;
  /** TypeBox schema of the data `lookup` returns. */
  dataSchema: TSchema;
  /** Per-attempt timeout; defaults to config.lookupTimeoutMs. */
  timeoutMs?: (config: Readonly<Config>) => number;
  /** Attempts for transient failures; defaults to config.retryMaxAttempts (and never exceeds it). */
  maxAttempts?: (config: Readonly<Config>) => number;
  /** Called once at start-up (open databases, build resolvers). */
  setup(deps: LookupSetupDeps): Promise<{ lookup: LookupFn; close?: () => Promise<void> | void }>;
}

export function defineLookupService(service: LookupService): LookupService {
  return service;
}
