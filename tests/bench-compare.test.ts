import { describe, expect, it } from 'vitest';
import { allAccounted, compareRuns, parseCompareArgs, range, renderMarkdown, renderSvg, type CompareRun } from '../bench/lib/compare.ts';
import { parseReadyLine } from '../bench/lib/peer.ts';
import type { BenchResult } from '../bench/lib/measure.ts';

// bench:compare needs the BullMQ peer installed (npm install, minutes on a cold cache), so its pieces are tested
// here: argument parsing, the ratios, the markdown and the chart. No figure here is a measurement.

function result(o: Partial<BenchResult>): BenchResult {
  return {
    ok: true,
    problem: null,
    jobs: 100,
    completed: 100,
    failed: 0,
    lost: 0,
    jobsPerSec: 100,
    p50Ms: 10,
    p95Ms: 20,
    p99Ms: 30,
    maxMs: 40,
    meanMs: 12,
    submitP50Ms: 1,
    submitP99Ms: 2,
    cpuMsPerJob: 3,
    serverCpuMsPerJob: 1,
    peakRssMb: {},
    processes: { api: { cpuMsPerJob: 0.7, childCpuMsPerJob: 0, cpuPct: 10, peakRssMb: 80, hwmMb: 90 } },
    cpuByType: { api: { processes: 1, cpuMsPerJob: 0.7, cpuPct: 10 } },
    servers: { redis: { cpuMsPerJob: 0.2, cpuPct: 5, peakRssMb: 10 } },
    client: { cpuMsPerJob: 0.3, cpuPct: 3, peakRssMb: 60, httpRequestsPerJob: 2 },
    fixtures: null,
    machineCpuPct: 90,
    otherCpuPct: 12.5,
    messagesPerJob: null,
    messages: null,
    redisCommandsPerJob: 30,
    redisTopCommands: {},
    detector: 'sse',
    pollsPerJob: 0,
    config: {},
    wallMs: 1000,
    failureReasons: {},
    ...o,
  };
}

const runs: CompareRun[] = [
  { side: 'suite', round: 1, inflight: 64, result: result({ jobsPerSec: 600, p50Ms: 90, p99Ms: 200, cpuMsPerJob: 3, serverCpuMsPerJob: 1.5 }) },
  { side: 'bullmq', round: 1, inflight: 64, result: result({ jobsPerSec: 500, p50Ms: 100, p99Ms: 250, cpuMsPerJob: 4, serverCpuMsPerJob: 1 }) },
  { side: 'suite', round: 2, inflight: 64, result: result({ jobsPerSec: 700, p50Ms: 80, p99Ms: 180, cpuMsPerJob: 3, serverCpuMsPerJob: 1.5 }) },
  { side: 'bullmq', round: 2, inflight: 64, result: result({ jobsPerSec: 540, p50Ms: 100, p99Ms: 270, cpuMsPerJob: 4, serverCpuMsPerJob: 1 }) },
];

describe('bench:compare arguments', () => {
  it('defaults to 64 and 8 in flight, two rounds, writing to the results folder', () => {
    expect(parseCompareArgs([], '/out')).toEqual({ jobs: 3000, warmup: 300, rounds: 2, inflight: [64, 8], outDir: '/out', json: false, peerPort: 25090 });
  });

  it('has a tiny accounting mode that writes nothing, and takes explicit values', () => {
    expect(parseCompareArgs(['--tiny'], '/out')).toMatchObject({ jobs: 20, warmup: 4, rounds: 1, inflight: [4], outDir: undefined });
    expect(parseCompareArgs(['--jobs', '500', '--rounds', '3', '--inflight', '16, 2', '--no-write'], '/out')).toMatchObject({ jobs: 500, rounds: 3, inflight: [16, 2], outDir: undefined });
    expect(parseCompareArgs(['-h'], '/out')).toBe('help');
  });

  it('refuses bad values with the option named', () => {
    expect(() => parseCompareArgs(['--jobs', '0'], '/out')).toThrow(/--jobs takes a whole number/);
    expect(() => parseCompareArgs(['--inflight', '64,x'], '/out')).toThrow(/--inflight/);
    expect(() => parseCompareArgs(['--rounds', '1.5'], '/out')).toThrow(/--rounds/);
    expect(() => parseCompareArgs(['--bogus'], '/out')).toThrow();
  });
});

describe('bench:compare figures', () => {
  it('gives each metric the range of every run and the ratio of the medians (suite / BullMQ build)', () => {
    const c = compareRuns(runs, [64]);
    const by = (key: string) => c.find((x) => x.metric.key === key)!;
    expect(by('jobsPerSec')).toMatchObject({ suite: [600, 700], bullmq: [500, 540] });
    expect(by('jobsPerSec').ratio).toBeCloseTo(650 / 520, 6);
    expect(by('p99Ms').ratio).toBeCloseTo(190 / 260, 6);
    // CPU per job counts the side's processes and the servers.
    expect(by('cpuMsPerJob')).toMatchObject({ suite: [4.5, 4.5], bullmq: [5, 5] });
    expect(range([600, 700])).toBe('600-700');
    expect(range([4.5, 4.5], ' ms')).toBe('4.5 ms');
    expect(range([])).toBe('n/a');
  });

  it('has no ratio for a level one side did not run', () => {
    const c = compareRuns(runs.filter((r) => r.side === 'suite'), [64]);
    expect(c.every((x) => x.ratio === null)).toBe(true);
  });

  it('accounts for every job: a run with a lost or failed job fails the comparison', () => {
    expect(allAccounted(runs)).toBe(true);
    expect(allAccounted([...runs, { ...runs[0]!, result: result({ ok: false, lost: 1, completed: 99, problem: '1 lost of 100 jobs' }) }])).toBe(false);
    expect(allAccounted([])).toBe(false);
  });

  it('renders the markdown table, every run with its machine load, and an SVG chart', () => {
    const md = renderMarkdown(runs, { inflight: [64], jobs: 100, warmup: 10, rounds: 2, when: '2026-12-01 10:00 UTC', commit: 'abc1234' });
    expect(md).toContain('| | suite | BullMQ build | ratio |');
    expect(md).toContain('| 64 in flight, jobs/s | 600-700 | 500-540 | 1.25x |');
    expect(md).toContain('Every job of every run completed');
    expect(md.split('\n').filter((l) => /^\| [12] \| (suite|BullMQ build) \|/.test(l))).toHaveLength(4);
    expect(md).toContain('| 12.5 |');
    const svg = renderSvg(runs, [64]);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('BullMQ build');
  });

  it("reads the peer's ready line (its url and the pid of each role)", () => {
    expect(parseReadyLine('PEER ready http://127.0.0.1:25090 {"api":11,"lookup":12,"geoip":13}')).toEqual({ apiUrl: 'http://127.0.0.1:25090', roles: { api: 11, lookup: 12, geoip: 13 } });
    expect(parseReadyLine('[peer-bullmq] deleted 0 keys under peerbq:*')).toBeUndefined();
  });
});
