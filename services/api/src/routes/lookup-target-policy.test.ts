import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '@lookup/config';
import type { JobSubmitted, LookupCommand } from '@lookup/contracts';
import { createLogger } from '@lookup/logging';
import type { NewJob } from '@lookup/store';
import { startDnsFixture, type DnsFixture } from '../../../../tests/fixtures/index.ts';
import { buildApp } from '../app.ts';
import type { ApiDeps } from '../deps.ts';

// POST /api/lookup and the target policy: literals with the full policy, domains pre-checked through the
// loopback DNS fixture (DNS_SERVERS). In-memory fakes for Redis and RabbitMQ.

let dns: DnsFixture;
let silentDns: DnsFixture;
const apps: FastifyInstance[] = [];

beforeAll(async () => {
  dns = await startDnsFixture({
    records: {
      a: { 'public.example.test': ['8.8.8.8'], 'mixed.example.test': ['8.8.8.8', '10.0.0.1'], 'sixtofour.example.test': [] },
      aaaa: { 'sixtofour.example.test': ['2002:7f00:1::1'], 'mixed.example.test': [] },
    },
  });
  silentDns = await startDnsFixture({ records: { drop: ['example.test'] } });
});
afterAll(async () => {
  await Promise.all([dns?.close(), silentDns?.close()]);
});
afterEach(async () => {
  while (apps.length > 0) await apps.pop()!.close();
});

async function harness(env: Record<string, string> = {}, limiter?: ApiDeps['rateLimiter']) {
  const config = loadConfig({ DNS_SERVERS: dns.address, ...env });
  const created: NewJob[] = [];
  const published: (JobSubmitted | LookupCommand)[] = [];
  const deps: ApiDeps = {
    config,
    logger: createLogger({ service: 'api-test', level: 'silent' }),
    jobs: {
      create: async (job: NewJob) => void created.push(job),
      discard: async () => undefined,
      getDocument: async () => undefined,
      markNotified: async () => true,
      cancel: async () => ({ disposition: 'missing', status: '', hasCallback: false }),
    },
    idempotency: { claim: async () => ({ state: 'new' }), release: async () => undefined },
    rateLimiter: limiter ?? { check: async () => ({ allowed: true, retryAfterSeconds: 0, limit: 100, remaining: 99 }) },
    publishJobSubmitted: async (m) => void published.push(m),
    publishCommand: async (m) => void published.push(m),
    publishJobCompleted: async () => undefined,
    readiness: async () => ({ rabbitmq: true, redis: true }),
  };
  const app = await buildApp(deps);
  apps.push(app);
  const post = (target: string) => app.inject({ method: 'POST', url: '/api/lookup', payload: { target } });
  return { post, created, published };
}

