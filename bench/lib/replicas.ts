import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { ServiceInfo } from '@lookup/contracts';
import type { BenchResult } from './measure.ts';
import { measure, openSession } from './session.ts';
import { lineChart, svgDocument } from './svg.ts';
import { waitForIdle } from './proc.ts';

/** Replica counts of `--replicas-sweep LIST` ('1,2,3'): whole numbers 1..16, ascending, no repeats. */
export function parseReplicaList(list: string): number[] {
  const out = list.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1 || n > 16) throw new Error(`--replicas-sweep takes whole numbers 1..16, got '${s}'`);
    return n;
  });
  if (out.length === 0) throw new Error('--replicas-sweep needs at least one replica count, e.g. 1,2,3');
  return [...new Set(out)].sort((a, b) => a - b);
}

export interface ReplicaSweepOptions {
  amqpUrl: string;
  redisUrl: string;
  logLevel: string;
  cpuProfDir?: string;
  log: (line: string) => void;
  points: number[];
  services: ServiceInfo[];
  /** RDAP fixture delay: the slow lookup. */
  fixtureDelayMs: number;
  /** PREFETCH of the workers: one process's concurrency. */
  workerPrefetch: number;
  inflight: number;
  seconds: number;
  detector: 'sse' | 'poll';
  pollMs: number;
  timeoutMs: number;
  idleWait: number;
}

export interface ReplicaRow {
  replicas: number;
  result: BenchResult;
}

/** What the markdown and the chart say about the setting of a sweep. */
export type ReplicaSetting = Pick<ReplicaSweepOptions, 'services' | 'fixtureDelayMs' | 'workerPrefetch' | 'inflight' | 'seconds'>;

const RESULTS_DIR = new URL('../results/', import.meta.url).pathname;

/** The ceiling if the slow lookup were the only limit: replicas x prefetch jobs every fixture delay. */
export function lookupBound(replicas: number, s: Pick<ReplicaSetting, 'workerPrefetch' | 'fixtureDelayMs'>): number | null {
  return s.fixtureDelayMs > 0 ? Math.round((replicas * s.workerPrefetch * 1000) / s.fixtureDelayMs) : null;
}

