/**
 * The transport floor: what this machine's RabbitMQ (and Redis) allow for one job's message pattern, with the
 * suite's invariants and nothing else. No HTTP, no schemas, no lookups, no logging.
 *
 *   npm run bench:floor -- [--jobs N] [--inflight K] [--warmup N] [--store] [--json]
 *
 * Six processes, as in the suite: a driver (the API's part: publishes job.submitted, hears job.completed), a
 * saga and four workers. Per job: 10 persistent messages (job.submitted, 4 commands, 4 task.completed,
 * job.completed) on durable queues, each published on a confirm channel and each consumed message acked only
 * after what it caused is confirmed: the same pattern and guarantees as the suite. The saga counts outcomes in
 * memory (a floor, not a design). With --store, every step also does the suite's minimum of Redis writes, one
 * command each: the driver creates the job, the saga marks it Processing and records each outcome, each worker
 * stores its result.
 *
 * Runs in a fresh namespace (floor-<random>) on the default AMQP_URL / REDIS_URL, and deletes it afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import amqp, { type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import { coalesceWrites } from '@lookup/messaging';
import type { ServiceType } from '@lookup/contracts';
import { deleteByPrefix, keys as storeKeys } from '@lookup/store';
import { percentile } from './lib/measure.ts';
import { benchRedis } from './lib/servers.ts';
import { ProcessMeter, pgrep, type Watched } from './lib/proc.ts';

const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const SERVICES = ['geoip', 'ping', 'rdap', 'reverse-dns'] as const;
const PREFETCH = 64;

const HELP = `Usage: npm run bench:floor -- [options]

The transport floor of one job (10 persistent, confirmed, acked-after-confirm messages over 6 processes), with
no-op handlers and no HTTP: the most this machine's broker allows for the suite's message pattern.

  --jobs N       jobs to measure (default 4000)
  --inflight K   jobs in flight (default 64)
  --warmup N     jobs run first and not counted (default 300)
  --timeout-ms MS  a job not completed this long after its submission counts as lost (default 60000)
  --store        also do one Redis write per step (job, Processing, each result, each outcome)
  --json         one JSON line
  --help
`;

interface Names { events: string; commands: string; saga: string; driver: string; worker: (s: string) => string }
const names = (ns: string): Names => ({
  events: `${ns}.events`,
  commands: `${ns}.commands`,
  saga: `${ns}.saga`,
  driver: `${ns}.driver`,
  worker: (s) => `${ns}.lookup.${s}`,
});

const persistent = (jobId: string) => ({
  persistent: true,
  contentType: 'application/json',
  messageId: randomUUID(),
  correlationId: jobId,
});

async function connect(): Promise<{ close: () => Promise<void>; ch: ConfirmChannel }> {
  const conn = await amqp.connect(AMQP_URL, { noDelay: true });
  coalesceWrites(conn);
  const ch = await conn.createConfirmChannel();
  await ch.prefetch(PREFETCH);
  return { ch, close: () => conn.close() };
}

function publish(ch: ConfirmChannel, exchange: string, key: string, body: object, jobId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    ch.publish(exchange, key, Buffer.from(JSON.stringify(body)), persistent(jobId), (err) => (err ? reject(err) : resolve()));
  });
}

async function topology(n: Names): Promise<void> {
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createChannel();
  await ch.assertExchange(n.events, 'topic', { durable: true });
  await ch.assertExchange(n.commands, 'direct', { durable: true });
  await ch.assertQueue(n.saga, { durable: true });
  await ch.bindQueue(n.saga, n.events, 'job.submitted');
  await ch.bindQueue(n.saga, n.events, 'task.completed');
  await ch.assertQueue(n.driver, { durable: true });
  await ch.bindQueue(n.driver, n.events, 'job.completed');
  for (const s of SERVICES) {
    await ch.assertQueue(n.worker(s), { durable: true });
    await ch.bindQueue(n.worker(s), n.commands, `lookup.${s}`);
  }
  await conn.close();
}

async function removeTopology(n: Names, ns: string): Promise<void> {
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createChannel();
  for (const q of [n.saga, n.driver, ...SERVICES.map(n.worker)]) await ch.deleteQueue(q);
  await ch.deleteExchange(n.events);
  await ch.deleteExchange(n.commands);
  await conn.close();
  const redis = benchRedis(REDIS_URL);
  await deleteByPrefix(redis, `${ns}:`);
  redis.disconnect();
}

/** A consumer that acks each message once its handler has finished; a failing handler nacks to nowhere (a floor has no DLQ). */
function consume(ch: ConfirmChannel, queue: string, handle: (body: Record<string, string>, msg: ConsumeMessage) => Promise<void>): Promise<unknown> {
  return ch.consume(queue, (msg) => {
    if (!msg) return;
    handle(JSON.parse(msg.content.toString()) as Record<string, string>, msg).then(
      () => ch.ack(msg),
      (err: unknown) => {
        console.error(err);
        ch.nack(msg, false, false);
      },
    );
  });
}