describe('POST /api/lookup: IP literals and the full target policy', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::127.0.0.1', 'ipv4-compatible-embedded-loopback'],
    ['2002:7f00:1::1', '6to4-embedded-loopback'],
    ['2002:a9fe:a9fe::1', '6to4-embedded-link-local'],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'teredo-embedded-loopback'],
    ['2001::1', 'teredo'],
    ['2001:2::1', 'benchmarking'],
    ['2001:10::1', 'orchid'],
    ['2001:20::1', 'orchidv2'],
    ['3fff::1', 'documentation'],
    ['64:ff9b::a00:1', 'nat64-embedded-private'],
    ['100.64.0.1', 'cgnat'],
    ['192.0.0.8', 'ietf-protocol-assignments'],
    ['FE80::1%eth0', 'link-local'],
  ])('%s is 400 Target not allowed naming rule %s', async (target, rule) => {
    const h = await harness();
    const res = await h.post(target);
    expect(res.statusCode, target).toBe(400);
    expect(res.json()).toMatchObject({ error: 'Target not allowed', message: expect.stringContaining(`rule ${rule}`) });
    expect(res.json().message).toMatch(/TARGET_ALLOW_CIDRS/);
    expect(h.created).toEqual([]);
    expect(h.published).toEqual([]);
  });

  it('ALLOW_PRIVATE_TARGETS and TARGET_ALLOW_CIDRS lift it; TARGET_DENY_CIDRS wins', async () => {
    expect((await (await harness({ ALLOW_PRIVATE_TARGETS: 'true' })).post('2002:7f00:1::1')).statusCode).toBe(202);
    const allowList = await harness({ TARGET_ALLOW_CIDRS: '10.1.0.0/16' });
    expect((await allowList.post('10.1.2.3')).statusCode).toBe(202);
    expect((await allowList.post('10.2.0.1')).statusCode).toBe(400);
    const deny = await harness({ ALLOW_PRIVATE_TARGETS: 'true', TARGET_DENY_CIDRS: '8.8.8.0/24' });
    const res = await deny.post('8.8.8.8');
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'Target not allowed', message: expect.stringMatching(/rule deny-list.*TARGET_DENY_CIDRS/) });
  });

  it('public addresses are accepted', async () => {
    const h = await harness();
    for (const target of ['8.8.8.8', '2606:4700:4700::1111', '2002:808:808::1', '64:ff9b::8.8.8.8']) {
      expect((await h.post(target)).statusCode, target).toBe(202);
    }
  });
});

describe('POST /api/lookup: domains pre-checked at the API (DNS_SERVERS)', () => {
  it.each([
    ['example.test', '127.0.0.2', 'loopback'],
    ['dual.example.test', '127.0.0.1', 'loopback'],
    ['ipv6.example.test', '::1', 'loopback'],
    ['sixtofour.example.test', '2002:7f00:1::1', '6to4-embedded-loopback'],
    ['mixed.example.test', '10.0.0.1', 'private'],
  ])('%s, resolving to a refused address, is 400 naming the rule', async (target, address, rule) => {
    const h = await harness();
    const res = await h.post(target);
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error).toBe('Target not allowed');
    expect(body.message).toContain(`'${target}' resolves to ${address}, which the target policy refuses`);
    expect(body.message).toContain(`rule ${rule}`);
    expect(h.created).toEqual([]);
  });

  it('runs after the submission quota: a refused (429) submission sends no DNS query', async () => {
    const tiers: string[] = [];
    const full: ApiDeps['rateLimiter'] = {
      check: async (tier) => {
        tiers.push(tier);
        return tier === 'submit' ? { allowed: false, retryAfterSeconds: 30, limit: 20, remaining: 0 } : { allowed: true, retryAfterSeconds: 0, limit: 100, remaining: 99 };
      },
    };
    const h = await harness({}, full);
    const before = dns.queries;
    const res = await h.post('fresh-name.example.test');
    expect(res.statusCode).toBe(429);
    expect(tiers).toContain('submit');
    expect(dns.queries).toBe(before);
    expect(h.created).toEqual([]);
  });

  it('a domain resolving only to allowed (public) addresses is accepted', async () => {
    const h = await harness();
    expect((await h.post('public.example.test')).statusCode).toBe(202);
  });

  it('NXDOMAIN, SERVFAIL and a DNS timeout never refuse the job at the API', async () => {
    const h = await harness();
    for (const target of ['missing.example.test', 'servfail.example.test', 'timeout.example.test', 'nodata.example.test']) {
      expect((await h.post(target)).statusCode, target).toBe(202);
    }
    const silent = await harness({ DNS_SERVERS: silentDns.address });
    expect((await silent.post('example.test')).statusCode).toBe(202);
  });

  it('with ALLOW_PRIVATE_TARGETS and no deny list, the API asks no DNS at all', async () => {
    const h = await harness({ ALLOW_PRIVATE_TARGETS: 'true' });
    const before = dns.queries;
    expect((await h.post('example.test')).statusCode).toBe(202);
    expect(dns.queries).toBe(before);
  });
});
