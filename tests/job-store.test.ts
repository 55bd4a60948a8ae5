import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { rawRedis } from './support/redis.ts';
import type { StoredResult } from '@lookup/contracts';
import { ANNOUNCE_RECHECK_MS, createJobStore, createResultStore, deleteByPrefix, eventIdAfter, parseJobEventMessage, type OutcomeRecord, jobShard, keys as storeKeys, newIdInShard } from '@lookup/store';
import { newNamespace } from './support/namespace.ts';

const ns = newNamespace('jobstore');
const redis = rawRedis();
const jobs = createJobStore({ redis, namespace: ns, ttlSeconds: 300 });
const results = createResultStore({ redis, namespace: ns, ttlSeconds: 300 });

afterAll(async () => {
  await deleteByPrefix(redis, `${ns}:`);
  redis.disconnect();
});

const at = () => new Date().toISOString();
const stored = (jobId: string, serviceType: 0 | 1 | 2 | 3, data: Record<string, unknown>): StoredResult => ({
  jobId, serviceType, status: 'Succeeded', success: true, data, errorMessage: null, durationMs: 2, attempts: 1, completedAt: at(),
});
const outcome = (location: OutcomeRecord['location'], status: OutcomeRecord['status'] = 'Succeeded'): OutcomeRecord => ({
  status, success: status === 'Succeeded', errorMessage: status === 'Succeeded' ? null : 'boom', errorCode: null, completedAt: at(), durationMs: 2, attempts: 1, location,
});

async function newJob(services: Array<0 | 1 | 2 | 3>) {
  const jobId = randomUUID();
  await jobs.create({ jobId, target: '127.0.0.2', targetType: 'IPAddress', services, createdAt: at(), deadlineAt: Date.now() + 60_000 });
  return jobId;
}

describe('job store: creating a job', () => {
  it('writes every field, the TTL and the deadline entry together', async () => {
    const jobId = randomUUID();
    const deadlineAt = Date.now() + 45_000;
    const createdAt = at();
    await jobs.create({ jobId, target: 'example.test', targetType: 'Domain', services: [2, 0], createdAt, deadlineAt });
    expect(await redis.hgetall(storeKeys(ns).job(jobId))).toEqual({
      jobId, target: 'example.test', targetType: 'Domain', status: 'Pending', createdAt, services: '2,0', total: '2', done: '0', deadlineAt: String(deadlineAt),
    });
    const ttl = await redis.ttl(storeKeys(ns).job(jobId));
    expect(ttl).toBeGreaterThan(290);
    expect(ttl).toBeLessThanOrEqual(300);
    expect(await redis.zscore(storeKeys(ns).deadlines(jobId), jobId)).toBe(String(deadlineAt));
    expect(await jobs.dueJobs(deadlineAt, 10_000)).toContain(jobId);
    expect(await jobs.dueJobs(deadlineAt - 1, 10_000)).not.toContain(jobId);
  });
});

