import { describe, expect, it } from 'vitest';
import { Type } from '@sinclair/typebox';
import { createLogger } from '@lookup/logging';
import { commandMessageId, createTargetPolicy, type JobStatus, type LookupCommand, type StoredResult, type TaskCompleted } from '@lookup/contracts';
import type { ReceivedMessage } from '@lookup/messaging';
import type { SaveResultOutcome, SaveSkipped } from '@lookup/store';
import { PRECHECK_AFTER_MS, createCommandHandler } from './command-handler.ts';

const NOW = Date.parse('2026-11-22T12:00:00.000Z');
const JOB = '0b6f3c9e-3f7e-4a52-9a39-5f1b7d1d2c11';

/** A handler over in-memory fakes that records every store call, lookup and publish. */
function harness(
  opts: {
    status?: JobStatus;
    stored?: StoredResult;
    saveSays?: SaveSkipped;
    /** The outcome recordOutcome's step inside saveIfOpen answers (absent: not recorded there, as an older store). */
    recorded?: SaveResultOutcome['recorded'];
    allowPrivate?: boolean;
    data?: Record<string, unknown>;
    log?: string[];
    /** Give the handler announceJobEnd, answering this (whether the call marked the job announced first). */
    announcesJobs?: boolean;
  } = {},
) {
  const calls: string[] = [];
  const published: TaskCompleted[] = [];
  const jobEnds: { jobId: string; hasCallback: boolean }[] = [];
  const counted: { how: string; createdAt: string | undefined; completedAt: string }[] = [];
  const stampedAt: (string | undefined)[] = [];
  const saved: StoredResult[] = [];
  const location = { storage: 'redis' as const, key: `ns:result:${JOB}:3` };
  const handle = createCommandHandler({
    service: 3,
    logger: opts.log
      ? createLogger({ service: 'test', level: 'info', destination: { write: (line: string) => void opts.log!.push(line) } })
      : createLogger({ service: 'test', level: 'silent' }),
    now: () => NOW,
    policy: { timeoutMs: 1000, maxAttempts: 3, baseBackoffMs: 10, maxBackoffMs: 100 },
    // The fixtures' targets are loopback addresses: allowed here unless a test asks for the default policy.
    targetPolicy: createTargetPolicy({ allowPrivate: opts.allowPrivate ?? true }),
    dataSchema: Type.Object({ hostname: Type.String(), ttl: Type.Optional(Type.Integer()) }, { additionalProperties: false }),
    lookup: async () => {
      calls.push('lookup');
      return opts.data ?? { hostname: 'fixture.test' };
    },
    jobs: {
      getStatus: async () => {
        calls.push('getStatus');
        return opts.status;
      },
    },
    results: {
      locate: () => location,
      find: async () => {
        calls.push('find');
        return opts.stored;
      },
      saveIfOpen: async (result, at): Promise<SaveResultOutcome | SaveSkipped> => {
        calls.push('saveIfOpen');
        saved.push(result);
        stampedAt.push(at);
        return opts.saveSays ?? { location, result, created: true, ...(opts.recorded ? { recorded: opts.recorded } : {}) };
      },
    },
    publishTaskCompleted: async (event) => {
      published.push(event);
    },
    publishRetry: async () => {
      calls.push('retry');
    },
    ...(opts.announcesJobs === undefined
      ? {}
      : {
          announceJobEnd: async (jobId: string, hasCallback: boolean) => {
            jobEnds.push({ jobId, hasCallback });
            return opts.announcesJobs!;
          },
          jobEnd: { finished: (how, createdAt, completedAt) => void counted.push({ how, createdAt, completedAt }) },
        }),
  });
  return { handle, calls, published, saved, jobEnds, counted, stampedAt };
}

const command = (ageMs: number, attempt = 1): LookupCommand => ({
  messageId: commandMessageId(JOB, 3, attempt),
  correlationId: JOB,
  schemaVersion: 1,
  occurredAt: new Date(NOW - ageMs).toISOString(),
  jobId: JOB,
  target: '127.0.0.2',
  targetType: 'IPAddress',
  serviceType: 3,
  attempt,
});
const delivery = (body: LookupCommand, redelivered = false) =>
  ({ body, redelivered, queue: 'q', headers: {}, raw: {} }) as unknown as ReceivedMessage<LookupCommand>;

