import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_CATALOGUE } from '@lookup/contracts';
import { masters } from '@lookup/store';
import { startDnsFixture, startRdapFixture } from '../fixtures/index.ts';
import { cleanupNamespace, newNamespace } from '../support/namespace.ts';
import { ChaosSuite } from '../support/chaos.ts';
import { awaitJobs, report, submitLoad } from '../support/load.ts';
import { waitFor } from '../support/processes.ts';
import { fixtureEnv } from '../support/env.ts';
import { rawRedis } from '../support/redis.ts';

// These take the shared RabbitMQ and Redis away for a few seconds, so they run in their own vitest project
// after every other test (npm test runs the 'disruptive' project last, alone).
const ns = newNamespace('outage');
let rdap: Awaited<ReturnType<typeof startRdapFixture>>;
let dns: Awaited<ReturnType<typeof startDnsFixture>>;
let suite: ChaosSuite;

beforeAll(async () => {
  [rdap, dns] = await Promise.all([startRdapFixture({}), startDnsFixture({})]);
  suite = await ChaosSuite.start(ns, ['api', 'saga', ...SERVICE_CATALOGUE.map((s) => s.slug)], fixtureEnv({ rdapUrl: rdap.url, dnsAddress: dns.address }, { JOB_DEADLINE_MS: '180000', PREFETCH: '16' }));
});

afterAll(async () => {
  await suite?.stop();
  await Promise.all([rdap?.close(), dns?.close()]);
  await cleanupNamespace(ns);
});

const ready = async () => (await fetch(`${suite.apiUrl}/health/ready`).catch(() => undefined))?.status;

async function loadThrough(label: string, jobs: number, fault: () => Promise<void>) {
  const load = await submitLoad(suite.apiUrl, { jobs, concurrency: 8, body: { target: '127.0.0.2' }, during: fault });
  await load.fault;
  const docs = await awaitJobs(suite.apiUrl, load.accepted, 150_000);
  const figures = await report(ns, load.accepted, docs, SERVICE_CATALOGUE.length); // a job without services runs every one
  console.log(`[fault figures] ${JSON.stringify({ scenario: label, ...figures, refused: load.refused })}`);
  expect(figures).toMatchObject({ lost: 0, recordedTwice: 0, notSucceeded: 0 });
  expect(load.accepted.length + load.refused).toBe(jobs);
  expect(suite.live()).toHaveLength(suite.processes.length);
}

describe('dependency outages', () => {
  it('Redis paused (CLIENT PAUSE) for 3 s mid-load', async () => {
    const admin = rawRedis();
    try {
      // Every master of a Redis Cluster (REDIS_URL=redis+cluster://…), or the one Redis.
      const nodes = await masters(admin);
      await loadThrough('redis paused 3 s', 120, async () => {
        await Promise.all(nodes.map((node) => node.call('CLIENT', 'PAUSE', '3000', 'ALL')));
        await new Promise((r) => setTimeout(r, 3500));
      });
    } finally {
      admin.disconnect();
    }
  });

  it('RabbitMQ app stopped and started mid-load: not ready meanwhile, then everything resumes', async () => {
    let sawNotReady = false;
    await loadThrough('rabbitmq stop_app / start_app', 120, async () => {
      execFileSync('rabbitmqctl', ['stop_app'], { stdio: 'ignore', timeout: 60_000 });
      await waitFor(async () => ((await ready()) === 503 ? true : undefined), 10_000);
      sawNotReady = true;
      const refused = await fetch(`${suite.apiUrl}/api/lookup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"target":"127.0.0.2"}' });
      expect(refused.status).toBe(503);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 2000));
      execFileSync('rabbitmqctl', ['start_app'], { stdio: 'ignore', timeout: 120_000 });
      await waitFor(async () => ((await ready()) === 200 ? true : undefined), 90_000);
    });
    expect(sawNotReady).toBe(true);
  });
});