describe('job store: creating a batch', () => {
  // A batch's jobs live in its shard (newIdInShard), so one script creates them on a Redis Cluster too.
  const newJob = (target: string, batchId: string) => ({ jobId: newIdInShard(jobShard(batchId)), target, targetType: 'IPAddress' as const, services: [0 as const], createdAt: at(), deadlineAt: Date.now() + 60_000 });

  it('writes every job (fields, TTL, deadline) and the batch record with the job ids, readable with statuses', async () => {
    const batchId = randomUUID();
    const list = [newJob('127.0.0.2', batchId), newJob('127.0.0.3', batchId)];
    const rejected = [{ index: 1, error: { error: 'Invalid target', message: 'nope', code: 'INVALID_TARGET' } }];
    await jobs.createMany({ batchId, createdAt: at(), total: 3, jobs: [{ index: 0, jobId: list[0]!.jobId }, { index: 2, jobId: list[1]!.jobId }], rejected }, list);
    for (const job of list) {
      expect(await redis.hget(storeKeys(ns).job(job.jobId), 'status')).toBe('Pending');
      expect(await redis.ttl(storeKeys(ns).job(job.jobId))).toBeGreaterThan(290);
      expect(await redis.zscore(storeKeys(ns).deadlines(job.jobId), job.jobId)).toBe(String(job.deadlineAt));
    }
    expect(await redis.ttl(storeKeys(ns).batch(batchId))).toBeGreaterThan(290);
    await jobs.markProcessing(list[1]!.jobId, at());
    const batch = await jobs.getBatch(batchId);
    expect(batch).toMatchObject({ batchId, total: 3, jobs: [{ index: 0, jobId: list[0]!.jobId }, { index: 2, jobId: list[1]!.jobId }], rejected, statuses: ['Pending', 'Processing'] });
    expect(await jobs.getBatch(randomUUID())).toBeUndefined();
    // A job gone (expired) reads 'Expired', in its place, whatever its position.
    await redis.unlink(storeKeys(ns).job(list[0]!.jobId));
    expect((await jobs.getBatch(batchId))?.statuses).toEqual(['Expired', 'Processing']);
  });

  it('writes nothing when the call is malformed midway (one script: all or nothing), and discardMany removes everything', async () => {
    const batchId = randomUUID();
    const list = [newJob('127.0.0.2', batchId), newJob('127.0.0.3', batchId)];
    // A key for a third job with no job block: the script refuses before its first write (the command createMany
    // registered on this client).
    const extra = newIdInShard(jobShard(batchId));
    await expect(
      (redis as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>).lookup_create_batch!(
        4 + list.length,
        storeKeys(ns).deadlines(batchId), storeKeys(ns).batch(batchId), storeKeys(ns).jobIndex(batchId), ...list.map((j) => storeKeys(ns).job(j.jobId)), storeKeys(ns).job(extra),
        300, '0', 1, 'batchId', batchId, ...list.flatMap((j) => [j.jobId, j.deadlineAt, `0:${j.jobId}`, 1, 'jobId', j.jobId]),
      ),
    ).rejects.toThrow(/malformed/);
    expect(await redis.exists(storeKeys(ns).batch(batchId), ...list.map((j) => storeKeys(ns).job(j.jobId)))).toBe(0);

    await jobs.createMany({ batchId, createdAt: at(), total: 2, jobs: list.map((j, index) => ({ index, jobId: j.jobId })), rejected: [] }, list);
    expect(await redis.exists(storeKeys(ns).batch(batchId), ...list.map((j) => storeKeys(ns).job(j.jobId)))).toBe(3);
    await jobs.discardMany(batchId, list.map((j) => j.jobId));
    expect(await redis.exists(storeKeys(ns).batch(batchId), ...list.map((j) => storeKeys(ns).job(j.jobId)))).toBe(0);
    for (const job of list) expect(await redis.zscore(storeKeys(ns).deadlines(job.jobId), job.jobId)).toBeNull();
  });
});

