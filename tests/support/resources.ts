import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort, startService, stopService, type ServiceProcess } from './processes.ts';

/** Helpers for the pinned-resource tests: processes with short heartbeats, and HTTP calls to the API. */
export interface ResourceEnv {
  namespace: string;
  dataDir: string;
  env: Record<string, string>;
  cleanup(): void;
}

export function resourceEnv(namespace: string, extra: Record<string, string> = {}): ResourceEnv {
  const dataDir = mkdtempSync(path.join(tmpdir(), `${namespace}-data-`));
  return {
    namespace,
    dataDir,
    env: {
      NAMESPACE: namespace,
      RESOURCE_DATA_DIR: dataDir,
      // A 1 s lease (250 ms x 4): short enough for fast failover tests, long enough not to flap on a busy machine.
      RESOURCE_HEARTBEAT_MS: '250',
      RESOURCE_MAX_MISSED: '4',
      RESOURCE_PROXY_TIMEOUT_MS: '2500',
      RESOURCE_BODY_LIMIT_BYTES: '4096',
      ADMIN_API_KEY: 'admin-secret',
      RATE_LIMIT_API_PER_MIN: '0',
      RATE_LIMIT_SUBMIT_PER_MIN: '0',
      RATE_LIMIT_GLOBAL_PER_MIN: '0',
      RATE_LIMIT_RESOURCE_PER_MIN: '0',
      ...extra,
    },
    cleanup: () => rmSync(dataDir, { recursive: true, force: true }),
  };
}

export interface Api {
  url: string;
  port: number;
  process: ServiceProcess;
}

export async function startApi(env: Record<string, string>, port?: number): Promise<Api> {
  const p = port ?? (await freePort());
  const proc = await startService('api', { ...env, API_HOST: '127.0.0.1', API_PORT: String(p) });
  return { url: `http://127.0.0.1:${p}`, port: p, process: proc };
}

export interface Worker {
  id: string;
  process: ServiceProcess;
}

export async function startWorker(env: Record<string, string>, label = 'w'): Promise<Worker> {
  const id = `${label}-${randomBytes(3).toString('hex')}`;
  const proc = await startService('resource-worker', { ...env, RESOURCE_WORKER_ID: id });
  return { id, process: proc };
}

export async function stopAll(items: { process: ServiceProcess }[]): Promise<void> {
  await Promise.all(
    items.map(async (i) => {
      // A SIGSTOPped process must be continued before it can act on SIGTERM.
      if (i.process.child.exitCode === null && i.process.child.signalCode === null) i.process.child.kill('SIGCONT');
      await stopService(i.process, 5_000);
    }),
  );
}

export interface SqlAnswer {
  status: number;
  body: any;
  owner: string | undefined;
  epoch: number | undefined;
  headers: Headers;
}

/** A SQL request to resource `db/<db>`; with `timeoutMs` the request is aborted (and throws) when no answer came by then. */
export async function sql(apiUrl: string, db: string, query: string, params?: unknown[], options: { timeoutMs?: number } = {}): Promise<SqlAnswer> {
  const res = await fetch(`${apiUrl}/api/resources/db/${db}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(params === undefined ? { query } : { query, params }),
    signal: options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  const epoch = res.headers.get('x-resource-epoch');
  return { status: res.status, body, owner: res.headers.get('x-resource-owner') ?? undefined, epoch: epoch ? Number(epoch) : undefined, headers: res.headers };
}

/** Retries through 503/504 (failover in progress) until a 200, or throws after timeoutMs. */
export async function sqlUntilOk(apiUrl: string, db: string, query: string, params?: unknown[], timeoutMs = 30_000): Promise<SqlAnswer> {
  const deadline = Date.now() + timeoutMs;
  let last: SqlAnswer | undefined;
  while (Date.now() < deadline) {
    last = await sql(apiUrl, db, query, params);
    if (last.status === 200) return last;
    if (last.status !== 503 && last.status !== 504) throw new Error(`unexpected ${last.status}: ${JSON.stringify(last.body)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no 200 within ${timeoutMs} ms; last: ${last?.status} ${JSON.stringify(last?.body)}`);
}

/** A raw HTTP request (no URL normalisation, unlike fetch), for path-traversal tests. */
export function rawHttp(
  port: number,
  method: string,
  rawPath: string,
  body?: Buffer | string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path: rawPath, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** An admin call; `key: null` sends no admin key. */
export async function admin(apiUrl: string, method: string, pathName: string, body?: unknown, key: string | null = 'admin-secret'): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (key !== null) headers['x-admin-key'] = key;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${apiUrl}/api/admin/resources${pathName}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Runs rabbitmqctl against the shared local broker (tests of broker-side faults); undefined when it is not installed. */
export function rabbitmqctl(args: string[]): string {
  return execFileSync('rabbitmqctl', ['-q', ...args], { encoding: 'utf8', timeout: 60_000 });
}

export function hasRabbitmqctl(): boolean {
  try {
    execFileSync('rabbitmqctl', ['-q', 'status'], { stdio: 'ignore', timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

/** Closes the broker connection(s) whose connection_name is `name` (as RabbitMQ does on an operator's request). */
export function closeNamedConnection(name: string): number {
  const rows = rabbitmqctl(['list_connections', 'pid', 'client_properties']).split('\n');
  const pids = rows.filter((r) => r.includes(`"connection_name","${name}"`)).map((r) => r.split('\t')[0]!);
  for (const pid of pids) rabbitmqctl(['close_connection', pid, 'closed by a test']);
  return pids.length;
}
