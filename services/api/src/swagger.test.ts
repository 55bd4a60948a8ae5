import { describe, expect, it } from 'vitest';
import type { JobDocument } from '@lookup/contracts';
import { harness, post } from './testing/app-harness.ts';

describe('OpenAPI document', () => {
  it('is served at /swagger/json with every route, tags, summaries and response schemas', async () => {
    const h = await harness();
    const res = await h.app.inject({ method: 'GET', url: '/swagger/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    const expected: [string, string, string[]][] = [
      ['/api/lookup', 'post', ['202', '400', '413', '415', '429', '503']],
      ['/api/lookup/{jobId}', 'get', ['200', '400', '404', '429', '503']],
      ['/api/lookup/batch', 'post', ['202', '400', '409', '413', '415', '429', '503']],
      ['/api/lookup/batch/{batchId}', 'get', ['200', '400', '404', '429', '503']],
      ['/api/lookup/services', 'get', ['200', '429']],
      ['/health/live', 'get', ['200']],
      ['/health/ready', 'get', ['200', '503']],
      ['/metrics', 'get', ['200']],
    ];
    for (const [path, method, codes] of expected) {
      const op = doc.paths[path]?.[method];
      expect(op, `${method} ${path}`).toBeDefined();
      expect(op.tags.length).toBeGreaterThan(0);
      expect(op.summary.length).toBeGreaterThan(0);
      expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(codes));
    }
    expect(Object.keys(doc.paths).sort()).toEqual(expected.map(([p]) => p).sort());
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['JobDocument', 'SubmitLookupBody', 'ErrorBody', 'ServiceInfo']));
    expect(doc.paths['/api/lookup'].post.requestBody.content['application/json'].schema.$ref).toBe('#/components/schemas/SubmitLookupBody');    // The Prometheus text format, not JSON.
    expect(Object.keys(doc.paths['/metrics'].get.responses['200'].content)).toEqual(['text/plain']);
  });

  it('serves Swagger UI at /swagger', async () => {
    const h = await harness();
    const res = await h.app.inject({ method: 'GET', url: '/swagger/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
  });

  it('documents the edge limits and the disabled admin routes', async () => {
    const h = await harness();
    const doc = (await h.app.inject({ method: 'GET', url: '/swagger/json' })).json();
    for (const code of ['413', '414', '431', '408', 'RATE_LIMIT_UNAUTHENTICATED_PER_MIN']) expect(doc.info.description).toContain(code);
    expect(doc.tags.find((t: { name: string }) => t.name === 'admin').description).toMatch(/404/);
  });

  it('documents the API-key requirement when keys are configured', async () => {
    const h = await harness({ apiKeys: ['k'] });
    const doc = (await h.app.inject({ method: 'GET', url: '/swagger/json' })).json();
    expect(doc.paths['/api/lookup'].post.security).toEqual([{ apiKey: [] }, { bearer: [] }]);
    expect(doc.paths['/health/live'].get.security).toBeUndefined();
  });
});
