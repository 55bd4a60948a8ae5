import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@lookup/config';
import type { LookupFn } from '@lookup/worker-kit';
import { startDnsFixture, type DnsFixture, lookupContext, silentLogger } from '../../../../tests/fixtures/index.ts';
import { MAX_DOMAIN_ADDRESSES, pickAddresses, reverseDnsLookup } from './lookup.ts';

const logger = silentLogger;
let dnsFixture: DnsFixture;
let lookup: LookupFn;

const ctx = lookupContext;

beforeAll(async () => {
  dnsFixture = await startDnsFixture({
    records: {
      ptr: { '2001:db8::53': ['ns.example.test'], '127.0.1.1': ['many-1.example.test'] },
      a: {
        // More addresses than are looked up: ten A records and two AAAA (documentation addresses: no traffic
        // goes to them, only PTR queries to the fixture).
        'many.example.test': Array.from({ length: 10 }, (_, i) => `127.0.1.${i + 1}`),
        'noptr.example.test': ['127.0.0.77'],
        // 127.0.0.9's PTR query is answered SERVFAIL by the fixture.
        'partial.example.test': ['127.0.0.9', '127.0.0.2'],
        'allfail.example.test': ['127.0.0.9'],
      },
      aaaa: { 'many.example.test': ['2001:db8::53', '2001:db8::54'] },
    },
  });
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

describe('ReverseDNS lookup of a domain', () => {
  it('resolves the name and looks up the PTR record of its address', async () => {
    const before = dnsFixture.queries;
    expect(await lookup(ctx('example.test', 'Domain'))).toEqual({
      ip: '127.0.0.2',
      found: true,
      hostname: 'fixture-host.example.test',
      hostnames: ['fixture-host.example.test'],
      resolvedFrom: 'example.test',
      resolvedAddresses: ['127.0.0.2'],
      addresses: [{ ip: '127.0.0.2', found: true, hostname: 'fixture-host.example.test', hostnames: ['fixture-host.example.test'] }],
    });
    expect(dnsFixture.queries - before).toBe(3); // A, AAAA, one PTR
  });

  it('looks up every address of both families', async () => {
    const data = await lookup(ctx('dual.example.test', 'Domain'));
    expect(data).toMatchObject({ ip: '127.0.0.1', found: true, hostname: 'localhost', resolvedAddresses: ['127.0.0.1', '::1'] });
    expect(data.addresses).toEqual([
      { ip: '127.0.0.1', found: true, hostname: 'localhost', hostnames: ['localhost'] },
      { ip: '::1', found: true, hostname: 'localhost', hostnames: ['localhost'] },
    ]);
  });

  it(`looks up at most ${MAX_DOMAIN_ADDRESSES} addresses, IPv4 and IPv6 in turn, and lists every address resolved`, async () => {
    const before = dnsFixture.queries;
    const data = await lookup(ctx('many.example.test', 'Domain'));
    expect(dnsFixture.queries - before).toBe(2 + MAX_DOMAIN_ADDRESSES); // A and AAAA, then one PTR per address
    expect((data.resolvedAddresses as string[]).length).toBe(12);
    const addresses = data.addresses as { ip: string; found: boolean }[];
    expect(addresses.map((a) => a.ip)).toEqual(['127.0.1.1', '2001:db8::53', '127.0.1.2', '2001:db8::54', '127.0.1.3', '127.0.1.4', '127.0.1.5', '127.0.1.6']);
    expect(addresses.filter((a) => a.found).map((a) => a.ip)).toEqual(['127.0.1.1', '2001:db8::53']);
    expect(data).toMatchObject({ ip: '127.0.1.1', found: true, hostname: 'many-1.example.test' });
  });

  it('reports addresses without a PTR record as found: false, a success', async () => {
    expect(await lookup(ctx('noptr.example.test', 'Domain'))).toEqual({
      ip: '127.0.0.77',
      found: false,
      resolvedFrom: 'noptr.example.test',
      resolvedAddresses: ['127.0.0.77'],
      addresses: [{ ip: '127.0.0.77', found: false }],
    });
  });

  it('the top level names the first address that has a PTR record', async () => {
    const data = await lookup({ ...ctx('partial.example.test', 'Domain'), attempt: 3 });
    expect(data).toMatchObject({ ip: '127.0.0.2', found: true, hostname: 'fixture-host.example.test' });
  });

  it('retries when one address fails while attempts remain; keeps the other answers on the last attempt', async () => {
    await expect(lookup(ctx('partial.example.test', 'Domain'))).rejects.toMatchObject({
      code: 'DNS_SERVFAIL',
      retryable: true,
      message: expect.stringContaining('partial.example.test: reverse lookup of 127.0.0.9 failed'),
    });
    const last = await lookup({ ...ctx('partial.example.test', 'Domain'), attempt: 3 }); // RETRY_MAX_ATTEMPTS 3
    expect(last.addresses).toEqual([
      { ip: '127.0.0.9', found: false, error: { code: 'DNS_SERVFAIL', message: expect.stringContaining('SERVFAIL') } },
      { ip: '127.0.0.2', found: true, hostname: 'fixture-host.example.test', hostnames: ['fixture-host.example.test'] },
    ]);
  });

  it('fails transiently when every address fails, even on the last attempt', async () => {
    await expect(lookup({ ...ctx('allfail.example.test', 'Domain'), attempt: 3 })).rejects.toMatchObject({ code: 'DNS_SERVFAIL', retryable: true });
  });

  it('fails permanently for a name that does not exist', async () => {
    await expect(lookup(ctx('no-such-name.example.test', 'Domain'))).rejects.toMatchObject({ code: 'DNS_NXDOMAIN', retryable: false });
  });

  it('fails transiently when resolving the name fails', async () => {
    await expect(lookup(ctx('servfail.example.test', 'Domain'))).rejects.toMatchObject({ code: 'DNS_SERVFAIL', retryable: true });
  });
});

describe('pickAddresses', () => {
  it('takes IPv4 and IPv6 in turn, drops duplicates, stops at the bound', () => {
    expect(pickAddresses(['1.1.1.1', '1.1.1.2', '1.1.1.1', '::1', '::2', '::3'], 4)).toEqual(['1.1.1.1', '::1', '1.1.1.2', '::2']);
    expect(pickAddresses(['::1', '::2'], 8)).toEqual(['::1', '::2']);
    expect(pickAddresses(['1.1.1.1', '1.1.1.2', '1.1.1.3', '::1'], 3)).toEqual(['1.1.1.1', '::1', '1.1.1.2']);
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

  it('refuses a domain resolving to a refused address, after its A/AAAA queries and without any PTR query', async () => {
    const config = loadConfig({ DNS_SERVERS: dnsFixture.address, LOOKUP_TIMEOUT_MS: '1000' });
    const { lookup: strict } = await reverseDnsLookup.setup({ config, logger });
    const before = dnsFixture.queries;
    const err = await strict(ctx('example.test', 'Domain')).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'TARGET_REFUSED', retryable: false });
    expect((err as Error).message).toMatch(/^example\.test resolved to 127\.0\.0\.2, which the target policy refuses: .*rule loopback/);
    expect(dnsFixture.queries - before).toBe(2);
    await expect(strict(ctx('ipv6.example.test', 'Domain'))).rejects.toMatchObject({ code: 'TARGET_REFUSED', message: expect.stringMatching(/resolved to ::1, .*rule loopback/) });
  });
});
