import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config } from '@lookup/config';
import { createLogger } from '@lookup/logging';
import { buildApp } from '../app.ts';
import type { ApiDeps } from '../deps.ts';
import type { AdminResult, ProxyRequest, ProxyResult, ResourceRouter } from '../resources/resource-router.ts';
import { parseResourceUrl } from './resources.ts';

class FakeRouter implements ResourceRouter {
  readonly forwarded: ProxyRequest[] = [];
  next: ProxyResult = { type: 'response', status: 201, headers: { 'content-type': 'application/json', 'x-custom': 'yes', connection: 'close' }, body: Buffer.from('{"ok":true}'), owner: 'w1', epoch: 7 };
  async forward(request: ProxyRequest): Promise<ProxyResult> {
    this.forwarded.push(request);
    return this.next;
  }
  async listWorkers() {
    return [{ id: 'w1', healthy: true, draining: false, lastBeat: new Date(0).toISOString(), resources: ['db/a'] }];
  }
  async listPins() {
    return [{ key: 'db/a', owner: 'w1', epoch: 7, leased: true, ownerHealthy: true }];
  }
  async move(key: string, to?: string): Promise<AdminResult> {
    return { statusCode: 200, key, status: 'moved', owner: to ?? 'w2', epoch: 8, message: 'moved' };
  }
  async unpin(key: string): Promise<AdminResult> {
    return { statusCode: 200, key, status: 'released', owner: null, message: 'unpinned' };
  }
  async drain(worker: string): Promise<AdminResult> {
    return { statusCode: 202, worker, status: 'draining', message: 'draining' };
  }
}

const apps: FastifyInstance[] = [];
afterEach(async () => {
  while (apps.length) await apps.pop()!.close();
});

async function harness(overrides: Partial<Config> = {}) {
  const config = Object.freeze({ ...loadConfig({}), resourceBodyLimitBytes: 1024, adminApiKey: 'sesame', ...overrides });
  const resources = new FakeRouter();
  // Only what the resource routes touch; the lookup routes' dependencies are not exercised here.
  const deps = {
    config,
    logger: createLogger({ service: 'api-test', level: 'silent' }),
    rateLimiter: { check: async () => ({ allowed: true, retryAfterSeconds: 0, limit: 0, remaining: 0 }) },
    readiness: async () => ({ rabbitmq: true, redis: true }),
    resources,
  } as unknown as ApiDeps;
  const app = await buildApp(deps);
  apps.push(app);
  return { app, resources };
}

describe('parseResourceUrl', () => {
  it('takes the raw path after /api/resources/, percent-decoded, without the query string', () => {
    expect(parseResourceUrl('/api/resources/db/a?x=1&y=2')).toEqual({ key: 'db/a', query: 'x=1&y=2' });
    expect(parseResourceUrl('/api/resources/Games/World%20One')).toEqual({ key: 'Games/World One', query: '' });
    expect(parseResourceUrl('/api/resources/db/%2e%2e/x')).toHaveProperty('problem');
    expect(parseResourceUrl('/api/resources/db/%ZZ')).toHaveProperty('problem');
  });
});

describe('resource proxy routes', () => {
  it("relays the owner's status, headers and body, plus owner and epoch, forwarding the raw body of any type", async () => {
    const { app, resources } = await harness();
    const res = await app.inject({ method: 'PUT', url: '/api/resources/games/w1?tick=3', payload: 'raw bytes', headers: { 'content-type': 'text/plain', 'x-api-key': 'secret', 'x-trace': 't' } });
    expect(res.statusCode).toBe(201);
    expect(res.headers['x-resource-owner']).toBe('w1');
    expect(res.headers['x-resource-epoch']).toBe('7');
    expect(res.headers['x-custom']).toBe('yes');
    expect(res.json()).toEqual({ ok: true });
    const f = resources.forwarded[0]!;
    expect(f).toMatchObject({ key: 'games/w1', method: 'PUT', query: 'tick=3' });
    expect(f.body.toString()).toBe('raw bytes');
    expect(f.headers['x-trace']).toBe('t');
    expect(f.headers['x-api-key']).toBeUndefined();
  });

  it('answers 503 with Retry-After when no worker is live, and 504 when the owner does not answer', async () => {
    const { app, resources } = await harness();
    resources.next = { type: 'no-workers', retryAfterSeconds: 6 };
    const a = await app.inject({ method: 'POST', url: '/api/resources/db/x', payload: {} });
    expect(a.statusCode).toBe(503);
    expect(a.headers['retry-after']).toBe('6');
    expect(a.json()).toMatchObject({ error: 'Service unavailable', retryAfter: 6 });
    resources.next = { type: 'timeout', owner: 'w9', epoch: 3 };
    const b = await app.inject({ method: 'POST', url: '/api/resources/db/x', payload: {} });
    expect(b.statusCode).toBe(504);
    expect(b.json().error).toBe('Gateway timeout');
  });

  it('refuses bad keys with 400 and bodies over RESOURCE_BODY_LIMIT_BYTES with 413', async () => {
    const { app, resources } = await harness();
    // (inject() normalises dot segments like a browser; tests/resources.test.ts sends them raw.)
    for (const url of ['/api/resources/', '/api/resources', '/api/resources/db//x', '/api/resources/a%01b', '/api/resources/db/a%5C..%5Cb']) {
      const r = await app.inject({ method: 'GET', url });
      expect(r.statusCode, url).toBe(400);
    }
    const big = await app.inject({ method: 'POST', url: '/api/resources/db/x', payload: 'x'.repeat(2000), headers: { 'content-type': 'application/octet-stream' } });
    expect(big.statusCode).toBe(413);
    expect(big.json().message).toContain('1024');
    expect(resources.forwarded).toHaveLength(0);
  });
});

