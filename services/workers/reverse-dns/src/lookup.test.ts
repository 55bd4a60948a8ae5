import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@lookup/config';
import type { LookupFn } from '@lookup/worker-kit';
import { startDnsFixture, type DnsFixture, lookupContext, silentLogger } from '../../../../tests/fixtures/index.ts';
import { reverseDnsLookup } from './lookup.ts';

const logger = silentLogger;
let dnsFixture: DnsFixture;
let lookup: LookupFn;

const ctx = lookupContext;

beforeAll(async () => {
  dnsFixture = await startDnsFixture({ records: { ptr: { '2001:db8::53': ['ns.example.test'] } } });
  // LOOKUP_TIMEOUT_MS sets the per-query DNS timeout to 250 ms, so the timeout case stays quick.
  const config = loadConfig({ DNS_SERVERS: dnsFixture.address, LOOKUP_TIMEOUT_MS: '1000' });
  ({ lookup } = await reverseDnsLookup.setup({ config, logger }));
});

afterAll(async () => {
  await dnsFixture?.close();
});

describe('ReverseDNS lookup', () => {
  it('finds the PTR record of an address', async () => {
    expect(await lookup(ctx('127.0.0.2'))).toEqual({
      ip: '127.0.0.2',
      found: true,
      hostname: 'fixture-host.example.test',
      hostnames: ['fixture-host.example.test'],
    });
  });

  it('returns every PTR record', async () => {
    const data = await lookup(ctx('127.0.0.3'));
    expect(data.hostnames).toEqual(expect.arrayContaining(['multi-a.example.test', 'multi-b.example.test']));
  });

  it('looks up IPv6 addresses (ip6.arpa)', async () => {
    expect(await lookup(ctx('2001:db8::53'))).toMatchObject({ found: true, hostnames: ['ns.example.test'] });
  });

  it('reports no PTR record as a success with found: false', async () => {
    expect(await lookup(ctx('127.0.0.77'))).toEqual({ ip: '127.0.0.77', found: false });
  });

  it('fails a domain at once with a permanent error', async () => {
    await expect(lookup(ctx('example.test', 'Domain'))).rejects.toMatchObject({
      code: 'REVERSE_DNS_NEEDS_IP',
      retryable: false,
      message: 'ReverseDNS needs an IP address; example.test is a domain',
    });
    expect(dnsFixture.queries).toBeGreaterThan(0); // sanity: the other cases did reach the fixture
  });

  it('treats SERVFAIL as transient', async () => {
    await expect(lookup(ctx('127.0.0.9'))).rejects.toMatchObject({ code: 'DNS_SERVFAIL', retryable: true });
  });

  it('treats a DNS timeout as transient', async () => {
    await expect(lookup(ctx('127.0.0.10'))).rejects.toMatchObject({ code: 'DNS_TIMEOUT', retryable: true });
  });

  it('stops when the attempt is aborted', async () => {
    const controller = new AbortController();
    const pending = lookup(ctx('127.0.0.10', 'IPAddress', controller.signal));
    setTimeout(() => controller.abort(), 50);
    await expect(pending).rejects.toMatchObject({ code: 'DNS_ABORTED', retryable: true });
  });
});
