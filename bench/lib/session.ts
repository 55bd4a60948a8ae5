import { randomBytes } from 'node:crypto';
import type { ServiceInfo } from '@lookup/contracts';
import { batchLoop, closedLoop, createHttpClient, createPollingDetector, createSseDetector, openLoop, verifyBatchJobs, type JobRecord } from './client.ts';
import { summarise, type BenchResult } from './measure.ts';
import { ProcessMeter, listeningPid, pgrep, type Watched } from './proc.ts';
import { RabbitStats, commandDelta, diffCounts, redisCommandStats, type AmqpCounts } from './servers.ts';
import { removeNamespace, startBenchSuite, type BenchFixtures, type BenchSuite } from './suite.ts';

export interface SessionOptions {
  amqpUrl: string;
  redisUrl: string;
  /** Drive a running suite instead of starting one. */
  url?: string;
  /** Namespace of the running suite (--url), for its RabbitMQ message counts. */
  namespace?: string;
  services: ServiceInfo[];
  workers: number;
  /** Replicas of the API and the saga (default 1; the workers' count is `workers`). */
  replicas?: number;
  fixtureDelayMs: number;
  workerPrefetch?: number;
  logLevel: string;
  cpuProfDir?: string;
  /** Fixtures already running, shared with other sessions (bench:compare): not stopped with the suite. */
  fixtures?: BenchFixtures;
  log: (line: string) => void;
}

/** A suite to measure: one this bench started (and removes), or one already running (--url). */
export interface Session {
  apiUrl: string;
  /** Every API replica the client spreads its requests over (just apiUrl with --url). */
  apiUrls: string[];
  namespace: string;
  own: boolean;
  suite?: BenchSuite;
  rabbit?: RabbitStats;
  watched: Watched[];
  /** Jobs submitted in this session so far (warm-up included): the denominator of whole-namespace message counts. */
  jobsSubmitted: number;
  close(): Promise<void>;
}

const openSessions = new Set<Session>();

/** Closes every open session (stops processes, removes namespaces); for signal handlers. */
export async function closeAllSessions(): Promise<void> {
  await Promise.allSettled([...openSessions].map((s) => s.close()));
}

/**
 * RabbitMQ and Redis, measured as servers: the processes listening on the AMQP and Redis ports (by name, the
 * oldest beam.smp / redis-server, when the port's owner cannot be found).
 */
export function servers(amqpUrl = process.env.AMQP_URL || 'amqp://127.0.0.1:5672', redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379'): Watched[] {
  const port = (url: string, fallback: number) => Number(new URL(url).port || fallback);
  const rabbit = listeningPid(port(amqpUrl, 5672)) ?? pgrep('beam.smp')[0];
  const redis = listeningPid(port(redisUrl, 6379)) ?? pgrep('redis-server')[0];
  const out: Watched[] = [];
  if (rabbit) out.push({ name: 'rabbitmq', pid: rabbit, kind: 'server' });
  if (redis) out.push({ name: 'redis', pid: redis, kind: 'server' });
  return out;
}

export async function openSession(o: SessionOptions): Promise<Session> {
  const rabbit = await RabbitStats.connect(o.amqpUrl);
  if (o.url) {
    const session: Session = {
      apiUrl: o.url.replace(/\/+$/, ''),
      apiUrls: [o.url.replace(/\/+$/, '')],
      namespace: o.namespace ?? 'lookup',
      own: false,
      rabbit,
      watched: servers(o.amqpUrl, o.redisUrl),
      jobsSubmitted: 0,
      async close() {
        openSessions.delete(session);
      },
    };
    openSessions.add(session);
    return session;
  }
  const namespace = `bench-${randomBytes(4).toString('hex')}`;
  let closing: Promise<void> | undefined;
  let suite: BenchSuite | undefined;
  let stopSuite: (() => Promise<void>) | undefined;
  const interrupt = new AbortController();
  const session: Session = {
    apiUrl: '',
    apiUrls: [],
    namespace,
    own: true,
    rabbit,
    watched: [],
    jobsSubmitted: 0,
    close() {
      closing ??= (async () => {
        interrupt.abort();
        try {
          await (suite?.stop ?? stopSuite)?.();
        } finally {
          await removeNamespace(namespace, o.amqpUrl, rabbit).then(
            () => o.log(`namespace ${namespace} removed`),
            (err) => o.log(`cleanup of ${namespace} failed: ${(err as Error).message}`),
          );
          openSessions.delete(session);
        }
      })();
      return closing;
    },
  };
  // Registered before the start, so Ctrl-C during start-up still removes what was created.
  openSessions.add(session);
  try {
    suite = await startBenchSuite({
      namespace,
      amqpUrl: o.amqpUrl,
      redisUrl: o.redisUrl,
      services: o.services,
      workers: o.workers,
      replicas: o.replicas,
      fixtureDelayMs: o.fixtureDelayMs,
      workerPrefetch: o.workerPrefetch,
      logLevel: o.logLevel,
      cpuProfDir: o.cpuProfDir,
      fixtures: o.fixtures,
      log: o.log,
      signal: interrupt.signal,
      onStop: (stop) => {
        stopSuite = stop;
      },
    });
  } catch (err) {
    await session.close();
    throw err;
  }
  session.suite = suite;
  session.apiUrl = suite.apiUrl;
  session.apiUrls = suite.apiUrls;
  session.watched = [
    ...suite.processes.map((p): Watched => ({ name: p.name, pid: p.pid, kind: 'service' })),
    ...servers(o.amqpUrl, o.redisUrl),
    { name: 'fixtures', pid: suite.fixtures.pid, kind: 'fixture' },
  ];
  return session;
}

