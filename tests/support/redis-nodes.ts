import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, waitFor } from './processes.ts';

/**
 * Extra Redis servers for the Sentinel and Cluster tests: child processes of the test (never daemonized) on free
 * loopback ports, each with its own temporary directory, no persistence. `stop()` kills them and deletes the
 * directories; the machine's own Redis is never touched. With REDIS_NODES_BASE_PORT set, ports come from a block of
 * 200 from there (each vitest worker its own 50, VITEST_POOL_ID), the first free ones; else any free port.
 */
export interface RedisNode {
  port: number;
  dir: string;
  child: ChildProcess;
  /** SIGKILL (a crash: nothing is flushed or handed over). */
  kill(): Promise<void>;
}

const live = new Set<RedisNode>();
let nextInBlock = 0;

async function nodePort(): Promise<number> {
  const base = Number(process.env.REDIS_NODES_BASE_PORT ?? 0);
  if (!base) return freePort();
  const worker = (Number(process.env.VITEST_POOL_ID ?? 1) - 1) % 4;
  while (nextInBlock < 50) {
    const port = base + 50 * worker + nextInBlock++;
    if (await isFree(port)) return port;
  }
  throw new Error(`no free port left in ${base + 50 * worker}..${base + 50 * worker + 49} (REDIS_NODES_BASE_PORT)`);
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A redis-server with `args`, or a redis-sentinel with the config file `sentinelConf` returns (it rewrites it). */
async function startNode(binary: 'redis-server' | 'redis-sentinel', args: string[], sentinelConf?: (port: number, dir: string) => string, dirArgs?: (dir: string) => string[], fixedPort?: number): Promise<RedisNode> {
  const port = fixedPort ?? (await nodePort());
  const dir = mkdtempSync(join(tmpdir(), `lookup-${binary}-${port}-`));
  let argv: string[];
  if (sentinelConf) {
    const file = join(dir, 'sentinel.conf');
    writeFileSync(file, `bind 127.0.0.1\ndaemonize no\nloglevel warning\n${sentinelConf(port, dir)}`);
    argv = [file];
  } else {
    argv = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', ...args, ...(dirArgs?.(dir) ?? [])];
  }
  const child = spawn(`/usr/bin/${binary}`, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const node: RedisNode = {
    port,
    dir,
    child,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      live.delete(node);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(node);
  const probe = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`${binary} on ${port} exited with ${child.exitCode}`);
      if (probe.status !== 'ready') await probe.connect().catch(() => undefined);
      return (await probe.ping().catch(() => undefined)) === 'PONG' ? true : undefined;
    }, 10_000);
  } catch (err) {
    await node.kill();
    throw err;
  } finally {
    probe.disconnect();
  }
  return node;
}

/** REDIS_CLUSTER_BASE_PORT, when set: where startRedisCluster puts its nodes (else on free ports). */
export function clusterBasePort(): number | undefined {
  const raw = process.env.REDIS_CLUSTER_BASE_PORT;
  if (!raw) return undefined;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1024 || port > 65_000) throw new Error(`REDIS_CLUSTER_BASE_PORT must be a port from 1024 to 65000, not ${raw}`);
  return port;
}

/** `n` different free loopback ports, outside the kernel's ephemeral range (freePort never hands out one twice). */
async function distinctFreePorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < n) ports.push(await freePort());
  return ports;
}

/** A Redis server with no replica (nothing can acknowledge a WAIT). */
export function startStandaloneRedis(): Promise<RedisNode> {
  return startNode('redis-server', []);
}

/** Kills every node this process started (afterAll, also after a failed test). */
export async function stopAllRedisNodes(): Promise<void> {
  await Promise.all([...live].map((n) => n.kill()));
}

export interface SentinelSetup {
  masterName: string;
  master: RedisNode;
  replica: RedisNode;
  sentinels: RedisNode[];
  /** The suite's environment: Sentinels only (REDIS_URL points nowhere, so nothing can bypass them). */
  env: Record<string, string>;
  /** A raw client that follows the master through the Sentinels, for checks. */
  client(): Redis;
  /** The master's port as the Sentinels report it. */
  masterPort(): Promise<number>;
  /** SENTINEL FAILOVER; resolves once every Sentinel names the new master and it accepts writes. */
  failover(): Promise<number>;
  /** Every replica started (`replica` is the first). */
  replicas: RedisNode[];
  /**
   * SIGKILLs the current master (a crash: no failover asked for, nothing handed over) and resolves once every live
   * Sentinel names a new master that says role:master: the killed port, the new master's, and how long it took.
   */
  killMaster(): Promise<{ killed: number; promoted: number; ms: number }>;
}

export interface SentinelOptions {
  /** Replicas of the master (default 1). With two, a master killed for good still leaves one to acknowledge WAITs. */
  replicas?: number;
  /** `down-after-milliseconds` (default 1000): how long a master must not answer before a Sentinel flags it. */
  downAfterMs?: number;
}

