/**
 * npm run bench -- --help
 *
 * Starts the suite (API, saga, workers) in a fresh NAMESPACE against loopback fixtures, drives it with
 * jobs, and reports throughput, client-side latency, cost per job and whether every job completed.
 */
import { parseArgs } from 'node:util';
import { closeAllSessions, measure, openSession } from './lib/session.ts';
import { formatText } from './lib/measure.ts';
import { parseServiceList } from './lib/suite.ts';
import { runSweep } from './lib/sweep.ts';
import { parseReplicaList, runReplicaSweep } from './lib/replicas.ts';
import { waitForIdle } from './lib/proc.ts';

const HELP = `Usage: npm run bench -- [options]

Starts the suite in a fresh NAMESPACE (api, saga, one process per worker type; loopback RDAP and DNS
fixtures, target 127.0.0.2, ALLOW_PRIVATE_TARGETS=true, rate limits raised, PING_COUNT=1, LOG_LEVEL=warn),
runs the jobs, prints the figures, then stops everything and removes the namespace's queues, exchanges and
Redis keys (also on Ctrl-C and on failure). Nothing leaves this machine.

Load
  --jobs N             jobs to measure (default 4000: about a minute in all on 2 cores)
  --inflight K         closed loop: K jobs in flight at all times (default 64)
  --rate R             open loop instead: R jobs/s whatever the latency (latency counted from each job's due time)
  --duration S         measure for S seconds instead of a job count
  --warmup N           jobs run (and not counted) before measuring (default 300)
  --services LIST      services each job requests, e.g. GeoIP,Ping or rdap, or all (default: the four the BullMQ
                       peer does: GeoIP,Ping,RDAP,ReverseDNS); only their workers are started
  --target T           lookup target (default 127.0.0.2)
  --timeout-ms MS      a job not Completed this long after its start counts as lost (default 60000)
  --detector D         how the client learns a job finished: sse (its event stream, GET /api/lookup/{id}/events;
                       the default) or poll (GET /api/lookup/{id} every --poll-ms)
  --poll-ms MS         with --detector poll: the interval per job (default 5); with --batch: per batch (default 25)
  --batch N            bulk mode: submit jobs N at a time with POST /api/lookup/batch (closed loop only), follow
                       each batch with GET /api/lookup/batch/{id}, then check every job's results (not timed);
                       a job's latency runs from its batch's POST to the poll that saw it finished
  --batch-inflight B   with --batch: batches in flight at a time (default 4)

Suite
  --url URL            drive a running suite at URL instead of starting one (nothing is started or removed)
  --namespace NS       with --url: the running suite's NAMESPACE, for its RabbitMQ counts (default lookup)
  --workers N          replicas of each worker type (default 1; default N with --replicas N)
  --replicas N         N processes of every process type: N APIs (each on its own port; the client sends its
                       requests to them in turn), N sagas and N of each worker type (default 1); CPU is also
                       shown summed per process type
  --worker-prefetch P  PREFETCH for the workers only, i.e. the worker kit's concurrency per process
                       (default: the config default, 64)
  --fixture-delay MS   the RDAP fixture answers after MS ms (a slow lookup; default 0)
  --log-level L        LOG_LEVEL of the services (default warn)
  --idle-wait S        first wait up to S s for the machine to be quiet (< 25 % busy for 3 s; default 0)
  --cpu-prof DIR       run every service with node --cpu-prof (whole life: start-up included), profiles
                       under DIR/<service>/ (use /tmp); summarise with bench/profile-summary.ts

Output
  --json               one JSON line (first key "ok"; "problem" says what was lost or failed)
  --sweep              in-flight sweep (1, 8, 64, 256; all services) and worker-replica sweep (1, 2, 4;
                       RDAP only, fixture delay 50 ms, at worker prefetch 4 and 64); writes
                       bench/results/sweep.md, sweep.svg and sweep.json
  --replicas-sweep L   scaling out: one suite per replica count in L (e.g. 1,2,3) with --replicas N each, a slow
                       lookup and a small worker prefetch (defaults: --services rdap --fixture-delay 100
                       --worker-prefetch 4 --inflight 64); writes bench/results/replicas.md, .svg and .json
  --sweep-seconds S    measuring time per sweep point (default 10)
  -h, --help           this text

The first output line says OK, or NOT OK with how many jobs were lost or failed; the exit code is 1 then.
Environment: AMQP_URL, REDIS_URL (defaults amqp://guest:guest@127.0.0.1:5672, redis://127.0.0.1:6379).
`;

