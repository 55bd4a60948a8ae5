import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_CATALOGUE } from '@lookup/contracts';
import { loadConfig } from '@lookup/config';
import { createLogger } from '@lookup/logging';
import { createBroker, topology } from '@lookup/messaging';
import { deleteByPrefix } from '@lookup/store';
import { startDnsFixture, startRdapFixture } from '../fixtures/index.ts';
import { fixtureEnv, REDIS_URL } from '../support/env.ts';
import { awaitJobs, report, submitLoad } from '../support/load.ts';
import { newNamespace } from '../support/namespace.ts';
import { buildServices, startSuite, type Suite } from '../support/processes.ts';
import { isRunning, startRabbitCluster, type ClusterNode, type RabbitCluster } from '../support/rabbit-cluster.ts';

// `npm run test:cluster`: a three-node RabbitMQ cluster of its own on loopback (ports CLUSTER_BASE_PORT.., never
// 5672), the whole suite on it with QUEUE_TYPE=quorum and AMQP_URL listing the three nodes, a few hundred jobs, and
// the node leading the work queues stopped mid-load. Every job must end terminal with each service recorded once
// and Succeeded, nothing dead-lettered. Figures are printed as `[cluster figures] {...}`.
const BASE_PORT = Number(process.env.CLUSTER_BASE_PORT ?? 26300);
const JOBS = Number(process.env.CLUSTER_JOBS ?? 300);
/** CLUSTER_STOP=kill: SIGKILL the leading node (a crash) instead of `rabbitmqctl stop` (a graceful stop). */
const HOW = process.env.CLUSTER_STOP === 'kill' ? 'kill' : 'stop';
const ns = newNamespace('cluster');
const t = topology(ns);
const ALL = SERVICE_CATALOGUE.map((s) => s.name).sort();
const WORK_QUEUES = [t.queues.saga, ...SERVICE_CATALOGUE.map((s) => t.queues.lookup(s.slug))];
const BODY = { target: '127.0.0.2' };

let cluster: RabbitCluster | undefined;
let suite: Suite | undefined;
let rdap: Awaited<ReturnType<typeof startRdapFixture>> | undefined;
let dns: Awaited<ReturnType<typeof startDnsFixture>> | undefined;

beforeAll(async () => {
  buildServices();
  [cluster, rdap, dns] = await Promise.all([startRabbitCluster({ basePort: BASE_PORT }), startRdapFixture({}), startDnsFixture({})]);
  const env = fixtureEnv({ rdapUrl: rdap.url, dnsAddress: dns.address }, {
    NAMESPACE: ns,
    AMQP_URL: cluster.amqpUrl,
    QUEUE_TYPE: 'quorum',
    PREFETCH: '16',
    // Long enough that a job finishes through the failover, not through the deadline (asserted: all Succeeded).
    JOB_DEADLINE_MS: '240000',
  });
  await declareTopology(env);
  // Seven node processes starting at once next to three broker nodes: more than 30 s on a loaded 2-core machine.
  suite = await startSuite({ namespace: ns, env, readyTimeoutMs: 120_000 });
}, 600_000);

afterAll(async () => {
  await suite?.stop();
  await Promise.all([rdap?.close(), dns?.close()]);
  await cluster?.close();
  const redis = new Redis(REDIS_URL);
  try {
    await deleteByPrefix(redis, `${ns}:`);
  } finally {
    redis.disconnect();
  }
}, 120_000);

/**
 * Declares the suite's topology once, as the services will (the same Broker, configuration and queue type), before
 * they start: creating some fifty quorum queues, each a Raft group on three nodes, can take longer on a loaded
 * machine than a service's start-up wait, while re-declaring existing ones is quick.
 */
async function declareTopology(env: Record<string, string>): Promise<void> {
  const config = loadConfig(env);
  const broker = createBroker({
    url: config.amqpUrl,
    namespace: config.namespace,
    logger: createLogger({ service: 'cluster-test', level: 'warn' }),
    name: `${ns}-declare`,
    maxAttempts: config.retryMaxAttempts,
    retryDelays: { baseMs: config.retryBaseDelayMs, maxMs: config.retryMaxDelayMs },
    queueType: config.queueType,
  });
  const started = Date.now();
  try {
    await broker.start();
  } finally {
    await broker.close();
  }
  console.log(`[cluster figures] topology declared in ${Date.now() - started} ms`);
}

