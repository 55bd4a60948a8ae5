import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** RabbitMQ's own scripts (not /usr/sbin's wrappers, which switch to the rabbitmq user and its node). */
const RABBIT_BIN = process.env.RABBITMQ_BIN_DIR ?? '/usr/lib/rabbitmq/bin';
/** The machine's broker: nothing here may use its port. */
const MACHINE_AMQP_PORT = 5672;

export interface ClusterNode {
  /** Erlang node name, e.g. `lookup-c1@localhost`. */
  name: string;
  amqpPort: number;
  distPort: number;
  url: string;
  process?: ChildProcess;
  exited?: Promise<void>;
}

export interface RabbitCluster {
  dir: string;
  nodes: ClusterNode[];
  /** `amqp://…` of every node, comma-separated (AMQP_URL). */
  amqpUrl: string;
  /** rabbitmqctl (or another CLI tool) against `node`, with the cluster's cookie; stdout. */
  ctl(node: ClusterNode, args: string[], tool?: string): Promise<string>;
  /** The node (of this cluster) that leads quorum queue `queue`. */
  leaderOf(queue: string): Promise<ClusterNode | undefined>;
  /** Stops one node: `rabbitmqctl stop` (SIGKILL if it does not go), or with `kill` SIGKILL at once (a crash). */
  stopNode(node: ClusterNode, how?: 'stop' | 'kill'): Promise<void>;
  /** Stops every node it started and deletes the temp dir; safe to call twice, also after a failed start. */
  close(): Promise<void>;
}

export interface RabbitClusterOptions {
  /** First port of the block: node i uses basePort + 10i (AMQP) and + 10i + 1 (distribution); CLI tools + 90..99. */
  basePort: number;
  size?: number;
  /** Node name prefix (`<prefix>-c1@localhost`). */
  prefix?: string;
}

/**
 * Starts a RabbitMQ cluster of `size` nodes on loopback, each with its own node name, ports, data and log dirs under
 * one temp dir, one Erlang cookie (HOME is the temp dir), no plugins (no management listener), and joins nodes 2..n
 * to node 1. Every setting the Debian package's /etc/rabbitmq files make (node name rabbit@localhost, listener 5672)
 * is overridden, so the machine's own node is never touched.
 */
