import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_CATALOGUE, type JobDocument } from '@lookup/contracts';
import { startDnsFixture, startRdapFixture } from './fixtures/index.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startSuite, waitFor, type Suite } from './support/processes.ts';

// The whole suite as separate processes (API, saga, a worker per catalogue service) against real RabbitMQ and Redis,
// with loopback fixtures for RDAP and DNS. Nothing leaves this machine.
const ns = newNamespace('e2e');
let suite: Suite;
let rdap: Awaited<ReturnType<typeof startRdapFixture>>;
let dns: Awaited<ReturnType<typeof startDnsFixture>>;

beforeAll(async () => {
  [rdap, dns] = await Promise.all([startRdapFixture({}), startDnsFixture({})]);
  suite = await startSuite({
    namespace: ns,
    env: {
      RDAP_BASE_URL: rdap.url,
      DNS_SERVERS: dns.address,
      ALLOW_PRIVATE_TARGETS: 'true',
      PING_COUNT: '1',
      PING_TIMEOUT_MS: '1000',
      RATE_LIMIT_SUBMIT_PER_MIN: '1000',
      RATE_LIMIT_API_PER_MIN: '10000',
      RATE_LIMIT_GLOBAL_PER_MIN: '100000',
    },
  });
});

afterAll(async () => {
  await suite?.stop();
  await Promise.all([rdap?.close(), dns?.close()]);
  await cleanupNamespace(ns);
});