/** The node leading most of the work queues, and who leads each. */
async function workQueueLeader(c: RabbitCluster): Promise<{ node: ClusterNode; leaders: Record<string, string> }> {
  const leaders: Record<string, string> = {};
  const count = new Map<ClusterNode, number>();
  for (const q of WORK_QUEUES) {
    const node = await c.leaderOf(q);
    if (!node) throw new Error(`no leader found for ${q}`);
    leaders[q] = node.name;
    count.set(node, (count.get(node) ?? 0) + 1);
  }
  const node = [...count.entries()].sort((a, b) => b[1] - a[1])[0]![0];
  return { node, leaders };
}

/** Messages in the dead-letter queue, read through a node that is up. */
async function deadLetters(c: RabbitCluster): Promise<number> {
  const node = c.nodes.find(isRunning)!;
  const conn = await amqp.connect(node.url);
  try {
    const ch = await conn.createChannel();
    return (await ch.checkQueue(t.queues.deadLetter)).messageCount;
  } finally {
    await conn.close();
  }
}

describe('a three-node RabbitMQ cluster with quorum queues', () => {
  it('loses no job and records no result twice when the node leading the work queues stops mid-load', async () => {
    const c = cluster!;
    const before = await workQueueLeader(c);
    let stopped: ClusterNode | undefined;
    const stop = { began: 0, ended: 0 };
    const load = await submitLoad(suite!.apiUrl, {
      jobs: JOBS,
      concurrency: 12,
      body: BODY,
      startFaultAfter: Math.floor(JOBS / 3),
      during: async () => {
        stopped = before.node;
        stop.began = Date.now();
        await c.stopNode(before.node, HOW);
        stop.ended = Date.now();
      },
    });
    await load.fault;
    const docs = await awaitJobs(suite!.apiUrl, load.accepted, 300_000);
    const figures = await report(ns, load.accepted, docs, ALL.length);
    const after = await workQueueLeader(c);
    const dead = await deadLetters(c);
    const times = [...docs.values()].map((d) => ({ created: Date.parse(d.createdAt), completed: d.completedAt ? Date.parse(d.completedAt) : Infinity }));
    // Jobs submitted before the node went and finished after: in flight while it stopped.
    const inFlightAtStop = times.filter((x) => x.created < stop.began && x.completed > stop.began).length;
    const submittedSinceStop = times.filter((x) => x.created >= stop.began).length;
    // Processes whose connection was on the stopped node and that reconnected to another.
    const failedOver = suite!.processes.filter((p) => p.lines.some((l) => l.includes('connection lost; reconnecting'))).map((p) => p.name);
    console.log(`[cluster figures] ${JSON.stringify({
      stopped: stopped?.name, how: HOW, stopMs: stop.ended - stop.began, ...figures, refused: load.refused, deadLettered: dead,
      inFlightAtStop, submittedSinceStop, failedOver, leadersBefore: before.leaders, leadersAfter: after.leaders,
    })}`);

    expect(stopped && !isRunning(stopped)).toBe(true);
    // The node went mid-load: jobs were in flight when it began to stop, and more were submitted from then on.
    expect(inFlightAtStop).toBeGreaterThan(0);
    expect(submittedSinceStop).toBeGreaterThan(0);
    // Every queue the stopped node led has a new leader on a node that is up.
    for (const q of WORK_QUEUES) expect(after.leaders[q]).not.toBe(stopped!.name);
    expect(figures).toMatchObject({ submitted: JOBS, terminal: JOBS, lost: 0, recordedTwice: 0, notSucceeded: 0 });
    for (const id of load.accepted) expect(docs.get(id)!.results.map((r) => r.serviceType).sort()).toEqual(ALL);
    expect(dead).toBe(0);
    // Every process is still connected (to a node that is up) and serving.
    expect((await fetch(`${suite!.apiUrl}/health/ready`)).status).toBe(200);
  });
});
