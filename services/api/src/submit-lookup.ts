import { randomUUID } from 'node:crypto';
import {
  serviceName,
  validateTarget,
  type JobSubmitted,
  type CallbackSpec,
  type SubmitLookupAccepted,
  type TargetPolicy,
} from '@lookup/contracts';
import type { Config } from '@lookup/config';
import type { ApiDeps } from './deps.ts';
import { countSubmitted } from './api-metrics.ts';
import { createDispatchJob, jobSubmittedMessage, type DispatchJob } from './dispatch-job.ts';
import {
  BrokerUnavailable,
  IdempotencyConflict,
  InvalidIdempotencyKey,
  InvalidServices,
  InvalidSubmission,
  InvalidTarget,
  StoreUnavailable,
  TargetNotAllowed,
  truncate,
} from './http-errors.ts';
import { parseServices } from './services-param.ts';
import { parseCallback } from './callback-param.ts';
import type { TenantSpend } from './tenant-quota.ts';

/** What submitLookup needs; built once (createSubmitLookupDeps), shared by every call. */
export interface SubmitLookupDeps {
  config: Pick<Readonly<Config>, 'jobDeadlineMs' | 'callbackSecret'>;
  jobs: Pick<ApiDeps['jobs'], 'create' | 'discard'>;
  idempotency: ApiDeps['idempotency'];
  /** Announces an accepted job: its commands, or a tenant's job.submitted (dispatch-job.ts). */
  dispatchJob: DispatchJob;
  targetPolicy: Pick<TargetPolicy, 'checkAddress'>;
  /** The DNS pre-check of a domain (routes/lookup.ts createDomainPrecheck): the refusal message, or undefined. */
  precheckDomain: ((name: string) => Promise<string | undefined>) | undefined;
}

/** One submission as the client sent it (the body already passed the route's JSON schema). */
export interface SubmitLookupInput {
  target: string;
  services?: readonly unknown[];
  /** Run every lookup anew, reusing no earlier result (body `fresh: true`, or Cache-Control: no-cache). */
  fresh?: boolean;
  /** The job's priority (body `priority`; absent: normal). */
  priority?: 'high' | 'normal' | 'low';
  /** The completion callback asked for (body `callback`). */
  callback?: { url: string; events?: readonly string[] };
  /** Who the submission counts against (the request's clientId); scopes the Idempotency-Key. */
  clientId: string;
  /** The Idempotency-Key header as received (validated here); undefined: no idempotency. */
  idempotencyKey?: string | string[];
}

/** The few logger methods used (a pino logger, or a Fastify request's). */
export interface SubmitLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  child(bindings: Record<string, unknown>): SubmitLog;
}

export interface SubmitLookupOptions {
  /** The request's logger (lines carry the job id as a child). */
  log: SubmitLog;
  /**
   * Spends the submission quota; throws (RateLimited) to refuse. Called once, after every check that costs no I/O
   * beyond Redis and after the Idempotency-Key's claim (so an invalid submission or a replay spends nothing), and
   * before the DNS pre-check (so DNS queries are never free). A refusal releases the claimed key. Omitted: no quota
   * is spent here.
   */
  spendQuota?: () => Promise<void>;
  /** The tenant quota of the request's key (tenant-quota.ts), spent right after `spendQuota` for the new job id;
   *  the job records its tenant, and its end frees the in-flight slot. */
  tenant?: TenantSpend;
}

/** The job a submission names: a new one, or (replayed) the one an earlier submission with its key created. */
export interface SubmitLookupResult {
  jobId: string;
  target: string;
  targetType: JobSubmitted['targetType'];
  services: JobSubmitted['services'];
  /** True when the Idempotency-Key was already used with this body: nothing was created. */
  replayed: boolean;
  /** The 202 body. */
  accepted: SubmitLookupAccepted;
}

/** Whether a request asks for new lookups: `Cache-Control: no-cache` (or `no-store`, `max-age=0`). */
export function wantsFresh(cacheControl: string | string[] | undefined): boolean {
  const value = Array.isArray(cacheControl) ? cacheControl.join(',') : (cacheControl ?? '');
  return value.split(',').some((d) => ['no-cache', 'no-store', 'max-age=0'].includes(d.trim().toLowerCase()));
}

export const IDEMPOTENCY_KEY_RE = /^[\x21-\x7e]{1,255}$/;

export function createSubmitLookupDeps(deps: ApiDeps, targetPolicy: TargetPolicy, precheckDomain: SubmitLookupDeps['precheckDomain']): SubmitLookupDeps {
  const { config, jobs, idempotency } = deps;
  // Every accepted job, single or from a batch, is dispatched through here: lookup_jobs_submitted_total counts it.
  return { config, jobs, idempotency, dispatchJob: countSubmitted(createDispatchJob(deps)), targetPolicy, precheckDomain };
}

