import { describe, expect, it } from 'vitest';
import type { InjectOptions } from 'fastify';
import type { ApiDeps } from './deps.ts';
import { harness, post, JOB_ID } from './testing/app-harness.ts';

describe('rate limits', () => {
  it('answers 429 with Retry-After and {error, message, retryAfter} when the limiter refuses', async () => {
    const h = await harness();
    h.limiter.refuse = { allowed: false, retryAfterSeconds: 17, limit: 20, remaining: 0 };
    const res = await post(h.app, { target: '8.8.8.8' });
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBe('17');
    expect(res.json()).toEqual({ error: 'Rate limit exceeded', message: expect.stringMatching(/17/), code: 'RATE_LIMITED', retryAfter: 17 });
    expect(h.jobs.jobs.size).toBe(0);
    expect(h.dispatched).toHaveLength(0);
  });

  it('checks the submission quota after validation: an invalid submission is a 400 and is not counted', async () => {
    const h = await harness();
    h.limiter.refuse = { allowed: false, retryAfterSeconds: 3, limit: 20, remaining: 0 };
    const res = await post(h.app, '{not json', { headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(h.limiter.calls).toEqual([]);
    // Other /api routes are still checked in onRequest, before the request is read.
    expect((await h.app.inject({ method: 'GET', url: '/api/lookup/not-a-uuid' })).statusCode).toBe(429);
  });

  it('invalid submissions (400, 415) and idempotent replays do not spend the submission quota', async () => {
    const h = await harness({ rateLimitSubmitPerMin: 20 });
    h.limiter.limits = { submit: 20 };
    const invalid: [unknown, Partial<InjectOptions>, number][] = [
      [{}, {}, 400], // schema: no target
      [{ target: 'not a target!' }, {}, 400],
      [{ target: '127.0.0.1' }, {}, 400], // target policy
      [{ target: '8.8.8.8', services: ['Nope'] }, {}, 400],
      ['target=8.8.8.8', { headers: { 'content-type': 'text/plain' } }, 415],
    ];
    for (let i = 0; i < 15; i++) {
      const [body, extra, status] = invalid[i % invalid.length]!;
      expect((await post(h.app, body, extra)).statusCode, `invalid ${i}`).toBe(status);
    }
    expect(h.limiter.calls).toEqual([]);

    const first = await post(h.app, { target: '8.8.8.8' }, { headers: { 'idempotency-key': 'once' } });
    expect(first.statusCode).toBe(202);
    for (let i = 0; i < 3; i++) {
      const replay = await post(h.app, { target: '8.8.8.8' }, { headers: { 'idempotency-key': 'once' } });
      expect(replay.statusCode).toBe(202);
      expect(replay.headers['idempotent-replayed']).toBe('true');
    }
    const statuses: number[] = [];
    for (let i = 0; i < 19; i++) statuses.push((await post(h.app, { target: `8.8.4.${i + 1}` })).statusCode);
    expect(statuses).toEqual(Array(19).fill(202));
    expect(h.jobs.jobs.size).toBe(20);
    expect(h.limiter.counted.get('submit ip:127.0.0.1')).toBe(20);

    const over = await post(h.app, { target: '8.8.8.8' });
    expect(over.statusCode).toBe(429);
    expect(over.json()).toEqual({ error: 'Rate limit exceeded', message: expect.stringMatching(/42/), code: 'RATE_LIMITED', retryAfter: 42 });
    expect(over.headers['retry-after']).toBe('42');
    expect(h.jobs.jobs.size).toBe(20);
  });

  it('frees a claimed Idempotency-Key when the quota refuses the submission, so the retry can use it', async () => {
    const h = await harness();
    h.limiter.refuse = { allowed: false, retryAfterSeconds: 5, limit: 20, remaining: 0 };
    expect((await post(h.app, { target: '8.8.8.8' }, { headers: { 'idempotency-key': 'later' } })).statusCode).toBe(429);
    h.limiter.refuse = undefined;
    const retry = await post(h.app, { target: '8.8.8.8' }, { headers: { 'idempotency-key': 'later' } });
    expect(retry.statusCode).toBe(202);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(h.jobs.jobs.has(retry.json().jobId)).toBe(true);
  });

  it('counts the resource proxy in its own tier (RATE_LIMIT_RESOURCE_PER_MIN), not the api tier', async () => {
    const resources = {
      forward: async () => ({ type: 'response', status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from('{}'), owner: 'w1', epoch: 1 }),
    };
    const h = await harness({ rateLimitResourcePerMin: 7 }, { resources: resources as unknown as ApiDeps['resources'] });
    h.limiter.limits = { resource: 7, api: 100 };
    const proxied = await h.app.inject({ method: 'GET', url: '/api/resources/db/a' });
    expect(proxied.statusCode).toBe(200);
    expect(proxied.headers['x-ratelimit-limit']).toBe('7');
    expect(proxied.headers['x-ratelimit-remaining']).toBe('6');
    const listed = await h.app.inject({ method: 'GET', url: '/api/lookup/services' });
    expect(listed.headers['x-ratelimit-limit']).toBe('100');
    expect(h.limiter.calls.map((c) => c.tier)).toEqual(['resource', 'api']);
    for (let i = 0; i < 6; i++) await h.app.inject({ method: 'GET', url: '/api/resources/db/a' });
    expect((await h.app.inject({ method: 'GET', url: '/api/resources/db/a' })).statusCode).toBe(429);
    // The api tier is untouched by the proxy traffic.
    expect(h.limiter.counted.get('api ip:127.0.0.1')).toBe(1);
  });

  it('uses the submit tier for POST /api/lookup and the api tier elsewhere, keyed by client address', async () => {
    const h = await harness();
    await post(h.app, { target: '8.8.8.8' }, { remoteAddress: '203.0.113.9' });
    await h.app.inject({ method: 'GET', url: '/api/lookup/services', remoteAddress: '203.0.113.9' });
    await h.app.inject({ method: 'GET', url: `/api/lookup/${JOB_ID}`, remoteAddress: '203.0.113.10' });
    await h.app.inject({ method: 'GET', url: '/api/nothing-here' });
    expect(h.limiter.calls).toEqual([
      { tier: 'submit', client: 'ip:203.0.113.9' },
      { tier: 'api', client: 'ip:203.0.113.9' },
      { tier: 'api', client: 'ip:203.0.113.10' },
      { tier: 'api', client: 'ip:127.0.0.1' },
    ]);
  });

  it('sends X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset on allowed answers', async () => {
    const h = await harness();
    h.limiter.limits = { submit: 20 };
    const res = await post(h.app, { target: '8.8.8.8' });
    expect(res.headers['x-ratelimit-limit']).toBe('20');
    expect(res.headers['x-ratelimit-remaining']).toBe('19');
    expect(res.headers['x-ratelimit-reset']).toBe('60');
  });

  it('sends no X-RateLimit headers and asks the limiter nothing when every bucket of a tier is disabled', async () => {
    const h = await harness({ rateLimitApiPerMin: 0, rateLimitGlobalPerMin: 0, rateLimitSubmitPerMin: 5 });
    const res = await h.app.inject({ method: 'GET', url: '/api/lookup/services' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-ratelimit-limit']).toBeUndefined();
    expect(h.limiter.calls).toEqual([]);
    expect((await post(h.app, { target: '8.8.8.8' })).headers['x-ratelimit-limit']).toBe('5');
  });

  it('counts admin requests in the api tier before the admin key is checked, so keys cannot be guessed freely', async () => {
    const deadLetters = { list: async () => ({ count: 0, messages: [] }), replay: async () => 1, discard: async () => 1 };
    const h = await harness({ adminApiKey: 'sesame' }, { deadLetters });
    const res = await h.app.inject({ method: 'GET', url: '/api/admin/dead-letters', headers: { 'x-admin-key': 'guess' } });
    expect(res.statusCode).toBe(401);
    expect(h.limiter.calls).toEqual([{ tier: 'api', client: 'ip:127.0.0.1' }]);
    h.limiter.refuse = { allowed: false, retryAfterSeconds: 8, limit: 100, remaining: 0 };
    const refused = await h.app.inject({ method: 'GET', url: '/api/admin/dead-letters', headers: { 'x-admin-key': 'guess' } });
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('8');
  });

  it('does not rate limit health and docs routes', async () => {
    const h = await harness();
    h.limiter.refuse = { allowed: false, retryAfterSeconds: 30, limit: 1, remaining: 0 };
    for (const url of ['/health/live', '/health/ready', '/swagger/json', '/swagger']) {
      const res = await h.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBeLessThan(400);
    }
    expect(h.limiter.calls).toEqual([]);
  });

  it('fails open when the limiter throws', async () => {
    const h = await harness();
    h.limiter.throws = true;
    const res = await post(h.app, { target: '8.8.8.8' });
    expect(res.statusCode).toBe(202);
    expect(h.logs.some((l) => l.level === 'warn' && String(l.msg).includes('rate limit'))).toBe(true);
  });

  it('uses X-Forwarded-For only when TRUST_PROXY is set', async () => {
    const untrusted = await harness({ trustProxy: false });
    await untrusted.app.inject({ method: 'GET', url: '/api/lookup/services', remoteAddress: '10.0.0.1', headers: { 'x-forwarded-for': '198.51.100.7' } });
    expect(untrusted.limiter.calls[0]!.client).toBe('ip:10.0.0.1');
    const trusted = await harness({ trustProxy: true });
    await trusted.app.inject({ method: 'GET', url: '/api/lookup/services', remoteAddress: '10.0.0.1', headers: { 'x-forwarded-for': '198.51.100.7' } });
    expect(trusted.limiter.calls[0]!.client).toBe('ip:198.51.100.7');
  });
});

describe('API keys', () => {
  it('are not required when API_KEYS is unset', async () => {
    const h = await harness({ apiKeys: [] });
    const res = await h.app.inject({ method: 'GET', url: '/api/lookup/services' });
    expect(res.statusCode).toBe(200);
  });

  it('are required on every /api route when configured; health and docs stay open', async () => {
    const h = await harness({ apiKeys: ['k-one', 'k-two'] });
    const missing = await post(h.app, { target: '8.8.8.8' });
    expect(missing.statusCode).toBe(401);
    expect(missing.json()).toMatchObject({ error: 'Unauthorized', message: expect.stringMatching(/X-API-Key/) });
    const wrong = await h.app.inject({ method: 'GET', url: '/api/lookup/services', headers: { 'x-api-key': 'k-three' } });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().message).toMatch(/not valid/);
    const unknownRoute = await h.app.inject({ method: 'GET', url: '/api/secret' });
    expect(unknownRoute.statusCode).toBe(401);
    expect(h.jobs.jobs.size).toBe(0);

    const byHeader = await post(h.app, { target: '8.8.8.8' }, { headers: { 'x-api-key': 'k-two' } });
    expect(byHeader.statusCode).toBe(202);
    const byBearer = await h.app.inject({ method: 'GET', url: '/api/lookup/services', headers: { authorization: 'Bearer k-one' } });
    expect(byBearer.statusCode).toBe(200);

    for (const url of ['/health/live', '/health/ready', '/swagger/json']) {
      expect((await h.app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
    }
  });

  it('cannot be bypassed by percent-encoding the path', async () => {
    const h = await harness({ apiKeys: ['k-one'] });
    const res = await h.app.inject({ method: 'GET', url: '/%61pi/lookup/services' });
    expect(res.statusCode).toBe(401);
    expect(h.limiter.calls).toHaveLength(1);
  });

  it('identify the client for rate limits instead of the address, without putting the key in Redis', async () => {
    const h = await harness({ apiKeys: ['k-one'] });
    await h.app.inject({ method: 'GET', url: '/api/lookup/services', headers: { 'x-api-key': 'k-one' }, remoteAddress: '198.51.100.1' });
    await h.app.inject({ method: 'GET', url: '/api/lookup/services', headers: { 'x-api-key': 'k-one' }, remoteAddress: '198.51.100.2' });
    await h.app.inject({ method: 'GET', url: '/api/lookup/services', headers: { 'x-api-key': 'bad' }, remoteAddress: '198.51.100.3' });
    const [a, b, c] = h.limiter.calls.map((x) => x.client);
    expect(a).toMatch(/^key:[0-9a-f]+$/);
    expect(a).toBe(b);
    expect(a).not.toContain('k-one');
    expect(c).toBe('anon:198.51.100.3');
  });

  it('authenticate first: keyless and wrong-key requests count only in the unauthenticated bucket (finding 6)', async () => {
    const h = await harness({ apiKeys: ['k-one'] });
    await post(h.app, { target: '8.8.8.8' }, { remoteAddress: '198.51.100.4' });
    await h.app.inject({ method: 'GET', url: '/api/lookup/services', headers: { 'x-api-key': 'wrong' }, remoteAddress: '198.51.100.4' });
    await post(h.app, { target: '8.8.8.8' }, { headers: { 'x-api-key': 'k-one' }, remoteAddress: '198.51.100.4' });
    expect(h.limiter.calls.map((c) => c.tier)).toEqual(['unauthenticated', 'unauthenticated', 'submit']);
    expect(h.limiter.calls[0]!.client).toBe('anon:198.51.100.4');
    expect(h.limiter.calls[2]!.client).toMatch(/^key:/);
  });

  it('answer 429 instead of 401 once the unauthenticated bucket is full, before reading the body', async () => {
    const h = await harness({ apiKeys: ['k-one'] });
    h.limiter.refuse = { allowed: false, retryAfterSeconds: 9, limit: 30, remaining: 0 };
    const res = await post(h.app, '{not json', { headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBe('9');
    expect(res.json()).toMatchObject({ error: 'Rate limit exceeded', retryAfter: 9 });
  });
});

describe('client identity for quotas', () => {
  it('keys anonymous IPv6 clients by their /64 and IPv4-mapped IPv6 clients by the IPv4 address', async () => {
    const h = await harness();
    for (const remoteAddress of ['2001:db8:1:2::a', '2001:db8:1:2:ffff:1:2:3', '2001:db8:1:3::a', '::ffff:198.51.100.9']) {
      await h.app.inject({ method: 'GET', url: '/api/lookup/services', remoteAddress });
    }
    expect(h.limiter.calls.map((c) => c.client)).toEqual(['ip:2001:db8:1:2::/64', 'ip:2001:db8:1:2::/64', 'ip:2001:db8:1:3::/64', 'ip:198.51.100.9']);
  });

  it('TRUST_PROXY: a list trusts only the listed proxies; a hop count trusts that many hops', async () => {
    const xff = { 'x-forwarded-for': '198.51.100.7, 203.0.113.5' };
    const listed = await harness({ trustProxy: ['10.0.0.0/8'] });
    await listed.app.inject({ method: 'GET', url: '/api/lookup/services', remoteAddress: '10.1.2.3', headers: xff });
    await listed.app.inject({ method: 'GET', url: '/api/lookup/services', remoteAddress: '192.0.2.1', headers: xff });
    expect(listed.limiter.calls.map((c) => c.client)).toEqual(['ip:203.0.113.5', 'ip:192.0.2.1']);
    const hops = await harness({ trustProxy: 1 });
    await hops.app.inject({ method: 'GET', url: '/api/lookup/services', remoteAddress: '10.1.2.3', headers: xff });
    expect(hops.limiter.calls[0]!.client).toBe('ip:203.0.113.5');
    const twoHops = await harness({ trustProxy: 2 });
    await twoHops.app.inject({ method: 'GET', url: '/api/lookup/services', remoteAddress: '10.1.2.3', headers: xff });
    expect(twoHops.limiter.calls[0]!.client).toBe('ip:198.51.100.7');
  });
});