describe('job store: the job document', () => {
  it('is undefined for an unknown job, and Pending with no results for a new one', async () => {
    expect(await jobs.getDocument(randomUUID())).toBeUndefined();
    const jobId = await newJob([0, 3]);
    expect(await jobs.getDocument(jobId)).toMatchObject({
      jobId, status: 'Pending', completionPercentage: 0, requestedServices: ['GeoIP', 'ReverseDNS'], results: [], completedAt: null,
    });
  });

  it('joins each recorded outcome with the data at its own result key, in requested order, and nothing else', async () => {
    const jobId = await newJob([3, 0, 2]);
    // ReverseDNS: stored at the predictable key and recorded.
    const rdns = await results.save(stored(jobId, 3, { hostname: 'fixture.test' }));
    await jobs.recordOutcome(jobId, 3, outcome(rdns.location), at());
    // GeoIP: an outcome naming a key other than the job's own (a forged location, recorded before the saga
    // checked them): the key is never read (issue 10, finding 9), so no data.
    const elsewhere = `${ns}:elsewhere:${jobId}`;
    await redis.set(elsewhere, JSON.stringify(stored(jobId, 0, { city: 'Nowhere' })), 'EX', 300);
    await jobs.recordOutcome(jobId, 0, outcome({ storage: 'redis', key: elsewhere }), at());
    // RDAP: a result is stored but no outcome is recorded yet: not shown.
    await results.save(stored(jobId, 2, { handle: 'NOT-YET' }));
    // Ping was never requested: a stored result for it is never shown either.
    await results.save(stored(jobId, 1, { rtt: 1 }));

    const doc = await jobs.getDocument(jobId);
    expect(doc).toMatchObject({ status: 'Processing', completionPercentage: 66, requestedServices: ['ReverseDNS', 'GeoIP', 'RDAP'] });
    expect(doc!.results.map((r) => [r.serviceType, r.data])).toEqual([
      ['ReverseDNS', { hostname: 'fixture.test' }],
      ['GeoIP', null],
    ]);
  });

  it('shows null data for a failed outcome without a location and for a location whose key expired', async () => {
    const jobId = await newJob([1, 2]);
    await jobs.recordOutcome(jobId, 1, outcome(null, 'Failed'), at());
    await jobs.recordOutcome(jobId, 2, outcome({ storage: 'redis', key: `${ns}:gone:${jobId}` }), at());
    const doc = await jobs.getDocument(jobId);
    expect(doc).toMatchObject({ status: 'Completed', completionPercentage: 100 });
    expect(doc!.results.map((r) => [r.serviceType, r.status, r.data, r.errorMessage])).toEqual([
      ['Ping', 'Failed', null, 'boom'],
      ['RDAP', 'Succeeded', null, null],
    ]);
  });

  it('shows a failure code, and reads a record written before errorCode existed as null', async () => {
    const jobId = await newJob([1, 2]);
    await jobs.recordOutcome(jobId, 1, { ...outcome(null, 'Failed'), errorCode: 'TARGET_REFUSED' }, at());
    const { errorCode: _, ...old } = outcome(null, 'Failed');
    await redis.hset(storeKeys(ns).job(jobId), 'o:2', JSON.stringify(old));
    const doc = await jobs.getDocument(jobId);
    expect(doc!.results.map((r) => [r.serviceType, r.status, r.errorCode])).toEqual([
      ['Ping', 'Failed', 'TARGET_REFUSED'],
      ['RDAP', 'Failed', null],
    ]);
  });
});