const { values: a } = parseArgs({
  options: {
    jobs: { type: 'string' },
    inflight: { type: 'string' },
    rate: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    services: { type: 'string' },
    target: { type: 'string' },
    'timeout-ms': { type: 'string' },
    'poll-ms': { type: 'string' },
    detector: { type: 'string' },
    batch: { type: 'string' },
    'batch-inflight': { type: 'string' },
    url: { type: 'string' },
    namespace: { type: 'string' },
    workers: { type: 'string' },
    replicas: { type: 'string' },
    'replicas-sweep': { type: 'string' },
    'worker-prefetch': { type: 'string' },
    'fixture-delay': { type: 'string' },
    'log-level': { type: 'string' },
    'cpu-prof': { type: 'string' },
    'idle-wait': { type: 'string' },
    json: { type: 'boolean' },
    sweep: { type: 'boolean' },
    'sweep-seconds': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});

if (a.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function num(name: keyof typeof a, fallback: number, min = 0): number {
  const raw = a[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) {
    process.stderr.write(`--${name} must be a number >= ${min}, got '${String(raw)}'\n`);
    process.exit(2);
  }
  return n;
}

const detector = (a.detector ?? 'sse') as 'sse' | 'poll';
if (detector !== 'sse' && detector !== 'poll') {
  process.stderr.write(`--detector must be sse or poll, got '${String(a.detector)}'\n`);
  process.exit(2);
}

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const amqpUrl = process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping the suite and removing its namespace`);
    void closeAllSessions().finally(() => process.exit(130));
  });
}

async function main(): Promise<number> {
  let services;
  try {
    services = parseServiceList(a.services);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const common = {
    amqpUrl,
    redisUrl,
    logLevel: a['log-level'] ?? 'warn',
    cpuProfDir: a['cpu-prof'],
    log,
  };
  const idleWait = num('idle-wait', 0);
  if (a['replicas-sweep'] !== undefined) {
    let points;
    try {
      points = parseReplicaList(a['replicas-sweep']);
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
      return 2;
    }
    const ok = await runReplicaSweep({
      ...common,
      points,
      services: a.services ? services : parseServiceList('rdap'),
      fixtureDelayMs: num('fixture-delay', 100),
      workerPrefetch: num('worker-prefetch', 4, 1),
      inflight: num('inflight', 64, 1),
      seconds: num('sweep-seconds', 10, 1),
      detector,
      pollMs: num('poll-ms', 5, 0),
      timeoutMs: num('timeout-ms', 60_000, 100),
      idleWait,
    });
    return ok ? 0 : 1;
  }
  if (idleWait > 0 && !a.sweep) {
    log(`waiting up to ${idleWait} s for the machine to be quiet`);
    await waitForIdle(idleWait, 25, log);
  }
  if (a.sweep) {
    await runSweep({ ...common, idleWait, seconds: num('sweep-seconds', 10, 1), pollMs: num('poll-ms', 5, 0), detector, timeoutMs: num('timeout-ms', 60_000, 100) });
    return 0;
  }
  const replicas = num('replicas', 1, 1);
  const workers = num('workers', replicas, 1);
  if (!Number.isInteger(replicas) || !Number.isInteger(workers)) {
    process.stderr.write('--replicas and --workers take whole numbers\n');
    return 2;
  }
  const fixtureDelayMs = num('fixture-delay', 0);
  const workerPrefetch = a['worker-prefetch'] ? num('worker-prefetch', 64, 1) : undefined;
  const session = await openSession({ ...common, url: a.url, namespace: a.namespace, services, workers, replicas, fixtureDelayMs, workerPrefetch });
  try {
    const mode = a.rate ? 'open' : 'closed';
    const inflight = num('inflight', 64, 1);
    const rate = num('rate', 0, 0.1);
    const jobs = num('jobs', 4000, 1);
    const warmup = num('warmup', Math.min(300, jobs), 0);
    const target = a.target ?? '127.0.0.2';
    const durationS = a.duration ? num('duration', 10, 1) : undefined;
    const batchSize = a.batch ? num('batch', 1, 1) : undefined;
    if (batchSize !== undefined && (mode === 'open' || !Number.isInteger(batchSize) || batchSize > 10_000)) {
      process.stderr.write('--batch takes a whole number 1..10000 and does not go with --rate\n');
      return 2;
    }
    const batch = batchSize ? { size: batchSize, inFlight: num('batch-inflight', 4, 1), pollMs: num('poll-ms', 25, 0) } : undefined;
    const result = await measure(session, {
      mode,
      jobs,
      inflight,
      rate,
      durationMs: durationS ? durationS * 1000 : undefined,
      warmup,
      services,
      target,
      pollMs: num('poll-ms', 5, 0),
      detector,
      timeoutMs: num('timeout-ms', 60_000, 100),
      batch,
      amqpStats: session.own ? 'total' : 'delta',
      redisStats: true,
      redisUrl,
      config: {
        mode,
        inflight: mode === 'closed' && !batch ? inflight : null,
        batch: batch ? batch.size : null,
        batchesInFlight: batch ? batch.inFlight : null,
        rate: mode === 'open' ? rate : null,
        jobs: durationS ? null : jobs,
        durationS: durationS ?? null,
        warmup,
        services: services.map((s) => s.name).join(','),
        workers: session.own ? workers : null,
        replicas: session.own ? replicas : null,
        workerPrefetch: workerPrefetch ?? null,
        fixtureDelayMs: session.own ? fixtureDelayMs : null,
        target,
        url: session.own ? null : session.apiUrl,
        namespace: session.namespace,
        node: process.version,
      },
      log,
    });
    const lines = a.json ? JSON.stringify(result) : formatText(result);
    process.stdout.write(`${lines}\n`);
    if (!result.ok && !a.json) {
      // Show what the services said (LOG_LEVEL=warn: only warnings and errors).
      for (const p of session.suite?.processes ?? []) {
        if (p.tail.length) process.stderr.write(`--- ${p.name} (last lines)\n${p.tail.slice(-10).join('\n')}\n`);
      }
    }
    return result.ok ? 0 : 1;
  } finally {
    await session.close();
  }
}

main().then(
  (code) => process.exit(code),
  async (err) => {
    process.stderr.write(`bench failed: ${(err as Error)?.stack ?? String(err)}\n`);
    await closeAllSessions();
    process.exit(1);
  },
);
