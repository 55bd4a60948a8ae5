import type { JobRecord } from './client.ts';
import type { ProcessUsage } from './proc.ts';
import type { AmqpCounts } from './servers.ts';

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

/** The process type of a replica's name: 'rdap#3' -> 'rdap'. */
export function processType(name: string): string {
  return name.split('#')[0]!;
}

/** Service processes' CPU (children included) summed per process type, in insertion order. */
export function cpuByType(services: ProcessUsage[]): Map<string, { processes: number; cpuMs: number }> {
  const out = new Map<string, { processes: number; cpuMs: number }>();
  for (const p of services) {
    const t = out.get(processType(p.name)) ?? { processes: 0, cpuMs: 0 };
    t.processes++;
    t.cpuMs += p.cpuMs + (Number.isFinite(p.childCpuMs) ? p.childCpuMs : 0);
    out.set(processType(p.name), t);
  }
  return out;
}

const r1 = (n: number) => (Number.isFinite(n) ? Math.round(n * 10) / 10 : null);
const r2 = (n: number) => (Number.isFinite(n) ? Math.round(n * 100) / 100 : null);

export interface BenchResult {
  /** First key on purpose: a run with lost or failed jobs says so first. */
  ok: boolean;
  problem: string | null;
  jobs: number;
  completed: number;
  failed: number;
  lost: number;
  jobsPerSec: number | null;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  meanMs: number | null;
  /** POST -> 202 alone. */
  submitP50Ms: number | null;
  submitP99Ms: number | null;
  /** CPU of every service process (children such as `ping` included) per completed job. */
  cpuMsPerJob: number | null;
  /** RabbitMQ and Redis CPU per job. */
  serverCpuMsPerJob: number | null;
  peakRssMb: Record<string, number | null>;
  processes: Record<string, { cpuMsPerJob: number | null; childCpuMsPerJob: number | null; cpuPct: number | null; peakRssMb: number | null; hwmMb: number | null }>;
  /** Service CPU summed over the replicas of each process type ('api', 'saga', 'rdap'); cpuPct in % of one core. */
  cpuByType: Record<string, { processes: number; cpuMsPerJob: number | null; cpuPct: number | null }>;
  servers: Record<string, { cpuMsPerJob: number | null; cpuPct: number | null; peakRssMb: number | null }>;
  client: { cpuMsPerJob: number | null; cpuPct: number | null; peakRssMb: number | null; httpRequestsPerJob: number | null };
  /** The loopback RDAP and DNS fixtures (the lookups' remote servers), in their own process; null with --url. */
  fixtures: { cpuMsPerJob: number | null; cpuPct: number | null; peakRssMb: number | null } | null;
  machineCpuPct: number | null;
  /** CPU used on this machine by processes the bench does not watch, in % of one core: other load that skews the figures. */
  otherCpuPct: number | null;
  /** Messages published into the namespace's exchanges per job (RabbitMQ management API), null when unavailable. */
  messagesPerJob: number | null;
  messages: (AmqpCounts & { perJob: Record<string, number | null>; source: string; jobsCounted: number }) | null;
  redisCommandsPerJob: number | null;
  redisTopCommands: Record<string, number | null>;
  detector: string;
  /** Status polls per job (requests spent learning of completion, not counted anywhere else). */
  pollsPerJob: number | null;
  config: Record<string, unknown>;
  wallMs: number;
  failureReasons: Record<string, number>;
}

export interface Collected {
  records: JobRecord[];
  wallMs: number;
  usage: { processes: ProcessUsage[]; client: { cpuMs: number; peakRssMb: number }; machine: { busyPct: number; cores: number } };
  polls: number;
  httpRequests: number;
  detector: string;
  redis?: { total: number; byCommand: [string, number][] };
  amqp?: { counts: AmqpCounts; jobsCounted: number; source: string };
  config: Record<string, unknown>;
}

