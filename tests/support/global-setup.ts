import { connect } from 'node:net';
import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { startRedisCluster, stopAllRedisNodes } from './redis-nodes.ts';

const AMQP_URL = process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';
let REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** The project (vitest.config.ts) that runs the integration tests on a Redis Cluster of their own (npm run test:integration-redis-cluster). */
const ON_OWN_REDIS_CLUSTER = 'integration-redis-cluster';

function reachable(rawUrl: string, defaultPort: number): Promise<boolean> {
  // AMQP_URL may list a cluster's nodes: the first one answering is enough to start.
  const u = new URL(rawUrl.split(',')[0]!.trim());
  return new Promise((resolve) => {
    const socket = connect({ host: u.hostname, port: Number(u.port) || defaultPort, timeout: 2000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

function dockerAvailable(): boolean {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Integration tests use RabbitMQ and Redis at AMQP_URL and REDIS_URL. When one does not answer and a
 * Docker engine is available, it is started with testcontainers; otherwise the run stops with a message.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Service processes run the compiled JavaScript, exactly as `npm run start:<name>` does.
  execFileSync(process.execPath, ['scripts/build.mjs', '--quiet'], { cwd: new URL('../../', import.meta.url).pathname, stdio: 'inherit' });
  const stops: (() => Promise<unknown>)[] = [];
  if (project.name === ON_OWN_REDIS_CLUSTER) {
    // Three masters on loopback (free ports, or REDIS_CLUSTER_BASE_PORT + 0..2 with buses on + 50..52), stopped after
    // the run; every test and every service it starts uses them (REDIS_URL=redis+cluster://…).
    const cluster = await startRedisCluster().catch(async (err: unknown) => {
      await stopAllRedisNodes();
      throw err;
    });
    stops.push(() => stopAllRedisNodes());
    REDIS_URL = cluster.env.REDIS_URL!;
    process.env.REDIS_URL = REDIS_URL;
    project.provide('redisUrl' as never, REDIS_URL as never);
    console.log(`integration tests on a Redis Cluster of three masters: ${cluster.nodes.map((n) => n.port).join(', ')} (${REDIS_URL})`);
  }
  const missing: string[] = [];
  if (!(await reachable(AMQP_URL, 5672))) missing.push('rabbitmq');
  if (!(await reachable(REDIS_URL, 6379))) missing.push('redis');
  if (missing.length > 0) {
    if (!dockerAvailable()) {
      throw new Error(
        `Integration tests need RabbitMQ (${AMQP_URL}) and Redis (${REDIS_URL}); not answering: ${missing.join(', ')}.\n` +
          'Start them (Debian: `rabbitmq-server -detached` and `redis-server --daemonize yes`), or run ' +
          '`docker compose up -d rabbitmq redis`, or point AMQP_URL / REDIS_URL at running servers.',
      );
    }
    const { GenericContainer, Wait } = await import('testcontainers');
    if (missing.includes('rabbitmq')) {
      const c = await new GenericContainer('rabbitmq:3.13-management')
        .withExposedPorts(5672)
        .withWaitStrategy(Wait.forLogMessage('Server startup complete'))
        .start();
      process.env.AMQP_URL = `amqp://guest:guest@${c.getHost()}:${c.getMappedPort(5672)}`;
      stops.push(() => c.stop());
    }
    if (missing.includes('redis')) {
      const c = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start();
      process.env.REDIS_URL = `redis://${c.getHost()}:${c.getMappedPort(6379)}`;
      stops.push(() => c.stop());
    }
    project.provide('amqpUrl' as never, process.env.AMQP_URL as never);
    project.provide('redisUrl' as never, process.env.REDIS_URL as never);
  }
  return async () => {
    for (const stop of stops) await stop();
  };
}
