import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { REPO_ROOT, AMQP_URL, REDIS_URL } from './env.ts';

const scripts = (JSON.parse(readFileSync(`${REPO_ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> }).scripts;

/**
 * Each service's node arguments, exactly as its `start:<name>` script runs it (the compiled JavaScript under
 * the `lookup-dist` condition), so tests run what users run. `buildServices()` compiles it first.
 */
export const ENTRY_POINTS: Record<string, string[]> = Object.fromEntries(
  Object.entries(scripts)
    .filter(([key]) => key.startsWith('start:'))
    .map(([key, command]) => {
      const [node, ...args] = command.split(' ');
      if (node !== 'node') throw new Error(`start script ${key} does not run node: ${command}`);
      return [key.slice('start:'.length), args];
    }),
);

/** Compiles every package to dist/ (scripts/build.mjs; well under a second). */
export function buildServices(): void {
  execFileSync(process.execPath, ['scripts/build.mjs', '--quiet'], { cwd: REPO_ROOT, stdio: 'inherit' });
}

const READY_LINE: Record<string, string> = {
  api: 'Server listening',
  saga: 'saga ready',
};

export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  /** Every line the process printed (JSON log lines), for assertions and for debugging a failure. */
  lines: string[];
  exited: Promise<number | null>;
}

/**
 * A port to hand to a process that binds it later (API_PORT and the like). Not one the kernel picks for `listen(0)`:
 * that is the ephemeral range, where any outgoing connection of the busy test machine may take it as its local port
 * before the process binds it (a CI run failed so, EADDRINUSE 5 s later). Ports below the range are never assigned to
 * outgoing connections; each vitest worker draws from its own slice of them, and never hands out one port twice.
 */
export async function freePort(): Promise<number> {
  const [low, high] = belowEphemeral();
  if (high - low >= SLICES * 16) {
    const span = Math.floor((high - low + 1) / SLICES);
    const start = low + (Number(process.env.VITEST_POOL_ID ?? process.pid) % SLICES) * span;
    for (let tries = 0; tries < 100; tries++) {
      const port = start + Math.floor(Math.random() * span);
      if (handedOut.has(port)) continue;
      if (await bindable(port)) {
        handedOut.add(port);
        return port;
      }
    }
  }
  // A machine whose ephemeral range leaves no room below it: the kernel's choice.
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

const SLICES = 32;
const handedOut = new Set<number>();

/** The ports from 10000 to just below the kernel's ephemeral range (Linux: ip_local_port_range; 32768 elsewhere). */
function belowEphemeral(): [number, number] {
  let first = 32768;
  try {
    first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || first;
  } catch {
    // not Linux: IANA's dynamic range starts at 49152, so 32768 is conservative
  }
  return [10_000, first - 1];
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Starts one service process and resolves once it says it is ready. */
export async function startService(name: string, env: Record<string, string>, timeoutMs = 30_000): Promise<ServiceProcess> {
  const args = ENTRY_POINTS[name];
  if (!args) throw new Error(`unknown service ${name}`);
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    // METRICS_PORT 0: each process's metrics listener on an ephemeral port (its `metrics listening` line says which),
    // so test processes never compete for 9464.
    env: { ...process.env, AMQP_URL, REDIS_URL, LOG_LEVEL: 'info', METRICS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const readyText = READY_LINE[name] ?? 'worker ready';
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready after ${timeoutMs} ms:\n${lines.slice(-20).join('\n')}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        lines.push(line);
        if (line.includes(readyText)) {
          clearTimeout(timer);
          resolve();
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before it was ready:\n${lines.slice(-20).join('\n')}`));
    });
  });
  try {
    await ready;
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return { name, child, lines, exited };
}

/** SIGTERM, then SIGKILL if it has not exited in time. */
export async function stopService(p: ServiceProcess, timeoutMs = 15_000): Promise<number | null> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.child.exitCode;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  return code;
}

export interface Suite {
  apiUrl: string;
  namespace: string;
  processes: ServiceProcess[];
  stop(): Promise<void>;
}

/** Starts the named services (all six by default) in one namespace, the API on a free loopback port. */
export async function startSuite(options: {
  namespace: string;
  env?: Record<string, string>;
  services?: string[];
  /** How long each process may take to say it is ready (default startService's 30 s). */
  readyTimeoutMs?: number;
}): Promise<Suite> {
  const port = await freePort();
  const env = { NAMESPACE: options.namespace, API_HOST: '127.0.0.1', API_PORT: String(port), ...options.env };
  const names = options.services ?? Object.keys(ENTRY_POINTS).filter((n) => n !== 'resource-worker');
  const started = await Promise.allSettled(names.map((n) => startService(n, env, options.readyTimeoutMs)));
  const processes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    // Leave nothing running behind a failed start.
    await Promise.all(processes.map((p) => stopService(p)));
    throw failed.reason;
  }
  if (names.includes('api')) {
    // Listening is not ready: the API answers 503 until its broker connection is up.
    await waitFor(async () => ((await fetch(`http://127.0.0.1:${port}/health/ready`).catch(() => undefined))?.status === 200 ? true : undefined), options.readyTimeoutMs ?? 30_000).catch(async (err) => {
      await Promise.all(processes.map((p) => stopService(p)));
      throw err;
    });
  }
  return {
    apiUrl: `http://127.0.0.1:${port}`,
    namespace: options.namespace,
    processes,
    async stop() {
      await Promise.all(processes.map((p) => stopService(p)));
    },
  };
}

/** Polls until fn returns a value other than undefined, or throws after timeoutMs. */
export async function waitFor<T>(fn: () => Promise<T | undefined>, timeoutMs = 20_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
