import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '@lookup/logging';
import { startMetricsListener, type MetricsListener } from './listener.ts';
import { lazyCounter } from './registry.ts';

const logger = createLogger({ service: 'test', level: 'silent' });
const open: MetricsListener[] = [];
const blockers: Server[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.close()));
  await Promise.all(blockers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function listener(readiness: () => Record<string, boolean> | Promise<Record<string, boolean>>, extra: { readinessTimeoutMs?: number } = {}) {
  const l = await startMetricsListener({ host: '127.0.0.1', port: 0, readiness, logger, ...extra });
  open.push(l);
  return `http://127.0.0.1:${l.port}`;
}

describe('metrics listener', () => {
  it('serves the registry in the Prometheus text format on GET /metrics', async () => {
    const counter = lazyCounter('lookup_listener_test_total', 'a counter of this test', ['kind'] as const)();
    counter.labels('a').inc(3);
    const base = await listener(() => ({ rabbitmq: true, redis: true }));
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toContain('# TYPE lookup_listener_test_total counter');
    expect(text).toContain('lookup_listener_test_total{kind="a"} 3');
  });

  it('answers /health/live 200 and /health/ready 200 when every dependency is up', async () => {
    const base = await listener(() => ({ rabbitmq: true, redis: true }));
    const live = await fetch(`${base}/health/live`);
    expect([live.status, await live.json()]).toEqual([200, { status: 'ok' }]);
    const ready = await fetch(`${base}/health/ready`);
    expect([ready.status, await ready.json()]).toEqual([200, { status: 'ready', checks: { rabbitmq: 'up', redis: 'up' } }]);
  });

  it('answers /health/ready 503 naming what is down, while /health/live stays 200', async () => {
    let up = { rabbitmq: false, redis: true };
    const base = await listener(async () => up);
    const res = await fetch(`${base}/health/ready`);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(await res.json()).toEqual({ status: 'not ready', checks: { rabbitmq: 'down', redis: 'up' }, error: 'Not ready', message: 'rabbitmq does not answer' });
    expect((await fetch(`${base}/health/live`)).status).toBe(200);
    up = { rabbitmq: true, redis: true };
    expect((await fetch(`${base}/health/ready`)).status).toBe(200);
  });

  it('is not ready when the readiness check throws or hangs', async () => {
    const throwing = await listener(() => {
      throw new Error('boom');
    });
    expect((await fetch(`${throwing}/health/ready`)).status).toBe(503);
    const hanging = await listener(() => new Promise(() => undefined), { readinessTimeoutMs: 50 });
    const res = await fetch(`${hanging}/health/ready`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { checks: unknown }).checks).toEqual({ rabbitmq: 'down', redis: 'down' });
  });

  it('answers 404 JSON on any other path and 405 on another method', async () => {
    const base = await listener(() => ({ rabbitmq: true, redis: true }));
    for (const path of ['/', '/metric', '/health', '/metrics/x', '/api/lookup']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(((await res.json()) as { error: string }).error).toBe('Not found');
    }
    const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect((await fetch(`${base}/metrics?format=x`)).status).toBe(200);
  });

  it('takes an ephemeral port when the wanted one is in use and fallbackWhenInUse is set, else fails', async () => {
    const blocker = createServer();
    blockers.push(blocker);
    const taken = await new Promise<number>((r) => blocker.listen(0, '127.0.0.1', () => r((blocker.address() as { port: number }).port)));
    await expect(startMetricsListener({ host: '127.0.0.1', port: taken, readiness: () => ({}), logger })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    const l = await startMetricsListener({ host: '127.0.0.1', port: taken, readiness: () => ({}), logger, fallbackWhenInUse: true });
    open.push(l);
    expect(l.port).not.toBe(taken);
    expect((await fetch(`http://127.0.0.1:${l.port}/health/live`)).status).toBe(200);
  });
});