describe('command handler: when the job status is checked', () => {
  it('a fresh first delivery goes straight to the lookup; the status is checked when the result is stored', async () => {
    const h = harness({ status: 'Processing' });
    await h.handle(delivery(command(5)));
    expect(h.calls).toEqual(['lookup', 'saveIfOpen']);
    expect(h.published).toHaveLength(1);
    expect(h.published[0]).toMatchObject({ jobId: JOB, serviceType: 3, status: 'Succeeded', location: { key: `ns:result:${JOB}:3` } });
  });

  it('a fresh command whose job finished during the lookup stores and announces nothing', async () => {
    const h = harness({ saveSays: { skipped: 'finished', status: 'Cancelled' } });
    await h.handle(delivery(command(5)));
    expect(h.calls).toEqual(['lookup', 'saveIfOpen']);
    expect(h.published).toEqual([]);
  });

  it(`a command older than ${PRECHECK_AFTER_MS} ms for a cancelled job costs no lookup`, async () => {
    const h = harness({ status: 'Cancelled' });
    await h.handle(delivery(command(PRECHECK_AFTER_MS + 1)));
    expect(h.calls).toEqual(['getStatus']);
    expect(h.published).toEqual([]);
  });

  it('a redelivery or a retry checks first, and re-announces a result already stored', async () => {
    const stored: StoredResult = {
      jobId: JOB, serviceType: 3, status: 'Succeeded', success: true, data: { hostname: 'first.test' }, errorMessage: null, durationMs: 1, attempts: 1, completedAt: new Date(NOW).toISOString(),
    };
    for (const d of [delivery(command(5), true), delivery(command(5, 2))]) {
      const h = harness({ status: 'Processing', stored });
      await h.handle(d);
      expect(h.calls.sort()).toEqual(['find', 'getStatus']);
      expect(h.published).toHaveLength(1);
      // A document stored before errorCode existed is re-announced with errorCode null.
      expect(h.published[0]).toMatchObject({ status: 'Succeeded', attempts: 1, errorCode: null });
    }
  });

  it('a redelivery for a Completed job re-announces its stored result (its first delivery may have completed the job and died before announcing)', async () => {
    const stored: StoredResult = {
      jobId: JOB, serviceType: 3, status: 'Succeeded', success: true, data: { hostname: 'first.test' }, errorMessage: null, durationMs: 1, attempts: 1, completedAt: new Date(NOW).toISOString(),
    };
    const h = harness({ status: 'Completed', stored });
    await h.handle(delivery(command(5), true));
    expect(h.calls.sort()).toEqual(['find', 'getStatus']);
    expect(h.published).toHaveLength(1);
    // Without a stored result of its own the command has nothing to announce.
    const other = harness({ status: 'Completed' });
    await other.handle(delivery(command(5), true));
    expect(other.published).toEqual([]);
    expect(other.calls).not.toContain('lookup');
  });

  it('a command for a job that no longer exists is skipped when checked, and not stored when not', async () => {
    const old = harness({ status: undefined });
    await old.handle(delivery(command(60_000)));
    expect(old.calls).toEqual(['getStatus']);
    const fresh = harness({ saveSays: { skipped: 'missing' } });
    await fresh.handle(delivery(command(5)));
    expect(fresh.calls).toEqual(['lookup', 'saveIfOpen']);
    expect(fresh.published).toEqual([]);
  });
});

describe('command handler: the target policy, on every command whoever sent it', () => {
  const forged = (target: string, targetType: 'IPAddress' | 'Domain' = 'IPAddress'): LookupCommand => ({ ...command(5), target, targetType });

  it.each([
    ['127.0.0.1', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['2002:7f00:1::1', '6to4-embedded-loopback'],
    ['fe80::1%eth0', 'link-local'],
  ])('a forged command for %s runs no lookup and is recorded Failed naming rule %s (no retry)', async (target, rule) => {
    const h = harness({ status: 'Processing', allowPrivate: false });
    await h.handle(delivery(forged(target)));
    expect(h.calls).toEqual(['saveIfOpen']);
    expect(h.saved).toHaveLength(1);
    expect(h.saved[0]).toMatchObject({ status: 'Failed', success: false, data: null, attempts: 1, errorCode: 'TARGET_REFUSED' });
    expect(h.saved[0]!.errorMessage).toContain(`rule ${rule}`);
    expect(h.published[0]).toMatchObject({ status: 'Failed', errorMessage: h.saved[0]!.errorMessage, errorCode: 'TARGET_REFUSED' });
  });

  it.each([
    ['localhost', 'IPAddress', /not a valid lookup target/],
    ['example.test', 'IPAddress', /is a domain, not the IPAddress it claims/],
    ['127.1', 'IPAddress', /not a valid lookup target/],
    ['0x7f000001', 'Domain', /not a valid lookup target/],
    ['127.0.0.1', 'Domain', /is an IP address, not the Domain it claims/],
    ['http://127.0.0.1/', 'Domain', /not a valid lookup target/],
  ] as const)('a command whose target %j is not a valid %s fails without a lookup', async (target, targetType, message) => {
    const h = harness({ status: 'Processing', allowPrivate: true });
    await h.handle(delivery(forged(target, targetType)));
    expect(h.calls).toEqual(['saveIfOpen']);
    expect(h.saved[0]).toMatchObject({ status: 'Failed', errorCode: 'TARGET_INVALID' });
    expect(h.saved[0]!.errorMessage).toMatch(message);
  });

  it('a public IP target, and any target with ALLOW_PRIVATE_TARGETS, runs the lookup', async () => {
    const strict = harness({ status: 'Processing', allowPrivate: false });
    await strict.handle(delivery(forged('8.8.8.8')));
    expect(strict.calls).toEqual(['lookup', 'saveIfOpen']);
    const open = harness({ status: 'Processing', allowPrivate: true });
    await open.handle(delivery(forged('127.0.0.1')));
    expect(open.calls).toEqual(['lookup', 'saveIfOpen']);
  });
});

describe('command handler: the data schema', () => {
  it('stores data that matches the schema as it is', async () => {
    const h = harness({ status: 'Processing', data: { hostname: 'fixture.test', ttl: 60 } });
    await h.handle(delivery(command(5)));
    expect(h.saved[0]).toMatchObject({ status: 'Succeeded', success: true, data: { hostname: 'fixture.test', ttl: 60 }, errorMessage: null });
  });

  it.each([
    [{ hostname: 42 }, '/hostname: Expected string'],
    [{ hostname: 'fixture.test', ttl: 'sixty' }, '/ttl: Expected integer'],
    [{ hostname: 'fixture.test', extra: true }, '/extra: Unexpected property'],
    [{}, "/hostname: Expected required property"],
  ])('stores %j as a permanent failure naming the problem, logged at error level (no retry)', async (data, problem) => {
    const log: string[] = [];
    const h = harness({ status: 'Processing', data, log });
    await h.handle(delivery(command(5)));
    expect(h.calls).toEqual(['lookup', 'saveIfOpen']); // no 'retry': the same code would return the same data
    expect(h.saved).toHaveLength(1);
    expect(h.saved[0]).toMatchObject({ status: 'Failed', success: false, data: null, attempts: 1 });
    expect(h.saved[0]!.errorMessage).toMatch(/^result data does not match the ReverseDNS data schema: /);
    expect(h.saved[0]!.errorMessage).toContain(problem);
    expect(h.published[0]).toMatchObject({ status: 'Failed', success: false, errorMessage: h.saved[0]!.errorMessage });
    const errors = log.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'RESULT_DATA_INVALID', jobId: JOB, lookupService: 'ReverseDNS', msg: h.saved[0]!.errorMessage });
    expect(errors[0]!.problems).toEqual(expect.arrayContaining([expect.stringContaining(problem)]));
  });
});

