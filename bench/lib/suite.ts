import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import amqp from 'amqplib';
import { SERVICE_CATALOGUE, parseService, serviceInfo, type ServiceInfo } from '@lookup/contracts';
import { declarations } from '@lookup/messaging';
import { cleanupNamespace } from '../../tests/support/namespace.ts';
import { ENTRY_POINTS, buildServices, freePort } from '../../tests/support/processes.ts';
import { REPO_ROOT } from '../../tests/support/env.ts';
import type { RabbitStats } from './servers.ts';

/**
 * The benchmark's default services: the four the BullMQ peer implements, so the figures stay like-for-like
 * (every job names them in `services`; a job without it would run every catalogue service).
 */
export const PEER_SERVICES: readonly ServiceInfo[] = Object.freeze(['GeoIP', 'Ping', 'RDAP', 'ReverseDNS'].map((n) => serviceInfo(parseService(n)!)));

/**
 * Services named on the command line ('GeoIP', 'ping', 'reverse-dns', '3', 'all'): catalogue entries, in catalogue
 * order; PEER_SERVICES when none.
 */
export function parseServiceList(list: string | undefined): ServiceInfo[] {
  if (!list) return [...PEER_SERVICES];
  if (list.trim().toLowerCase() === 'all') return [...SERVICE_CATALOGUE];
  const picked = new Set<number>();
  for (const raw of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const bySlug = SERVICE_CATALOGUE.find((s) => s.slug === raw.toLowerCase());
    const value = bySlug?.value ?? parseService(raw);
    if (value === undefined) throw new Error(`unknown service '${raw}' (one of ${SERVICE_CATALOGUE.map((s) => s.name).join(', ')})`);
    picked.add(value);
  }
  return [...picked].sort().map((v) => serviceInfo(v));
}

export interface SpawnedService {
  /** 'api', 'saga', 'rdap#2' */
  name: string;
  entry: string;
  child: ChildProcess;
  pid: number;
  /** The last lines it printed (LOG_LEVEL=warn keeps this short), for diagnosing a failure. */
  tail: string[];
  exited: Promise<number | null>;
}

export interface SuiteOptions {
  namespace: string;
  amqpUrl: string;
  redisUrl: string;
  services: ServiceInfo[];
  /** Replicas of each worker type. */
  workers: number;
  /** Replicas of the API (each on its own port) and of the saga (default 1). */
  replicas?: number;
  /** RDAP fixture delay before every answer. */
  fixtureDelayMs: number;
  logLevel: string;
  /** PREFETCH for the worker processes only (the saga and API keep the default). */
  workerPrefetch?: number;
  /** When set, every service runs with --cpu-prof and writes its profile to <dir>/<name>/. */
  cpuProfDir?: string;
  /** Extra environment for every service. */
  env?: Record<string, string>;
  log: (line: string) => void;
  /** Aborted when the bench is interrupted: start-up stops waiting and everything started is stopped. */
  signal?: AbortSignal;
  /** Called with the suite's stop function before anything is started, so an interrupt can stop a suite that is still starting. */
  onStop?: (stop: () => Promise<void>) => void;
  /** Fixtures already running (bench:compare shares one set between runs): used, and left running at stop. */
  fixtures?: BenchFixtures;
}

export interface BenchSuite {
  /** The first API replica. */
  apiUrl: string;
  /** Every API replica (the client spreads its requests over them). */
  apiUrls: string[];
  namespace: string;
  processes: SpawnedService[];
  /** The RDAP and DNS fixtures: their own process, as the lookups' remote servers would be. */
  fixtures: SpawnedService & { rdapUrl: string; dnsAddress: string };
  /** Stops the processes and the fixtures (idempotent). */
  stop(): Promise<void>;
}

const TAIL_LINES = 200;

