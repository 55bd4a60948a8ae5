import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { loadConfig } from '@lookup/config';
import type { LookupFn } from '@lookup/worker-kit';
import { startDnsFixture, type DnsFixture, lookupContext as ctx, silentLogger as logger } from '../../../../tests/fixtures/index.ts';
import { DnsDataSchema, dnsLookup, MAX_PTR_NAMES } from './lookup.ts';

let fixture: DnsFixture;
let lookup: LookupFn;
let strict: LookupFn;

beforeAll(async () => {
  fixture = await startDnsFixture({
    records: {
      ptr: {
        '127.0.0.20': ['self.example.test', 'other.example.test'],
        '2001:db8::53': ['v6.example.test'],
        '127.0.0.21': Array.from({ length: MAX_PTR_NAMES + 2 }, (_, i) => `many-${i}.example.test`),
        '127.0.0.22': ['slow.example.test'],
      },
      a: { 'self.example.test': ['127.0.0.20'], 'other.example.test': ['127.0.0.99'], 'empty.example.test': [] },
      aaaa: { 'v6.example.test': ['2001:db8:0:0:0:0:0:53'] },
      drop: ['slow.example.test'],
    },
  });
  // LOOKUP_TIMEOUT_MS 1000: each try of a query waits 250 ms, so the timeout cases stay quick. The fixture's
  // addresses are loopback and documentation ones: allowed here; the policy is tested with `strict`.
  const config = loadConfig({ DNS_SERVERS: fixture.address, LOOKUP_TIMEOUT_MS: '1000', ALLOW_PRIVATE_TARGETS: 'true' });
  ({ lookup } = await dnsLookup.setup({ config, logger }));
  ({ lookup: strict } = await dnsLookup.setup({ config: loadConfig({ DNS_SERVERS: fixture.address, LOOKUP_TIMEOUT_MS: '1000' }), logger }));
});

afterAll(async () => {
  await fixture?.close();
});

/** Every answer this worker gives must match its schema (the kit checks it before storing). */
async function run(target: string, type: 'IPAddress' | 'Domain' = 'IPAddress') {
  const data = await lookup(ctx(target, type));
  expect(Value.Errors(DnsDataSchema, data).First(), JSON.stringify(data)).toBeUndefined();
  return data;
}

describe('DNS lookup of a domain', () => {
  it("returns every record type of the fixture's zone", async () => {
    expect(await run('example.test', 'Domain')).toEqual({
      name: 'example.test',
      a: ['127.0.0.2'],
      aaaa: [],
      cname: [],
      mx: [{ exchange: 'mail.example.test', priority: 10 }],
      ns: ['ns1.example.test', 'ns2.example.test'],
      txt: ['v=spf1 -all', 'fixture=loopback only'],
      soa: { nsname: 'ns1.example.test', hostmaster: 'hostmaster.example.test', serial: 2026010101, refresh: 7200, retry: 3600, expire: 1209600, minttl: 300 },
    });
  });

  it('follows an alias: its CNAME, and the A records of the canonical name', async () => {
    expect(await run('alias.example.test', 'Domain')).toEqual({
      name: 'alias.example.test',
      a: ['127.0.0.2'],
      aaaa: [],
      cname: ['www.example.test'],
      mx: [],
      ns: [],
      txt: [],
      soa: null,
    });
  });

  it('answers a name without records of any type with empty lists and a null SOA', async () => {
    expect(await run('nodata.example.test', 'Domain')).toEqual({ name: 'nodata.example.test', a: [], aaaa: [], cname: [], mx: [], ns: [], txt: [], soa: null });
  });

  it('fails permanently for a name that does not exist (NXDOMAIN)', async () => {
    await expect(lookup(ctx('nope.example.test', 'Domain'))).rejects.toMatchObject({
      code: 'DNS_NXDOMAIN',
      retryable: false,
      message: 'nope.example.test does not exist (DNS answered NXDOMAIN)',
    });
  });

  it('fails transiently on SERVFAIL and on a timeout', async () => {
    await expect(lookup(ctx('servfail.example.test', 'Domain'))).rejects.toMatchObject({ code: 'DNS_SERVFAIL', retryable: true });
    await expect(lookup(ctx('timeout.example.test', 'Domain'))).rejects.toMatchObject({ code: 'DNS_TIMEOUT', retryable: true });
  });

  it('is transient when the DNS server cannot be reached', async () => {
    const config = loadConfig({ DNS_SERVERS: '127.0.0.1:9', LOOKUP_TIMEOUT_MS: '1000', ALLOW_PRIVATE_TARGETS: 'true' });
    const { lookup: unreachable } = await dnsLookup.setup({ config, logger });
    await expect(unreachable(ctx('example.test', 'Domain'))).rejects.toMatchObject({ retryable: true });
  });

  it('ends as cancelled (transient) when the attempt is aborted', async () => {
    const controller = new AbortController();
    const pending = lookup(ctx('timeout.example.test', 'Domain', controller.signal));
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: 'DNS_ABORTED', retryable: true });
  });

  it('refuses a domain with an address the target policy refuses', async () => {
    await expect(strict(ctx('example.test', 'Domain'))).rejects.toMatchObject({
      code: 'TARGET_REFUSED',
      retryable: false,
      message: expect.stringMatching(/^example\.test resolved to 127\.0\.0\.2, .*loopback/),
    });
  });
});

