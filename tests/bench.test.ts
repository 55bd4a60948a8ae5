import { execFile } from 'node:child_process';
import amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import { SERVICE_CATALOGUE } from '@lookup/contracts';
import { parseServiceList } from '../bench/lib/suite.ts';
import { AMQP_URL, REDIS_URL, REPO_ROOT } from './support/env.ts';

function runNode(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { cwd: REPO_ROOT, env: { ...process.env, AMQP_URL, REDIS_URL }, timeout: 150_000, maxBuffer: 10 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

// Keeps `npm run bench` working: a tiny run, as a child process, checked for its accounting only.
// A benchmark is not a test: no assertion here is about speed.
describe('npm run bench', () => {
  it("requests the BullMQ peer's four services by default (like-for-like), every catalogue service with 'all'", () => {
    expect(parseServiceList(undefined).map((s) => s.name)).toEqual(['GeoIP', 'Ping', 'RDAP', 'ReverseDNS']);
    expect(parseServiceList('all')).toEqual(SERVICE_CATALOGUE);
    expect(parseServiceList('rdap,0').map((s) => s.name)).toEqual(['GeoIP', 'RDAP']);
  });

  it('runs a tiny bench and accounts for every job in one JSON line', async () => {
    const { code, stdout, stderr } = await runNode(['--import', 'tsx', 'bench/run.ts', '--jobs', '20', '--inflight', '4', '--warmup', '4', '--json']);
    const lines = stdout.split('\n').filter(Boolean);
    expect(lines, stderr).toHaveLength(1);
    const result = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(Object.keys(result)[0]).toBe('ok');
    expect(result, stderr).toMatchObject({ ok: true, problem: null, jobs: 20, completed: 20, failed: 0, lost: 0 });
    for (const key of ['jobsPerSec', 'p50Ms', 'p95Ms', 'p99Ms', 'maxMs', 'cpuMsPerJob', 'redisCommandsPerJob']) {
      expect(typeof result[key], key).toBe('number');
    }
    expect(Object.keys(result.peakRssMb as object)).toEqual(expect.arrayContaining(['api', 'saga', 'geoip', 'ping', 'rdap', 'reverse-dns']));
    expect(code).toBe(0);
    // The run removed its namespace: its last progress line says so.
    expect(stderr).toMatch(/namespace bench-[0-9a-f]+ removed/);
  });

  it('runs two replicas of every process type (--replicas 2), measures each and sums their CPU per type', async () => {
    const args = ['--import', 'tsx', 'bench/run.ts', '--replicas', '2', '--jobs', '20', '--inflight', '4', '--warmup', '4', '--services', 'GeoIP', '--json'];
    const { code, stdout, stderr } = await runNode(args);
    const lines = stdout.split('\n').filter(Boolean);
    expect(lines, stderr).toHaveLength(1);
    const result = JSON.parse(lines[0]!) as { cpuByType: Record<string, { processes: number }>; processes: Record<string, unknown> } & Record<string, unknown>;
    expect(result, stderr).toMatchObject({ ok: true, jobs: 20, completed: 20, failed: 0, lost: 0, config: { replicas: 2, workers: 2 } });
    expect(Object.keys(result.processes).sort()).toEqual(['api#1', 'api#2', 'geoip#1', 'geoip#2', 'saga#1', 'saga#2']);
    expect(result.cpuByType).toMatchObject({ api: { processes: 2 }, saga: { processes: 2 }, geoip: { processes: 2 } });
    expect(code).toBe(0);
    expect(stderr).toMatch(/namespace bench-[0-9a-f]+ removed/);
  });

  it('runs a tiny bulk bench (--batch) and accounts for every job', async () => {
    const args = ['--import', 'tsx', 'bench/run.ts', '--batch', '10', '--jobs', '25', '--warmup', '0', '--services', 'GeoIP', '--json'];
    const { code, stdout, stderr } = await runNode(args);
    const lines = stdout.split('\n').filter(Boolean);
    expect(lines, stderr).toHaveLength(1);
    const result = JSON.parse(lines[0]!) as { config: Record<string, unknown> } & Record<string, unknown>;
    expect(result, stderr).toMatchObject({ ok: true, problem: null, jobs: 25, completed: 25, failed: 0, lost: 0 });
    expect(result.config).toMatchObject({ batch: 10, batchesInFlight: 4 });
    expect(typeof result.jobsPerSec).toBe('number');
    expect(code).toBe(0);
    expect(stderr).toMatch(/namespace bench-[0-9a-f]+ removed/);
  });
});

describe('npm run bench:floor', () => {
  it('runs a tiny transport-floor run with Redis writes, accounts for every job and removes its namespace', async () => {
    const { code, stdout, stderr } = await runNode(['--import', 'tsx', 'bench/floor.ts', '--jobs', '20', '--inflight', '4', '--warmup', '4', '--store', '--json']);
    const lines = stdout.split('\n').filter(Boolean);
    expect(lines, stderr).toHaveLength(1);
    const result = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(result, stderr).toMatchObject({ ok: true, jobs: 20, lost: 0, inflight: 4, store: true });
    for (const key of ['jobsPerSec', 'p50Ms', 'p99Ms']) expect(typeof result[key], key).toBe('number');
    expect(Object.keys(result.cpuMsPerJob as object)).toEqual(expect.arrayContaining(['total', 'saga', 'geoip', 'ping', 'rdap', 'reverse-dns', 'driver']));
    expect(code).toBe(0);
    const ns = /namespace (floor-[0-9a-f]+) removed/.exec(stderr)?.[1];
    expect(ns, stderr).toBeDefined();
    // The queues are really gone: checkQueue on a missing queue closes the channel with 404.
    const conn = await amqp.connect(AMQP_URL);
    try {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      await expect(ch.checkQueue(`${ns}.saga`)).rejects.toThrow(/404|NOT_FOUND/);
    } finally {
      await conn.close().catch(() => {});
    }
  });
});
