import { describe, expect, it } from 'vitest';
import { loadConfig } from '@lookup/config';
import { MessageValidators, commandMessageId, targetPolicyFromConfig, type JobSubmitted, type LookupCommand } from '@lookup/contracts';
import * as catalogue from './http-errors.ts';
import { BrokerUnavailable, HttpError, InvalidSubmission, RateLimited, TargetNotAllowed } from './http-errors.ts';
import { submitLookup, type SubmitLog, type SubmitLookupDeps } from './submit-lookup.ts';
import { createDispatchJob } from './dispatch-job.ts';
import type { TenantSpend } from './tenant-quota.ts';
import { FakeIdempotency, FakeJobs } from './testing/app-harness.ts';

const log: SubmitLog = { info: () => undefined, error: () => undefined, child: () => log };

function deps(overrides: Partial<SubmitLookupDeps> = {}) {
  const jobs = new FakeJobs();
  const idempotency = new FakeIdempotency();
  const published: JobSubmitted[] = [];
  const commands: LookupCommand[] = [];
  const d: SubmitLookupDeps = {
    config: { jobDeadlineMs: 60_000, callbackSecret: undefined },
    jobs,
    idempotency,
    dispatchJob: createDispatchJob({ publishJobSubmitted: async (m) => void published.push(m), publishCommand: async (m) => void commands.push(m) }),
    targetPolicy: targetPolicyFromConfig(loadConfig({})),
    precheckDomain: undefined,
    ...overrides,
  };
  return { d, jobs, idempotency, published, commands };
}

describe('submitLookup (no HTTP)', () => {
  it('creates and publishes a job, spending the quota once; a replay of its key spends nothing and creates nothing', async () => {
    const { d, jobs, published, commands } = deps();
    let spent = 0;
    const spendQuota = async () => void spent++;
    const input = { target: ' 8.8.8.8 ', services: ['GeoIP'], clientId: 'c1', idempotencyKey: 'k1' };
    const first = await submitLookup(d, input, { log, spendQuota });
    expect(first).toMatchObject({ target: '8.8.8.8', targetType: 'IPAddress', services: [0], replayed: false });
    expect(first.accepted.statusUrl).toBe(`/api/lookup/${first.jobId}`);
    expect([...jobs.jobs.keys()]).toEqual([first.jobId]);
    expect(commands.map((m) => m.jobId)).toEqual([first.jobId]);
    expect(published).toEqual([]);
    const again = await submitLookup(d, input, { log, spendQuota });
    expect(again).toMatchObject({ jobId: first.jobId, replayed: true });
    expect(spent).toBe(1);
    expect(jobs.jobs.size).toBe(1);
  });

  it('throws catalogue errors: invalid input and refused targets before the quota; a refused quota frees the key', async () => {
    const { d, idempotency } = deps();
    const spendQuota = async () => {
      throw new RateLimited(7);
    };
    await expect(submitLookup(d, { target: '1.2.3', services: ['Whois'], clientId: 'c' }, { log, spendQuota })).rejects.toBeInstanceOf(InvalidSubmission);
    await expect(submitLookup(d, { target: '127.0.0.1', clientId: 'c' }, { log, spendQuota })).rejects.toBeInstanceOf(TargetNotAllowed);
    await expect(submitLookup(d, { target: '8.8.8.8', clientId: 'c', idempotencyKey: 'k' }, { log, spendQuota })).rejects.toBeInstanceOf(RateLimited);
    expect(idempotency.claims.size).toBe(0);
  });

  it('dispatches a job without a tenant by its commands (created Processing), a tenant\'s job by job.submitted to the saga (Pending)', async () => {
    const { d, jobs, published, commands } = deps();
    const own = await submitLookup(d, { target: '8.8.8.8', services: ['RDAP', 'GeoIP'], fresh: true, priority: 'high', clientId: 'c' }, { log });
    expect(commands).toHaveLength(2);
    for (const [i, service] of [2, 0].entries()) {
      expect(MessageValidators.lookupCommand.errors(commands[i])).toEqual([]);
      expect(commands[i]).toMatchObject({
        messageId: commandMessageId(own.jobId, service as 0 | 2, 1),
        correlationId: own.jobId,
        jobId: own.jobId,
        target: '8.8.8.8',
        targetType: 'IPAddress',
        serviceType: service,
        attempt: 1,
        fresh: true,
        priority: 'high',
      });
    }
    const stored = jobs.jobs.get(own.jobId)!;
    expect(stored.dispatchedAt).toBe(stored.createdAt);
    expect(stored.tenant).toBeUndefined();
    expect(published).toEqual([]);

    const released: string[][] = [];
    const tenant: TenantSpend = { tenant: 'acme', acquire: async () => undefined, release: async (ids) => void released.push([...ids]) };
    const theirs = await submitLookup(d, { target: '8.8.4.4', services: ['GeoIP'], clientId: 'c' }, { log, tenant });
    expect(published).toHaveLength(1);
    expect(MessageValidators.jobSubmitted.errors(published[0])).toEqual([]);
    expect(published[0]).toMatchObject({ jobId: theirs.jobId, correlationId: theirs.jobId, target: '8.8.4.4', services: [0] });
    expect(jobs.jobs.get(theirs.jobId)).toMatchObject({ tenant: 'acme' });
    expect(jobs.jobs.get(theirs.jobId)!.dispatchedAt).toBeUndefined();
    expect(commands).toHaveLength(2);
    expect(released).toEqual([]);
  });

  it('undoes a job whose announcement fails: discarded, key released, BrokerUnavailable', async () => {
    const { d, jobs, idempotency } = deps({
      dispatchJob: async () => {
        throw new Error('not confirmed');
      },
    });
    const err = await submitLookup(d, { target: '8.8.8.8', clientId: 'c', idempotencyKey: 'k' }, { log }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokerUnavailable);
    expect((err as HttpError).toBody()).toMatchObject({ code: 'BROKER_UNAVAILABLE', retryAfter: 5 });
    expect(jobs.discarded).toHaveLength(1);
    expect(idempotency.claims.size).toBe(0);
  });
});

describe('the HTTP error catalogue', () => {
  it('gives every error class a status and a distinct UPPER_SNAKE code', () => {
    const classes = Object.values(catalogue).filter(
      (v): v is catalogue.HttpErrorClass<unknown[]> => typeof v === 'function' && v.prototype instanceof HttpError,
    );
    expect(classes.length).toBeGreaterThan(30);
    for (const cls of classes) {
      expect(cls.code, cls.name).toMatch(/^[A-Z][A-Z0-9_]*$/);
      expect(cls.statusCode, cls.name).toBeGreaterThanOrEqual(400);
    }
    // URI_TOO_LONG and HEADERS_TOO_LARGE are shared by the API's own limits and a resource request's on purpose.
    const codes = classes.map((c) => c.code).filter((c) => c !== 'URI_TOO_LONG' && c !== 'HEADERS_TOO_LARGE');
    expect(new Set(codes).size).toBe(codes.length);
  });
});