export function summarise(c: Collected): BenchResult {
  const jobs = c.records.length;
  const done = c.records.filter((r) => r.outcome?.state === 'completed');
  const failedRecs = c.records.filter((r) => r.outcome?.state === 'failed');
  const lostRecs = c.records.filter((r) => !r.outcome || r.outcome.state === 'lost');
  const lat = done.map((r) => r.endedAt! - r.startedAt).sort((a, b) => a - b);
  const sub = c.records.filter((r) => r.acceptedAt !== undefined).map((r) => r.acceptedAt! - r.startedAt).sort((a, b) => a - b);
  // Throughput over the span in which jobs were running: first start to last completion.
  const first = Math.min(...c.records.map((r) => r.startedAt));
  const last = Math.max(...done.map((r) => r.endedAt!));
  const spanS = done.length > 0 ? (last - first) / 1000 : NaN;
  const n = done.length || NaN;
  const services = c.usage.processes.filter((p) => p.kind === 'service');
  const servers = c.usage.processes.filter((p) => p.kind === 'server');
  const fixture = c.usage.processes.find((p) => p.kind === 'fixture');
  const fixCpu = fixture?.cpuMs ?? 0;
  const svcCpu = services.reduce((a, p) => a + p.cpuMs + (Number.isFinite(p.childCpuMs) ? p.childCpuMs : 0), 0);
  const srvCpu = servers.reduce((a, p) => a + p.cpuMs, 0);
  const reasons: Record<string, number> = {};
  for (const r of [...failedRecs, ...lostRecs]) {
    const key = (r.outcome && 'reason' in r.outcome ? r.outcome.reason : 'no outcome').slice(0, 160);
    reasons[key] = (reasons[key] ?? 0) + 1;
  }
  const problems: string[] = [];
  if (lostRecs.length) problems.push(`${lostRecs.length} lost`);
  if (failedRecs.length) problems.push(`${failedRecs.length} failed`);
  const amqp = c.amqp;
  return {
    ok: problems.length === 0 && jobs > 0,
    problem: problems.length ? `${problems.join(', ')} of ${jobs} jobs` : jobs === 0 ? 'no jobs ran' : null,
    jobs,
    completed: done.length,
    failed: failedRecs.length,
    lost: lostRecs.length,
    jobsPerSec: r1(done.length / spanS),
    p50Ms: r1(percentile(lat, 50)),
    p95Ms: r1(percentile(lat, 95)),
    p99Ms: r1(percentile(lat, 99)),
    maxMs: r1(lat[lat.length - 1] ?? NaN),
    meanMs: r1(lat.reduce((a, b) => a + b, 0) / lat.length),
    submitP50Ms: r1(percentile(sub, 50)),
    submitP99Ms: r1(percentile(sub, 99)),
    cpuMsPerJob: r2(svcCpu / n),
    serverCpuMsPerJob: r2(srvCpu / n),
    peakRssMb: Object.fromEntries(c.usage.processes.map((p) => [p.name, r1(p.peakRssMb)])),
    processes: Object.fromEntries(
      services.map((p) => [
        p.name,
        {
          cpuMsPerJob: r2((p.cpuMs + (Number.isFinite(p.childCpuMs) ? p.childCpuMs : 0)) / n),
          childCpuMsPerJob: r2(p.childCpuMs / n),
          cpuPct: r1((100 * (p.cpuMs + p.childCpuMs)) / c.wallMs),
          peakRssMb: r1(p.peakRssMb),
          hwmMb: r1(p.hwmMb),
        },
      ]),
    ),
    cpuByType: Object.fromEntries(
      [...cpuByType(services)].map(([t, u]) => [t, { processes: u.processes, cpuMsPerJob: r2(u.cpuMs / n), cpuPct: r1((100 * u.cpuMs) / c.wallMs) }]),
    ),
    servers: Object.fromEntries(servers.map((p) => [p.name, { cpuMsPerJob: r2(p.cpuMs / n), cpuPct: r1((100 * p.cpuMs) / c.wallMs), peakRssMb: r1(p.peakRssMb) }])),
    client: {
      cpuMsPerJob: r2(c.usage.client.cpuMs / n),
      cpuPct: r1((100 * c.usage.client.cpuMs) / c.wallMs),
      peakRssMb: r1(c.usage.client.peakRssMb),
      httpRequestsPerJob: r2(c.httpRequests / jobs),
    },
    fixtures: fixture ? { cpuMsPerJob: r2(fixture.cpuMs / n), cpuPct: r1((100 * fixture.cpuMs) / c.wallMs), peakRssMb: r1(fixture.peakRssMb) } : null,
    machineCpuPct: r1(c.usage.machine.busyPct),
    otherCpuPct: r1(
      c.usage.machine.busyPct * c.usage.machine.cores -
        (100 * (svcCpu + srvCpu + fixCpu + c.usage.client.cpuMs)) / c.wallMs,
    ),
    messagesPerJob: amqp ? r2(amqp.counts.published / amqp.jobsCounted) : null,
    messages: amqp
      ? {
          ...amqp.counts,
          perJob: Object.fromEntries(Object.entries(amqp.counts).map(([k, v]) => [k, r2(v / amqp.jobsCounted)])),
          source: amqp.source,
          jobsCounted: amqp.jobsCounted,
        }
      : null,
    redisCommandsPerJob: c.redis ? r2(c.redis.total / jobs) : null,
    redisTopCommands: c.redis ? Object.fromEntries(c.redis.byCommand.slice(0, 8).map(([k, v]) => [k, r2(v / jobs)])) : {},
    detector: c.detector,
    pollsPerJob: r2(c.polls / jobs),
    config: c.config,
    wallMs: Math.round(c.wallMs),
    failureReasons: reasons,
  };
}

const f = (v: number | null | undefined, unit = '') => (v === null || v === undefined ? 'n/a' : `${v}${unit}`);

