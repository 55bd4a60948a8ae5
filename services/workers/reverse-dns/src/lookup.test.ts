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
  // The fixture's addresses are loopback and documentation ones: allowed here; the policy is tested below.
  const config = loadConfig({ DNS_SERVERS: dnsFixture.address, LOOKUP_TIMEOUT_MS: '1000', ALLOW_PRIVATE_TARGETS: 'true' });
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

describe('ReverseDNS lookup: the target policy (ALLOW_PRIVATE_TARGETS unset)', () => {
  it('refuses a special-purpose address naming the rule, without asking the DNS server', async () => {
    const config = loadConfig({ DNS_SERVERS: dnsFixture.address, LOOKUP_TIMEOUT_MS: '1000' });
    const { lookup: strict } = await reverseDnsLookup.setup({ config, logger });
    const before = dnsFixture.queries;
    for (const [ip, rule] of [['127.0.0.2', 'loopback'], ['::1', 'loopback'], ['10.0.0.1', 'private'], ['2001:db8::53', 'documentation']]) {
      const err = await strict(ctx(ip!)).then(() => undefined, (e: unknown) => e);
      expect(err, ip).toMatchObject({ code: 'TARGET_REFUSED', retryable: false });
      expect((err as Error).message).toContain(`rule ${rule}`);
    }
    expect(dnsFixture.queries).toBe(before);
  });
});
