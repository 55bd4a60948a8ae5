import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startSuite, waitFor, type Suite } from './support/processes.ts';

// Per-tenant quotas through the real suite (API, saga, the GeoIP worker; no Ping worker, so Ping jobs stay in
// flight until cancelled) on real RabbitMQ and Redis. Loopback targets only.
const ns = newNamespace('tenants');
let suite: Suite;
const KEY_A = 'tenant-a-key-0123456789';
const KEY_B = 'tenant-b-key-0123456789';
const KEY_C = 'tenant-c-key-0123456789';

beforeAll(async () => {
  suite = await startSuite({
    namespace: ns,
    services: ['api', 'saga', 'geoip'],
    env: {
      ALLOW_PRIVATE_TARGETS: 'true',
      RATE_LIMIT_SUBMIT_PER_MIN: '1000',
      API_KEYS: 'plain-key-0123456789',
      TENANTS: `bulk:${KEY_A}:1000:5,interactive:${KEY_B}:1000:5,small:${KEY_C}:2:0`,
    },
  });
});

afterAll(async () => {
  await suite?.stop();
  await cleanupNamespace(ns);
});

const call = (key: string, path: string, init: RequestInit = {}) =>
  fetch(`${suite.apiUrl}${path}`, { ...init, headers: { ...(init.body ? { 'content-type': 'application/json' } : {}), 'x-api-key': key } });
const batch = (key: string, n: number, services: string[]) =>
  call(key, '/api/lookup/batch', { method: 'POST', body: JSON.stringify({ items: Array.from({ length: n }, (_, i) => ({ target: `127.0.0.${i + 2}` })), services }) });
const usage = async (key: string) => (await call(key, '/api/usage')).json() as Promise<Record<string, unknown>>;

describe('tenant quotas (real suite)', () => {
  it("refuses a bulk tenant's batch beyond its in-flight quota, while another tenant's job still completes", async () => {
    const tooBig = await batch(KEY_A, 20, ['Ping']);
    expect(tooBig.status).toBe(429);
    expect(await tooBig.json()).toMatchObject({ code: 'TENANT_QUOTA_EXCEEDED', details: { quota: 'in-flight', limit: 5, used: 0, requested: 20 } });
    expect(tooBig.headers.get('retry-after')).toBeNull();

    const five = await batch(KEY_A, 5, ['Ping']); // no Ping worker: these stay in flight
    expect(five.status).toBe(202);
    const held = (await five.json()) as { jobs: { jobId: string }[] };
    const sixth = await call(KEY_A, '/api/lookup', { method: 'POST', body: JSON.stringify({ target: '127.0.0.9', services: ['GeoIP'] }) });
    expect(sixth.status).toBe(429);
    expect(await usage(KEY_A)).toEqual({ tenant: 'bulk', day: expect.any(String), jobsToday: 5, jobsPerDay: 1000, jobsInFlight: 5, jobsInFlightLimit: 5 });

    const b = await call(KEY_B, '/api/lookup', { method: 'POST', body: JSON.stringify({ target: '127.0.0.20', services: ['GeoIP'] }) });
    expect(b.status).toBe(202);
    const { statusUrl } = (await b.json()) as { statusUrl: string };
    const doc = await waitFor(async () => {
      const d = (await (await call(KEY_B, statusUrl)).json()) as { status: string };
      return d.status === 'Completed' ? d : undefined;
    }, 30_000);
    expect(doc).toMatchObject({ status: 'Completed' });
    // B's job ended: its slot is free again.
    expect(await waitFor(async () => ((await usage(KEY_B)).jobsInFlight === 0 ? true : undefined), 10_000)).toBe(true);
    expect(await usage(KEY_B)).toMatchObject({ tenant: 'interactive', jobsToday: 1, jobsInFlight: 0 });

    // Cancelling one of A's jobs frees one slot: one more job fits, the next does not.
    expect((await call(KEY_A, `/api/lookup/${held.jobs[0]!.jobId}`, { method: 'DELETE' })).status).toBe(202);
    expect(await usage(KEY_A)).toMatchObject({ jobsInFlight: 4, jobsToday: 5 });
    expect((await batch(KEY_A, 1, ['Ping'])).status).toBe(202);
    expect((await batch(KEY_A, 1, ['Ping'])).status).toBe(429);
  });

  it('refuses past the daily quota with Retry-After until the end of the UTC day', async () => {
    expect((await batch(KEY_C, 2, ['GeoIP'])).status).toBe(202);
    const refused = await call(KEY_C, '/api/lookup', { method: 'POST', body: JSON.stringify({ target: '127.0.0.5', services: ['GeoIP'] }) });
    expect(refused.status).toBe(429);
    const body = (await refused.json()) as { code: string; retryAfter: number; details: object };
    expect(body).toMatchObject({ code: 'TENANT_QUOTA_EXCEEDED', details: { quota: 'day', limit: 2, used: 2, requested: 1 } });
    expect(Number(refused.headers.get('retry-after'))).toBe(body.retryAfter);
    expect(body.retryAfter).toBeGreaterThan(0);
    expect(body.retryAfter).toBeLessThanOrEqual(24 * 3600);
    expect(await usage(KEY_C)).toMatchObject({ tenant: 'small', jobsToday: 2, jobsPerDay: 2, jobsInFlightLimit: null });
  });

  it('GET /api/usage needs a key; a key of no tenant has no usage to show', async () => {
    expect((await fetch(`${suite.apiUrl}/api/usage`)).status).toBe(401);
    const plain = await call('plain-key-0123456789', '/api/usage');
    expect(plain.status).toBe(404);
    expect(await plain.json()).toMatchObject({ code: 'TENANT_NOT_CONFIGURED' });
    // A key of no tenant submits under the rate limits alone.
    expect((await batch('plain-key-0123456789', 10, ['Ping'])).status).toBe(202);
  });
});