export interface MeasureOptions {
  mode: 'closed' | 'open';
  jobs: number;
  inflight: number;
  rate: number;
  durationMs?: number;
  warmup: number;
  services: ServiceInfo[];
  target: string;
  pollMs: number;
  /** How the client learns a job finished: its event stream (default) or polling. */
  detector: 'sse' | 'poll';
  timeoutMs: number;
  /** Bulk mode (--batch): jobs submitted `size` at a time through POST /api/lookup/batch, `inFlight` batches at a
   *  time, each followed by polling GET /api/lookup/batch/{id} every `pollMs` (closed loop only). */
  batch?: { size: number; inFlight: number; pollMs: number };
  /** 'total': whole-namespace counts / every job submitted (fresh namespace, one measurement); 'delta': settled before/after; 'off'. */
  amqpStats: 'total' | 'delta' | 'off';
  redisStats: boolean;
  redisUrl: string;
  /** Recorded in the result for the reader. */
  config: Record<string, unknown>;
  log: (line: string) => void;
}

export async function measure(session: Session, o: MeasureOptions): Promise<BenchResult> {
  // Enough sockets that no request waits for one: one outstanding request per job at most.
  // (A stream holds its connection for the job's life, a POST needs one more.)
  const connections = o.batch ? Math.max(8, o.batch.inFlight * 2 + 4) : o.mode === 'open' ? Math.max(64, Math.min(2048, Math.ceil(o.rate) * 2)) : Math.max(4, o.inflight * 2 + 4);
  const http = createHttpClient(session.apiUrls, connections);
  const detector = o.detector === 'sse' ? createSseDetector(http) : createPollingDetector(http, o.pollMs);
  const load = { http, detector, target: o.target, services: o.services.map((s) => s.name), timeoutMs: o.timeoutMs };
  try {
    if (o.warmup > 0) {
      o.log(`warm-up: ${o.warmup} jobs`);
      const w = o.batch
        ? await batchLoop({ ...load, jobs: o.warmup, batchSize: o.batch.size, batchesInFlight: o.batch.inFlight, pollMs: o.batch.pollMs })
        : await closedLoop({ ...load, jobs: o.warmup, inflight: Math.min(o.mode === 'open' ? 8 : o.inflight, o.warmup) });
      session.jobsSubmitted += w.records.length;
      const bad = w.records.filter((r) => r.outcome?.state !== 'completed').length;
      if (bad) o.log(`warm-up: ${bad} of ${w.records.length} jobs did not complete`);
    }
    let amqpBefore: AmqpCounts | undefined;
    if (o.amqpStats === 'delta' && session.rabbit) amqpBefore = await session.rabbit.settledCounts(session.namespace);
    const redisBefore = o.redisStats ? await redisCommandStats(o.redisUrl).catch(() => undefined) : undefined;
    const pollsBefore = detector.requests;
    const httpBefore = http.requests;
    const meter = new ProcessMeter(session.watched);
    o.log(
      o.batch
        ? `measuring: ${o.durationMs ? `${o.durationMs / 1000} s` : `${o.jobs} jobs`} in batches of ${o.batch.size}, ${o.batch.inFlight} batches in flight`
        : o.mode === 'open'
        ? `measuring: open loop at ${o.rate} jobs/s, ${o.durationMs ? `${o.durationMs / 1000} s` : `${o.jobs} jobs`}`
        : `measuring: ${o.durationMs ? `${o.durationMs / 1000} s` : `${o.jobs} jobs`}, ${o.inflight} in flight`,
    );
    meter.begin();
    const run: { records: JobRecord[]; wallMs: number; polls?: number } = o.batch
      ? await batchLoop({ ...load, jobs: o.durationMs ? Number.MAX_SAFE_INTEGER : o.jobs, batchSize: o.batch.size, batchesInFlight: o.batch.inFlight, pollMs: o.batch.pollMs, durationMs: o.durationMs })
      : o.mode === 'open'
        ? await openLoop({ ...load, jobs: o.durationMs ? Number.MAX_SAFE_INTEGER : o.jobs, rate: o.rate, durationMs: o.durationMs })
        : await closedLoop({ ...load, jobs: o.durationMs ? Number.MAX_SAFE_INTEGER : o.jobs, inflight: o.inflight, durationMs: o.durationMs });
    const usage = meter.end();
    session.jobsSubmitted += run.records.length;
    if (o.batch) {
      o.log(`checking the results of ${run.records.length} jobs (not measured)`);
      await verifyBatchJobs(http, run.records);
    }
    const redisAfter = redisBefore ? await redisCommandStats(o.redisUrl).catch(() => undefined) : undefined;
    let amqp: { counts: AmqpCounts; jobsCounted: number; source: string } | undefined;
    if (session.rabbit && o.amqpStats !== 'off') {
      o.log('waiting for the RabbitMQ management statistics to settle (about 6 s)');
      const after = await session.rabbit.settledCounts(session.namespace);
      amqp =
        o.amqpStats === 'total'
          ? { counts: after, jobsCounted: session.jobsSubmitted, source: `management API, whole namespace / ${session.jobsSubmitted} jobs incl. warm-up` }
          : { counts: diffCounts(amqpBefore!, after), jobsCounted: run.records.length, source: 'management API, before/after delta' };
    }
    return summarise({
      records: run.records,
      wallMs: run.wallMs,
      usage,
      polls: run.polls ?? detector.requests - pollsBefore,
      httpRequests: http.requests - httpBefore + (run.polls ?? detector.requests - pollsBefore),
      detector: o.batch ? `GET /api/lookup/batch/{id} every ${o.batch.pollMs} ms per batch` : detector.name,
      redis: redisBefore && redisAfter ? commandDelta(redisBefore, redisAfter) : undefined,
      amqp,
      config: o.config,
    });
  } finally {
    await detector.close();
    await http.pool.close().catch(() => undefined);
  }
}