describe('job store: finishing a job early (cancel-job.lua and expire-job.lua share includes/finish-job.lua)', () => {
  const unreported = (status: string, errorMessage: string) => ({
    status, success: false, data: null, errorMessage, errorCode: null, durationMs: null, attempts: 0,
  });

  it('cancel records every service still without an outcome Cancelled, counts it, and is due again only to check its announcement', async () => {
    const jobId = await newJob([0, 1, 2]);
    await jobs.recordOutcome(jobId, 1, outcome(null, 'Failed'), at());
    const now = at();
    expect(await jobs.cancel(jobId, now)).toEqual({ disposition: 'cancelled', status: 'Cancelled', hasCallback: false });
    const hash = await redis.hgetall(storeKeys(ns).job(jobId));
    expect(hash).toMatchObject({ status: 'Cancelled', completedAt: now, done: '3' });
    expect(await redis.zscore(storeKeys(ns).deadlines(jobId), jobId)).toBe(String(Date.parse(now) + ANNOUNCE_RECHECK_MS));
    const doc = await jobs.getDocument(jobId);
    expect(doc!.results).toEqual([
      { serviceType: 'GeoIP', ...unreported('Cancelled', 'the job was cancelled'), completedAt: now },
      expect.objectContaining({ serviceType: 'Ping', status: 'Failed', errorMessage: 'boom' }),
      { serviceType: 'RDAP', ...unreported('Cancelled', 'the job was cancelled'), completedAt: now },
    ]);
    expect(await jobs.cancel(jobId, at())).toEqual({ disposition: 'finished', status: 'Cancelled', hasCallback: false });
  });

  it('expire records every service still without an outcome TimedOut and completes the job, once due', async () => {
    const jobId = randomUUID();
    const deadlineAt = Date.now() + 60_000;
    const createdAt = at();
    await jobs.create({ jobId, target: '127.0.0.2', targetType: 'IPAddress', services: [3, 0], createdAt, deadlineAt });
    expect(await jobs.recordOutcome(jobId, 0, outcome(null, 'Failed'), at())).toEqual({ disposition: 'recorded', status: 'Processing', notified: false, hasCallback: false });
    expect((await jobs.expire(jobId, new Date(deadlineAt - 1))).disposition).toBe('not-due');
    const now = new Date(deadlineAt + 1);
    // The creation time comes back only from the call that finished the job (the saga's job duration).
    expect(await jobs.expire(jobId, now)).toEqual({ disposition: 'expired', status: 'Completed', notified: false, createdAt, hasCallback: false });
    expect(await redis.hgetall(storeKeys(ns).job(jobId))).toMatchObject({ status: 'Completed', completedAt: now.toISOString(), done: '2', timedOut: '1' });
    const doc = await jobs.getDocument(jobId);
    expect(doc!.results[0]).toEqual({ serviceType: 'ReverseDNS', ...unreported('TimedOut', 'no result before the job deadline'), completedAt: now.toISOString() });
    expect(doc!.results[1]).toMatchObject({ serviceType: 'GeoIP', status: 'Failed' });
    // Not announced yet (the sweeper may die before it does): the job stays due, ANNOUNCE_RECHECK_MS later, and the next
    // sweep finds it finished and not notified, which it announces; once announced, it leaves the index.
    expect(await redis.zscore(storeKeys(ns).deadlines(jobId), jobId)).toBe(String(now.getTime() + ANNOUNCE_RECHECK_MS));
    expect(await jobs.dueJobs(now.getTime() + ANNOUNCE_RECHECK_MS - 1, 1000)).not.toContain(jobId);
    expect(await jobs.dueJobs(now.getTime() + ANNOUNCE_RECHECK_MS, 1000)).toContain(jobId);
    const later = new Date(now.getTime() + ANNOUNCE_RECHECK_MS);
    expect(await jobs.expire(jobId, later)).toEqual({ disposition: 'finished', status: 'Completed', notified: false, hasCallback: false });
    expect(await redis.zscore(storeKeys(ns).deadlines(jobId), jobId)).toBe(String(later.getTime() + ANNOUNCE_RECHECK_MS));
    expect(await jobs.markNotified(jobId)).toBe(true);
    expect(await jobs.expire(jobId, later)).toEqual({ disposition: 'finished', status: 'Completed', notified: true, hasCallback: false });
    expect(await redis.zscore(storeKeys(ns).deadlines(jobId), jobId)).toBeNull();
  });

  it('a cancelled job stays due until its cancellation is announced (the sweep announces one the API could not)', async () => {
    const jobId = randomUUID();
    await jobs.create({ jobId, target: '127.0.0.2', targetType: 'IPAddress', services: [0, 1], createdAt: at(), deadlineAt: Date.now() + 60_000 });
    const cancelledAt = new Date();
    expect(await jobs.cancel(jobId, cancelledAt.toISOString())).toMatchObject({ disposition: 'cancelled', status: 'Cancelled' });
    expect(await redis.zscore(storeKeys(ns).deadlines(jobId), jobId)).toBe(String(cancelledAt.getTime() + ANNOUNCE_RECHECK_MS));
    const sweep = new Date(cancelledAt.getTime() + ANNOUNCE_RECHECK_MS);
    expect(await jobs.dueJobs(sweep.getTime(), 1000)).toContain(jobId);
    // Not announced: the sweep gets `finished` Cancelled, not notified (it announces it), and the job stays due.
    expect(await jobs.expire(jobId, sweep)).toEqual({ disposition: 'finished', status: 'Cancelled', notified: false, hasCallback: false });
    expect(await redis.zscore(storeKeys(ns).deadlines(jobId), jobId)).not.toBeNull();
    await jobs.markNotified(jobId);
    expect(await jobs.expire(jobId, sweep)).toMatchObject({ disposition: 'finished', status: 'Cancelled', notified: true });
    expect(await redis.zscore(storeKeys(ns).deadlines(jobId), jobId)).toBeNull();
    expect(await redis.hget(storeKeys(ns).job(jobId), 'status')).toBe('Cancelled');
  });

  it('recordOutcome returns the creation time with the outcome that completes the job, and only then', async () => {
    const jobId = randomUUID();
    const createdAt = at();
    await jobs.create({ jobId, target: '127.0.0.2', targetType: 'IPAddress', services: [0, 1], createdAt, deadlineAt: Date.now() + 60_000 });
    expect(await jobs.recordOutcome(jobId, 0, outcome(null), at())).toEqual({ disposition: 'recorded', status: 'Processing', notified: false, hasCallback: false });
    expect(await jobs.recordOutcome(jobId, 1, outcome(null), at())).toEqual({ disposition: 'recorded', status: 'Completed', notified: false, createdAt, hasCallback: false });
    // Until the job is announced, a duplicate answers the creation time too (a worker that stored the last result
    // recorded it first; the saga's record of that outcome is a duplicate and announces the job).
    expect(await jobs.recordOutcome(jobId, 1, outcome(null), at())).toEqual({ disposition: 'duplicate', status: 'Completed', notified: false, createdAt, hasCallback: false });
    expect(await jobs.markNotified(jobId)).toBe(true);
    expect(await jobs.markNotified(jobId)).toBe(false);
    expect(await jobs.recordOutcome(jobId, 1, outcome(null), at())).toEqual({ disposition: 'duplicate', status: 'Completed', notified: true, hasCallback: false });
  });

  it('each script that ends a job says whether it has a completion callback (who ends it sends that callback)', async () => {
    const callback = { url: 'http://127.0.0.1:28001/hook', events: ['completed' as const] };
    const create = async (services: (0 | 1)[], deadlineAt = Date.now() + 60_000) => {
      const jobId = randomUUID();
      await jobs.create({ jobId, target: '127.0.0.2', targetType: 'IPAddress', services, createdAt: at(), deadlineAt, callback });
      return jobId;
    };
    const completed = await create([0, 1]);
    expect(await jobs.recordOutcome(completed, 0, outcome(null), at())).toMatchObject({ status: 'Processing', hasCallback: true });
    expect(await jobs.recordOutcome(completed, 1, outcome(null), at())).toMatchObject({ status: 'Completed', hasCallback: true });
    expect(await jobs.recordOutcome(completed, 1, outcome(null), at())).toMatchObject({ disposition: 'duplicate', hasCallback: true });
    expect(await jobs.expire(await create([0], Date.now() - 1), new Date())).toMatchObject({ disposition: 'expired', hasCallback: true });
    expect(await jobs.cancel(await create([0]), at())).toEqual({ disposition: 'cancelled', status: 'Cancelled', hasCallback: true });
  });
});

