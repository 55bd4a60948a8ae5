import { describe, expect, it } from 'vitest';
import { harness, JOB_ID, sampleDocument } from '../testing/app-harness.ts';

describe('GET /api/lookup/:jobId', () => {
  it('answers the job document, data objects with arbitrary nested fields intact', async () => {
    const h = await harness();
    const doc = sampleDocument();
    h.jobs.documents.set(JOB_ID, doc);
    const res = await h.app.inject({ method: 'GET', url: `/api/lookup/${JOB_ID}` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(doc);
    expect(res.headers['x-job-id']).toBe(JOB_ID);
  });

  it('accepts an upper-case id', async () => {
    const h = await harness();
    h.jobs.documents.set(JOB_ID, sampleDocument());
    const res = await h.app.inject({ method: 'GET', url: `/api/lookup/${JOB_ID.toUpperCase()}` });
    expect(res.statusCode).toBe(200);
  });

  it('400 for a malformed id', async () => {
    const h = await harness();
    for (const id of ['not-a-uuid', '123', `${JOB_ID}x`, `urn:uuid:${JOB_ID}`, 'x'.repeat(300)]) {
      const res = await h.app.inject({ method: 'GET', url: `/api/lookup/${encodeURIComponent(id)}` });
      expect(res.statusCode, id).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, id).toBeLessThan(500);
      expect(typeof res.json().error).toBe('string');
    }
    const res = await h.app.inject({ method: 'GET', url: '/api/lookup/not-a-uuid' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: 'Invalid job id', message: "'not-a-uuid' is not a UUID", code: 'INVALID_JOB_ID' });
  });

  it('404 for an unknown id', async () => {
    const h = await harness();
    const res = await h.app.inject({ method: 'GET', url: '/api/lookup/00000000-0000-4000-8000-000000000000' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'Job not found' });
  });

  it('503 when the store fails', async () => {
    const h = await harness();
    h.jobs.failGet = true;
    const res = await h.app.inject({ method: 'GET', url: `/api/lookup/${JOB_ID}` });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.json().error).toBe('Service unavailable');
  });
});
