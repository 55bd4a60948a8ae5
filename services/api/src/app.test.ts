import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { loadConfig, type Config } from '@lookup/config';
import type { JobCompleted, JobDocument, JobSubmitted } from '@lookup/contracts';
import { MessageValidators } from '@lookup/contracts';
import { createLogger } from '@lookup/logging';
import type { CancelDisposition, IdempotencyClaim, NewJob, RateLimitDecision, RateLimiter, RateLimitTier } from '@lookup/store';
import { buildApp } from './app.ts';
import { createJobEventHub } from './job-events.ts';
import type { ApiDeps } from './deps.ts';

// ---------------------------------------------------------------------------------------------------------
// In-memory fakes: no Redis, no RabbitMQ.

class FakeJobs {
  readonly jobs = new Map<string, NewJob>();
  readonly documents = new Map<string, JobDocument>();
  readonly discarded: string[] = [];
  failCreate = false;
  failGet = false;
  async create(job: NewJob): Promise<void> {
    if (this.failCreate) throw new Error('redis down');
    this.jobs.set(job.jobId, job);
  }
  async discard(jobId: string): Promise<void> {
    this.discarded.push(jobId);
    this.jobs.delete(jobId);
  }
  async getDocument(jobId: string): Promise<JobDocument | undefined> {
    if (this.failGet) throw new Error('redis down');
    return this.documents.get(jobId);
  }
  readonly statuses = new Map<string, 'Pending' | 'Processing' | 'Completed' | 'Cancelled'>();
  async cancel(jobId: string): Promise<{ disposition: CancelDisposition; status: '' | 'Completed' | 'Cancelled' | 'Pending' | 'Processing' }> {
    const status = this.statuses.get(jobId) ?? (this.jobs.has(jobId) ? 'Pending' : undefined);
    if (!status) return { disposition: 'missing', status: '' };
    if (status === 'Completed' || status === 'Cancelled') return { disposition: 'finished', status };
    this.statuses.set(jobId, 'Cancelled');
    return { disposition: 'cancelled', status: 'Cancelled' };
  }
}

/** Same semantics as the Redis store: per client, first claim wins, same fingerprint replays. */
class FakeIdempotency {
  readonly claims = new Map<string, { fingerprint: string; jobId: string }>();
  async claim(client: string, key: string, fingerprint: string, jobId: string): Promise<IdempotencyClaim> {
    const prev = this.claims.get(`${client} ${key}`);
    if (!prev) {
      this.claims.set(`${client} ${key}`, { fingerprint, jobId });
      return { state: 'new' };
    }
    return prev.fingerprint === fingerprint ? { state: 'replay', jobId: prev.jobId } : { state: 'conflict', jobId: prev.jobId };
  }
  async release(client: string, key: string, jobId: string): Promise<void> {
    if (this.claims.get(`${client} ${key}`)?.jobId === jobId) this.claims.delete(`${client} ${key}`);
  }
}

class FakeLimiter implements RateLimiter {
  readonly calls: { tier: RateLimitTier; client: string }[] = [];
  refuse: RateLimitDecision | undefined;
  throws = false;
  /** When set, counts like the Redis limiter: per tier and client, a refused request counted nowhere. */
  limits: Partial<Record<RateLimitTier, number>> | undefined;
  readonly counted = new Map<string, number>();
  async check(tier: RateLimitTier, client: string): Promise<RateLimitDecision> {
    this.calls.push({ tier, client });
    if (this.throws) throw new Error('redis down');
    const limit = this.limits?.[tier];
    if (limit !== undefined) {
      const used = this.counted.get(`${tier} ${client}`) ?? 0;
      if (used >= limit) return { allowed: false, retryAfterSeconds: 42, limit, remaining: 0 };
      this.counted.set(`${tier} ${client}`, used + 1);
      return { allowed: true, retryAfterSeconds: 0, limit, remaining: limit - used - 1, resetSeconds: 60 };
    }
    return this.refuse ?? { allowed: true, retryAfterSeconds: 0, limit: 20, remaining: 19 };
  }
}

interface Harness {
  app: FastifyInstance;
  jobs: FakeJobs;
  published: JobSubmitted[];
  completed: JobCompleted[];
  limiter: FakeLimiter;
  logs: Record<string, unknown>[];
  deps: ApiDeps;
  setPublishFails(fails: boolean): void;
  setReady(ready: { rabbitmq: boolean; redis: boolean }): void;
}

