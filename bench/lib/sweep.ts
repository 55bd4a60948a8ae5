import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { ServiceType, serviceInfo } from '@lookup/contracts';
import type { BenchResult } from './measure.ts';
import { measure, openSession } from './session.ts';
import { PEER_SERVICES } from './suite.ts';
import { lineChart, svgDocument } from './svg.ts';
import { waitForIdle } from './proc.ts';

export interface SweepOptions {
  amqpUrl: string;
  redisUrl: string;
  logLevel: string;
  cpuProfDir?: string;
  log: (line: string) => void;
  /** Measuring time per point. */
  seconds: number;
  pollMs: number;
  detector: 'sse' | 'poll';
  timeoutMs: number;
  /** Before each point, wait up to this many seconds for the machine to be quiet. */
  idleWait: number;
}

export const INFLIGHT_POINTS = [1, 8, 64, 256];
export const REPLICA_POINTS = [1, 2, 4];
export const REPLICA_PREFETCH = [4, 64];
const REPLICA_INFLIGHT = 256;
const SLOW_LOOKUP_MS = 50;

interface Row {
  sweep: 'inflight' | 'replicas';
  inflight: number;
  workers: number;
  workerPrefetch: number | null;
  result: BenchResult;
}

const RESULTS_DIR = new URL('../results/', import.meta.url).pathname;

export async function runSweep(o: SweepOptions): Promise<void> {
  const rows: Row[] = [];
  const all = [...PEER_SERVICES]; // like-for-like with the BullMQ peer
  const base = { amqpUrl: o.amqpUrl, redisUrl: o.redisUrl, logLevel: o.logLevel, cpuProfDir: o.cpuProfDir, log: o.log };
  const point = async (session: Parameters<typeof measure>[0], services: typeof all, inflight: number, warmup: number, config: Record<string, unknown>) => {
    if (o.idleWait > 0) await waitForIdle(o.idleWait, 25, o.log);
    return measure(session, {
      mode: 'closed',
      jobs: Number.MAX_SAFE_INTEGER,
      inflight,
      rate: 0,
      durationMs: o.seconds * 1000,
      warmup,
      services,
      target: '127.0.0.2',
      pollMs: o.pollMs,
      detector: o.detector,
      timeoutMs: o.timeoutMs,
      amqpStats: 'off',
      redisStats: true,
      redisUrl: o.redisUrl,
      config: { mode: 'closed', inflight, services: services.map((s) => s.name).join(','), durationS: o.seconds, warmup, ...config },
      log: o.log,
    });
  };

  // 1. Throughput and latency against jobs in flight: all four services, one process each, fast fixtures.
  o.log(`sweep 1/2: in flight ${INFLIGHT_POINTS.join(', ')}; all services; ${o.seconds} s per point`);
  const s1 = await openSession({ ...base, services: all, workers: 1, fixtureDelayMs: 0 });
  try {
    for (const k of INFLIGHT_POINTS) {
      const result = await point(s1, all, k, Math.max(20, Math.min(300, k * 10)), { workers: 1, fixtureDelayMs: 0 });
      o.log(`  in flight ${k}: ${result.jobsPerSec} jobs/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms${result.ok ? '' : ` NOT OK: ${result.problem}`}`);
      rows.push({ sweep: 'inflight', inflight: k, workers: 1, workerPrefetch: null, result });
    }
  } finally {
    await s1.close();
  }

  // 2. Against worker replicas: RDAP-only jobs and an RDAP fixture that answers after 50 ms, so the lookup is
  // the bottleneck. The worker kit runs up to PREFETCH commands at once per process, so one process at the
  // default prefetch (64) already overlaps 64 slow lookups; prefetch 4 shows what replicas add when one
  // process's concurrency is the limit.
  const rdapOnly = [serviceInfo(ServiceType.RDAP)];
  for (const prefetch of REPLICA_PREFETCH) {
    for (const w of REPLICA_POINTS) {
      o.log(`sweep 2/2: ${w} RDAP worker(s) at prefetch ${prefetch}, fixture delay ${SLOW_LOOKUP_MS} ms, ${REPLICA_INFLIGHT} in flight`);
      const s = await openSession({ ...base, services: rdapOnly, workers: w, fixtureDelayMs: SLOW_LOOKUP_MS, workerPrefetch: prefetch });
      try {
        const result = await point(s, rdapOnly, REPLICA_INFLIGHT, 300, { workers: w, workerPrefetch: prefetch, fixtureDelayMs: SLOW_LOOKUP_MS });
        o.log(`  ${w} worker(s): ${result.jobsPerSec} jobs/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms${result.ok ? '' : ` NOT OK: ${result.problem}`}`);
        rows.push({ sweep: 'replicas', inflight: REPLICA_INFLIGHT, workers: w, workerPrefetch: prefetch, result });
      } finally {
        await s.close();
      }
    }
  }

  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(`${RESULTS_DIR}sweep.json`, `${JSON.stringify(rows, null, 1)}\n`);
  writeFileSync(`${RESULTS_DIR}sweep.md`, sweepMarkdown(rows, o.seconds, o.detector === 'poll' ? `polling GET /api/lookup/{id} every ${o.pollMs} ms per job (the polls are load the suite serves too)` : undefined));
  writeFileSync(`${RESULTS_DIR}sweep.svg`, sweepSvg(rows));
  const bad = rows.filter((r) => !r.result.ok);
  process.stdout.write(
    `${bad.length ? `NOT OK: ${bad.length} sweep point(s) had lost or failed jobs` : 'OK: every job of every sweep point completed'}\n` +
      `wrote ${RESULTS_DIR}sweep.md, sweep.svg, sweep.json\n`,
  );
}

