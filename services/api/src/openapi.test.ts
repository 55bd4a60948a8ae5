import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isIP } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config } from '@lookup/config';
import { SERVICE_CATALOGUE, serviceDataSchemas } from '@lookup/contracts';
import { createLogger } from '@lookup/logging';
import { buildApp } from './app.ts';
import { createJobEventHub } from './job-events.ts';
import type { ApiDeps } from './deps.ts';

// The OpenAPI document as Swagger UI shows it, with every optional route present (API_KEYS and ADMIN_API_KEY
// set, dead letters, resources and the event stream wired): examples that "Try it out" can send as they are,
// security requirements on the operations that need them, and no "Default Response".

type Operation = {
  security?: Record<string, string[]>[];
  requestBody?: { content: Record<string, { example?: unknown; examples?: Record<string, unknown>; schema?: unknown }> };
  responses: Record<string, { description?: string }>;
};
type Doc = { paths: Record<string, Record<string, Operation>>; components: Record<string, unknown> };

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

async function buildDocApp(overrides: Partial<Config>): Promise<FastifyInstance> {
  const config: Readonly<Config> = Object.freeze({ ...loadConfig({}), dnsServers: ['127.0.0.1:9'], ...overrides });
  const unused = async (): Promise<never> => {
    throw new Error('not called while reading the document');
  };
  const deps: ApiDeps = {
    config,
    logger: createLogger({ service: 'api-test', level: 'silent', destination: { write: () => undefined } }),
    jobs: { create: unused, discard: unused, getDocument: unused, cancel: unused, markNotified: unused },
    jobList: { list: unused },
    batches: { createMany: unused, discardMany: unused, getBatch: unused },
    idempotency: { claim: unused, release: unused },
    rateLimiter: { check: async () => ({ allowed: true, retryAfterSeconds: 0, limit: 100, remaining: 99 }) },
    publishJobSubmitted: unused,
    publishCommand: unused,
    publishJobCompleted: unused,
    readiness: async () => ({ rabbitmq: true, redis: true }),
    jobEvents: createJobEventHub().source,
    callbacks: { status: unused },
    tenantQuota: { acquire: unused, release: unused, usage: unused },
    deadLetters: { list: unused, replay: unused, discard: unused } as unknown as ApiDeps['deadLetters'],
    resources: { forward: unused } as unknown as ApiDeps['resources'],
  };
  return buildApp(deps);
}

function operations(doc: Doc): [string, string, Operation][] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, op]) => [path, method, op] as [string, string, Operation]),
  );
}

/**
 * Every string value under a `target` key anywhere in the document (request and schema examples), and every string
 * inside an `example` or `examples` that is an IP address.
 */
function exampleTargets(node: unknown, found: string[] = [], inExample = false): string[] {
  if (typeof node === 'string' && inExample && isIP(node) !== 0) found.push(node);
  else if (Array.isArray(node)) for (const item of node) exampleTargets(item, found, inExample);
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'target' && typeof value === 'string') found.push(value);
      else exampleTargets(value, found, inExample || key === 'example' || key === 'examples');
    }
  }
  return found;
}

function isLoopbackOrTest(target: string): boolean {
  const host = target.replace(/^\[|\]$/g, '');
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return /(^|\.)test$/i.test(host) || host === 'localhost';
}

