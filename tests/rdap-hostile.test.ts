import type { Redis } from 'ioredis';
import { keysEverywhere, rawRedis } from './support/redis.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobDocument } from '@lookup/contracts';
import { DEFAULT_FIXTURE_SECRET, startDnsFixture, startRdapFixture, type DnsFixture, type RdapFixture } from './fixtures/index.ts';

import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startService, startSuite, stopService, waitFor, type ServiceProcess, type Suite } from './support/processes.ts';

// Issue 10, finding 2, through the real processes: an RDAP server that redirects to an internal URL, answers
// something that is not RDAP, or answers 64 MiB. The API and saga allow private targets (so the job reaches the
// worker); the RDAP worker runs with the target policy on, as in production: its check is the one that counts.
const ns = newNamespace('rdap-hostile');
let suite: Suite;
let worker: ServiceProcess;
let rdap: RdapFixture;
let internal: RdapFixture;
let dns: DnsFixture;

beforeAll(async () => {
  [internal, dns] = await Promise.all([startRdapFixture(), startDnsFixture()]);
  rdap = await startRdapFixture({ redirects: { 'leak.test': `${internal.url}/secret.json` } });
  const env = { RDAP_BASE_URL: rdap.url, DNS_SERVERS: dns.address, RETRY_BASE_DELAY_MS: '10', RATE_LIMIT_SUBMIT_PER_MIN: '1000' };
  suite = await startSuite({ namespace: ns, services: ['api', 'saga'], env: { ...env, ALLOW_PRIVATE_TARGETS: 'true' } });
  worker = await startService('rdap', { ...env, NAMESPACE: ns, ALLOW_PRIVATE_TARGETS: 'false' });
});

afterAll(async () => {
  if (worker) await stopService(worker);
  await suite?.stop();
  await Promise.all([rdap?.close(), internal?.close(), dns?.close()]);
  await cleanupNamespace(ns);
});

async function rdapJob(target: string): Promise<{ doc: JobDocument; text: string }> {
  const res = await fetch(`${suite.apiUrl}/api/lookup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ target, services: ['rdap'] }),
  });
  expect(res.status).toBe(202);
  const { statusUrl } = (await res.json()) as { statusUrl: string };
  return waitFor(async () => {
    const text = await (await fetch(`${suite.apiUrl}${statusUrl}`)).text();
    const doc = JSON.parse(text) as JobDocument;
    return doc.status === 'Completed' ? { doc, text } : undefined;
  }, 30_000);
}

/** Every value under the namespace in Redis, read with a raw client. */
async function namespaceContents(): Promise<string> {
  const redis = rawRedis();
  try {
    const keys = await keysEverywhere(redis, `${ns}:*`);
    const values = await Promise.all(
      keys.map(async (key) => {
        const type = await redis.type(key);
        if (type === 'string') return (await redis.getBuffer(key))?.toString('latin1') ?? '';
        if (type === 'hash') return JSON.stringify(await redis.hgetall(key));
        if (type === 'list') return JSON.stringify(await redis.lrange(key, 0, -1));
        if (type === 'set') return JSON.stringify(await redis.smembers(key));
        if (type === 'zset') return JSON.stringify(await redis.zrange(key, 0, -1));
        if (type === 'stream') return JSON.stringify(await redis.xrange(key, '-', '+'));
        return '';
      }),
    );
    return keys.join('\n') + values.join('\n');
  } finally {
    redis.disconnect();
  }
}

describe('RDAP against a hostile server (real processes)', () => {
  it('refuses a redirect to an internal URL: the job fails once, naming the rule, and the secret is nowhere', async () => {
    const { doc, text } = await rdapJob('leak.test');
    const result = doc.results.find((r) => r.serviceType === 'RDAP')!;
    expect(result).toMatchObject({ status: 'Failed', success: false, attempts: 1, data: null });
    expect(result.errorMessage).toMatch(/target policy \(rule 'loopback'/);
    expect(text).not.toContain(DEFAULT_FIXTURE_SECRET);
    expect(internal.paths).not.toContain('/secret.json');
    expect(await namespaceContents()).not.toContain(DEFAULT_FIXTURE_SECRET);
  });

  it('fails a 64 MiB answer at RDAP_MAX_RESPONSE_BYTES and stores nothing of it', async () => {
    const { doc, text } = await rdapJob('huge-64mb.test');
    const result = doc.results.find((r) => r.serviceType === 'RDAP')!;
    expect(result).toMatchObject({ status: 'Failed', attempts: 1, data: null });
    expect(result.errorMessage).toContain('RDAP_MAX_RESPONSE_BYTES');
    expect(text.length).toBeLessThan(10_000);
    expect(await namespaceContents()).not.toMatch(/x{1000}/);
  });

  it('refuses a body that is not RDAP', async () => {
    const { doc } = await rdapJob('not-rdap.test');
    const result = doc.results.find((r) => r.serviceType === 'RDAP')!;
    expect(result).toMatchObject({ status: 'Failed', attempts: 1, data: null });
    expect(result.errorMessage).toMatch(/not an RDAP object/);
  });
});
