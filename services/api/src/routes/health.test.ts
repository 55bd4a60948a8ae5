import { describe, expect, it } from 'vitest';
import { harness } from '../testing/app-harness.ts';

describe('health', () => {
  it('/health/live answers ok without touching dependencies', async () => {
    const h = await harness();
    h.setReady({ rabbitmq: false, redis: false });
    const res = await h.app.inject({ method: 'GET', url: '/health/live' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('/health/ready answers 200 when both answer', async () => {
    const h = await harness();
    const res = await h.app.inject({ method: 'GET', url: '/health/ready' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', checks: { rabbitmq: 'up', redis: 'up' } });
  });

  it('/health/ready answers 503 naming the failed dependency', async () => {
    const h = await harness();
    h.setReady({ rabbitmq: false, redis: true });
    let res = await h.app.inject({ method: 'GET', url: '/health/ready' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 'not ready', checks: { rabbitmq: 'down', redis: 'up' }, message: 'rabbitmq does not answer' });
    h.setReady({ rabbitmq: true, redis: false });
    res = await h.app.inject({ method: 'GET', url: '/health/ready' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ checks: { rabbitmq: 'up', redis: 'down' }, error: 'Not ready', message: 'redis does not answer' });
  });

  it('/health/ready answers 503 when the probe itself throws', async () => {
    const h = await harness();
    h.deps.readiness = async () => {
      throw new Error('boom');
    };
    const res = await h.app.inject({ method: 'GET', url: '/health/ready' });
    expect(res.statusCode).toBe(503);
    expect(res.json().checks).toEqual({ rabbitmq: 'down', redis: 'down' });
  });
});