/** Human-readable report; the first line says whether every job completed. */
export function formatText(r: BenchResult): string {
  const L: string[] = [];
  L.push(r.ok ? `OK: all ${r.jobs} jobs completed, none failed or lost` : `NOT OK: ${r.problem} (completed ${r.completed}, failed ${r.failed}, lost ${r.lost})`);
  const cfg = r.config;
  L.push(
    `config: ${cfg.mode === 'open' ? `open loop ${cfg.rate} jobs/s` : cfg.batch ? `batches of ${cfg.batch}, ${cfg.batchesInFlight} in flight` : `closed loop ${cfg.inflight} in flight`}, services ${cfg.services}, ` +
      `${cfg.replicas && cfg.replicas !== 1 ? `${cfg.replicas} API and saga replicas, ` : ''}${cfg.workers} replica(s) per worker type, fixture delay ${cfg.fixtureDelayMs} ms, warm-up ${cfg.warmup} jobs, target ${cfg.target}`,
  );
  L.push('');
  L.push(`throughput   ${f(r.jobsPerSec)} jobs/s   (${r.completed} completed in ${(r.wallMs / 1000).toFixed(1)} s)`);
  L.push(`latency      p50 ${f(r.p50Ms)} ms   p95 ${f(r.p95Ms)} ms   p99 ${f(r.p99Ms)} ms   max ${f(r.maxMs)} ms   mean ${f(r.meanMs)} ms`);
  L.push(`             submit (POST -> 202) p50 ${f(r.submitP50Ms)} ms, p99 ${f(r.submitP99Ms)} ms; completion via ${r.detector}, ${f(r.pollsPerJob)} polls/job`);
  L.push(`cost / job   services ${f(r.cpuMsPerJob)} ms CPU, servers ${f(r.serverCpuMsPerJob)} ms CPU, ${f(r.messagesPerJob)} AMQP messages, ${f(r.redisCommandsPerJob)} Redis commands`);
  L.push(`machine      ${f(r.machineCpuPct)} % of all cores busy during the run; processes outside the bench used ${f(r.otherCpuPct)} % of one core`);
  L.push('');
  L.push('process            CPU ms/job   CPU %   peak RSS MB   (VmHWM MB)');
  for (const [name, p] of Object.entries(r.processes)) {
    const child = p.childCpuMsPerJob ? ` (children ${p.childCpuMsPerJob})` : '';
    L.push(`  ${name.padEnd(16)} ${f(p.cpuMsPerJob).padStart(10)}   ${f(p.cpuPct).padStart(5)}   ${f(p.peakRssMb).padStart(11)}   (${f(p.hwmMb)})${child}`);
  }
  if (Object.values(r.cpuByType).some((t) => t.processes > 1)) {
    L.push('per process type (replicas summed)');
    for (const [type, t] of Object.entries(r.cpuByType)) {
      L.push(`  ${`${type} x${t.processes}`.padEnd(16)} ${f(t.cpuMsPerJob).padStart(10)}   ${f(t.cpuPct).padStart(5)}`);
    }
  }
  L.push('servers');
  for (const [name, p] of Object.entries(r.servers)) {
    L.push(`  ${name.padEnd(16)} ${f(p.cpuMsPerJob).padStart(10)}   ${f(p.cpuPct).padStart(5)}   ${f(p.peakRssMb).padStart(11)}`);
  }
  L.push('client (this bench)');
  L.push(`  ${'bench'.padEnd(16)} ${f(r.client.cpuMsPerJob).padStart(10)}   ${f(r.client.cpuPct).padStart(5)}   ${f(r.client.peakRssMb).padStart(11)}   ${f(r.client.httpRequestsPerJob)} HTTP requests/job`);
  if (r.fixtures) {
    L.push("fixtures (the lookups' RDAP and DNS servers)");
    L.push(`  ${'fixtures'.padEnd(16)} ${f(r.fixtures.cpuMsPerJob).padStart(10)}   ${f(r.fixtures.cpuPct).padStart(5)}   ${f(r.fixtures.peakRssMb).padStart(11)}`);
  }
  if (r.messages) {
    const m = r.messages.perJob;
    L.push('');
    L.push(`AMQP per job (${r.messages.source}): published ${f(m.published)}, routed to queues ${f(m.enqueued)}, delivered ${f(m.delivered)}, redelivered ${f(m.redelivered)}, acked ${f(m.acked)}`);
  } else {
    L.push('', 'AMQP per job: n/a (RabbitMQ management API not reachable; `rabbitmq-plugins enable rabbitmq_management` enables it)');
  }
  const top = Object.entries(r.redisTopCommands).map(([k, v]) => `${k} ${v}`).join(', ');
  L.push(`Redis per job (INFO commandstats delta over the run, polling included; Redis is shared): ${top || 'n/a'}`);
  if (!r.ok) {
    L.push('', 'failure reasons:');
    for (const [reason, count] of Object.entries(r.failureReasons)) L.push(`  ${count} x ${reason}`);
  }
  return L.join('\n');
}