export async function startRabbitCluster(options: RabbitClusterOptions): Promise<RabbitCluster> {
  const size = options.size ?? 3;
  const prefix = options.prefix ?? 'lookup';
  const dir = mkdtempSync(join(tmpdir(), 'rabbit-cluster-'));
  writeFileSync(join(dir, '.erlang.cookie'), randomBytes(20).toString('hex'));
  chmodSync(join(dir, '.erlang.cookie'), 0o400);
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
  const nodes: ClusterNode[] = Array.from({ length: size }, (_, i) => {
    const amqpPort = options.basePort + 10 * i;
    if (amqpPort === MACHINE_AMQP_PORT || amqpPort + 1 === MACHINE_AMQP_PORT) throw new Error('the cluster may not use port 5672');
    return { name: `${prefix}-c${i + 1}@localhost`, amqpPort, distPort: amqpPort + 1, url: `amqp://guest:guest@127.0.0.1:${amqpPort}` };
  });
  const baseEnv = (node?: ClusterNode): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    HOME: dir,
    LANG: 'C.UTF-8',
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_USE_LONGNAME: 'false',
    ERL_EPMD_ADDRESS: '127.0.0.1',
    // The CLI tools' own distribution port (default 35672+): kept inside the block.
    RABBITMQ_CTL_DIST_PORT_MIN: String(options.basePort + 90),
    RABBITMQ_CTL_DIST_PORT_MAX: String(options.basePort + 99),
    ...(node ? { RABBITMQ_NODENAME: node.name } : {}),
  });
  const cluster: RabbitCluster = {
    dir,
    nodes,
    amqpUrl: nodes.map((n) => n.url).join(','),
    async ctl(node, args, tool = 'rabbitmqctl') {
      const { stdout } = await run(join(RABBIT_BIN, tool), ['-n', node.name, ...args], { env: baseEnv(), timeout: 60_000 });
      return stdout;
    },
    async leaderOf(queue) {
      for (const node of nodes) {
        if (!isRunning(node)) continue;
        try {
          const out = await cluster.ctl(node, ['list_queues', '-q', '--no-table-headers', 'name', 'leader']);
          for (const line of out.split('\n')) {
            const [name, leader] = line.trim().split(/\s+/);
            if (name === queue) return nodes.find((n) => n.name === leader);
          }
        } catch {
          // that node cannot answer: ask the next
        }
      }
      return undefined;
    },
    async stopNode(node, how = 'stop') {
      if (!isRunning(node)) return;
      if (how === 'kill') killGroup(node.process!);
      else await cluster.ctl(node, ['stop']).catch(() => undefined);
      const gone = await Promise.race([node.exited!.then(() => true), sleep(20_000).then(() => false)]);
      if (!gone) killGroup(node.process!);
      await node.exited;
    },
    async close() {
      process.off('exit', onExit);
      await Promise.all(nodes.map(async (n) => {
        if (!n.process) return;
        if (isRunning(n)) {
          await cluster.ctl(n, ['stop']).catch(() => undefined);
          await Promise.race([n.exited, sleep(15_000)]);
        }
        if (isRunning(n)) killGroup(n.process);
      }));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  // A test runner that exits without close() (a crash, a timeout) still leaves no node and no temp dir behind.
  const onExit = () => {
    for (const n of nodes) if (n.process && isRunning(n)) killGroup(n.process);
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', onExit);
  try {
    for (const node of nodes) startNode(node, dir, baseEnv(node));
    await Promise.all(nodes.map((n) => awaitStartup(cluster, n)));
    for (const node of nodes.slice(1)) {
      await cluster.ctl(node, ['stop_app']);
      await cluster.ctl(node, ['join_cluster', nodes[0]!.name]);
      await cluster.ctl(node, ['start_app']);
    }
    await cluster.ctl(nodes[0]!, ['await_online_nodes', String(size), '--timeout', '120']).catch(() => undefined);
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}

/**
 * Waits until `node` has booted: `await_startup` fails at once while the node is not yet registered with epmd, so
 * it is retried until it succeeds, the node's process exits, or three minutes pass.
 */
async function awaitStartup(cluster: RabbitCluster, node: ClusterNode): Promise<void> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      await cluster.ctl(node, ['await_startup', '--timeout', '60']);
      return;
    } catch (err) {
      if (!isRunning(node) || Date.now() > deadline) {
        throw new Error(`RabbitMQ node ${node.name} did not start (logs in ${cluster.dir}): ${(err as Error).message.split('\n')[0]}`);
      }
      await sleep(1000);
    }
  }
}

function startNode(node: ClusterNode, dir: string, env: NodeJS.ProcessEnv): void {
  const own = join(dir, node.name.split('@')[0]!);
  const conf = `${own}.conf`;
  writeFileSync(conf, [
    `listeners.tcp.1 = 127.0.0.1:${node.amqpPort}`,
    'loopback_users.guest = true',
    // Small disks of a test machine: the default 50 MB limit is enough, and no memory alarm from other nodes' load.
    'vm_memory_high_watermark.relative = 0.2',
    '',
  ].join('\n'));
  const child = spawn(join(RABBIT_BIN, 'rabbitmq-server'), [], {
    env: {
      ...env,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(node.amqpPort),
      RABBITMQ_DIST_PORT: String(node.distPort),
      RABBITMQ_CONFIG_FILE: conf,
      RABBITMQ_ADVANCED_CONFIG_FILE: `${own}-advanced.config`,
      RABBITMQ_MNESIA_BASE: join(own, 'mnesia'),
      RABBITMQ_LOG_BASE: join(own, 'log'),
      RABBITMQ_PID_FILE: join(own, 'pid'),
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    },
    stdio: 'ignore',
    detached: true,
  });
  node.process = child;
  node.exited = new Promise((resolve) => child.on('exit', () => resolve()));
}

export function isRunning(node: ClusterNode): boolean {
  return node.process !== undefined && node.process.exitCode === null && node.process.signalCode === null;
}

/** SIGKILL to the node's whole process group (the shell script, beam and its port helpers). */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