const v = (n: number | null | undefined) => (n === null || n === undefined ? 'n/a' : String(n));

export function sweepMarkdown(rows: Row[], seconds: number, detector = 'the job event stream (GET /api/lookup/{id}/events)'): string {
  const L: string[] = [];
  const date = new Date().toISOString().slice(0, 16).replace('T', ' ');
  L.push('# Benchmark sweep', '');
  L.push(
    `Generated by \`npm run bench -- --sweep\` on ${date} UTC: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), ` +
      `Node ${process.version}; every service process, RabbitMQ, Redis, the fixtures and the client on this one machine. ` +
      `${seconds} s of closed-loop load per point after a warm-up. Latency is what a client sees: POST /api/lookup to the ` +
      `moment it learns the job is Completed, through ${detector}. ` +
      `CPU ms/job: all service processes and their descendants (with PING_ENGINE=system, the Ping worker's launcher shell and its pings); the RDAP and DNS fixtures run in their own process, counted apart; other CPU: processes outside the suite and the bench (noise).`,
    '',
  );
  L.push('## Jobs in flight (all four services, one process per worker type, instant fixtures)', '');
  L.push('| in flight | jobs/s | p50 ms | p95 ms | p99 ms | max ms | CPU ms/job (services) | CPU ms/job (RabbitMQ+Redis) | client CPU % | machine busy % | other CPU % | completed | failed | lost |');
  L.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows.filter((x) => x.sweep === 'inflight')) {
    const x = r.result;
    L.push(
      `| ${r.inflight} | ${v(x.jobsPerSec)} | ${v(x.p50Ms)} | ${v(x.p95Ms)} | ${v(x.p99Ms)} | ${v(x.maxMs)} | ${v(x.cpuMsPerJob)} | ${v(x.serverCpuMsPerJob)} | ${v(x.client.cpuPct)} | ${v(x.machineCpuPct)} | ${v(x.otherCpuPct)} | ${x.completed} | ${x.failed} | ${x.lost} |`,
    );
  }
  L.push('');
  L.push(`## Worker replicas (RDAP only, fixture answers after ${SLOW_LOOKUP_MS} ms, ${REPLICA_INFLIGHT} in flight)`, '');
  L.push(
    'The worker kit runs up to PREFETCH commands concurrently per process (one consumer, prefetch = concurrency). ' +
      `"Lookup bound" is replicas x prefetch / ${SLOW_LOOKUP_MS} ms: the ceiling if the slow lookup were the only limit.`,
    '',
  );
  L.push('| worker prefetch | replicas | lookup bound jobs/s | jobs/s | p50 ms | p95 ms | p99 ms | CPU ms/job (services) | machine busy % | other CPU % | completed | failed | lost |');
  L.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows.filter((x) => x.sweep === 'replicas')) {
    const x = r.result;
    const bound = Math.round(((r.workerPrefetch ?? 64) * r.workers * 1000) / SLOW_LOOKUP_MS);
    L.push(
      `| ${v(r.workerPrefetch)} | ${r.workers} | ${bound} | ${v(x.jobsPerSec)} | ${v(x.p50Ms)} | ${v(x.p95Ms)} | ${v(x.p99Ms)} | ${v(x.cpuMsPerJob)} | ${v(x.machineCpuPct)} | ${v(x.otherCpuPct)} | ${x.completed} | ${x.failed} | ${x.lost} |`,
    );
  }
  L.push(
    '',
    'Rows whose "other CPU %" is above about 20 % were measured while unrelated work ran on this shared machine: ' +
      'their throughput is understated; rerun them (`--idle-wait` waits for a quiet machine before each point).',
  );
  L.push('', '![sweep chart](sweep.svg)', '');
  return L.join('\n');
}