function spawnService(name: string, slug: string, env: Record<string, string>, cpuProfDir?: string): SpawnedService {
  const args = ENTRY_POINTS[slug];
  if (!args) throw new Error(`no entry point for ${slug}`);
  const nodeArgs: string[] = [];
  if (cpuProfDir) {
    // Node 20 refuses --cpu-prof in NODE_OPTIONS: it goes on the command line. The profile is written at exit.
    const dir = join(cpuProfDir, name.replace('#', '-'));
    mkdirSync(dir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
  }
  const child = spawn(process.execPath, [...nodeArgs, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { name, entry: args.join(' '), child, pid: child.pid!, tail, exited };
}

export async function stopProcess(p: SpawnedService, timeoutMs = 15_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  await p.exited;
  clearTimeout(timer);
}

/**
 * Readiness without relying on log lines (LOG_LEVEL=warn hides the 'ready' lines): the API answers
 * /health/ready, and every consuming queue has as many consumers as processes were started for it.
 */
async function waitReady(
  apiUrl: string,
  amqpUrl: string,
  expected: Map<string, number>,
  processes: SpawnedService[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const conn = await amqp.connect(amqpUrl);
  conn.on('error', () => undefined);
  try {
    let apiOk = false;
    const pending = new Map(expected);
    while (Date.now() < deadline) {
      if (signal?.aborted) throw new Error('interrupted during start-up');
      const dead = processes.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
      if (dead) throw new Error(`${dead.name} exited during start-up:\n${dead.tail.slice(-20).join('\n')}`);
      if (!apiOk) {
        apiOk = await fetch(`${apiUrl}/health/ready`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
      }
      for (const [queue, want] of pending) {
        const ch = await conn.createChannel();
        ch.on('error', () => undefined);
        try {
          const q = await ch.checkQueue(queue);
          if (q.consumerCount >= want) pending.delete(queue);
          await ch.close();
        } catch {
          // not declared yet: the channel was closed by the broker
        }
      }
      if (apiOk && pending.size === 0) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`suite not ready after ${timeoutMs} ms (api ${apiOk ? 'ready' : 'not ready'}; waiting for consumers on ${[...pending.keys()].join(', ') || 'nothing'})`);
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/**
 * The loopback RDAP and DNS fixtures (tests/fixtures/serve.ts) in a process of their own: sharing the bench
 * client's event loop made every RDAP and DNS answer wait behind the client's work. Resolves once the process
 * printed where it listens (any free ports).
 */
export type BenchFixtures = SpawnedService & { rdapUrl: string; dnsAddress: string };

export async function startFixtures(delayMs: number): Promise<SpawnedService & { rdapUrl: string; dnsAddress: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/fixtures/serve.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, RDAP_FIXTURE_PORT: '0', DNS_FIXTURE_PORT: '0', RDAP_FIXTURE_DELAY_MS: String(delayMs) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const proc: SpawnedService = { name: 'fixtures', entry: 'tests/fixtures/serve.ts', child, pid: child.pid!, tail, exited };
  const where = await new Promise<{ rdapUrl: string; dnsAddress: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fixtures did not start within 30 s:\n${tail.join('\n')}`)), 30_000);
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
        if (line.startsWith('FIXTURES ')) {
          clearTimeout(timer);
          resolve(JSON.parse(line.slice('FIXTURES '.length)) as { rdapUrl: string; dnsAddress: string });
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`fixtures exited (${code}) during start-up:\n${tail.join('\n')}`));
    });
  });
  return { ...proc, ...where };
}

/** 'api', 'saga#2', 'rdap#3': the process type, the replica number when there are several. */
export function replicaName(type: string, i: number, of: number): string {
  return of > 1 ? `${type}#${i}` : type;
}

/**
 * Fixtures, then `replicas` APIs (one port each) and sagas and `workers` replicas of each requested worker type,
 * in one namespace.
 */
export async function startBenchSuite(o: SuiteOptions): Promise<BenchSuite> {
  buildServices(); // the services run compiled, as `npm run start:<name>` runs them
  const fixtures = o.fixtures ?? (await startFixtures(o.fixtureDelayMs));
  const replicas = o.replicas ?? 1;
  const ports: number[] = [];
  while (ports.length < replicas) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  const env: Record<string, string> = {
    NAMESPACE: o.namespace,
    AMQP_URL: o.amqpUrl,
    REDIS_URL: o.redisUrl,
    API_HOST: '127.0.0.1',
    API_PORT: String(ports[0]),
    RDAP_BASE_URL: fixtures.rdapUrl,
    DNS_SERVERS: fixtures.dnsAddress,
    ALLOW_PRIVATE_TARGETS: 'true',
    PING_COUNT: '1',
    PING_TIMEOUT_MS: '1000',
    LOG_LEVEL: o.logLevel,
    RATE_LIMIT_SUBMIT_PER_MIN: '10000000',
    BATCH_MAX_ITEMS: '10000', // --batch N up to the configurable maximum
    RATE_LIMIT_API_PER_MIN: '10000000',
    RATE_LIMIT_GLOBAL_PER_MIN: '100000000',
    RATE_LIMIT_RESOURCE_PER_MIN: '10000000',
    // The load generator holds up to thousands of connections from one address; the per-client cap would refuse them.
    API_MAX_CONNECTIONS_PER_CLIENT: '0',
    ...o.env,
  };
  const workerEnv = o.workerPrefetch ? { ...env, PREFETCH: String(o.workerPrefetch) } : env;
  const processes: SpawnedService[] = [];
  let stopped: Promise<void> | undefined;
  const stopAll = () =>
    (stopped ??= (async () => {
      await Promise.all(processes.map((p) => stopProcess(p)));
      if (!o.fixtures) await stopProcess(fixtures);
    })());
  o.onStop?.(stopAll);
  try {
    ports.forEach((p, i) => processes.push(spawnService(replicaName('api', i + 1, replicas), 'api', { ...env, API_PORT: String(p) }, o.cpuProfDir)));
    for (let i = 1; i <= replicas; i++) processes.push(spawnService(replicaName('saga', i, replicas), 'saga', env, o.cpuProfDir));
    const expected = new Map<string, number>([[`${o.namespace}.saga`, replicas]]);
    for (const s of o.services) {
      for (let i = 1; i <= o.workers; i++) processes.push(spawnService(replicaName(s.slug, i, o.workers), s.slug, workerEnv, o.cpuProfDir));
      expected.set(`${o.namespace}.lookup.${s.slug}`, o.workers);
    }
    const apiUrls = ports.map((p) => `http://127.0.0.1:${p}`);
    o.log(`starting ${processes.map((p) => p.name).join(', ')} in namespace ${o.namespace}`);
    for (const url of apiUrls) await waitReady(url, o.amqpUrl, expected, processes, 60_000, o.signal);
    return { apiUrl: apiUrls[0]!, apiUrls, namespace: o.namespace, processes, fixtures, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * Removes every queue, exchange and Redis key of the namespace: the declared topology (cleanupNamespace)
 * plus, when the management API answers, any other `<namespace>.` queue or exchange (added by newer code).
 */
export async function removeNamespace(namespace: string, amqpUrl: string, rabbit: RabbitStats | undefined): Promise<void> {
  const d = declarations(namespace);
  let extraQueues: string[] = [];
  let extraExchanges: string[] = [];
  if (rabbit) {
    try {
      const names = await rabbit.names(namespace);
      extraQueues = names.queues.filter((q) => !d.queues.some((dq) => dq.name === q));
      extraExchanges = names.exchanges.filter((x) => !d.exchanges.some((dx) => dx.name === x));
    } catch {
      // management API gone: the declared topology is still removed
    }
  }
  await cleanupNamespace(namespace, extraQueues);
  if (extraExchanges.length > 0) {
    const conn = await amqp.connect(amqpUrl);
    try {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      for (const x of extraExchanges) await ch.deleteExchange(x);
      await ch.close();
    } finally {
      await conn.close();
    }
  }
}