export function acceptedBody(jobId: string, target: string, services: JobSubmitted['services']): SubmitLookupAccepted {
  return {
    jobId,
    statusUrl: `/api/lookup/${jobId}`,
    message: `Lookup accepted: ${services.map(serviceName).join(', ')} for ${target}. Poll statusUrl for the results.`,
  };
}

/** A submission that passed the checks that cost no I/O: the normalised target and the services. */
export interface ValidSubmission {
  target: string;
  targetType: JobSubmitted['targetType'];
  services: JobSubmitted['services'];
  callback?: CallbackSpec;
}

/**
 * Step 1 of a submission (see submitLookup), shared with the batch endpoint, which applies it to every item: the
 * target (InvalidTarget), an IP literal against the target policy (TargetNotAllowed, at once), the services
 * (InvalidServices; both bad: InvalidSubmission with every problem), then the callback if any (CallbacksDisabled
 * without CALLBACK_SECRET, InvalidCallback, CallbackNotAllowed for an IP literal the policy refuses). No I/O; throws
 * the catalogue error.
 */
export function validateSubmission(
  targetPolicy: Pick<TargetPolicy, 'checkAddress'>,
  input: { target: string; services?: readonly unknown[]; callback?: SubmitLookupInput['callback'] },
  log: Pick<SubmitLog, 'info'>,
  callbacksEnabled = false,
): ValidSubmission {
  const problems: string[] = [];
  const target = validateTarget(input.target);
  if (!target.ok) {
    problems.push(target.error);
  } else if (target.targetType === 'IPAddress') {
    const verdict = targetPolicy.checkAddress(target.target);
    if (!verdict.allowed) {
      log.info({ target: truncate(target.target, 100), rule: verdict.rule }, 'target refused by the target policy');
      throw new TargetNotAllowed(verdict.message);
    }
  }
  const services = parseServices(input.services);
  if (!services.ok) problems.push(...services.problems);
  if (!target.ok) throw services.ok ? new InvalidTarget(problems) : new InvalidSubmission(problems);
  if (!services.ok) throw new InvalidServices(problems);
  const valid: ValidSubmission = { target: target.target, targetType: target.targetType, services: services.services };
  if (input.callback !== undefined) valid.callback = parseCallback(input.callback, targetPolicy, callbacksEnabled);
  return valid;
}

/**
 * Submits one lookup, HTTP-free: checks, idempotency, create, publish, and undo when publishing fails. Resolves to
 * the job (new or replayed) or throws a catalogue error (http-errors.ts) that the caller answers as it is.
 *
 * The order is the contract (tests pin it):
 * 1. the target (InvalidTarget), an IP literal against the target policy (TargetNotAllowed, at once), the services
 *    (InvalidServices; both bad: InvalidSubmission with every problem);
 * 2. the Idempotency-Key's form (InvalidIdempotencyKey), then its claim: a replay resolves with `replayed: true`
 *    and creates nothing, a different body under the key is IdempotencyConflict, a Redis failure StoreUnavailable;
 * 3. `options.spendQuota()`, then the tenant's quota (`options.tenant`, TenantQuotaExceeded): only now is the
 *    submission counted (a refusal frees the claimed key and is rethrown);
 * 4. a domain's DNS pre-check (TargetNotAllowed; it spent quota, since it cost a DNS query);
 * 5. the job is stored (StoreUnavailable) and dispatched with confirms (dispatch-job.ts: its commands, Processing;
 *    a tenant's job, Pending, as job.submitted to the saga); when that fails the job is discarded and
 *    BrokerUnavailable thrown. Whenever the submission does not create its job, the claimed key is
 *    released so a retry can use it.
 *
 * The batch endpoint (`POST /api/lookup/batch`, submit-batch.ts) shares step 1 (validateSubmission, per item) and
 * does the rest for the whole batch at once: one Idempotency-Key, one quota spend of N, one Redis step for every job.
 */