const apps: FastifyInstance[] = [];
afterEach(async () => {
  while (apps.length > 0) await apps.pop()!.close();
});

async function harness(overrides: Partial<Config> = {}, extraDeps: Partial<ApiDeps> = {}): Promise<Harness> {
  // DNS_SERVERS on loopback, where nothing answers: the API's domain pre-check fails at once and accepts (no
  // query leaves the machine). The pre-check itself is tested in routes/lookup-target-policy.test.ts.
  const config: Readonly<Config> = Object.freeze({ ...loadConfig({}), bodyLimitBytes: 1024, dnsServers: ['127.0.0.1:9'], ...overrides });
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({
    service: 'api-test',
    level: 'info',
    destination: { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
  });
  const jobs = new FakeJobs();
  const published: JobSubmitted[] = [];
  const completed: JobCompleted[] = [];
  const limiter = new FakeLimiter();
  let publishFails = false;
  let ready = { rabbitmq: true, redis: true };
  const deps: ApiDeps = {
    config,
    logger,
    jobs,
    idempotency: new FakeIdempotency(),
    rateLimiter: limiter,
    async publishJobSubmitted(message) {
      if (publishFails) throw new Error('publish not confirmed');
      published.push(message);
    },
    async publishJobCompleted(message) {
      completed.push(message);
    },
    async readiness() {
      return ready;
    },
    ...extraDeps,
  };
  const app = await buildApp(deps);
  apps.push(app);
  return {
    app,
    jobs,
    published,
    completed,
    limiter,
    logs,
    deps,
    setPublishFails: (f) => void (publishFails = f),
    setReady: (r) => void (ready = r),
  };
}

const post = (app: FastifyInstance, payload: unknown, extra: Partial<InjectOptions> = {}) =>
  app.inject({ method: 'POST', url: '/api/lookup', payload: payload as InjectOptions['payload'], ...extra });

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// ---------------------------------------------------------------------------------------------------------

describe('POST /api/lookup accepted', () => {
  it('answers 202 with jobId, statusUrl, message, Location and X-Job-Id, stores and publishes the job', async () => {
    const h = await harness();
    const res = await post(h.app, { target: '8.8.8.8' });
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(['jobId', 'message', 'statusUrl']);
    expect(body.jobId).toMatch(UUID_RE);
    expect(body.statusUrl).toBe(`/api/lookup/${body.jobId}`);
    expect(typeof body.message).toBe('string');
    expect(res.headers.location).toBe(body.statusUrl);
    expect(res.headers['x-job-id']).toBe(body.jobId);
    expect(res.headers['content-type']).toMatch(/^application\/json/);

    const job = h.jobs.jobs.get(body.jobId)!;
    expect(job).toMatchObject({ jobId: body.jobId, target: '8.8.8.8', targetType: 'IPAddress', services: [0, 1, 2, 3] });
    expect(Number.isNaN(Date.parse(job.createdAt))).toBe(false);

    expect(h.published).toHaveLength(1);
    const msg = h.published[0]!;
    expect(MessageValidators.jobSubmitted.errors(msg)).toEqual([]);
    expect(msg).toMatchObject({ jobId: body.jobId, correlationId: body.jobId, schemaVersion: 1, target: '8.8.8.8', targetType: 'IPAddress', services: [0, 1, 2, 3] });
    expect(msg.messageId).toMatch(UUID_RE);
    expect(msg.messageId).not.toBe(body.jobId);
  });

  it('logs the acceptance with the job id on the line', async () => {
    const h = await harness();
    const res = await post(h.app, { target: 'example.com' });
    const line = h.logs.find((l) => l.msg === 'job accepted');
    expect(line).toMatchObject({ jobId: res.json().jobId, target: 'example.com', targetType: 'Domain' });
  });

  it('takes services by name case-insensitively, by number and as numeric strings, in request order', async () => {
    const h = await harness();
    const res = await post(h.app, { target: 'example.com', services: ['rdap', 'GEOIP', 1, '3'] });
    expect(res.statusCode).toBe(202);
    expect(h.jobs.jobs.get(res.json().jobId)!.services).toEqual([2, 0, 1, 3]);
    expect(h.published[0]!.services).toEqual([2, 0, 1, 3]);
  });

  it('runs all four services when services is omitted', async () => {
    const h = await harness();
    const res = await post(h.app, { target: 'example.com' });
    expect(h.jobs.jobs.get(res.json().jobId)!.services).toEqual([0, 1, 2, 3]);
  });

  it('stores the trimmed target', async () => {
    const h = await harness();
    const res = await post(h.app, { target: '  8.8.4.4 \n' });
    expect(res.statusCode).toBe(202);
    expect(h.jobs.jobs.get(res.json().jobId)!.target).toBe('8.8.4.4');
    expect(h.published[0]!.target).toBe('8.8.4.4');
  });

  it('converts an IDN to punycode and lower-cases domains', async () => {
    const h = await harness();
    const res = await post(h.app, { target: 'Bücher.DE.' });
    expect(res.statusCode).toBe(202);
    expect(h.jobs.jobs.get(res.json().jobId)).toMatchObject({ target: 'xn--bcher-kva.de', targetType: 'Domain' });
  });

  it('accepts public IPv6 targets', async () => {
    const h = await harness();
    const res = await post(h.app, { target: '2606:4700:4700::1111', services: ['Ping'] });
    expect(res.statusCode).toBe(202);
    expect(h.jobs.jobs.get(res.json().jobId)).toMatchObject({ targetType: 'IPAddress', services: [1] });
  });

  it('accepts application/json with a charset', async () => {
    const h = await harness();
    const res = await post(h.app, JSON.stringify({ target: 'example.org' }), { headers: { 'content-type': 'application/json; charset=utf-8' } });
    expect(res.statusCode).toBe(202);
  });
});

describe('POST /api/lookup refused (400 with a JSON body saying what is wrong)', () => {
  const invalidTargets: [string, unknown, RegExp][] = [
    ['empty target', '', /empty/],
    ['whitespace target', '   \t ', /empty/],
    ['octet above 255', '256.1.1.1', /IPv4/],
    ['three octets', '1.2.3', /IPv4/],
    ['leading zero', '01.2.3.4', /IPv4/],
    ['five octets', '1.2.3.4.5', /IPv4/],
    ['hex octet', '0x7f.0.0.1', /IPv4/],
    ['URL', 'http://example.com/', /URL/],
    ['URL without scheme', 'example.com/path', /URL/],
    ['single label', 'localhost', /two labels/],
    ['label over 63', `${'a'.repeat(64)}.com`, /63/],
    ['name over 253', `${Array.from({ length: 4 }, () => 'a'.repeat(63)).join('.')}.com`, /253/],
    ['numeric TLD', 'example.123', /top-level/],
    ['underscore', 'under_score.com', /letters, digits/],
    ['bad IPv6', '2001:::1', /IPv6/],
  ];
  it.each(invalidTargets)('%s', async (_name, target, message) => {
    const h = await harness();
    const res = await post(h.app, { target });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error).toBe('Invalid target');
    expect(body.message).toMatch(message);
    expect(h.jobs.jobs.size).toBe(0);
    expect(h.published).toHaveLength(0);
  });

  it('missing target', async () => {
    const h = await harness();
    const res = await post(h.app, { services: ['GeoIP'] });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'Invalid request body', details: [expect.stringMatching(/required property 'target'/)] });
  });

  it('wrong types are refused, not coerced', async () => {
    const h = await harness();
    for (const payload of [{ target: 8 }, { target: null }, { target: ['8.8.8.8'] }, { target: '8.8.8.8', services: 'GeoIP' }, { target: '8.8.8.8', services: [true] }, { target: '8.8.8.8', services: [1.5] }]) {
      const res = await post(h.app, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      const body = res.json();
      expect(body.error).toBe('Invalid request body');
      expect(body.details.length).toBeGreaterThan(0);
      expect(body.details.every((d: unknown) => typeof d === 'string' && d.startsWith('body'))).toBe(true);
    }
    expect(h.jobs.jobs.size).toBe(0);
  });

  it('lists every schema problem in details', async () => {
    const h = await harness();
    const res = await post(h.app, { target: 5, services: [null], colour: 'blue' });
    expect(res.statusCode).toBe(400);
    const { details } = res.json();
    expect(details).toEqual(
      expect.arrayContaining([
        'body/target must be string',
        "body must NOT have additional properties ('colour')",
        expect.stringMatching(/^body\/services\/0 must be string or must be integer$/),
      ]),
    );
  });

  it('a body that is not an object', async () => {
    const h = await harness();
    for (const payload of ['[]', '"8.8.8.8"', '42', 'null']) {
      const res = await post(h.app, payload, { headers: { 'content-type': 'application/json' } });
      expect(res.statusCode, payload).toBe(400);
      expect(res.json().error).toBe('Invalid request body');
    }
  });

  it('extra properties', async () => {
    const h = await harness();
    const res = await post(h.app, { target: '8.8.8.8', priority: 'high' });
    expect(res.statusCode).toBe(400);
    expect(res.json().details).toEqual(["body must NOT have additional properties ('priority')"]);
  });

  it('duplicate services, naming them', async () => {
    const h = await harness();
    const res = await post(h.app, { target: '8.8.8.8', services: ['GeoIP', 'geoip'] });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error).toBe('Invalid services');
    expect(body.details).toEqual([expect.stringMatching(/services\[1\]: duplicate service "geoip" \(GeoIP/)]);
    const numeric = await post(h.app, { target: '8.8.8.8', services: [1, 'Ping'] });
    expect(numeric.statusCode).toBe(400);
    expect(numeric.json().message).toMatch(/duplicate service "Ping"/);
  });

  it('unknown services, naming them', async () => {
    const h = await harness();
    const res = await post(h.app, { target: '8.8.8.8', services: ['GeoIP', 'Traceroute', 'whois'] });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error).toBe('Invalid services');
    expect(body.details).toHaveLength(2);
    expect(body.details[0]).toMatch(/services\[1\]: unknown service "Traceroute"/);
    expect(body.details[1]).toMatch(/services\[2\]: unknown service "whois"/);
    expect(body.message).toMatch(/GeoIP, Ping, RDAP, ReverseDNS/);
  });

  it('unknown service numbers', async () => {
    const h = await harness();
    const res = await post(h.app, { target: '8.8.8.8', services: [4] });
    expect(res.statusCode).toBe(400);
    expect(res.json().details).toEqual([expect.stringMatching(/^body\/services\/0 .*<= 3/)]);
  });

  it('an empty services array', async () => {
    const h = await harness();
    const res = await post(h.app, { target: '8.8.8.8', services: [] });
    expect(res.statusCode).toBe(400);
    expect(res.json().details).toEqual([expect.stringMatching(/body\/services must NOT have fewer than 1 items/)]);
  });

  it('reports a bad target and bad services together', async () => {
    const h = await harness();
    const res = await post(h.app, { target: 'nope', services: ['Nope'] });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error).toBe('Invalid request');
    expect(body.details).toHaveLength(2);
  });

  it('malformed JSON', async () => {
    const h = await harness();
    const res = await post(h.app, '{"target": "8.8.8.8",', { headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: 'Invalid JSON', message: 'The request body is not valid JSON', code: 'INVALID_JSON' });
  });

  it('prototype poisoning is malformed JSON, not a crash', async () => {
    const h = await harness();
    const res = await post(h.app, '{"target":"8.8.8.8","__proto__":{"x":1}}', { headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toBe('Invalid JSON');
  });

  it('an empty body with a JSON content type', async () => {
    const h = await harness();
    const res = await post(h.app, '', { headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'Invalid JSON', message: expect.stringMatching(/empty/) });
  });

  it('no body at all', async () => {
    const h = await harness();
    const res = await h.app.inject({ method: 'POST', url: '/api/lookup' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'Invalid request body', details: ['body must be object'] });
  });

  it('a wrong content type is 415', async () => {
    const h = await harness();
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x']) {
      const res = await post(h.app, 'target=8.8.8.8', { headers: { 'content-type': type } });
      expect(res.statusCode, type).toBe(415);
      expect(res.json()).toMatchObject({ error: 'Unsupported media type', message: expect.stringMatching(/application\/json/) });
    }
  });

  it('a body without a content type is 415', async () => {
    const h = await harness();
    const res = await h.app.inject({ method: 'POST', url: '/api/lookup', payload: Buffer.from('{"target":"8.8.8.8"}') });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toEqual({ error: 'Unsupported media type', message: 'The request has a body but no Content-Type; send application/json', code: 'UNSUPPORTED_MEDIA_TYPE' });
  });

  it('an oversized body is 413', async () => {
    const h = await harness({ bodyLimitBytes: 1024 });
    const res = await post(h.app, { target: 'example.com', pad: 'x'.repeat(2000) });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({ error: 'Payload too large', message: 'The request body is larger than 1024 bytes', code: 'PAYLOAD_TOO_LARGE' });
  });

  it('refuses loopback, private, link-local and reserved addresses, naming ALLOW_PRIVATE_TARGETS', async () => {
    const h = await harness({ allowPrivateTargets: false });
    for (const target of ['127.0.0.1', '10.1.2.3', '192.168.1.1', '169.254.169.254', '0.0.0.0', '::1', 'fe80::1%eth0', '::ffff:127.0.0.1', '2001:db8::1', '224.0.0.1']) {
      const res = await post(h.app, { target });
      expect(res.statusCode, target).toBe(400);
      const body = res.json();
      expect(body.error).toBe('Target not allowed');
      expect(body.message).toMatch(/ALLOW_PRIVATE_TARGETS/);
    }
    expect(h.jobs.jobs.size).toBe(0);
  });

  it('accepts private addresses when ALLOW_PRIVATE_TARGETS is set', async () => {
    const h = await harness({ allowPrivateTargets: true });
    const res = await post(h.app, { target: '127.0.0.1' });
    expect(res.statusCode).toBe(202);
    expect(h.jobs.jobs.get(res.json().jobId)!.target).toBe('127.0.0.1');
  });

  it('never answers 500 to hostile input', async () => {
    const h = await harness();
    const payloads = [
      '{"target": "\\u0000"}', '{"target": "\u202e.com"}', '{"target":"a","services":[{}]}', '{"target":"' + 'a.'.repeat(400) + 'com"}',
      '{"target": "%00.com"}', '{"target":"8.8.8.8","services":["__proto__"]}', '{"constructor":{"prototype":{}}}', '\uFEFF{}', '{"target":"😀.com"}',
    ];
    for (const p of payloads) {
      const res = await post(h.app, p, { headers: { 'content-type': 'application/json' } });
      expect(res.statusCode, p).toBeGreaterThanOrEqual(200);
      expect(res.statusCode, p).toBeLessThan(500);
      expect(typeof res.json().error === 'string' || res.statusCode === 202, p).toBe(true);
    }
  });
});

