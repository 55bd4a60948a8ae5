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
import { resourceEnv, sql, sqlUntilOk, startApi, startWorker, stopAll, type Api, type SqlAnswer, type Worker } from '../support/resources.ts';
import type { ServiceProcess } from '../support/processes.ts';

// `npm run test:cluster`: a three-node RabbitMQ cluster of its own on loopback (ports CLUSTER_BASE_PORT.., never
// 5672), the whole suite on it with QUEUE_TYPE=quorum and AMQP_URL listing the three nodes, a few hundred jobs, and
// the node leading the work queues stopped mid-load. Every job must end terminal with each service recorded once
// and Succeeded, nothing dead-lettered. Two resource workers serve pinned keys over the RPC (/api/resources/*)
// throughout, one of them connected to the node that is stopped: every resource request ends (none hangs) with a
// 200 or a documented 503/504, two owners never write, and requests after the stop succeed. Figures are printed as
// `[cluster figures] {...}`.
const BASE_PORT = Number(process.env.CLUSTER_BASE_PORT ?? 26300);
const JOBS = Number(process.env.CLUSTER_JOBS ?? 300);
/** CLUSTER_STOP=kill: SIGKILL the leading node (a crash) instead of `rabbitmqctl stop` (a graceful stop). */
const HOW = process.env.CLUSTER_STOP === 'kill' ? 'kill' : 'stop';
const ns = newNamespace('cluster');
const t = topology(ns);
const ALL = SERVICE_CATALOGUE.map((s) => s.name).sort();
const WORK_QUEUES = [t.queues.saga, ...SERVICE_CATALOGUE.map((s) => t.queues.lookup(s.slug))];
const BODY = { target: '127.0.0.2' };
const RESOURCE_KEYS = ['cl-0', 'cl-1', 'cl-2', 'cl-3'];
/** Leases of 2 s (500 ms x 4), and 10 s for the owner to answer before the API says 504: a loaded 2-core machine. */
const re = resourceEnv(ns, { RESOURCE_HEARTBEAT_MS: '500', RESOURCE_MAX_MISSED: '4', RESOURCE_PROXY_TIMEOUT_MS: '10000' });
/** A resource request with no answer by then counts as hung (the API must answer 504 well before). */
const HUNG_MS = 30_000;

let cluster: RabbitCluster | undefined;
let suite: Suite | undefined;
let rdap: Awaited<ReturnType<typeof startRdapFixture>> | undefined;
let dns: Awaited<ReturnType<typeof startDnsFixture>> | undefined;
const resourceWorkers: Worker[] = [];
/** The node the resource worker meant to lose its broker is connected to (the work-queue leader). */
let rpcTarget: { leader: ClusterNode; tries: number; apiTries: number } | undefined;
/** The API whose RPC connection is on that node: the suite's, or a second API started until one is. */
let rpcApi: { url: string; extra?: Api } | undefined;

