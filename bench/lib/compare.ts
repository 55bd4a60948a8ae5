import { parseArgs } from 'node:util';
import type { BenchResult } from './measure.ts';
import { lineChart, svgDocument } from './svg.ts';

/** The two sides of `npm run bench:compare`. */
export type Side = 'suite' | 'bullmq';
export const SIDE_LABEL: Record<Side, string> = { suite: 'suite', bullmq: 'BullMQ build' };

export interface CompareOptions {
  /** Measured jobs per run (each side, each in-flight level, each round). */
  jobs: number;
  warmup: number;
  /** A B A B: how many times each side runs. */
  rounds: number;
  /** In-flight levels, each measured in every run (default 64 and 8). */
  inflight: number[];
  /** Where compare.md and compare.svg go; undefined: not written. */
  outDir: string | undefined;
  json: boolean;
  /** First port of the range the peer's API may use (the suite's API takes an ephemeral port). */
  peerPort: number;
}

export const COMPARE_HELP = `Usage: npm run bench:compare -- [options]

Starts the loopback fixtures once, then the suite and the BullMQ build of it (a copy of
/work/shared/peers/bullmq-suite, BULLMQ_PEER_DIR, in os.tmpdir(); npm install there once per package-lock)
in turn, A B A B: each run starts one side, measures it with the same bench client in --url mode at every
in-flight level (with the per-process CPU of that side), and stops it. Prints the ratios and writes
bench/results/compare.md and compare.svg.

  --jobs N          measured jobs per run (default 3000)
  --warmup N        warm-up jobs per run and in-flight level (default 300)
  --rounds R        runs of each side, alternating (default 2)
  --inflight LIST   in-flight levels (default 64,8)
  --peer-port P     the peer API's port (default 25090)
  --tiny            an accounting check: 1 round, 20 jobs, 4 warm-up, 4 in flight, nothing written
  --no-write        print only
  --json            one JSON line with every run
  -h, --help        this text
`;

