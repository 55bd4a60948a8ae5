// Issue 15: the suite on Redis with Sentinel (a master, a replica, three Sentinels on loopback), the master failed
// over mid-load. Every client reaches Redis through the Sentinels only (REDIS_URL points nowhere).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { SERVICE_CATALOGUE } from '@lookup/contracts';
import { startDnsFixture, startRdapFixture } from '../fixtures/index.ts';
import { ChaosSuite } from '../support/chaos.ts';
import { fixtureEnv } from '../support/env.ts';
import { awaitJobs, report, submitLoad } from '../support/load.ts';
import { cleanupAmqpNamespace, newNamespace } from '../support/namespace.ts';
import { startSentinelSetup, stopAllRedisNodes, type SentinelSetup } from '../support/redis-nodes.ts';

const ns = newNamespace('sentinel');
const ALL = SERVICE_CATALOGUE.map((s) => s.name).sort();
const WORKERS = SERVICE_CATALOGUE.map((s) => s.slug);
let rdap: Awaited<ReturnType<typeof startRdapFixture>>;
let dns: Awaited<ReturnType<typeof startDnsFixture>>;
let redis: SentinelSetup;
let raw: Redis;
let suite: ChaosSuite;

beforeAll(async () => {
  [rdap, dns, redis] = await Promise.all([startRdapFixture({}), startDnsFixture({}), startSentinelSetup()]);
  raw = redis.client();
  suite = await ChaosSuite.start(ns, ['api', 'saga', ...WORKERS], fixtureEnv({ rdapUrl: rdap.url, dnsAddress: dns.address }, { ...redis.env, JOB_DEADLINE_MS: '30000', PREFETCH: '16' }));
});

afterAll(async () => {
  await suite?.stop();
  raw?.disconnect();
  await stopAllRedisNodes();
  await Promise.all([rdap?.close(), dns?.close()]);
  await cleanupAmqpNamespace(ns);
});

describe('Redis Sentinel failover under load', () => {
  it('SENTINEL FAILOVER mid-load: every client follows the new master', async () => {
    const before = await redis.masterPort();
    let after = 0;
    const jobs = 300;
    const load = await submitLoad(suite.apiUrl, {
      jobs,
      concurrency: 12,
      body: { target: '127.0.0.2' },
      startFaultAfter: 100,
      during: async () => {
        after = await redis.failover();
      },
    });
    await load.fault;
    const docs = await awaitJobs(suite.apiUrl, load.accepted, 60_000);
    // A job's end is announced a moment after its document reads Completed: wait for the last announcements.
    let figures = await report(ns, load.accepted, docs, ALL.length, raw);
    for (let i = 0; i < 50 && figures.unannounced > 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
      figures = await report(ns, load.accepted, docs, ALL.length, raw);
    }
    // Lost jobs split into those whose document is gone (404: written to the old master only) and those stuck.
    const missing = load.accepted.filter((id) => !docs.has(id)).length;
    console.log(`[sentinel figures] ${JSON.stringify({ scenario: 'SENTINEL FAILOVER mid-load', masterBefore: before, masterAfter: after, ...figures, missing, refused: load.refused })}`);
    expect(after).not.toBe(before);
    expect(after).toBe(redis.replica.port);
    expect(figures.submitted + load.refused).toBe(jobs);
    // Every completed job announced and flagged so on the new master (the flag waits for a replica, as every change does).
    expect(figures).toMatchObject({ lost: 0, recordedTwice: 0, unannounced: 0 });
    // Every process is still up and serving on the new master.
    expect(suite.live()).toHaveLength(suite.processes.length);
    const health = await fetch(`${suite.apiUrl}/health/ready`);
    expect(health.status).toBe(200);
  });
});