export function sweepSvg(rows: Row[]): string {
  const inflight = rows.filter((r) => r.sweep === 'inflight');
  const charts: string[] = [];
  charts.push(
    lineChart(
      {
        title: 'All four services: jobs in flight',
        xLabel: 'jobs in flight (closed loop)',
        xTicks: inflight.map((r) => String(r.inflight)),
        leftLabel: 'jobs/s',
        rightLabel: 'latency ms',
        series: [
          { name: 'jobs/s', color: '#1f77b4', values: inflight.map((r) => r.result.jobsPerSec) },
          { name: 'p50 ms', color: '#2ca02c', values: inflight.map((r) => r.result.p50Ms), axis: 'right', dashed: true },
          { name: 'p99 ms', color: '#d62728', values: inflight.map((r) => r.result.p99Ms), axis: 'right', dashed: true },
        ],
      },
      0,
      0,
      520,
      360,
    ),
  );
  const colors = ['#9467bd', '#ff7f0e', '#8c564b'];
  const series = REPLICA_PREFETCH.flatMap((p, i) => {
    const rs = REPLICA_POINTS.map((w) => rows.find((r) => r.sweep === 'replicas' && r.workers === w && r.workerPrefetch === p));
    return [
      { name: `jobs/s, prefetch ${p}`, color: colors[i % colors.length]!, values: rs.map((r) => r?.result.jobsPerSec ?? null) },
      ...(p * Math.max(...REPLICA_POINTS) * (1000 / SLOW_LOOKUP_MS) < 2000
        ? [{ name: `lookup bound, prefetch ${p}`, color: colors[i % colors.length]!, values: REPLICA_POINTS.map((w) => (p * w * 1000) / SLOW_LOOKUP_MS), dashed: true }]
        : []),
    ];
  });
  charts.push(
    lineChart(
      {
        title: `RDAP only, ${SLOW_LOOKUP_MS} ms lookup: worker replicas`,
        xLabel: `RDAP worker processes (${REPLICA_INFLIGHT} jobs in flight)`,
        xTicks: REPLICA_POINTS.map(String),
        leftLabel: 'jobs/s',
        series,
      },
      540,
      0,
      520,
      360,
    ),
  );
  return svgDocument(1060, 360, charts);
}