describe("job store: the job's event stream (lua/includes/job-event.lua)", () => {
  const kinds = (events: Awaited<ReturnType<typeof jobs.readEvents>>) => events.map((e) => (e.type === 'result' ? `result:${e.service}` : e.type));

  it('gets one result per recorded outcome and completed at the end, never for a duplicate, expiring with the job', async () => {
    const jobId = await newJob([0, 1]);
    expect(await jobs.readEvents(jobId)).toEqual([]);
    await jobs.recordOutcome(jobId, 1, outcome(null, 'Failed'), at());
    await jobs.recordOutcome(jobId, 1, outcome(null), at()); // duplicate: no event
    await jobs.recordOutcome(jobId, 0, outcome(null), at());
    await jobs.recordOutcome(jobId, 0, outcome(null), at()); // after the end: no event
    const events = await jobs.readEvents(jobId);
    expect(kinds(events)).toEqual(['result:1', 'result:0', 'completed']);
    // Ids increase; reading after one returns exactly the rest.
    expect(kinds(await jobs.readEvents(jobId, events[0]!.id))).toEqual(['result:0', 'completed']);
    expect(await jobs.readEvents(jobId, events[2]!.id)).toEqual([]);
    const ttl = await redis.ttl(storeKeys(ns).jobEvents(jobId));
    expect(ttl).toBeGreaterThan(290);
    expect(ttl).toBeLessThanOrEqual(300);
  });

  it('cancel and expire add a result per service they record, then cancelled or completed; a no-op adds nothing', async () => {
    const cancelled = await newJob([0, 1, 2]);
    await jobs.recordOutcome(cancelled, 1, outcome(null), at());
    await jobs.cancel(cancelled, at());
    await jobs.cancel(cancelled, at());
    expect(kinds(await jobs.readEvents(cancelled))).toEqual(['result:1', 'result:0', 'result:2', 'cancelled']);

    const jobId = randomUUID();
    const deadlineAt = Date.now() + 60_000;
    await jobs.create({ jobId, target: '127.0.0.2', targetType: 'IPAddress', services: [3, 0], createdAt: at(), deadlineAt });
    await jobs.expire(jobId, new Date(deadlineAt - 1)); // not due: nothing
    expect(await jobs.readEvents(jobId)).toEqual([]);
    await jobs.expire(jobId, new Date(deadlineAt + 1));
    await jobs.expire(jobId, new Date(deadlineAt + 2));
    expect(kinds(await jobs.readEvents(jobId))).toEqual(['result:3', 'result:0', 'completed']);
  });

  it('publishes a wake-up on the channel named like the stream, announcing exactly the entries each change appended', async () => {
    const jobId = await newJob([0, 1]);
    const cancelled = await newJob([2, 3]);
    const sub = rawRedis();
    try {
      const heard: [string, string][] = [];
      sub.on('message', (channel: string, message: string) => heard.push([channel, message]));
      await sub.subscribe(storeKeys(ns).jobEvents(jobId), storeKeys(ns).jobEvents(cancelled));
      await jobs.recordOutcome(jobId, 1, outcome(null), at());
      await jobs.recordOutcome(jobId, 0, outcome(null), at());
      await jobs.cancel(cancelled, at());
      await expect.poll(() => heard.length).toBe(3);
      expect(heard.map(([channel]) => channel)).toEqual([storeKeys(ns).jobEvents(jobId), storeKeys(ns).jobEvents(jobId), storeKeys(ns).jobEvents(cancelled)]);
      const announced = heard.map(([, message]) => parseJobEventMessage(message));
      // The announcements, in order, are the stream itself: a subscriber can follow it without XRANGE.
      expect(announced.slice(0, 2).flat()).toEqual(await jobs.readEvents(jobId));
      expect(announced[2]).toEqual(await jobs.readEvents(cancelled));
      expect(kinds(announced[2]!)).toEqual(['result:2', 'result:3', 'cancelled']);
    } finally {
      sub.disconnect();
    }
  });

  it('reads some results alone as the document shows them (the event stream reads only what an event announces)', async () => {
    const jobId = await newJob([0, 1, 2]);
    await results.save(stored(jobId, 0, { country: 'X' }));
    await jobs.recordOutcome(jobId, 0, outcome(jobs.resultLocation(jobId, 0)), at());
    await jobs.recordOutcome(jobId, 1, outcome(null, 'Failed'), at());
    const doc = await jobs.getDocument(jobId);
    expect(await jobs.getResults(jobId, [0, 1, 2])).toEqual(doc!.results);
    expect(await jobs.getResults(jobId, [1])).toEqual([doc!.results[1]]);
    expect(await jobs.getResults(jobId, [])).toEqual([]);
  });

  it('parses an announcement, and refuses anything else (then the subscriber reads the stream)', () => {
    expect(parseJobEventMessage('5-0 result 2\n7-1 completed')).toEqual([{ id: '5-0', type: 'result', service: 2 }, { id: '7-1', type: 'completed' }]);
    expect(parseJobEventMessage('9-0 cancelled')).toEqual([{ id: '9-0', type: 'cancelled' }]);
    for (const bad of ['1', '', '5-0 result', '5-0 completed 2', 'x-0 completed', '5-0 result 2 3', '5-0 started']) expect(parseJobEventMessage(bad), bad).toBeUndefined();
    expect(eventIdAfter('10-0', '9-5')).toBe(true);
    expect(eventIdAfter('9-5', '9-5')).toBe(false);
    expect(eventIdAfter('9-6', '9-5')).toBe(true);
    expect(eventIdAfter('0-0', '1-0')).toBe(false);
  });
});

