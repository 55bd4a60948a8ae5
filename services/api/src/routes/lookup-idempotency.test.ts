import { describe, expect, it } from 'vitest';
import type { InjectOptions } from 'fastify';
import { harness, type Harness } from '../testing/app-harness.ts';

describe('Idempotency-Key', () => {
  const post = (h: Harness, body: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'POST', url: '/api/lookup', payload: body as InjectOptions['payload'], headers: { 'content-type': 'application/json', ...headers } });

  it('returns the same job for the same key and body, and creates nothing new', async () => {
    const h = await harness();
    const first = await post(h, { target: '8.8.8.8', services: ['GeoIP'] }, { 'idempotency-key': 'abc-1' });
    const second = await post(h, { target: ' 8.8.8.8 ', services: [0] }, { 'idempotency-key': 'abc-1' });
    expect(first.statusCode).toBe(202);
    expect(second.statusCode).toBe(202);
    expect(second.json().jobId).toBe(first.json().jobId);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.headers.location).toBe(`/api/lookup/${first.json().jobId}`);
    expect(h.jobs.jobs.size).toBe(1);
    expect(h.dispatched).toHaveLength(1);
  });

  it('answers 409 for the same key with a different body; other keys and no key are independent', async () => {
    const h = await harness();
    const first = await post(h, { target: '8.8.8.8' }, { 'idempotency-key': 'k' });
    const conflict = await post(h, { target: '8.8.4.4' }, { 'idempotency-key': 'k' });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json()).toMatchObject({ error: 'Idempotency key reused' });
    expect(conflict.json().message).toContain(first.json().jobId);
    expect((await post(h, { target: '8.8.4.4' }, { 'idempotency-key': 'k2' })).statusCode).toBe(202);
    expect((await post(h, { target: '8.8.8.8' })).json().jobId).not.toBe(first.json().jobId);
    expect(h.jobs.jobs.size).toBe(3);
  });

  it('frees the key when the job could not be announced, so a retry succeeds', async () => {
    const h = await harness();
    h.setPublishFails(true);
    expect((await post(h, { target: '8.8.8.8' }, { 'idempotency-key': 'retry-me' })).statusCode).toBe(503);
    h.setPublishFails(false);
    const retry = await post(h, { target: '8.8.8.8' }, { 'idempotency-key': 'retry-me' });
    expect(retry.statusCode).toBe(202);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(h.jobs.jobs.has(retry.json().jobId)).toBe(true);
  });

  it('refuses a malformed key with 400', async () => {
    const h = await harness();
    const res = await post(h, { target: '8.8.8.8' }, { 'idempotency-key': 'has space' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'Invalid Idempotency-Key' });
  });

  it('refuses an empty key with 400 (not a submission without one)', async () => {
    const h = await harness();
    const res = await post(h, { target: '8.8.8.8' }, { 'idempotency-key': '' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'Invalid Idempotency-Key' });
    expect(h.jobs.jobs.size).toBe(0);
  });
});