async function runSaga(ns: string, store: boolean): Promise<void> {
  const n = names(ns);
  const { ch } = await connect();
  const redis = store ? benchRedis(REDIS_URL, { enableAutoPipelining: true }) : undefined;
  const outcomes = new Map<string, number>();
  await consume(ch, n.saga, async (body, msg) => {
    const jobId = body.jobId!;
    if (msg.fields.routingKey === 'job.submitted') {
      if (redis) await redis.hset(storeKeys(ns).job(jobId), 'status', 'Processing');
      await Promise.all(SERVICES.map((s) => publish(ch, n.commands, `lookup.${s}`, { jobId, service: s, schemaVersion: '1' }, jobId)));
      return;
    }
    let count: number;
    if (redis) count = await redis.hincrby(storeKeys(ns).job(jobId), 'done', 1);
    else {
      count = (outcomes.get(jobId) ?? 0) + 1;
      if (count < SERVICES.length) outcomes.set(jobId, count);
      else outcomes.delete(jobId);
    }
    if (count < SERVICES.length) return;
    await publish(ch, n.events, 'job.completed', { jobId, status: 'Completed', schemaVersion: '1' }, jobId);
  });
  console.log('READY');
}

async function runWorker(ns: string, service: string, store: boolean): Promise<void> {
  const n = names(ns);
  const { ch } = await connect();
  const redis = store ? benchRedis(REDIS_URL, { enableAutoPipelining: true }) : undefined;
  await consume(ch, n.worker(service), async (body) => {
    const jobId = body.jobId!;
    const key = storeKeys(ns).result(jobId, Number(service) as ServiceType);
    if (redis) await redis.set(key, '{"success":true,"data":{}}', 'PX', 600_000);
    await publish(ch, n.events, 'task.completed', { jobId, service, resultKey: key, schemaVersion: '1' }, jobId);
  });
  console.log('READY');
}

function spawnRole(args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (l) => l === 'READY' && resolve(child));
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
}