describe('DNS lookup of an IP address (forward-confirmed reverse DNS)', () => {
  it('confirms a PTR name whose A records include the address', async () => {
    expect(await run('127.0.0.2')).toEqual({
      ip: '127.0.0.2',
      ptr: ['fixture-host.example.test'],
      names: [{ name: 'fixture-host.example.test', a: ['127.0.0.2'], aaaa: [], forwardConfirmed: true }],
      forwardConfirmed: true,
    });
  });

  it('marks each name: one resolving back, one elsewhere', async () => {
    const data = await run('127.0.0.20');
    expect(data.forwardConfirmed).toBe(true);
    expect(data.names).toEqual(
      expect.arrayContaining([
        { name: 'self.example.test', a: ['127.0.0.20'], aaaa: [], forwardConfirmed: true },
        { name: 'other.example.test', a: ['127.0.0.99'], aaaa: [], forwardConfirmed: false },
      ]),
    );
  });

  it('is not confirmed when no PTR name resolves (NXDOMAIN for the names)', async () => {
    const data = await run('127.0.0.3');
    expect(data).toMatchObject({ ip: '127.0.0.3', forwardConfirmed: false });
    expect(data.names).toEqual(
      expect.arrayContaining([
        { name: 'multi-a.example.test', a: [], aaaa: [], forwardConfirmed: false },
        { name: 'multi-b.example.test', a: [], aaaa: [], forwardConfirmed: false },
      ]),
    );
  });

  it('compares IPv6 addresses in any text form', async () => {
    expect(await run('2001:db8::53')).toEqual({
      ip: '2001:db8::53',
      ptr: ['v6.example.test'],
      names: [{ name: 'v6.example.test', a: [], aaaa: [expect.any(String)], forwardConfirmed: true }],
      forwardConfirmed: true,
    });
  });

  it(`resolves at most ${MAX_PTR_NAMES} PTR names forward, and lists them all`, async () => {
    const data = (await run('127.0.0.21')) as { ptr: string[]; names: unknown[] };
    expect(data.ptr).toHaveLength(MAX_PTR_NAMES + 2);
    expect(data.names).toHaveLength(MAX_PTR_NAMES);
  });

  it('fails permanently, saying why, for an address with no PTR record', async () => {
    await expect(lookup(ctx('127.0.0.77'))).rejects.toMatchObject({
      code: 'DNS_NO_PTR',
      retryable: false,
      message: '127.0.0.77 has no PTR record, so there is no name to confirm (DNS answered ENOTFOUND)',
    });
  });

  it('fails transiently when the PTR query, or a forward query, gets SERVFAIL or no answer', async () => {
    await expect(lookup(ctx('127.0.0.9'))).rejects.toMatchObject({ code: 'DNS_SERVFAIL', retryable: true });
    await expect(lookup(ctx('127.0.0.10'))).rejects.toMatchObject({ code: 'DNS_TIMEOUT', retryable: true });
    await expect(lookup(ctx('127.0.0.22'))).rejects.toMatchObject({ code: 'DNS_TIMEOUT', retryable: true, message: expect.stringContaining('slow.example.test') });
  });

  it('refuses an address the target policy refuses, before any query', async () => {
    const before = fixture.queries;
    await expect(strict(ctx('127.0.0.2'))).rejects.toMatchObject({ code: 'TARGET_REFUSED', retryable: false });
    expect(fixture.queries).toBe(before);
  });
});
