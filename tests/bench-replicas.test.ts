import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { serviceInfo, ServiceType } from '@lookup/contracts';
import { createHttpClient } from '../bench/lib/client.ts';
import { cpuByType, processType, type BenchResult } from '../bench/lib/measure.ts';
import type { ProcessUsage } from '../bench/lib/proc.ts';
import { lookupBound, parseReplicaList, replicasMarkdown, replicasSvg, type ReplicaRow, type ReplicaSetting } from '../bench/lib/replicas.ts';
import { replicaName } from '../bench/lib/suite.ts';

// The replicas sweep's pieces: argument parsing, per-type CPU, round-robin over API replicas and the rendering.
// No figure here is a measurement.

const setting: ReplicaSetting = { services: [serviceInfo(ServiceType.RDAP)], fixtureDelayMs: 100, workerPrefetch: 4, inflight: 64, seconds: 10 };

function row(replicas: number, jobsPerSec: number): ReplicaRow {
  const result = {
    ok: true,
    problem: null,
    completed: 10 * jobsPerSec,
    failed: 0,
    lost: 0,
    jobsPerSec,
    p50Ms: 120 + replicas,
    p99Ms: 300 + replicas,
    cpuMsPerJob: 4.5,
    machineCpuPct: 60,
    otherCpuPct: 33.3,
    cpuByType: {
      api: { processes: replicas, cpuMsPerJob: 1, cpuPct: 11.5 * replicas },
      saga: { processes: replicas, cpuMsPerJob: 1, cpuPct: 7.25 * replicas },
      rdap: { processes: replicas, cpuMsPerJob: 1, cpuPct: 9.75 * replicas },
    },
  } as Partial<BenchResult> as BenchResult;
  return { replicas, result };
}

describe('bench --replicas-sweep', () => {
  it('parses the replica counts: whole numbers 1..16, sorted, no repeats; anything else is refused', () => {
    expect(parseReplicaList('3, 1,2,2')).toEqual([1, 2, 3]);
    expect(parseReplicaList('4')).toEqual([4]);
    for (const bad of ['', ',', '0', '1,x', '2.5', '17', '-1']) expect(() => parseReplicaList(bad), bad).toThrow(/replica/);
  });

  it('names replicas by type and sums CPU per process type, children included', () => {
    expect([replicaName('api', 1, 1), replicaName('saga', 2, 3)]).toEqual(['api', 'saga#2']);
    expect([processType('rdap#3'), processType('reverse-dns')]).toEqual(['rdap', 'reverse-dns']);
    const usage = (name: string, cpuMs: number, childCpuMs: number) => ({ name, kind: 'service', cpuMs, childCpuMs }) as ProcessUsage;
    const byType = cpuByType([usage('api#1', 100, 0), usage('api#2', 50, 0), usage('saga', 30, 0), usage('ping#1', 10, 5), usage('ping#2', 20, NaN)]);
    expect([...byType]).toEqual([
      ['api', { processes: 2, cpuMs: 150 }],
      ['saga', { processes: 1, cpuMs: 30 }],
      ['ping', { processes: 2, cpuMs: 35 }],
    ]);
  });

  it('renders the table (per-type CPU columns, lookup bound) and the chart', () => {
    expect(lookupBound(3, setting)).toBe(120);
    expect(lookupBound(3, { ...setting, fixtureDelayMs: 0 })).toBeNull();
    const rows = [row(1, 38.5), row(2, 76.25)];
    const md = replicasMarkdown(rows, setting);
    expect(md).toContain('--replicas-sweep 1,2 --services rdap --fixture-delay 100 --worker-prefetch 4 --inflight 64 --sweep-seconds 10');
    expect(md).toContain('| replicas | lookup bound jobs/s | jobs/s | p50 ms | p99 ms | api CPU % | saga CPU % | rdap CPU % |');
    expect(md).toContain('| 1 | 40 | 38.5 | 121 | 301 | 11.5 | 7.25 | 9.75 | 4.5 | 60 | 33.3 | 385 | 0 | 0 |');
    expect(md).toContain('| 2 | 80 | 76.25 | 122 | 302 | 23 | 14.5 | 19.5 |');
    expect(md).toContain('![replicas chart](replicas.svg)');
    const svg = replicasSvg(rows, setting);
    expect(svg.startsWith('<svg')).toBe(true);
    for (const text of ['RDAP: 100 ms lookup, worker prefetch 4', 'lookup bound', 'replicas of every process type (64 jobs in flight)']) expect(svg).toContain(text);
  });
});

describe('the bench client with several API replicas', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  it('sends its requests to the replicas in turn', async () => {
    const hits: number[] = [];
    const urls: string[] = [];
    for (let i = 0; i < 3; i++) {
      const srv = createServer((_req, res) => {
        hits.push(i);
        res.end(String(i));
      });
      servers.push(srv);
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      urls.push(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`);
    }
    const http = createHttpClient(urls, 6);
    try {
      const bodies: string[] = [];
      for (let k = 0; k < 6; k++) {
        const res = await http.pool.request({ path: '/health/ready', method: 'GET' });
        bodies.push(await res.body.text());
      }
      expect(bodies).toEqual(['0', '1', '2', '0', '1', '2']);
      expect(hits).toEqual([0, 1, 2, 0, 1, 2]);
    } finally {
      await http.pool.close();
    }
  });
});