describe('OpenAPI document with API_KEYS and ADMIN_API_KEY set', () => {
  let app: FastifyInstance;
  let doc: Doc;
  let ops: [string, string, Operation][];
  beforeAll(async () => {
    app = await buildDocApp({ apiKeys: ['k-one'], adminApiKey: 'sesame' });
    const res = await app.inject({ method: 'GET', url: '/swagger/json' });
    expect(res.statusCode).toBe(200);
    doc = res.json() as Doc;
    ops = operations(doc);
  });
  afterAll(async () => {
    await app?.close();
  });

  it('has the optional routes (admin, resources, event stream), so the checks below cover them', () => {
    const paths = Object.keys(doc.paths);
    expect(paths).toEqual(expect.arrayContaining(['/api/lookup', '/api/lookup/{jobId}/callbacks', '/api/admin/dead-letters', '/api/admin/resources/move', '/api/resources/{*}']));
    expect(paths.some((p) => p.endsWith('/events'))).toBe(true);
  });

  it("documents GET /api/usage (the tenant's quotas and usage) and the tenant quota's 429 on both submissions", () => {
    const usage = doc.paths['/api/usage']!.get!;
    expect(Object.keys(usage.responses)).toEqual(expect.arrayContaining(['200', '404', '429', '503']));
    const schemas = (doc.components as { schemas: Record<string, { properties?: Record<string, unknown> }> }).schemas;
    const usageSchema = Object.values(schemas).find((x) => x.properties && 'jobsInFlightLimit' in x.properties);
    expect(Object.keys(usageSchema?.properties ?? {})).toEqual(['tenant', 'day', 'jobsToday', 'jobsPerDay', 'jobsInFlight', 'jobsInFlightLimit']);
    for (const path of ['/api/lookup', '/api/lookup/batch']) expect(doc.paths[path]!.post!.responses['429']?.description, path).toMatch(/TENANT_QUOTA_EXCEEDED/);
  });

  it('has an example for every media type of every request body', () => {
    const withBody = ops.filter(([, , op]) => op.requestBody);
    expect(withBody.length).toBeGreaterThanOrEqual(5); // submit, dead-letter replay, move, unpin, the resource proxy
    for (const [path, method, op] of withBody) {
      const media = Object.entries(op.requestBody!.content);
      expect(media.length, `${method} ${path}`).toBeGreaterThan(0);
      for (const [type, content] of media) {
        const has = content.example !== undefined || Object.keys(content.examples ?? {}).length > 0;
        expect(has, `${method} ${path} ${type}: no example`).toBe(true);
      }
    }
  });

  it('shows the loopback submission with explicit services as the example of POST /api/lookup', () => {
    const content = doc.paths['/api/lookup']!.post!.requestBody!.content['application/json']!;
    expect(content.example).toEqual({ target: '127.0.0.2', services: ['GeoIP', 'ReverseDNS'] });
  });

  it('gives the resource proxy a SQLite request body for the methods that carry one', () => {
    const proxy = doc.paths['/api/resources/{*}']!;
    for (const method of ['post', 'put', 'patch']) {
      const content = proxy[method]?.requestBody?.content['application/json'];
      expect(content?.example, method).toEqual({ query: 'SELECT 1 AS one', params: [] });
    }
    for (const method of ['get', 'delete']) expect(proxy[method]?.requestBody, method).toBeUndefined();
  });

  it('puts the API-key requirement on every /api operation and the admin key on every /api/admin operation', () => {
    const apiOps = ops.filter(([path]) => path.startsWith('/api/'));
    expect(apiOps.length).toBeGreaterThan(10);
    for (const [path, method, op] of apiOps) {
      const alternatives = op.security ?? [];
      expect(alternatives.length, `${method} ${path}: no security`).toBeGreaterThan(0);
      // Each alternative is a set of schemes sent together; every one must carry an API key (header or Bearer).
      for (const alt of alternatives) expect(Object.keys(alt).some((s) => s === 'apiKey' || s === 'bearer'), `${method} ${path}`).toBe(true);
      if (path.startsWith('/api/admin/')) for (const alt of alternatives) expect(Object.keys(alt), `${method} ${path}`).toContain('adminKey');
      else for (const alt of alternatives) expect(Object.keys(alt), `${method} ${path}`).not.toContain('adminKey');
    }
    for (const [path, method, op] of ops.filter(([path]) => !path.startsWith('/api/'))) expect(op.security, `${method} ${path}`).toBeUndefined();
    const schemes = (doc.components as { securitySchemes: Record<string, { type: string; name?: string; scheme?: string }> }).securitySchemes;
    expect(schemes.apiKey).toMatchObject({ type: 'apiKey', in: 'header', name: 'X-API-Key' });
    expect(schemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(schemes.adminKey).toMatchObject({ type: 'apiKey', in: 'header', name: 'X-Admin-Key' });
  });

  it('describes every response (no "Default Response")', () => {
    for (const [path, method, op] of ops) {
      for (const [code, response] of Object.entries(op.responses)) {
        expect(response.description, `${method} ${path} ${code}`).toBeTruthy();
        expect(response.description, `${method} ${path} ${code}`).not.toBe('Default Response');
      }
    }
  });

  it('has the data schema of every catalogue service: ServiceResult is one of a result per service, by serviceType', () => {
    type Schema = { $ref?: string; properties?: Record<string, Schema>; required?: string[]; anyOf?: Schema[]; oneOf?: Schema[]; items?: Schema; enum?: unknown[] };
    const schemas = doc.components.schemas as Record<string, Schema & { discriminator?: { propertyName: string; mapping: Record<string, string> } }>;
    const ref = (name: string) => `#/components/schemas/${name}`;
    const generated = serviceDataSchemas();
    expect(schemas.JobDocument!.properties!.results!.items).toEqual({ $ref: ref('ServiceResult') });
    expect(schemas.ServiceResult!.oneOf).toEqual(SERVICE_CATALOGUE.map((s) => ({ $ref: ref(`${s.name}Result`) })));
    expect(schemas.ServiceResult!.discriminator).toEqual({
      propertyName: 'serviceType',
      mapping: Object.fromEntries(SERVICE_CATALOGUE.map((s) => [s.name, ref(`${s.name}Result`)])),
    });
    for (const { name } of SERVICE_CATALOGUE) {
      const result = schemas[`${name}Result`];
      expect(result?.properties?.serviceType, name).toMatchObject({ type: 'string', enum: [name] });
      expect(result!.required, name).toEqual(expect.arrayContaining(['serviceType', 'status', 'data', 'errorMessage']));
      expect(result!.properties!.data!.anyOf![0], name).toEqual({ $ref: ref(`${name}Data`) });
      const data = schemas[`${name}Data`];
      const source = generated[name] as Schema | undefined;
      expect(source, `${name}: no schema in the generated service-data-schemas.json (npm run generate)`).toBeDefined();
      expect(data, `${name}Data`).toBeDefined();
      // The published schema has the generated one's shape: the same properties and required fields, at the top
      // level or in each alternative of a union (DNS answers a domain and an IP address differently).
      const shape = (s: Schema): unknown =>
        s.anyOf ? { anyOf: s.anyOf.map(shape) } : { properties: Object.keys(s.properties ?? {}), required: s.required };
      expect(shape(data!), name).toEqual(shape(source!));
    }
  });

  it('uses only loopback or .test targets in its examples', () => {
    const targets = exampleTargets(doc);
    expect(targets.length).toBeGreaterThan(0);
    for (const target of targets) expect(isLoopbackOrTest(target), target).toBe(true);
  });
});

describe('OpenAPI document without API_KEYS', () => {
  it('asks only the admin key of admin operations, and nothing of the others', async () => {
    const app = await buildDocApp({ apiKeys: [], adminApiKey: 'sesame' });
    try {
      const doc = (await app.inject({ method: 'GET', url: '/swagger/json' })).json() as Doc;
      for (const [path, method, op] of operations(doc)) {
        if (path.startsWith('/api/admin/')) expect(op.security, `${method} ${path}`).toEqual([{ adminKey: [] }]);
        else expect(op.security, `${method} ${path}`).toBeUndefined();
      }
    } finally {
      await app.close();
    }
  });
});