/** Parses the command line; throws with a message for bad values. `help` when -h was given. */
export function parseCompareArgs(argv: string[], defaultOut: string): CompareOptions | 'help' {
  const { values: a } = parseArgs({
    args: argv,
    options: {
      jobs: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      inflight: { type: 'string' },
      'peer-port': { type: 'string' },
      tiny: { type: 'boolean' },
      'no-write': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (a.help) return 'help';
  const int = (name: string, raw: string | undefined, fallback: number, min: number, max: number) => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} takes a whole number ${min}..${max}, not '${raw}'`);
    return n;
  };
  const inflight = (a.inflight ?? (a.tiny ? '4' : '64,8')).split(',').map((s) => int('inflight', s.trim(), 0, 1, 4096));
  return {
    jobs: int('jobs', a.jobs, a.tiny ? 20 : 3000, 1, 1_000_000),
    warmup: int('warmup', a.warmup, a.tiny ? 4 : 300, 0, 100_000),
    rounds: int('rounds', a.rounds, a.tiny ? 1 : 2, 1, 20),
    inflight,
    outDir: a.tiny || a['no-write'] ? undefined : defaultOut,
    json: a.json ?? false,
    peerPort: int('peer-port', a['peer-port'], 25090, 1024, 65535),
  };
}

/** One measured run of one side at one in-flight level. */
export interface CompareRun {
  side: Side;
  round: number;
  inflight: number;
  result: BenchResult;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Every figure compared, from one run's result. CPU/job counts the side's own processes plus RabbitMQ and Redis. */
export const METRICS: { key: string; label: string; unit: string; higherIsBetter: boolean; of: (r: BenchResult) => number | null }[] = [
  { key: 'jobsPerSec', label: 'jobs/s', unit: '', higherIsBetter: true, of: (r) => r.jobsPerSec },
  { key: 'p50Ms', label: 'p50', unit: ' ms', higherIsBetter: false, of: (r) => r.p50Ms },
  { key: 'p99Ms', label: 'p99', unit: ' ms', higherIsBetter: false, of: (r) => r.p99Ms },
  { key: 'cpuMsPerJob', label: 'CPU/job (processes + RabbitMQ + Redis)', unit: ' ms', higherIsBetter: false, of: (r) => sum(r.cpuMsPerJob, r.serverCpuMsPerJob) },
];

function sum(a: number | null, b: number | null): number | null {
  return a === null && b === null ? null : (a ?? 0) + (b ?? 0);
}

export interface Comparison {
  inflight: number;
  metric: (typeof METRICS)[number];
  suite: number[];
  bullmq: number[];
  /** median(suite) / median(bullmq); null when either side has no figure. */
  ratio: number | null;
}

/** Per in-flight level and metric: every run's figure of each side and the ratio of the medians. */
export function compareRuns(runs: CompareRun[], inflight: number[]): Comparison[] {
  const out: Comparison[] = [];
  for (const k of inflight) {
    for (const metric of METRICS) {
      const of = (side: Side) =>
        runs.filter((r) => r.side === side && r.inflight === k).map((r) => metric.of(r.result)).filter((v): v is number => v !== null && Number.isFinite(v));
      const suite = of('suite');
      const bullmq = of('bullmq');
      const ms = median(suite);
      const mb = median(bullmq);
      out.push({ inflight: k, metric, suite, bullmq, ratio: Number.isFinite(ms) && Number.isFinite(mb) && mb > 0 ? ms / mb : null });
    }
  }
  return out;
}

const round = (n: number) => (Math.abs(n) >= 100 ? Math.round(n) : Math.round(n * 100) / 100);
/** '467-481' (min-max of the runs), or one figure, or 'n/a'. */
export function range(xs: number[], unit = ''): string {
  if (xs.length === 0) return 'n/a';
  const lo = round(Math.min(...xs));
  const hi = round(Math.max(...xs));
  return lo === hi ? `${lo}${unit}` : `${lo}-${hi}${unit}`;
}

/** Whether every run of both sides accounted for every job (none failed or lost). */
export function allAccounted(runs: CompareRun[]): boolean {
  return runs.length > 0 && runs.every((r) => r.result.ok && r.result.completed === r.result.jobs);
}

/** The markdown report: the ratio table, then every run (accounting, machine load, CPU by process). */
export function renderMarkdown(runs: CompareRun[], o: { inflight: number[]; jobs: number; warmup: number; rounds: number; when: string; commit: string }): string {
  const L: string[] = [];
  L.push('# Suite vs the BullMQ build (`npm run bench:compare`)', '');
  L.push(
    `${o.when}, commit ${o.commit}. ${o.rounds} round(s), A B A B (suite, then BullMQ build, each started afresh per run on the ` +
      `same loopback fixtures), ${o.jobs} measured jobs per run after ${o.warmup} warm-up jobs, at ${o.inflight.join(' and ')} in flight; ` +
      'both driven by the same client (`bench --url`, SSE completion), the four services GeoIP, Ping, RDAP, ReverseDNS, target 127.0.0.2. ' +
      'Figures are the range over the runs; the ratio is suite / BullMQ build of the medians (jobs/s: higher is better; the rest: lower is better).',
    '',
  );
  L.push('| | suite | BullMQ build | ratio |', '|---|---|---|---|');
  for (const c of compareRuns(runs, o.inflight)) {
    L.push(`| ${c.inflight} in flight, ${c.metric.label} | ${range(c.suite, c.metric.unit)} | ${range(c.bullmq, c.metric.unit)} | ${c.ratio === null ? 'n/a' : `${c.ratio.toFixed(2)}x`} |`);
  }
  L.push('', allAccounted(runs) ? 'Every job of every run completed (none failed or lost).' : '**NOT every job completed**: see the runs below.', '');
  L.push('## Runs', '');
  L.push('| round | side | in flight | jobs | completed | failed | lost | jobs/s | p50 ms | p99 ms | CPU ms/job by process | RabbitMQ, Redis ms/job | other CPU % of a core |');
  L.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of runs) {
    const x = r.result;
    const procs = Object.entries(x.processes).map(([n, p]) => `${n} ${p.cpuMsPerJob ?? 'n/a'}`).join(', ');
    const srv = Object.entries(x.servers).map(([n, p]) => `${n} ${p.cpuMsPerJob ?? 'n/a'}`).join(', ');
    L.push(`| ${r.round} | ${SIDE_LABEL[r.side]} | ${r.inflight} | ${x.jobs} | ${x.completed} | ${x.failed} | ${x.lost} | ${x.jobsPerSec ?? 'n/a'} | ${x.p50Ms ?? 'n/a'} | ${x.p99Ms ?? 'n/a'} | ${procs} | ${srv} | ${x.otherCpuPct ?? 'n/a'} |`);
  }
  L.push('');
  return L.join('\n');
}

/** Two charts side by side: jobs/s and p50/p99 per in-flight level, suite vs BullMQ build (medians of the runs). */
export function renderSvg(runs: CompareRun[], inflight: number[]): string {
  const levels = [...inflight].sort((a, b) => a - b);
  const med = (side: Side, key: string) =>
    levels.map((k) => {
      const c = compareRuns(runs, [k]).find((x) => x.metric.key === key);
      const v = median(side === 'suite' ? c?.suite ?? [] : c?.bullmq ?? []);
      return Number.isFinite(v) ? v : null;
    });
  const ticks = levels.map(String);
  const thr = lineChart(
    {
      title: 'Throughput',
      xLabel: 'jobs in flight',
      xTicks: ticks,
      leftLabel: 'jobs/s',
      series: [
        { name: 'suite', color: '#1f77b4', values: med('suite', 'jobsPerSec') },
        { name: 'BullMQ build', color: '#d62728', values: med('bullmq', 'jobsPerSec') },
      ],
    },
    0,
    0,
    480,
    340,
  );
  const lat = lineChart(
    {
      title: 'Latency',
      xLabel: 'jobs in flight',
      xTicks: ticks,
      leftLabel: 'ms',
      series: [
        { name: 'suite p50', color: '#1f77b4', values: med('suite', 'p50Ms') },
        { name: 'BullMQ p50', color: '#d62728', values: med('bullmq', 'p50Ms') },
        { name: 'suite p99', color: '#1f77b4', values: med('suite', 'p99Ms'), dashed: true },
        { name: 'BullMQ p99', color: '#d62728', values: med('bullmq', 'p99Ms'), dashed: true },
      ],
    },
    480,
    0,
    480,
    340,
  );
  return svgDocument(960, 340, [thr, lat]);
}