/** One master, one replica (or `replicas`) and three Sentinels (quorum 2) on loopback. */
export async function startSentinelSetup(masterName = 'lookup-test', options: SentinelOptions = {}): Promise<SentinelSetup> {
  const fast = ['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'];
  const master = await startNode('redis-server', fast);
  const replicas: RedisNode[] = [];
  for (let i = 0; i < (options.replicas ?? 1); i++) replicas.push(await startNode('redis-server', [...fast, '--replicaof', '127.0.0.1', String(master.port)]));
  const replica = replicas[0]!;
  const sentinelConf = (port: number, dir: string) => [
    `port ${port}`,
    `dir ${dir}`,
    'sentinel resolve-hostnames no',
    `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 2`,
    `sentinel down-after-milliseconds ${masterName} ${options.downAfterMs ?? 1000}`,
    `sentinel failover-timeout ${masterName} 10000`,
    `sentinel parallel-syncs ${masterName} 1`,
    '',
  ].join('\n');
  const sentinels = await Promise.all([0, 1, 2].map(() => startNode('redis-sentinel', [], sentinelConf)));
  const admin = (node: RedisNode) => new Redis({ host: '127.0.0.1', port: node.port, lazyConnect: false, maxRetriesPerRequest: 1 });
  const setup: SentinelSetup = {
    masterName,
    master,
    replica,
    sentinels,
    env: {
      REDIS_URL: 'redis://127.0.0.1:1',
      REDIS_SENTINELS: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
      REDIS_MASTER_NAME: masterName,
    },
    client: () => {
      const c = new Redis({ sentinels: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })), name: masterName, failoverDetector: true, reconnectOnError: (e) => (e.message.startsWith('READONLY') ? 2 : false) });
      c.on('error', () => undefined); // a killed master refuses connections until the Sentinels name the next
      return c;
    },
    async masterPort() {
      const s = admin(sentinels[0]!);
      try {
        const addr = (await s.call('SENTINEL', 'get-master-addr-by-name', masterName)) as string[];
        return Number(addr[1]);
      } finally {
        s.disconnect();
      }
    },
    async failover() {
      const before = await setup.masterPort();
      const s = admin(sentinels[0]!);
      try {
        await s.call('SENTINEL', 'FAILOVER', masterName);
      } finally {
        s.disconnect();
      }
      return await waitForNewMaster(before);
    },
    replicas,
    async killMaster() {
      const before = await setup.masterPort();
      const node = [master, ...replicas].find((n) => n.port === before);
      if (!node) throw new Error(`the master ${before} is not a node of this setup`);
      const began = Date.now();
      await node.kill();
      const promoted = await waitForNewMaster(before);
      return { killed: before, promoted, ms: Date.now() - began };
    },
  };
  async function waitForNewMaster(before: number): Promise<number> {
    return waitFor(async () => {
      const ports = await Promise.all(sentinels.filter((n) => n.child.exitCode === null).map(async (n) => {
        const s = admin(n);
        try {
          return Number(((await s.call('SENTINEL', 'get-master-addr-by-name', masterName)) as string[])[1]);
        } finally {
          s.disconnect();
        }
      }));
      const port = ports[0]!;
      if (port === before || ports.some((p) => p !== port)) return undefined;
      const m = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
      try {
        return (await m.info('replication')).includes('role:master') ? port : undefined;
      } finally {
        m.disconnect();
      }
    }, 30_000, 100);
  }
  // Ready for a failover: the replica in sync, every Sentinel knowing the replica and the two other Sentinels.
  await waitFor(async () => {
    for (const node of replicas) {
      const r = new Redis({ host: '127.0.0.1', port: node.port, maxRetriesPerRequest: 1 });
      try {
        if (!(await r.info('replication')).includes('master_link_status:up')) return undefined;
      } finally {
        r.disconnect();
      }
    }
    for (const n of sentinels) {
      const s = admin(n);
      try {
        const peers = (await s.call('SENTINEL', 'SENTINELS', masterName)) as unknown[];
        const known = (await s.call('SENTINEL', 'REPLICAS', masterName)) as unknown[];
        if (known.length < replicas.length || peers.length < 2) return undefined;
      } finally {
        s.disconnect();
      }
    }
    return true;
  }, 30_000, 200);
  return setup;
}

export interface ClusterSetup {
  nodes: RedisNode[];
  /** The suite's environment: a redis+cluster:// URL naming the first node (the client discovers the others). */
  env: Record<string, string>;
}

/**
 * Three masters (no replicas) of a Redis Cluster on loopback, every slot assigned, cluster_state ok. Each node's
 * cluster bus port is set too (Redis's default, port + 10000, can be taken or above 65535): free ports by default, or
 * with `basePort` node i on basePort + i and its bus on basePort + 50 + i (REDIS_CLUSTER_BASE_PORT, to keep a
 * shared machine's runs in a known range).
 */
export async function startRedisCluster(options: { basePort?: number } = {}): Promise<ClusterSetup> {
  const { basePort = clusterBasePort() } = options;
  const free = basePort === undefined ? await distinctFreePorts(6) : [];
  const nodes = await Promise.all([0, 1, 2].map((i) => {
    const port = basePort === undefined ? free[i]! : basePort + i;
    const busPort = basePort === undefined ? free[3 + i]! : basePort + 50 + i;
    const args = (dir: string) => ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-node-timeout', '2000', '--cluster-port', String(busPort)];
    return startNode('redis-server', [], undefined, args, port);
  }));
  execFileSync('/usr/bin/redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore', timeout: 30_000 });
  await waitFor(async () => {
    for (const n of nodes) {
      const r = new Redis({ host: '127.0.0.1', port: n.port, maxRetriesPerRequest: 1 });
      try {
        if (!String(await r.call('CLUSTER', 'INFO')).includes('cluster_state:ok')) return undefined;
      } finally {
        r.disconnect();
      }
    }
    return true;
  }, 30_000, 200);
  return { nodes, env: { REDIS_URL: `redis+cluster://127.0.0.1:${nodes[0]!.port}` } };
}