async function post(body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const res = await fetch(`${suite.apiUrl}/api/lookup`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

async function submitAndWait(body: unknown): Promise<JobDocument> {
  const accepted = await post(body);
  expect(accepted.status).toBe(202);
  expect(accepted.headers.get('location')).toBe(accepted.body.statusUrl);
  return waitFor(async () => {
    const res = await fetch(`${suite.apiUrl}${accepted.body.statusUrl as string}`);
    const doc = (await res.json()) as JobDocument;
    return doc.status === 'Completed' ? doc : undefined;
  }, 30_000);
}

const result = (doc: JobDocument, name: string) => doc.results.find((r) => r.serviceType === name)!;

describe('end to end', () => {
  it('runs every catalogue lookup on a loopback IP against the fixtures when services is omitted', async () => {
    const doc = await submitAndWait({ target: ' 127.0.0.2 ' });
    expect(doc).toMatchObject({
      target: '127.0.0.2',
      targetType: 'IPAddress',
      status: 'Completed',
      completionPercentage: 100,
      requestedServices: SERVICE_CATALOGUE.map((s) => s.name),
    });
    expect(doc.requestedServices).toEqual(['GeoIP', 'Ping', 'RDAP', 'ReverseDNS', 'DNS']);
    expect(doc.completedAt).not.toBeNull();
    expect(doc.results).toHaveLength(SERVICE_CATALOGUE.length);
    for (const r of doc.results) {
      expect(r, r.serviceType).toMatchObject({ status: 'Succeeded', success: true, errorMessage: null, errorCode: null, attempts: 1 });
      expect(typeof r.data).toBe('object');
      expect(r.durationMs).toBeGreaterThanOrEqual(0);
    }
    expect(result(doc, 'GeoIP').data).toMatchObject({ found: false });
    expect(result(doc, 'Ping').data).toMatchObject({ reachable: true });
    expect(JSON.stringify(result(doc, 'RDAP').data)).toContain('127.0.0');
    expect(result(doc, 'ReverseDNS').data).toMatchObject({ found: true });
    expect(result(doc, 'DNS').data).toMatchObject({ ip: '127.0.0.2', ptr: ['fixture-host.example.test'], forwardConfirmed: true });
    expect(rdap.requests).toBeGreaterThan(0);

    // One grep follows the job through every process that handled it: the API, which dispatched it, and every worker.
    // (A worker logs its line after it has published its event, so the line may trail the document.) The saga takes
    // no part in a job without a tenant.
    for (const p of suite.processes.filter((p) => p.name !== 'saga')) {
      const logged = await waitFor(async () => (p.lines.some((l) => l.includes(doc.jobId)) ? true : undefined), 5_000).catch(() => false);
      expect(logged, `${p.name} logged the job id`).toBe(true);
    }
  });

  it('looks up a public IP with GeoIP only (an offline database read)', async () => {
    const doc = await submitAndWait({ target: '8.8.8.8', services: ['geoip'] });
    expect(doc.requestedServices).toEqual(['GeoIP']);
    expect(doc.results).toHaveLength(1);
    expect(result(doc, 'GeoIP')).toMatchObject({ status: 'Succeeded', data: { found: true, countryCode: 'US' } });
  });

  it('resolves a domain through the DNS fixture; ReverseDNS looks up the PTR record of each address', async () => {
    const doc = await submitAndWait({ target: 'Example.TEST.', services: [0, 'PING', 'rdap', 3] });
    expect(doc).toMatchObject({ target: 'example.test', targetType: 'Domain', status: 'Completed' });
    expect(result(doc, 'ReverseDNS')).toMatchObject({
      status: 'Succeeded',
      data: { ip: '127.0.0.2', found: true, hostname: 'fixture-host.example.test', resolvedFrom: 'example.test', addresses: [{ ip: '127.0.0.2', found: true }] },
    });
    expect(result(doc, 'Ping')).toMatchObject({ status: 'Succeeded', data: { reachable: true } });
    expect(result(doc, 'RDAP')).toMatchObject({ status: 'Succeeded' });
    expect(result(doc, 'GeoIP')).toMatchObject({ status: 'Succeeded' });
  });

  it('looks up the forward records of a domain with DNS', async () => {
    const doc = await submitAndWait({ target: 'example.test', services: ['dns'] });
    expect(doc.requestedServices).toEqual(['DNS']);
    expect(result(doc, 'DNS')).toMatchObject({
      status: 'Succeeded',
      data: { name: 'example.test', a: ['127.0.0.2'], mx: [{ exchange: 'mail.example.test', priority: 10 }], soa: { nsname: 'ns1.example.test' } },
    });
  });

  it('streams a job until it completes (server-sent events)', async () => {
    const accepted = await post({ target: '127.0.0.2', services: ['geoip', 'rdap'] });
    expect(accepted.status).toBe(202);
    const res = await fetch(`${suite.apiUrl}${accepted.body.statusUrl as string}/events`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await res.text(); // the stream ends after the completed event
    const events = text.split('\n\n').filter((b) => b.startsWith('event:')).map((b) => b.split('\n')[0]!.slice(7));
    expect(events.at(-1)).toBe('completed');
    const last = JSON.parse(text.trim().split('\n\n').at(-1)!.split('\n')[1]!.slice(6)) as JobDocument;
    expect(last).toMatchObject({ jobId: accepted.body.jobId, status: 'Completed', completionPercentage: 100 });
    expect(last.results.map((r) => r.serviceType).sort()).toEqual(['GeoIP', 'RDAP']);
  });

  it('answers bad input with a 4xx JSON error, never a 5xx', async () => {
    const cases: [unknown, Record<string, string> | undefined][] = [
      [{}, undefined],
      [{ target: '' }, undefined],
      [{ target: '1.2.3' }, undefined],
      [{ target: 'not a domain' }, undefined],
      [{ target: 'x.com', services: [] }, undefined],
      [{ target: 'x.com', services: ['GeoIP', 'geoip'] }, undefined],
      [{ target: 'x.com', services: ['Whois'] }, undefined],
      [{ target: 'x.com', services: [9] }, undefined],
      ['{"target": ', undefined],
      ['target=x.com', { 'content-type': 'application/x-www-form-urlencoded' }],
      [JSON.stringify({ target: 'a'.repeat(100_000) + '.com' }), undefined],
    ];
    for (const [body, headers] of cases) {
      const res = await post(body, headers ?? { 'content-type': 'application/json' });
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(typeof res.body.error).toBe('string');
    }
    const malformed = await fetch(`${suite.apiUrl}/api/lookup/not-a-uuid`);
    expect(malformed.status).toBe(400);
    const unknown = await fetch(`${suite.apiUrl}/api/lookup/00000000-0000-4000-8000-000000000000`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toHaveProperty('error');
  });

  it('serves the catalogue, health and the OpenAPI document', async () => {
    const services = await (await fetch(`${suite.apiUrl}/api/lookup/services`)).json();
    expect(services).toEqual([
      { name: 'GeoIP', value: 0, description: expect.any(String) },
      { name: 'Ping', value: 1, description: expect.any(String) },
      { name: 'RDAP', value: 2, description: expect.any(String) },
      { name: 'ReverseDNS', value: 3, description: expect.any(String) },
      { name: 'DNS', value: 4, description: expect.any(String) },
    ]);
    expect((await fetch(`${suite.apiUrl}/health/live`)).status).toBe(200);
    expect((await fetch(`${suite.apiUrl}/health/ready`)).status).toBe(200);
    const openapi = (await (await fetch(`${suite.apiUrl}/swagger/json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining(['/api/lookup', '/api/lookup/{jobId}', '/api/lookup/{jobId}/events', '/api/lookup/services', '/health/live', '/health/ready']),
    );
    // ADMIN_API_KEY is unset here: the admin routes do not exist, in the document or on the wire.
    expect(Object.keys(openapi.paths).some((p) => p.startsWith('/api/admin'))).toBe(false);
    expect((await fetch(`${suite.apiUrl}/api/admin/dead-letters`)).status).toBe(404);
    const ui = await fetch(`${suite.apiUrl}/swagger`, { redirect: 'follow' });
    expect(ui.status).toBe(200);
    expect(await ui.text()).toMatch(/swagger/i);
  });
});
