import { describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { JobDocument } from '@lookup/contracts';
import { harness, post, JOB_ID } from './testing/app-harness.ts';

describe('errors are JSON everywhere', () => {
  it('unknown route: 404 JSON', async () => {
    const h = await harness();
    const res = await h.app.inject({ method: 'GET', url: '/nope?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: 'Not found', message: 'No route for GET /nope', code: 'NOT_FOUND' });
  });

  it('GET / leads to the dashboard', async () => {
    const h = await harness();
    const res = await h.app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/dashboard');
  });

  it('wrong method: 405 JSON with Allow', async () => {
    const h = await harness();
    let res = await h.app.inject({ method: 'DELETE', url: '/api/lookup' });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD, POST');
    expect(res.json()).toMatchObject({ error: 'Method not allowed' });
    res = await h.app.inject({ method: 'PUT', url: `/api/lookup/${JOB_ID}`, payload: {} });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD, DELETE');
    res = await h.app.inject({ method: 'POST', url: '/health/live' });
    expect(res.statusCode).toBe(405);
    // The static route names the resource: DELETE /api/lookup/{jobId} would take 'services' as a job id, but
    // /api/lookup/services is the catalogue, which is read-only.
    res = await h.app.inject({ method: 'PATCH', url: '/api/lookup/services' });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD');
  });

  it('a malformed URL: 400 JSON', async () => {
    const h = await harness();
    const res = await h.app.inject({ method: 'GET', url: '/api/lookup/%E0%A4%A' });
    expect(res.statusCode).toBe(400);
    expect(typeof res.json().error).toBe('string');
  });

  it('an unexpected internal error: 500 {error, message} without a stack trace, logged', async () => {
    const h = await harness();
    // Store failures are 503 by design; a document that breaks the response schema is a real bug.
    h.jobs.getDocument = async () => ({ broken: true }) as unknown as JobDocument;
    const res = await h.app.inject({ method: 'GET', url: `/api/lookup/${JOB_ID}` });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: 'Internal error', message: expect.any(String), code: 'INTERNAL_ERROR' });
    expect(res.body).not.toMatch(/at |stack/);
    expect(h.logs.some((l) => l.level === 'error')).toBe(true);
  });
});

/** The suite's one error body: `{error, message, code?, details?}` (plus `retryAfter` with a Retry-After header). */
function expectErrorBody(body: Record<string, unknown>, where: string): void {
  expect(Object.keys(body).filter((k) => !['error', 'message', 'code', 'details', 'retryAfter'].includes(k)), where).toEqual([]);
  expect(typeof body.error, where).toBe('string');
  expect(typeof body.message, where).toBe('string');
  expect((body.message as string).length, where).toBeGreaterThan(0);
  if ('code' in body) expect(body.code, where).toMatch(/^[A-Z][A-Z0-9_]*$/);
  if ('details' in body) expect(typeof body.details === 'object' && body.details !== null, where).toBe(true);
}

describe('one error body everywhere (issue 12)', () => {
  it('every API 4xx and 5xx answer is {error, message, code?, details?}', async () => {
    const h = await harness({ adminApiKey: 'sesame' });
    const answers: [string, Awaited<ReturnType<FastifyInstance['inject']>>][] = [
      ['400 validation', await post(h.app, { services: ['GeoIP'] })],
      ['400 target', await post(h.app, { target: '256.1.1.1' })],
      ['400 JSON', await post(h.app, '{nope', { headers: { 'content-type': 'application/json' } })],
      ['413', await post(h.app, { target: 'x'.repeat(2000) })],
      ['415', await post(h.app, 'target=x', { headers: { 'content-type': 'text/plain' } })],
      ['400 job id', await h.app.inject({ method: 'GET', url: '/api/lookup/not-a-uuid' })],
      ['404 job', await h.app.inject({ method: 'GET', url: `/api/lookup/${JOB_ID}` })],
      ['404 route', await h.app.inject({ method: 'GET', url: '/nope' })],
      ['405', await h.app.inject({ method: 'DELETE', url: '/api/lookup' })],
      ['401 admin', await h.app.inject({ method: 'GET', url: '/api/admin/dead-letters' })],
    ];
    h.jobs.getDocument = async () => ({ broken: true }) as unknown as JobDocument;
    answers.push(['500', await h.app.inject({ method: 'GET', url: `/api/lookup/${JOB_ID}` })]);
    for (const [where, res] of answers) {
      expect(res.statusCode, where).toBeGreaterThanOrEqual(400);
      expect(res.headers['content-type'], where).toMatch(/^application\/json/);
      expectErrorBody(res.json(), where);
    }
  });
});