/** One suite per point with N APIs, N sagas and N of each worker; writes bench/results/replicas.md, .svg, .json. */
export async function runReplicaSweep(o: ReplicaSweepOptions): Promise<boolean> {
  const rows: ReplicaRow[] = [];
  for (const n of o.points) {
    o.log(`replicas sweep: ${n} of every process type; ${o.services.map((s) => s.name).join(',')}, fixture delay ${o.fixtureDelayMs} ms, worker prefetch ${o.workerPrefetch}, ${o.inflight} in flight`);
    const session = await openSession({ ...o, workers: n, replicas: n });
    try {
      if (o.idleWait > 0) await waitForIdle(o.idleWait, 25, o.log);
      const result = await measure(session, {
        mode: 'closed',
        jobs: Number.MAX_SAFE_INTEGER,
        inflight: o.inflight,
        rate: 0,
        durationMs: o.seconds * 1000,
        warmup: Math.min(300, o.inflight * 4),
        services: o.services,
        target: '127.0.0.2',
        pollMs: o.pollMs,
        detector: o.detector,
        timeoutMs: o.timeoutMs,
        amqpStats: 'off',
        redisStats: false,
        redisUrl: o.redisUrl,
        config: { mode: 'closed', inflight: o.inflight, replicas: n, workers: n, workerPrefetch: o.workerPrefetch, fixtureDelayMs: o.fixtureDelayMs, durationS: o.seconds },
        log: o.log,
      });
      o.log(`  ${n} replica(s): ${result.jobsPerSec} jobs/s, p50 ${result.p50Ms} ms, other CPU ${result.otherCpuPct} %${result.ok ? '' : ` NOT OK: ${result.problem}`}`);
      rows.push({ replicas: n, result });
    } finally {
      await session.close();
    }
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(`${RESULTS_DIR}replicas.json`, `${JSON.stringify(rows, null, 1)}\n`);
  writeFileSync(`${RESULTS_DIR}replicas.md`, replicasMarkdown(rows, o));
  writeFileSync(`${RESULTS_DIR}replicas.svg`, replicasSvg(rows, o));
  const bad = rows.filter((r) => !r.result.ok).length;
  process.stdout.write(`${bad ? `NOT OK: ${bad} point(s) had lost or failed jobs` : 'OK: every job of every point completed'}\nwrote ${RESULTS_DIR}replicas.md, replicas.svg, replicas.json\n`);
  return bad === 0;
}

const v = (n: number | null | undefined) => (n === null || n === undefined ? 'n/a' : String(n));

/** The process types in the order the suite starts them (api, saga, workers). */
function types(rows: ReplicaRow[]): string[] {
  return [...new Set(rows.flatMap((r) => Object.keys(r.result.cpuByType)))];
}

/** The table alone (README embeds it). */
export function replicasTable(rows: ReplicaRow[], s: ReplicaSetting): string {
  const t = types(rows);
  const L = [
    `| replicas | lookup bound jobs/s | jobs/s | p50 ms | p99 ms | ${t.map((x) => `${x} CPU %`).join(' | ')} | CPU ms/job (services) | machine busy % | other CPU % | completed | failed | lost |`,
    `|${'---:|'.repeat(11 + t.length)}`,
  ];
  for (const r of rows) {
    const x = r.result;
    L.push(
      `| ${r.replicas} | ${v(lookupBound(r.replicas, s))} | ${v(x.jobsPerSec)} | ${v(x.p50Ms)} | ${v(x.p99Ms)} | ${t.map((k) => v(x.cpuByType[k]?.cpuPct)).join(' | ')} | ${v(x.cpuMsPerJob)} | ${v(x.machineCpuPct)} | ${v(x.otherCpuPct)} | ${x.completed} | ${x.failed} | ${x.lost} |`,
    );
  }
  return L.join('\n');
}

export function replicasMarkdown(rows: ReplicaRow[], s: ReplicaSetting): string {
  const date = new Date().toISOString().slice(0, 16).replace('T', ' ');
  return [
    '# Benchmark: scaling out (replicas of every process type)',
    '',
    `Generated by \`npm run bench -- --replicas-sweep ${rows.map((r) => r.replicas).join(',')} --services ${s.services.map((x) => x.slug).join(',')} ` +
      `--fixture-delay ${s.fixtureDelayMs} --worker-prefetch ${s.workerPrefetch} --inflight ${s.inflight} --sweep-seconds ${s.seconds}\` on ${date} UTC: ` +
      `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}; everything on this one machine. ` +
      `Each point is a fresh suite with N API processes (the client sends its requests to their ports in turn), N sagas and N ` +
      `processes of each worker type; ${s.seconds} s of closed-loop load after a warm-up. The RDAP fixture answers after ` +
      `${s.fixtureDelayMs} ms and each worker runs at most ${s.workerPrefetch} lookups at once (PREFETCH), so one process's ` +
      `concurrency is the limit: "lookup bound" is N x ${s.workerPrefetch} / ${s.fixtureDelayMs} ms. ` +
      `"<type> CPU %" is the CPU of all replicas of that type summed, in % of one core; other CPU % is work of processes ` +
      'outside the suite and the bench (the machine is shared): a high figure means that row is understated.',
    '',
    replicasTable(rows, s),
    '',
    '![replicas chart](replicas.svg)',
    '',
  ].join('\n');
}

export function replicasSvg(rows: ReplicaRow[], s: ReplicaSetting): string {
  const chart = lineChart(
    {
      title: `${s.services.map((x) => x.name).join(', ')}: ${s.fixtureDelayMs} ms lookup, worker prefetch ${s.workerPrefetch}`,
      xLabel: `replicas of every process type (${s.inflight} jobs in flight)`,
      xTicks: rows.map((r) => String(r.replicas)),
      leftLabel: 'jobs/s',
      rightLabel: 'p50 ms',
      series: [
        { name: 'jobs/s', color: '#1f77b4', values: rows.map((r) => r.result.jobsPerSec) },
        { name: 'lookup bound', color: '#1f77b4', values: rows.map((r) => lookupBound(r.replicas, s)), dashed: true },
        { name: 'p50 ms', color: '#2ca02c', values: rows.map((r) => r.result.p50Ms), axis: 'right', dashed: true },
      ],
    },
    0,
    0,
    620,
    360,
  );
  return svgDocument(620, 360, [chart]);
}
