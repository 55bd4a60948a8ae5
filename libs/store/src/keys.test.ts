// Issue 15: cluster-ready keys. Every multi-key script of the store touches keys of one hash slot.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SERVICE_CATALOGUE, keySlot as slot } from '@lookup/contracts';
import { JOB_SHARDS, jobShard, keys, newIdInShard } from './keys.ts';

const oneSlot = (list: string[]) => new Set(list.map(slot)).size === 1;

describe('cluster-ready keys', () => {
  it('computes Redis Cluster slots (the reference values of the cluster specification)', () => {
    expect(slot('123456789')).toBe(0x31c3 % 16384);
    expect(slot('{user1000}.following')).toBe(slot('{user1000}.followers'));
  });

  it("puts every key of a job (hash, events, each result) and its shard's deadline and listing indexes in one slot", () => {
    const k = keys('ns1');
    for (let i = 0; i < 50; i++) {
      const id = randomUUID();
      expect(oneSlot([k.job(id), k.jobEvents(id), k.deadlines(id), k.jobIndex(id), ...SERVICE_CATALOGUE.map((s) => k.result(id, s.value))])).toBe(true);
      expect(k.job(id).startsWith(k.prefix)).toBe(true);
    }
  });

  it('spreads jobs over JOB_SHARDS deadline indexes, and a batch with its jobs (newIdInShard) into one slot', () => {
    const k = keys('ns1');
    expect(new Set(k.allDeadlines).size).toBe(JOB_SHARDS);
    expect(new Set(k.allDeadlines.map(slot)).size).toBeGreaterThan(JOB_SHARDS / 2);
    expect(new Set(k.allJobIndexes).size).toBe(JOB_SHARDS);
    expect(k.allJobIndexes.map(slot)).toEqual(k.allDeadlines.map(slot));
    const batchId = randomUUID();
    const jobs = Array.from({ length: 40 }, () => newIdInShard(jobShard(batchId)));
    for (const id of jobs) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(oneSlot([k.deadlines(batchId), k.batch(batchId), k.jobIndex(batchId), ...jobs.map(k.job)])).toBe(true);
  });

  it("keeps the rate limiter's client buckets and the global bucket in one slot", () => {
    const k = keys('ns1');
    expect(oneSlot([k.rateLimit('global', 'all'), k.rateLimit('submit', 'ip:10.0.0.1'), k.rateLimit('api', 'h-{x}')])).toBe(true);
  });
});