describe('resource proxy limits, headers and error replies (issue 10)', () => {
  it('refuses an over-long query string or key with 414 and over-long headers with 431, before forwarding', async () => {
    const { app, resources } = await harness();
    const q = await app.inject({ method: 'GET', url: `/api/resources/db/x?${'a'.repeat(9000)}` });
    expect(q.statusCode).toBe(414);
    expect(q.json()).toMatchObject({ error: 'URI too long' });
    const k = await app.inject({ method: 'GET', url: `/api/resources/${'k'.repeat(513)}` });
    expect(k.statusCode).toBe(414);
    const h = await app.inject({ method: 'GET', url: '/api/resources/db/x', headers: { 'x-big': 'v'.repeat(16_385) } });
    expect(h.statusCode).toBe(431);
    expect(resources.forwarded).toHaveLength(0);
  });

  it('strips headers named in Connection and hop-by-hop headers both ways, and never forwards credentials', async () => {
    const { app, resources } = await harness();
    resources.next = {
      type: 'response',
      status: 200,
      headers: { connection: 'x-private', 'x-private': 'leak', 'keep-alive': 'timeout=1', 'proxy-authenticate': 'Basic', 'x-ok': 'yes' },
      body: Buffer.from('ok'),
      owner: 'w1',
      epoch: 2,
    };
    const res = await app.inject({
      method: 'GET',
      url: '/api/resources/db/x',
      headers: { connection: 'x-secret', 'x-secret': '1', authorization: 'Bearer t', 'x-admin-key': 'sesame', 'x-api-key': 'k', 'x-kept': 'yes' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-ok']).toBe('yes');
    expect(res.headers['x-private']).toBeUndefined();
    expect(res.headers['proxy-authenticate']).toBeUndefined();
    const f = resources.forwarded[0]!;
    expect(f.headers['x-kept']).toBe('yes');
    for (const name of ['x-secret', 'connection', 'authorization', 'x-admin-key', 'x-api-key']) expect(f.headers[name], name).toBeUndefined();
  });

  it("answers an owner's error reply with its status and {error, message}, plus owner and epoch", async () => {
    const { app, resources } = await harness();
    resources.next = { type: 'error', status: 413, error: 'Payload too large', message: 'over RESOURCE_REPLY_LIMIT_BYTES', owner: 'w1', epoch: 3 };
    const res = await app.inject({ method: 'GET', url: '/api/resources/db/x' });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({ error: 'Payload too large', message: 'over RESOURCE_REPLY_LIMIT_BYTES', code: 'PAYLOAD_TOO_LARGE' });
    expect(res.headers['x-resource-owner']).toBe('w1');
    expect(res.headers['x-resource-epoch']).toBe('3');
  });

  it('lists 413 and 414 among the answers of the resource route in the OpenAPI document', async () => {
    const { app } = await harness();
    await app.ready();
    const doc = app.swagger() as unknown as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    const route = Object.entries(doc.paths).find(([p]) => p.startsWith('/api/resources/'))![1];
    for (const op of Object.values(route)) {
      expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['413', '414']));
    }
  });
});

describe('resource admin routes', () => {
  it('need the admin key: 401 when missing or wrong', async () => {
    const { app } = await harness();
    for (const headers of [{}, { 'x-admin-key': 'wrong' }]) {
      const r = await app.inject({ method: 'GET', url: '/api/admin/resources/workers', headers });
      expect(r.statusCode).toBe(401);
      expect(r.json().error).toBe('Unauthorized');
    }
    const ok = await app.inject({ method: 'GET', url: '/api/admin/resources/workers', headers: { 'x-admin-key': 'sesame' } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().workers[0].id).toBe('w1');
    const pins = await app.inject({ method: 'GET', url: '/api/admin/resources/pins', headers: { 'x-admin-key': 'sesame' } });
    expect(pins.json().pins[0]).toMatchObject({ key: 'db/a', epoch: 7 });
    const move = await app.inject({ method: 'POST', url: '/api/admin/resources/move', headers: { 'x-admin-key': 'sesame' }, payload: { key: 'db/a', to: 'w3' } });
    expect(move.statusCode).toBe(200);
    expect(move.json()).toMatchObject({ owner: 'w3', status: 'moved' });
    const badKey = await app.inject({ method: 'POST', url: '/api/admin/resources/unpin', headers: { 'x-admin-key': 'sesame' }, payload: { key: 'db/../x' } });
    expect(badKey.statusCode).toBe(400);
    const drain = await app.inject({ method: 'POST', url: '/api/admin/resources/workers/w1/drain', headers: { 'x-admin-key': 'sesame' } });
    expect(drain.statusCode).toBe(202);
  });

  it('answer results that are errors (404, 409) with the one error body {error, message, code, details}', async () => {
    const { app, resources } = await harness();
    resources.unpin = async (key) => ({ statusCode: 404, key, status: 'not-pinned', message: `'${key}' is not pinned` });
    resources.move = async (key) => ({ statusCode: 409, key, status: 'no-target', message: 'no other live, non-draining worker to move the key to' });
    resources.drain = async (worker) => ({ statusCode: 404, worker, status: 'unknown-worker', message: `no resource worker '${worker}'` });
    const headers = { 'x-admin-key': 'sesame' };
    const unpin = await app.inject({ method: 'POST', url: '/api/admin/resources/unpin', headers, payload: { key: 'db/never' } });
    expect(unpin.statusCode).toBe(404);
    expect(unpin.json()).toEqual({
      error: 'Key not pinned',
      message: "'db/never' is not pinned",
      code: 'NOT_PINNED',
      details: { key: 'db/never', status: 'not-pinned' },
    });
    const move = await app.inject({ method: 'POST', url: '/api/admin/resources/move', headers, payload: { key: 'db/a' } });
    expect(move.statusCode).toBe(409);
    expect(move.json()).toEqual({
      error: 'No target worker',
      message: 'No other live, non-draining worker to move the key to',
      code: 'NO_TARGET',
      details: { key: 'db/a', status: 'no-target' },
    });
    const drain = await app.inject({ method: 'POST', url: '/api/admin/resources/workers/nope/drain', headers });
    expect(drain.statusCode).toBe(404);
    expect(drain.json()).toEqual({ error: 'Unknown worker', message: "No resource worker 'nope'", code: 'UNKNOWN_WORKER', details: { worker: 'nope', status: 'unknown-worker' } });
  });

  it('do not exist (404, absent from the OpenAPI document) while ADMIN_API_KEY is unset', async () => {
    const { app } = await harness({ adminApiKey: undefined });
    for (const [method, url] of [['GET', '/api/admin/resources/pins'], ['GET', '/api/admin/resources/workers'], ['POST', '/api/admin/resources/move']] as const) {
      const r = await app.inject({ method, url, headers: { 'x-admin-key': 'anything' }, payload: method === 'POST' ? { key: 'db/a' } : undefined });
      expect(r.statusCode, url).toBe(404);
      expect(r.json()).toEqual({ error: 'Not found', message: `No route for ${method} ${url}`, code: 'NOT_FOUND' });
    }
    const doc = (await app.inject({ method: 'GET', url: '/swagger/json' })).json();
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/api/admin'))).toEqual([]);
  });

  it('check the admin key before the body: a bad body without the key is 401, not 400', async () => {
    const { app } = await harness();
    for (const payload of ['{not json', JSON.stringify({ nope: 1 })]) {
      const r = await app.inject({ method: 'POST', url: '/api/admin/resources/move', headers: { 'content-type': 'application/json' }, payload });
      expect(r.statusCode, payload).toBe(401);
    }
    const withKey = await app.inject({ method: 'POST', url: '/api/admin/resources/move', headers: { 'content-type': 'application/json', 'x-admin-key': 'sesame' }, payload: '{not json' });
    expect(withKey.statusCode).toBe(400);
  });

  it('are in the OpenAPI document with tags, summaries and schemas', async () => {
    const { app } = await harness();
    const doc = (await app.inject({ method: 'GET', url: '/swagger/json' })).json();
    const paths = Object.keys(doc.paths);
    expect(paths).toEqual(expect.arrayContaining(['/api/admin/resources/workers', '/api/admin/resources/pins', '/api/admin/resources/move', '/api/admin/resources/unpin', '/api/admin/resources/workers/{workerId}/drain']));
    const proxy = paths.find((p) => p.startsWith('/api/resources/'))!;
    expect(proxy).toBeDefined();
    expect(doc.paths[proxy].post.tags).toEqual(['resources']);
    expect(Object.keys(doc.paths[proxy].post.responses)).toEqual(expect.arrayContaining(['200', '400', '413', '503', '504']));
    expect(doc.paths['/api/admin/resources/pins'].get.tags).toEqual(['admin']);
    expect(doc.paths['/api/admin/resources/pins'].get.summary.length).toBeGreaterThan(0);
    expect(doc.tags.map((t: { name: string }) => t.name)).toEqual(expect.arrayContaining(['resources', 'admin']));
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['ResourceWorkerInfo', 'ResourcePin', 'MoveResourceBody', 'ResourceAdminResult']));
    expect(doc.components.securitySchemes.adminKey).toMatchObject({ type: 'apiKey', in: 'header', name: 'X-Admin-Key' });
    expect(paths).not.toContain('/api/resources');
  });
});