describe("job store: finished jobs' outcomes for the API's metrics (mark-notified.lua, drainOutcomes)", () => {
  // A namespace of its own: the other tests here mark jobs notified too, which queues their outcomes.
  const own = newNamespace('jobstore-ended');
  const store = createJobStore({ redis, namespace: own, ttlSeconds: 300 });
  afterAll(async () => {
    await deleteByPrefix(redis, `${own}:`);
  });
  const create = async (services: Array<0 | 1 | 2 | 3>, jobId: string = randomUUID()) => {
    await store.create({ jobId, target: '127.0.0.2', targetType: 'IPAddress', services, createdAt: at(), deadlineAt: Date.now() + 60_000 });
    return jobId;
  };

  it("queues a job's outcomes once, when its end is first marked announced, and hands them to one drain", async () => {
    const jobId = await create([3, 0, 2]);
    await store.recordOutcome(jobId, 0, outcome(null), at());
    await store.recordOutcome(jobId, 2, { ...outcome(null, 'Failed'), durationMs: 1234.5 }, at());
    await store.cancel(jobId, at());
    expect(await store.drainOutcomes(100)).toEqual({ outcomes: [], jobs: 0, full: false });
    expect(await store.markNotified(jobId)).toBe(true);
    expect(await store.markNotified(jobId)).toBe(false);
    // In requested order; an outcome recorded without a duration (the cancel's) has none.
    expect(await store.drainOutcomes(100)).toEqual({
      outcomes: [
        { service: 3, status: 'Cancelled', durationMs: null },
        { service: 0, status: 'Succeeded', durationMs: 2 },
        { service: 2, status: 'Failed', durationMs: 1234.5 },
      ],
      jobs: 1,
      full: false,
    });
    expect(await store.drainOutcomes(100)).toEqual({ outcomes: [], jobs: 0, full: false });
  });

  it('gives each job to exactly one of several drains at once (API replicas), and says when a shard had more', async () => {
    const shard = 7;
    const ids = await Promise.all(Array.from({ length: 5 }, () => create([1], newIdInShard(shard))));
    for (const id of ids) {
      await store.recordOutcome(id, 1, outcome(null), at());
      expect(await store.markNotified(id)).toBe(true);
    }
    expect(ids.every((id) => jobShard(id) === shard)).toBe(true);
    const first = await store.drainOutcomes(2);
    expect(first).toMatchObject({ jobs: 2, full: true });
    const [a, b] = await Promise.all([store.drainOutcomes(2), store.drainOutcomes(2)]);
    expect(a.jobs + b.jobs).toBe(3);
    expect([...first.outcomes, ...a.outcomes, ...b.outcomes]).toEqual(ids.map(() => ({ service: 1, status: 'Succeeded', durationMs: 2 })));
    expect(await store.drainOutcomes(2)).toEqual({ outcomes: [], jobs: 0, full: false });
  });
});
