import { describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { parseExposition, sampleValue } from '@lookup/metrics';
import { harness, post } from '../testing/app-harness.ts';

/** The registry is the process's: counters carry over between tests, so each test checks what it changed. */
async function scrape(app: FastifyInstance) {
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  expect(res.statusCode).toBe(200);
  return parseExposition(res.body);
}

describe('GET /metrics', () => {
  it('serves the Prometheus text format, outside the API key and the rate limits', async () => {
    const h = await harness({ apiKeys: ['k-one'] });
    h.limiter.refuse = { allowed: false, retryAfterSeconds: 9, limit: 1, remaining: 0 };
    const res = await h.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.body).toContain('# TYPE lookup_jobs_submitted_total counter');
    expect(h.limiter.calls).toEqual([]);
  });

  it('counts a job once the broker confirmed its job.submitted, and not a submission that failed', async () => {
    const h = await harness();
    const before = sampleValue(await scrape(h.app), 'lookup_jobs_submitted_total');
    expect((await post(h.app, { target: '8.8.8.8' })).statusCode).toBe(202);
    expect((await post(h.app, { target: '8.8.4.4', services: ['GeoIP'] })).statusCode).toBe(202);
    h.setPublishFails(true);
    expect((await post(h.app, { target: '1.1.1.1' })).statusCode).toBe(503);
    expect((await post(h.app, { target: 'not a target' })).statusCode).toBe(400);
    expect(sampleValue(await scrape(h.app), 'lookup_jobs_submitted_total') - before).toBe(2);
  });

  it('counts each batch job accepted', async () => {
    const h = await harness();
    const before = sampleValue(await scrape(h.app), 'lookup_jobs_submitted_total');
    const res = await h.app.inject({ method: 'POST', url: '/api/lookup/batch', payload: { items: [{ target: '8.8.8.8' }, { target: 'bad target' }, { target: '9.9.9.9' }] } });
    expect(res.statusCode).toBe(202);
    expect(res.json().jobs).toHaveLength(2);
    expect(sampleValue(await scrape(h.app), 'lookup_jobs_submitted_total') - before).toBe(2);
  });

  it('counts a cancellation as a job completed with status Cancelled, once', async () => {
    const h = await harness();
    const before = sampleValue(await scrape(h.app), 'lookup_jobs_completed_total', { status: 'Cancelled' });
    const jobId = (await post(h.app, { target: '8.8.8.8' })).json().jobId as string;
    expect((await h.app.inject({ method: 'DELETE', url: `/api/lookup/${jobId}` })).statusCode).toBe(202);
    expect((await h.app.inject({ method: 'DELETE', url: `/api/lookup/${jobId}` })).statusCode).toBe(409);
    const samples = await scrape(h.app);
    expect(sampleValue(samples, 'lookup_jobs_completed_total', { status: 'Cancelled' }) - before).toBe(1);
    // The saga counts the other endings; the API exposes only its own.
    expect(samples.some((s) => s.name === 'lookup_jobs_completed_total' && s.labels.status === 'Completed')).toBe(false);
  });
});