describe('POST /api/lookup when a dependency fails', () => {
  it('publish failure: 503 with Retry-After, and the job is discarded', async () => {
    const h = await harness();
    h.setPublishFails(true);
    const res = await post(h.app, { target: '8.8.8.8' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    const body = res.json();
    expect(body).toMatchObject({ error: 'Service unavailable', message: expect.stringMatching(/broker/), retryAfter: 5 });
    expect(h.jobs.discarded).toHaveLength(1);
    expect(h.jobs.jobs.size).toBe(0);
    expect(res.headers.location).toBeUndefined();
    const line = h.logs.find((l) => typeof l.msg === 'string' && (l.msg as string).includes('discarding'));
    expect(line?.jobId).toBe(h.jobs.discarded[0]);
  });

  it('Redis failure on create: 503, nothing published', async () => {
    const h = await harness();
    h.jobs.failCreate = true;
    const res = await post(h.app, { target: '8.8.8.8' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.json().error).toBe('Service unavailable');
    expect(h.published).toHaveLength(0);
  });
});

// ---------------------------------------------------------------------------------------------------------

const JOB_ID = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';

function sampleDocument(): JobDocument {
  return {
    jobId: JOB_ID,
    target: 'example.com',
    targetType: 'Domain',
    status: 'Processing',
    createdAt: '2025-01-01T00:00:00.000Z',
    completedAt: null,
    completionPercentage: 50,
    requestedServices: ['GeoIP', 'RDAP'],
    results: [
      {
        serviceType: 'GeoIP',
        status: 'Succeeded',
        success: true,
        data: {
          country: { iso: 'US', names: { en: 'United States' } },
          location: { latitude: 37.751, longitude: -97.822, accuracyRadius: 1000 },
          asn: 15169,
          tags: ['anycast', { kind: 'cdn', weight: 0.5 }],
          nothing: null,
          flag: false,
          deep: { a: { b: { c: { d: [1, [2, [3]]] } } } },
        },
        errorMessage: null,
        completedAt: '2025-01-01T00:00:01.000Z',
        durationMs: 12.5,
        attempts: 1,
      },
      {
        serviceType: 'RDAP',
        status: 'Failed',
        success: false,
        data: null,
        errorMessage: 'registry answered 503',
        completedAt: '2025-01-01T00:00:02.000Z',
        durationMs: 900,
        attempts: 3,
      },
    ],
  };
}

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

describe('GET /api/lookup/services', () => {
  it('lists the catalogue without slugs', async () => {
    const h = await harness();
    const res = await h.app.inject({ method: 'GET', url: '/api/lookup/services' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.map((s: { name: string; value: number }) => [s.name, s.value])).toEqual([['GeoIP', 0], ['Ping', 1], ['RDAP', 2], ['ReverseDNS', 3]]);
    for (const s of body) {
      expect(Object.keys(s).sort()).toEqual(['description', 'name', 'value']);
      expect(s.description.length).toBeGreaterThan(0);
    }
  });
});

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

describe('rate limits', () => {
  it('answers 429 with Retry-After and {error, message, retryAfter} when the limiter refuses', async () => {
    const h = await harness();
    h.limiter.refuse = { allowed: false, retryAfterSeconds: 17, limit: 20, remaining: 0 };
    const res = await post(h.app, { target: '8.8.8.8' });
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBe('17');
    expect(res.json()).toEqual({ error: 'Rate limit exceeded', message: expect.stringMatching(/17/), code: 'RATE_LIMITED', retryAfter: 17 });
    expect(h.jobs.jobs.size).toBe(0);
    expect(h.published).toHaveLength(0);
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

describe('admin dead-letter routes', () => {
  const deadLetters = { list: async () => ({ count: 0, messages: [] }), replay: async () => 1, discard: async () => 1 };
  async function adminApp(adminApiKey: string | undefined) {
    const h = await harness({ adminApiKey });
    const app = await buildApp({ ...h.deps, deadLetters });
    apps.push(app);
    return app;
  }

  it('do not exist while ADMIN_API_KEY is unset: 404, as for any unknown path', async () => {
    const app = await adminApp(undefined);
    const list = await app.inject({ method: 'GET', url: '/api/admin/dead-letters', headers: { 'x-admin-key': 'x' } });
    expect(list.statusCode).toBe(404);
    expect(list.json()).toEqual({ error: 'Not found', message: 'No route for GET /api/admin/dead-letters', code: 'NOT_FOUND' });
    const replay = await app.inject({ method: 'POST', url: '/api/admin/dead-letters/replay', payload: { all: true } });
    expect(replay.statusCode).toBe(404);
  });

  it('check the admin key before validating the body or query (401, never 400, without it)', async () => {
    const app = await adminApp('sesame');
    const badBody = await app.inject({ method: 'POST', url: '/api/admin/dead-letters/replay', payload: { bogus: [1, 2] } });
    expect(badBody.statusCode).toBe(401);
    const badQuery = await app.inject({ method: 'GET', url: '/api/admin/dead-letters?limit=zero&x=1' });
    expect(badQuery.statusCode).toBe(401);
    const withKey = await app.inject({ method: 'POST', url: '/api/admin/dead-letters/replay', headers: { 'x-admin-key': 'sesame' }, payload: { bogus: [1, 2] } });
    expect(withKey.statusCode).toBe(400);
    const ok = await app.inject({ method: 'POST', url: '/api/admin/dead-letters/replay', headers: { 'x-admin-key': 'sesame' }, payload: { all: true } });
    expect(ok.json()).toEqual({ replayed: 1 });
  });
});

describe('security headers, CORS and limits', () => {
  it('sends helmet headers on API answers, errors and docs', async () => {
    const h = await harness();
    for (const url of ['/api/lookup/services', '/nope', '/swagger/json']) {
      const res = await h.app.inject({ method: 'GET', url });
      expect(res.headers['x-content-type-options'], url).toBe('nosniff');
      expect(res.headers['x-frame-options'], url).toBe('SAMEORIGIN');
      expect(res.headers['content-security-policy'], url).toMatch(/default-src 'self'/);
    }
  });

  it('allows everything Swagger UI loads under its CSP: same-origin scripts and styles, nothing inline', async () => {
    const h = await harness();
    const page = await h.app.inject({ method: 'GET', url: '/swagger/' });
    expect(page.statusCode).toBe(200);
    const csp = Object.fromEntries(
      String(page.headers['content-security-policy']).split(';').map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map(([k, ...v]) => [k, v]),
    ) as Record<string, string[]>;
    expect(csp['script-src']).toEqual(["'self'"]);
    expect(csp['upgrade-insecure-requests']).toBeUndefined(); // would break the page over plain HTTP
    // No inline script or style element, no inline event handler: everything comes from 'self'.
    expect(page.body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    expect(page.body).not.toMatch(/<style/);
    expect(page.body).not.toMatch(/\son[a-z]+=/i);
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(5);
    for (const asset of assets) {
      expect(asset, 'same-origin, relative').toMatch(/^\.\//);
      const res = await h.app.inject({ method: 'GET', url: new URL(asset, 'http://x/swagger/').pathname });
      expect(res.statusCode, asset).toBe(200);
    }
    const init = await h.app.inject({ method: 'GET', url: '/swagger/static/swagger-initializer.js' });
    expect(init.statusCode).toBe(200);
    expect(init.body).toContain("resolveUrl('./json')"); // the document is fetched from 'self' (connect-src via default-src)
    expect(csp['img-src']).toEqual(expect.arrayContaining(["'self'", 'data:']));
  });

  it('leaves CORS off unless CORS_ORIGINS is set', async () => {
    const h = await harness();
    const res = await h.app.inject({ method: 'GET', url: '/api/lookup/services', headers: { origin: 'https://app.example.com' } });
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = await h.app.inject({ method: 'OPTIONS', url: '/api/lookup', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } });
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('answers CORS for the listed origins only, preflights before the API key, and keeps 404s as 404', async () => {
    const h = await harness({ corsOrigins: ['https://app.example.com'], apiKeys: ['k-one'] });
    const preflight = await h.app.inject({
      method: 'OPTIONS', url: '/api/lookup',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-api-key' },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(String(preflight.headers['access-control-allow-headers'])).toMatch(/X-API-Key/);
    const ok = await h.app.inject({ method: 'GET', url: '/api/lookup/services', headers: { origin: 'https://app.example.com', 'x-api-key': 'k-one' } });
    expect(ok.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(String(ok.headers['access-control-expose-headers'])).toMatch(/Retry-After/);
    const other = await h.app.inject({ method: 'GET', url: '/api/lookup/services', headers: { origin: 'https://evil.example', 'x-api-key': 'k-one' } });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    const missing = await h.app.inject({ method: 'GET', url: '/nope' });
    expect(missing.statusCode).toBe(404);
  });

  it('answers 414 JSON for a URL over API_MAX_URL_LENGTH, before the API key and the rate limit', async () => {
    const h = await harness({ apiMaxUrlLength: 300, apiKeys: ['k-one'] });
    const res = await h.app.inject({ method: 'GET', url: `/api/lookup/services?q=${'a'.repeat(400)}` });
    expect(res.statusCode).toBe(414);
    expect(res.json()).toMatchObject({ error: 'URI too long', message: expect.stringMatching(/300/) });
    expect(h.limiter.calls).toEqual([]);
    const fine = await h.app.inject({ method: 'GET', url: `/api/lookup/services?q=${'a'.repeat(100)}`, headers: { 'x-api-key': 'k-one' } });
    expect(fine.statusCode).not.toBe(414);
  });
});

describe('errors are JSON everywhere', () => {
  it('unknown route: 404 JSON', async () => {
    const h = await harness();
    const res = await h.app.inject({ method: 'GET', url: '/nope?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: 'Not found', message: 'No route for GET /nope', code: 'NOT_FOUND' });
  });

  it('GET / leads to the documentation', async () => {
    const h = await harness();
    const res = await h.app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/swagger');
  });

  it('wrong method: 405 JSON with Allow', async () => {
    const h = await harness();
    let res = await h.app.inject({ method: 'DELETE', url: '/api/lookup' });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('POST');
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
      ['/api/lookup/services', 'get', ['200', '429']],
      ['/health/live', 'get', ['200']],
      ['/health/ready', 'get', ['200', '503']],
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
    expect(doc.paths['/api/lookup'].post.requestBody.content['application/json'].schema.$ref).toBe('#/components/schemas/SubmitLookupBody');
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

describe('DELETE /api/lookup/:jobId (cancellation)', () => {
  const post = (h: Harness, body: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'POST', url: '/api/lookup', payload: body as InjectOptions['payload'], headers: { 'content-type': 'application/json', ...headers } });

  it('cancels an unfinished job (202), then answers 409; 404 for an unknown id, 400 for a malformed one', async () => {
    const h = await harness();
    const { jobId } = (await post(h, { target: '8.8.8.8' })).json();
    const res = await h.app.inject({ method: 'DELETE', url: `/api/lookup/${jobId}` });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ jobId, status: 'Cancelled', statusUrl: `/api/lookup/${jobId}` });
    expect(h.completed).toEqual([expect.objectContaining({ jobId, status: 'Cancelled', correlationId: jobId })]);
    const again = await h.app.inject({ method: 'DELETE', url: `/api/lookup/${jobId}` });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ error: 'Job already finished' });
    const unknown = await h.app.inject({ method: 'DELETE', url: '/api/lookup/00000000-0000-4000-8000-000000000000' });
    expect(unknown.statusCode).toBe(404);
    const bad = await h.app.inject({ method: 'DELETE', url: '/api/lookup/nope' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'Invalid job id' });
  });

  it('gives the job a deadline JOB_DEADLINE_MS after submission', async () => {
    const h = await harness({ jobDeadlineMs: 12_345 });
    const before = Date.now();
    const { jobId } = (await post(h, { target: '8.8.8.8' })).json();
    const job = h.jobs.jobs.get(jobId)!;
    expect(job.deadlineAt).toBeGreaterThanOrEqual(before + 12_345);
    expect(job.deadlineAt).toBeLessThanOrEqual(Date.now() + 12_345);
  });
});

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
    expect(h.published).toHaveLength(1);
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

describe('GET /api/lookup/:jobId/events (server-sent events)', () => {
  const JOB = '3f1c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b';
  const doc = (status: JobDocument['status']): JobDocument => ({
    jobId: JOB, target: '8.8.8.8', targetType: 'IPAddress', status, createdAt: new Date().toISOString(),
    completedAt: status === 'Completed' ? new Date().toISOString() : null, completionPercentage: status === 'Completed' ? 100 : 0,
    requestedServices: ['GeoIP'], results: [],
  });
  const parse = (payload: string) =>
    payload.split('\n\n').filter((b) => b.startsWith('event:')).map((b) => {
      const [ev, data] = b.split('\n');
      return { event: ev!.slice(7), data: JSON.parse(data!.slice(6)) as JobDocument };
    });

  async function streamHarness() {
    const hub = createJobEventHub();
    const h = await harness();
    await h.app.close();
    apps.pop();
    const app = await buildApp({ ...h.deps, jobEvents: hub.source });
    apps.push(app);
    return { app, jobs: h.jobs, hub };
  }

  it('sends the final document at once for a finished job, and ends', async () => {
    const { app, jobs } = await streamHarness();
    jobs.documents.set(JOB, doc('Completed'));
    const res = await app.inject({ method: 'GET', url: `/api/lookup/${JOB}/events` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(parse(res.payload)).toEqual([{ event: 'completed', data: expect.objectContaining({ jobId: JOB, status: 'Completed' }) }]);
  });

  it('sends the status at once, then the completed document when the job finishes', async () => {
    const { app, jobs, hub } = await streamHarness();
    jobs.documents.set(JOB, doc('Processing'));
    const pending = app.inject({ method: 'GET', url: `/api/lookup/${JOB}/events` });
    await new Promise((r) => setTimeout(r, 50));
    expect(hub.subscribers).toBe(1);
    hub.notify(JOB); // a wake-up while still Processing changes nothing
    await new Promise((r) => setTimeout(r, 20));
    jobs.documents.set(JOB, doc('Completed'));
    hub.notify(JOB);
    const res = await pending;
    expect(parse(res.payload).map((e) => [e.event, e.data.status])).toEqual([['status', 'Processing'], ['completed', 'Completed']]);
    expect(hub.subscribers).toBe(0);
  });

  it('ends open streams when the server shuts down, so close() does not wait for them', async () => {
    const { app, jobs } = await streamHarness();
    jobs.documents.set(JOB, doc('Processing'));
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    const res = await fetch(`${address}/api/lookup/${JOB}/events`);
    const body = res.text();
    await new Promise((r) => setTimeout(r, 50));
    // Without ending the streams first, close() would wait for this one (up to 10 minutes) and time the test out.
    await app.close();
    apps.pop();
    expect(parse(await body).map((e) => e.event)).toEqual(['status']);
  });

  it('answers 404 JSON for an unknown job and 400 for a malformed id', async () => {
    const { app } = await streamHarness();
    const unknown = await app.inject({ method: 'GET', url: `/api/lookup/${JOB}/events` });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: 'Job not found' });
    const bad = await app.inject({ method: 'GET', url: '/api/lookup/nope/events' });
    expect(bad.statusCode).toBe(400);
  });
});
