import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@lookup/logging';
import { exposition } from './registry.ts';

/** Which dependencies answer right now, by name (`rabbitmq`, `redis`). */
export type Readiness = () => Promise<Record<string, boolean>> | Record<string, boolean>;

export interface MetricsListenerOptions {
  host: string;
  /** 0: an ephemeral port (the one taken is in the `metrics listening` line and in the result). */
  port: number;
  readiness: Readiness;
  logger: Logger;
  /** When `port` is taken: listen on an ephemeral port instead (and say so), rather than fail. */
  fallbackWhenInUse?: boolean;
  /** Longest a readiness check may take before it counts as not ready. */
  readinessTimeoutMs?: number;
}

export interface MetricsListener {
  readonly port: number;
  readonly server: Server;
  close(): Promise<void>;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The small HTTP listener of a process without an HTTP API (the saga, each lookup worker, the resource worker):
 * `GET /metrics` (Prometheus text), `GET /health/live` (200 while the process runs) and `GET /health/ready` (200 when
 * every dependency of `readiness` answers, else 503 naming the ones that do not). Anything else: 404 (405 for another
 * method on those paths), JSON. Plain node:http: no framework for three routes.
 */
export async function startMetricsListener(options: MetricsListenerOptions): Promise<MetricsListener> {
  const { host, logger, readiness, readinessTimeoutMs = 3_000 } = options;
  const server = createServer((req, res) => {
    handle(req, res, readiness, readinessTimeoutMs).catch((err: unknown) => {
      logger.warn({ err: (err as Error)?.message }, 'metrics listener request failed');
      if (!res.headersSent) send(res, 500, { error: 'Internal error', message: 'the metrics could not be collected' });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  let port: number;
  try {
    port = await listen(server, host, options.port);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || !options.fallbackWhenInUse) throw err;
    port = await listen(server, host, 0);
    logger.warn({ wanted: options.port, port }, `METRICS_PORT ${options.port} is in use; the metrics listener took port ${port} instead`);
  }
  logger.info({ url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`, port }, 'metrics listening');
  return {
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

async function handle(req: IncomingMessage, res: ServerResponse, readiness: Readiness, timeoutMs: number): Promise<void> {
  const path = (req.url ?? '/').split('?', 1)[0];
  if (path !== '/metrics' && path !== '/health/live' && path !== '/health/ready') {
    send(res, 404, { error: 'Not found', message: `no route ${req.method ?? 'GET'} ${path.slice(0, 200)}: this listener serves /metrics, /health/live and /health/ready` });
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    send(res, 405, { error: 'Method not allowed', message: `${path} answers GET and HEAD` });
    return;
  }
  if (path === '/health/live') return send(res, 200, { status: 'ok' });
  if (path === '/health/ready') {
    const checks = await probe(readiness, timeoutMs);
    const state = Object.fromEntries(Object.entries(checks).map(([k, up]) => [k, up ? 'up' : 'down']));
    const down = Object.keys(checks).filter((k) => !checks[k]);
    if (down.length === 0) return send(res, 200, { status: 'ready', checks: state });
    res.setHeader('retry-after', '5');
    return send(res, 503, { status: 'not ready', checks: state, error: 'Not ready', message: `${down.join(' and ')} ${down.length > 1 ? 'do' : 'does'} not answer` });
  }
  const { contentType, body } = await exposition();
  res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** The dependencies' answers; all down when the check fails or takes longer than timeoutMs. */
async function probe(readiness: Readiness, timeoutMs: number): Promise<Record<string, boolean>> {
  let timer: NodeJS.Timeout | undefined;
  const down = { rabbitmq: false, redis: false };
  const timeout = new Promise<Record<string, boolean>>((resolve) => {
    timer = setTimeout(() => resolve(down), timeoutMs);
  });
  try {
    return await Promise.race([Promise.resolve().then(readiness).catch(() => down), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function send(res: ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}