describe('command handler: who announces an outcome', () => {
  const recorded = (status: JobStatus, disposition: 'recorded' | 'duplicate' = 'recorded') => ({ disposition, status, notified: false, hasCallback: false });

  it('an outcome recorded with the result that leaves the job open is not announced: the saga has nothing to do yet', async () => {
    const h = harness({ recorded: recorded('Processing') });
    await h.handle(delivery(command(5)));
    expect(h.calls).toEqual(['lookup', 'saveIfOpen']);
    expect(h.published).toEqual([]);
  });

  it('the outcome that completes the job is announced (the saga publishes job.completed)', async () => {
    const h = harness({ recorded: recorded('Completed') });
    await h.handle(delivery(command(5)));
    expect(h.published).toHaveLength(1);
    expect(h.published[0]).toMatchObject({ jobId: JOB, serviceType: 3, status: 'Succeeded' });
  });

  it("the outcome that completes a job without a tenant announces the job's end here, counted once; no task.completed", async () => {
    const created = '2026-11-22T11:59:59.000Z';
    for (const first of [true, false]) {
      const h = harness({ recorded: { ...recorded('Completed'), hasCallback: true, createdAt: created }, announcesJobs: first });
      await h.handle(delivery(command(5)));
      expect(h.published).toEqual([]);
      expect(h.jobEnds).toEqual([{ jobId: JOB, hasCallback: true }]);
      // Counted by whoever marked the job announced first, with the completion time its save stamped.
      expect(h.stampedAt).toEqual([expect.any(String)]);
      expect(h.counted).toEqual(first ? [{ how: 'Completed', createdAt: created, completedAt: h.stampedAt[0] }] : []);
    }
  });

  it("a tenant's completed job, and an outcome not recorded here, go to the saga even where the worker announces jobs", async () => {
    const tenant = harness({ recorded: { ...recorded('Completed'), tenant: 'acme', createdAt: '2026-11-22T11:59:59.000Z' }, announcesJobs: true });
    await tenant.handle(delivery(command(5)));
    expect(tenant.jobEnds).toEqual([]);
    expect(tenant.published).toHaveLength(1);
    const open = harness({ recorded: recorded('Processing'), announcesJobs: true });
    await open.handle(delivery(command(5)));
    expect(open.jobEnds).toEqual([]);
    expect(open.published).toEqual([]);
    const earlier = harness({ announcesJobs: true });
    await earlier.handle(delivery(command(5)));
    expect(earlier.jobEnds).toEqual([]);
    expect(earlier.published).toHaveLength(1);
  });

  it('an outcome the store found already recorded is announced (the saga sorts out duplicates)', async () => {
    const h = harness({ recorded: recorded('Processing', 'duplicate') });
    await h.handle(delivery(command(5)));
    expect(h.published).toHaveLength(1);
  });

  it('a command for a service its job did not request is dead-lettered, nothing stored or announced', async () => {
    const h = harness({ saveSays: { skipped: 'unrequested', status: 'Processing' } });
    await expect(h.handle(delivery(command(5)))).rejects.toMatchObject({ code: 'MESSAGE_POISON', retryable: false });
    expect(h.published).toEqual([]);
  });
});