async function drive(o: { jobs: number; inflight: number; warmup: number; timeoutMs: number; store: boolean; json: boolean }): Promise<void> {
  const ns = `floor-${randomBytes(4).toString('hex')}`;
  const n = names(ns);
  await topology(n);
  const children: ChildProcess[] = [];
  const watched: Watched[] = [];
  process.once('SIGINT', () => {
    for (const c of children) c.kill('SIGKILL');
    void removeTopology(n, ns).finally(() => process.exit(130));
  });
  try {
    const storeArg = o.store ? ['--store'] : [];
    const saga = await spawnRole(['--role', 'saga', '--ns', ns, ...storeArg]);
    children.push(saga);
    watched.push({ name: 'saga', pid: saga.pid!, kind: 'service' });
    for (const s of SERVICES) {
      const w = await spawnRole(['--role', 'worker', '--service', s, '--ns', ns, ...storeArg]);
      children.push(w);
      watched.push({ name: s, pid: w.pid!, kind: 'service' });
    }
    for (const pid of pgrep('beam.smp').slice(0, 1)) watched.push({ name: 'rabbitmq', pid, kind: 'server' });
    for (const pid of pgrep('redis-server')) watched.push({ name: 'redis', pid, kind: 'server' });

    const { ch, close } = await connect();
    const redis = o.store ? benchRedis(REDIS_URL, { enableAutoPipelining: true }) : undefined;
    const waiting = new Map<string, () => void>();
    await ch.consume(n.driver, (msg) => {
      if (!msg) return;
      const { jobId } = JSON.parse(msg.content.toString()) as { jobId: string };
      ch.ack(msg);
      waiting.get(jobId)?.();
      waiting.delete(jobId);
    });
    let lost = 0;
    /** One job's latency, ms; NaN (and counted lost) when job.completed has not come within --timeout-ms. */
    const oneJob = async (): Promise<number> => {
      const jobId = randomUUID();
      const t0 = performance.now();
      let timer: NodeJS.Timeout | undefined;
      const done = new Promise<boolean>((resolve) => {
        waiting.set(jobId, () => resolve(true));
        timer = setTimeout(() => resolve(false), o.timeoutMs);
      });
      if (redis) await redis.hset(storeKeys(ns).job(jobId), 'status', 'Pending', 'target', '127.0.0.2');
      await publish(ch, n.events, 'job.submitted', { jobId, target: '127.0.0.2', schemaVersion: '1' }, jobId);
      const completed = await done;
      clearTimeout(timer);
      waiting.delete(jobId);
      if (completed) return performance.now() - t0;
      lost++;
      return NaN;
    };
    const closedLoop = async (jobs: number): Promise<number[]> => {
      const latencies: number[] = [];
      let started = 0;
      const lane = async () => {
        while (started < jobs) {
          started++;
          latencies.push(await oneJob());
        }
      };
      await Promise.all(Array.from({ length: Math.min(o.inflight, jobs) }, lane));
      return latencies;
    };

    await closedLoop(o.warmup);
    const meter = new ProcessMeter(watched);
    meter.begin();
    const t0 = performance.now();
    const latencies = await closedLoop(o.jobs);
    const wallMs = performance.now() - t0;
    const usage = meter.end();
    await close();
    redis?.disconnect();

    const measured = latencies.filter((l) => !Number.isNaN(l)).sort((a, b) => a - b);
    const perJob = (ms: number) => +(ms / o.jobs).toFixed(3);
    const cpu: Record<string, number> = Object.fromEntries([...usage.processes.map((u) => [u.name, perJob(u.cpuMs)]), ['driver', perJob(usage.client.cpuMs)]]);
    const total = Object.values(cpu).reduce((a, b) => a + b, 0);
    const result = {
      ok: lost === 0,
      jobs: o.jobs,
      lost,
      inflight: o.inflight,
      store: o.store,
      jobsPerSec: +((o.jobs * 1000) / wallMs).toFixed(1),
      p50Ms: +percentile(measured, 50).toFixed(1),
      p99Ms: +percentile(measured, 99).toFixed(1),
      machineBusyPct: +usage.machine.busyPct.toFixed(1),
      cpuMsPerJob: { total: +total.toFixed(2), ...cpu },
    };
    if (lost) process.exitCode = 1;
    if (o.json) console.log(JSON.stringify(result));
    else {
      console.log(lost ? `LOST: ${lost} of ${o.jobs} jobs never completed` : `OK: all ${o.jobs} jobs completed`);
      console.log(`floor: ${o.jobs} jobs, ${o.inflight} in flight, ${o.store ? 'with' : 'without'} Redis writes`);
      console.log(`throughput   ${result.jobsPerSec} jobs/s`);
      console.log(`latency      p50 ${result.p50Ms} ms   p99 ${result.p99Ms} ms`);
      console.log(`machine      ${result.machineBusyPct} % of all cores busy`);
      console.log(`CPU ms/job   ${Object.entries(cpu).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    }
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await removeTopology(n, ns);
    console.error(`[floor] namespace ${ns} removed`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      role: { type: 'string' },
      ns: { type: 'string' },
      service: { type: 'string' },
      jobs: { type: 'string', default: '4000' },
      inflight: { type: 'string', default: '64' },
      warmup: { type: 'string', default: '300' },
      'timeout-ms': { type: 'string', default: '60000' },
      store: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  if (values.role === 'saga') return runSaga(values.ns!, values.store);
  if (values.role === 'worker') return runWorker(values.ns!, values.service!, values.store);
  const int = (name: string, v: string, min: number) => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < min) throw new Error(`--${name} must be an integer >= ${min}, got ${v}`);
    return x;
  };
  await drive({
    jobs: int('jobs', values.jobs, 1),
    inflight: int('inflight', values.inflight, 1),
    warmup: int('warmup', values.warmup, 0),
    timeoutMs: int('timeout-ms', values['timeout-ms'], 1),
    store: values.store,
    json: values.json,
  });
  process.exit(process.exitCode ?? 0);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