beforeAll(async () => {
  buildServices();
  [cluster, rdap, dns] = await Promise.all([startRabbitCluster({ basePort: BASE_PORT }), startRdapFixture({}), startDnsFixture({})]);
  const env = fixtureEnv({ rdapUrl: rdap.url, dnsAddress: dns.address }, {
    ...re.env,
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
  // A connection picks a random node of AMQP_URL: resource worker `a` is restarted until its RPC connection is on
  // the node that leads the work queues (the one the test stops), so the stop takes a worker's queue away for sure.
  const leader = (await workQueueLeader(cluster)).node;
  let tries = 1;
  for (; ; tries++) {
    const w = await startWorker(env, 'a');
    const node = await waitForConnectionNode(cluster, `${ns}-resource-${w.id}`);
    if (node === leader.name || tries === 15) {
      resourceWorkers.push(w);
      break;
    }
    await stopAll([w]);
  }
  resourceWorkers.push(await startWorker(env, 'b'));
  // Likewise an API whose RPC connection (its reply queue) is on that node, for half of the resource keys.
  const suiteApi = suite.processes.find((p) => p.name === 'api')!;
  let apiTries = 0;
  if ((await rpcNode(cluster, suiteApi)) === leader.name) rpcApi = { url: suite.apiUrl };
  while (!rpcApi) {
    apiTries++;
    const api = await startApi(env);
    if ((await rpcNode(cluster, api.process)) === leader.name || apiTries === 15) rpcApi = { url: api.url, extra: api };
    else await stopAll([api]);
  }
  rpcTarget = { leader, tries, apiTries };
}, 600_000);

afterAll(async () => {
  await stopAll([...resourceWorkers, ...(rpcApi?.extra ? [rpcApi.extra] : [])]);
  await suite?.stop();
  await Promise.all([rdap?.close(), dns?.close()]);
  await cluster?.close();
  re.cleanup();
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

/** Erlang node of each client connection, by connection name (`rabbitmqctl list_connections`, cluster-wide). */
async function connectionNodes(c: RabbitCluster): Promise<Map<string, string>> {
  const node = c.nodes.find(isRunning)!;
  const out = await c.ctl(node, ['list_connections', '-q', '--no-table-headers', 'pid', 'client_properties']);
  const nodes = new Map<string, string>();
  for (const line of out.split('\n')) {
    const pid = /^<([^.<>]+@[^.<>]+)\./.exec(line.trim());
    const name = /"connection_name","([^"]+)"/.exec(line);
    if (pid && name) nodes.set(name[1]!, pid[1]!);
  }
  return nodes;
}

async function waitForConnectionNode(c: RabbitCluster, name: string): Promise<string> {
  for (let i = 0; i < 60; i++) {
    const node = (await connectionNodes(c)).get(name);
    if (node) return node;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`no connection named ${name}`);
}

/** The node a process's RPC connection is on, from its `rpc connected` log line (the last one). */
async function rpcNode(c: RabbitCluster, p: ServiceProcess): Promise<string> {
  for (let i = 0; i < 120; i++) {
    for (const line of [...p.lines].reverse()) {
      if (!line.includes('rpc connected')) continue;
      const port = Number(/@127\.0\.0\.1:(\d+)/.exec(String((JSON.parse(line) as { amqp?: string }).amqp))?.[1]);
      const node = c.nodes.find((n) => n.amqpPort === port);
      if (node) return node.name;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${p.name} logged no 'rpc connected'`);
}

interface ResourceAnswer {
  status: number;
  n?: number;
  owner?: string;
  epoch?: number;
  ms: number;
  at: number;
  error?: string;
}

/** Sequential increments of one key until `stop()`; status 0 is a request with no answer within HUNG_MS. */
async function resourceTraffic(apiUrl: string, key: string, answers: ResourceAnswer[], stop: () => boolean): Promise<void> {
  while (!stop()) {
    const began = Date.now();
    let r: SqlAnswer | undefined;
    let error: string | undefined;
    try {
      r = await sql(apiUrl, key, 'UPDATE c SET n = n + 1 WHERE id = 1 RETURNING n', undefined, { timeoutMs: HUNG_MS });
    } catch (err) {
      error = (err as Error).message;
    }
    const status = r?.status ?? 0;
    answers.push({ status, n: status === 200 ? r!.body.rows[0].n : undefined, owner: r?.owner, epoch: r?.epoch, ms: Date.now() - began, at: Date.now(), error: error ?? (status === 200 ? undefined : JSON.stringify(r?.body)) });
    // Paced (at most ten a second per key): the RPC under test, not a second load competing with the jobs'.
    await new Promise((res) => setTimeout(res, status === 200 ? 100 : 200));
  }
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

/** Why messages were dead-lettered (a failed run's diagnosis): counts by original queue and reason, from a peek. */
async function deadLetterReasons(c: RabbitCluster, max = 200): Promise<Record<string, number>> {
  const node = c.nodes.find(isRunning)!;
  const conn = await amqp.connect(node.url);
  const reasons: Record<string, number> = {};
  try {
    const ch = await conn.createChannel();
    for (let i = 0; i < max; i++) {
      const m = await ch.get(t.queues.deadLetter, { noAck: false });
      if (!m) break;
      const h = m.properties.headers ?? {};
      const death = Array.isArray(h['x-death']) ? h['x-death'][0] : undefined;
      const label = `${String(h['x-original-queue'] ?? death?.queue)}: ${String(h['x-dead-letter-reason'] ?? death?.reason).slice(0, 120)}`;
      reasons[label] = (reasons[label] ?? 0) + 1;
    }
    await ch.close(); // unacked: back in the queue
  } finally {
    await conn.close();
  }
  return reasons;
}

describe('a three-node RabbitMQ cluster with quorum queues', () => {
  it('loses no job and records no result twice when the node leading the work queues stops mid-load', async () => {
    const c = cluster!;
    const before = await workQueueLeader(c);
    let stopped: ClusterNode | undefined;
    const stop = { began: 0, ended: 0 };
    // Keys cl-0 and cl-1 through the suite's API, cl-2 and cl-3 through the API whose RPC is on the stopped node.
    const apiOf = (key: string) => (RESOURCE_KEYS.indexOf(key) < 2 ? suite!.apiUrl : rpcApi!.url);
    for (const key of RESOURCE_KEYS) await sqlUntilOk(apiOf(key), key, 'CREATE TABLE c (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO c VALUES (1, 0)', undefined, 60_000);
    const rpcBefore = await connectionNodes(c);
    const rpcNames = resourceWorkers.map((w) => `${ns}-resource-${w.id}`);
    const rpcOnStopped = rpcNames.filter((n) => rpcBefore.get(n) === before.node.name).map((n) => n.slice(ns.length + 1));
    if ((await rpcNode(c, rpcApi!.extra?.process ?? suite!.processes.find((p) => p.name === 'api')!)) === before.node.name) rpcOnStopped.push(rpcApi!.extra ? 'api-2' : 'api');
    const answers = new Map(RESOURCE_KEYS.map((k) => [k, [] as ResourceAnswer[]]));
    let resourcesDone = false;
    const resourceLoad = Promise.all(RESOURCE_KEYS.map((k) => resourceTraffic(apiOf(k), k, answers.get(k)!, () => resourcesDone)));
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
    resourcesDone = true;
    await resourceLoad;
    // After the stop: every key is served again (re-placed if its owner lost its broker), then ten requests in a row
    // per key all succeed.
    const recovered = Date.now();
    for (const key of RESOURCE_KEYS) await sqlUntilOk(apiOf(key), key, 'SELECT n FROM c WHERE id = 1', undefined, 120_000);
    const recoveryMs = Date.now() - recovered;
    const afterRecovery: ResourceAnswer[] = [];
    for (let i = 0; i < 10; i++) {
      for (const key of RESOURCE_KEYS) {
        const began = Date.now();
        const r = await sql(apiOf(key), key, 'SELECT n FROM c WHERE id = 1', undefined, { timeoutMs: HUNG_MS });
        afterRecovery.push({ status: r.status, owner: r.owner, epoch: r.epoch, ms: Date.now() - began, at: Date.now(), error: r.status === 200 ? undefined : JSON.stringify(r.body) });
      }
    }
    const finals = await Promise.all(RESOURCE_KEYS.map((k) => sqlUntilOk(apiOf(k), k, 'SELECT n FROM c WHERE id = 1', undefined, 60_000)));
    const statuses: Record<string, number> = {};
    for (const list of answers.values()) {
      for (const a of list) {
        const code = a.status === 200 ? '' : ` ${/"code":"([A-Z_]+)"/.exec(a.error ?? '')?.[1] ?? ''}`;
        statuses[`${a.status}${code}`] = (statuses[`${a.status}${code}`] ?? 0) + 1;
      }
    }
    const all = [...answers.values()].flat();
    const resourceFigures = {
      rpcOnStopped, workerTries: rpcTarget?.tries, apiTries: rpcTarget?.apiTries, statuses, slowestMs: Math.max(...all.map((a) => a.ms)),
      servedAfterStop: all.filter((a) => a.status === 200 && a.at > stop.ended).length, recoveryMs,
      afterRecovery: afterRecovery.filter((a) => a.status === 200).length + '/' + afterRecovery.length,
      rpcFailedOver: [suite!.processes.find((p) => p.name === 'api'), rpcApi?.extra?.process, ...resourceWorkers.map((w) => w.process)]
        .filter((p) => p?.lines.some((l) => l.includes('rpc connection lost; reconnecting')))
        .map((p) => p!.name),
      keys: RESOURCE_KEYS.map((k, i) => {
        const ok = answers.get(k)!.filter((a) => a.status === 200);
        return { key: k, acked: ok.length, other: answers.get(k)!.length - ok.length, stored: finals[i]!.body.rows[0].n, epochs: [...new Set(ok.map((a) => `${a.owner}@${a.epoch}`))].join(' ') };
      }),
    };
    const figures = await report(ns, load.accepted, docs, ALL.length);
    const after = await workQueueLeader(c);
    const dead = await deadLetters(c);
    const deadReasons = dead > 0 ? await deadLetterReasons(c) : {};
    const notSucceededResults: Record<string, number> = {};
    for (const d of docs.values()) {
      for (const r of d.results.filter((x) => x.status !== 'Succeeded')) {
        const label = `${r.serviceType} ${r.status} ${String(r.errorMessage).slice(0, 120)}`;
        notSucceededResults[label] = (notSucceededResults[label] ?? 0) + 1;
      }
    }
    const times = [...docs.values()].map((d) => ({ created: Date.parse(d.createdAt), completed: d.completedAt ? Date.parse(d.completedAt) : Infinity }));
    // Jobs submitted before the node went and finished after: in flight while it stopped.
    const inFlightAtStop = times.filter((x) => x.created < stop.began && x.completed > stop.began).length;
    const submittedSinceStop = times.filter((x) => x.created >= stop.began).length;
    // Processes whose connection was on the stopped node and that reconnected to another.
    const failedOver = suite!.processes.filter((p) => p.lines.some((l) => l.includes('connection lost; reconnecting'))).map((p) => p.name);
    console.log(`[cluster figures] ${JSON.stringify({
      stopped: stopped?.name, how: HOW, stopMs: stop.ended - stop.began, ...figures, refused: load.refused, deadLettered: dead,
      inFlightAtStop, submittedSinceStop, failedOver, leadersBefore: before.leaders, leadersAfter: after.leaders,
      ...(dead > 0 ? { deadReasons } : {}), ...(figures.notSucceeded > 0 ? { notSucceededResults } : {}),
    })}`);
    console.log(`[cluster figures] resources: ${JSON.stringify(resourceFigures)}`);

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

    // Resource RPC through the stop: a worker's connection was on the stopped node.
    expect(rpcOnStopped.some((n) => n.startsWith('resource-'))).toBe(true);
    expect(rpcOnStopped.some((n) => n.startsWith('api'))).toBe(true);
    for (const [key, list] of answers) {
      // None hung; each ended with a 200 or a documented answer of a failover (503 no owner reachable, 504 the
      // owner did not answer in time).
      for (const a of list) expect([200, 503, 504], `${key}: ${a.status} after ${a.ms} ms: ${a.error}`).toContain(a.status);
      const ok = list.filter((a) => a.status === 200);
      // Never two writers (see tests/resources-failover.test.ts): increments strictly increase, each epoch has one
      // owner and epochs only grow; the stored count is every acknowledged increment plus at most the unanswered.
      const values = ok.map((a) => a.n!);
      for (let k = 1; k < values.length; k++) expect(values[k], `${key}: ${values.slice(k - 1, k + 1)}`).toBeGreaterThan(values[k - 1]!);
      const epochOwner = new Map<number, string>();
      for (const a of ok) {
        expect(epochOwner.get(a.epoch!) ?? a.owner, `${key}: epoch ${a.epoch} with two owners`).toBe(a.owner);
        epochOwner.set(a.epoch!, a.owner!);
      }
      expect(ok.map((a) => a.epoch!)).toEqual(ok.map((a) => a.epoch!).sort((x, y) => x - y));
      const stored = finals[RESOURCE_KEYS.indexOf(key)]!.body.rows[0].n as number;
      expect(stored).toBeGreaterThanOrEqual(values.at(-1) ?? 0);
      expect(stored).toBeLessThanOrEqual(values.length + list.length - ok.length);
    }
    // Served after the stop, and after recovery every request succeeds.
    expect(resourceFigures.servedAfterStop).toBeGreaterThan(0);
    for (const a of afterRecovery) expect(a.status, a.error).toBe(200);
    for (const w of resourceWorkers) expect(w.process.child.exitCode).toBeNull();
  });
});