export async function submitLookup(deps: SubmitLookupDeps, input: SubmitLookupInput, options: SubmitLookupOptions): Promise<SubmitLookupResult> {
  const { jobs, idempotency, dispatchJob, targetPolicy, precheckDomain } = deps;
  const valid = validateSubmission(targetPolicy, input, options.log, deps.config.callbackSecret !== undefined);

  const jobId = randomUUID();
  const log = options.log.child({ jobId });
  const result = (id: string, replayed: boolean): SubmitLookupResult => ({
    jobId: id,
    target: valid.target,
    targetType: valid.targetType,
    services: valid.services,
    replayed,
    accepted: acceptedBody(id, valid.target, valid.services),
  });

  const idemKey = input.idempotencyKey;
  if (idemKey !== undefined && (typeof idemKey !== 'string' || !IDEMPOTENCY_KEY_RE.test(idemKey))) throw new InvalidIdempotencyKey();
  if (typeof idemKey === 'string') {
    // The fingerprint is the normalised request: ' 8.8.8.8' and '8.8.8.8' are the same lookup.
    const fingerprint = JSON.stringify(valid.callback ? [valid.target, valid.services, valid.callback] : [valid.target, valid.services]);
    const claim = await claimIdempotencyKey(idempotency, input.clientId, idemKey, fingerprint, jobId, log);
    if (claim.state === 'replay') {
      log.info({ existingJobId: claim.jobId }, 'idempotent replay');
      return result(claim.jobId, true);
    }
  }
  /** Frees the claimed key when this submission does not create its job, so the retry can use it. */
  const releaseKey = async () => {
    if (typeof idemKey === 'string') await idempotency.release(input.clientId, idemKey, jobId).catch(() => undefined);
  };

  try {
    await options.spendQuota?.();
    await options.tenant?.acquire([jobId]);
  } catch (err) {
    await releaseKey();
    throw err;
  }
  /** Undoes the claims of a submission that does not create its job: the key, and the tenant's in-flight slot. */
  const undo = async () => {
    await releaseKey();
    await options.tenant?.release([jobId]);
  };

  // The domain pre-check sends DNS queries, so it runs after the quota: a client cannot make the API query
  // DNS_SERVERS without spending submissions (a domain refused here counts as a submission).
  if (valid.targetType === 'Domain' && precheckDomain) {
    const refusal = await precheckDomain(valid.target);
    if (refusal) {
      log.info({ target: valid.target }, 'domain refused by the target policy: it resolves to a refused address');
      await undo();
      throw new TargetNotAllowed(refusal);
    }
  }

  const now = Date.now();
  const createdAt = new Date(now).toISOString();
  // A tenant's job is dispatched by the saga (its window); any other is dispatched here, so it starts Processing.
  const viaSaga = options.tenant !== undefined;
  try {
    await jobs.create({
      jobId,
      target: valid.target,
      targetType: valid.targetType,
      services: valid.services,
      createdAt,
      deadlineAt: now + deps.config.jobDeadlineMs,
      ...(valid.callback ? { callback: valid.callback } : {}),
      ...(options.tenant ? { tenant: options.tenant.tenant } : { dispatchedAt: createdAt }),
    });
  } catch (err) {
    log.error({ err }, 'could not store the job; answering 503');
    await undo();
    throw new StoreUnavailable();
  }

  const message = jobSubmittedMessage(jobId, { ...valid, fresh: input.fresh, priority: input.priority }, createdAt);
  try {
    await dispatchJob(message, viaSaga);
  } catch (err) {
    log.error({ err }, viaSaga ? 'job.submitted was not confirmed; discarding the job and answering 503' : "the job's commands were not confirmed; discarding the job and answering 503");
    try {
      await jobs.discard(jobId);
    } catch (discardErr) {
      log.error({ err: discardErr }, 'could not discard the unannounced job; it expires with its TTL');
    }
    await undo();
    throw new BrokerUnavailable('submission');
  }

  log.info(
    { target: valid.target, targetType: valid.targetType, services: valid.services.map(serviceName), ...(viaSaga ? { messageId: message.messageId } : {}) },
    'job accepted',
  );
  return result(jobId, false);
}

/**
 * Claims an Idempotency-Key for `id` (a job's or a batch's): `new`, or `replay` of the id stored with it. A key
 * used with another request is IdempotencyConflict; a store failure is StoreUnavailable (logged). Shared by
 * submitLookup and submitBatch.
 */
export async function claimIdempotencyKey(
  idempotency: SubmitLookupDeps['idempotency'],
  clientId: string,
  key: string,
  fingerprint: string,
  id: string,
  log: Pick<SubmitLog, 'error'>,
): Promise<{ state: 'new' } | { state: 'replay'; jobId: string }> {
  let claim;
  try {
    claim = await idempotency.claim(clientId, key, fingerprint, id);
  } catch (err) {
    log.error({ err }, 'could not check the Idempotency-Key; answering 503');
    throw new StoreUnavailable();
  }
  if (claim.state === 'conflict') throw new IdempotencyConflict(key, claim.jobId);
  return claim;
}
