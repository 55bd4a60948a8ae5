import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@lookup/config';
import type { Logger } from '@lookup/logging';
import type { LookupFn } from '@lookup/worker-kit';
import { startDnsFixture, type DnsFixture, lookupContext, silentLogger } from '../../../../tests/fixtures/index.ts';
import { geoipLookup } from './lookup.ts';

// The database read is offline, so public addresses are fine here; names resolve through the local fixture.
const logger = silentLogger;
let dnsFixture: DnsFixture;
let lookup: LookupFn;
let strictLookup: LookupFn;

const ctx = lookupContext;

beforeAll(async () => {
  dnsFixture = await startDnsFixture({
    records: { a: { 'public.example.test': ['8.8.8.8'] }, aaaa: { 'v6.example.test': ['2001:4860:4860::8888'] } },
  });
  // Loopback and reserved addresses are allowed here, to show how the database answers for them; the target
  // policy's refusal is tested below with the default configuration.
  const config = loadConfig({ DNS_SERVERS: dnsFixture.address, LOG_LEVEL: 'silent', ALLOW_PRIVATE_TARGETS: 'true' });
  ({ lookup } = await geoipLookup.setup({ config, logger }));
  strictLookup = (await geoipLookup.setup({ config: loadConfig({ DNS_SERVERS: dnsFixture.address, LOG_LEVEL: 'silent' }), logger })).lookup;
}, 60_000);

afterAll(async () => {
  await dnsFixture?.close();
});

describe('GeoIP lookup', () => {
  it('locates 8.8.8.8 in the bundled DB-IP database, with attribution', async () => {
    const data = await lookup(ctx('8.8.8.8'));
    expect(data).toMatchObject({
      ip: '8.8.8.8',
      found: true,
      countryCode: 'US',
      country: 'United States',
      source: 'DB-IP Lite (CC BY 4.0)',
      asnSource: 'ip-location-db asn: Route Views, NRO, DB-IP Lite (CC BY 4.0)',
      attribution: 'IP Geolocation by DB-IP (https://db-ip.com); AS numbers by Route Views (https://www.routeviews.org) and the NRO (https://www.nro.net)',
    });
    expect(typeof data.latitude).toBe('number');
    expect(typeof data.longitude).toBe('number');
    expect(data.prefixLength).toBeGreaterThan(0);
    expect(data).not.toHaveProperty('resolvedFrom');
  });

  it('names the network owner: AS number and organisation, IPv4 and IPv6', async () => {
    expect((await lookup(ctx('8.8.8.8'))).asn).toEqual({ number: 15169, organization: expect.stringMatching(/google/i) });
    expect((await lookup(ctx('2001:4860:4860::8888'))).asn).toEqual({ number: 15169, organization: expect.stringMatching(/google/i) });
    expect((await lookup(ctx('::ffff:1.1.1.1'))).asn).toEqual({ number: 13335, organization: expect.stringMatching(/cloudflare/i) });
    expect((await lookup(ctx('public.example.test', 'Domain'))).asn).toMatchObject({ number: 15169 });
  });

  it('locates an IPv6 address in the IPv6 database', async () => {
    const data = await lookup(ctx('2001:4860:4860::8888'));
    expect(data.found).toBe(true);
    expect(data.countryCode).toMatch(/^[A-Z]{2}$/);
  });

  it('answers IPv4-mapped IPv6 from the IPv4 database', async () => {
    const data = await lookup(ctx('::ffff:8.8.8.8'));
    expect(data).toMatchObject({ ip: '::ffff:8.8.8.8', found: true, countryCode: 'US' });
  });

  it('reports a loopback address as not found, which is a success', async () => {
    const data = await lookup(ctx('127.0.0.1'));
    expect(data).toMatchObject({ ip: '127.0.0.1', found: false, scope: 'loopback', asn: null, source: 'DB-IP Lite (CC BY 4.0)' });
    expect(data).not.toHaveProperty('countryCode');
  });

  it('resolves a domain first and says which address it used', async () => {
    const data = await lookup(ctx('public.example.test', 'Domain'));
    expect(data).toMatchObject({ ip: '8.8.8.8', resolvedFrom: 'public.example.test', resolvedAddresses: ['8.8.8.8'], found: true, countryCode: 'US' });
  });

  it('falls back to AAAA when a domain has no A record', async () => {
    const data = await lookup(ctx('v6.example.test', 'Domain'));
    expect(data).toMatchObject({ ip: '2001:4860:4860::8888', resolvedFrom: 'v6.example.test', found: true });
  });

  it('fails permanently for a domain that does not exist', async () => {
    await expect(lookup(ctx('no-such-name.example.test', 'Domain'))).rejects.toMatchObject({
      code: 'DNS_NXDOMAIN',
      retryable: false,
      message: expect.stringContaining('NXDOMAIN'),
    });
  });

  it('fails permanently for a domain without addresses', async () => {
    await expect(lookup(ctx('nodata.example.test', 'Domain'))).rejects.toMatchObject({ code: 'DNS_NO_ADDRESS', retryable: false });
  });

  it('fails transiently when the DNS server answers SERVFAIL', async () => {
    await expect(lookup(ctx('servfail.example.test', 'Domain'))).rejects.toMatchObject({ code: 'DNS_SERVFAIL', retryable: true });
  });
});

describe('GeoIP lookup without an ASN database', () => {
  it('still locates addresses when GEOIP_ASN_DB_PATH points nowhere: asn null, and a warning at start-up', async () => {
    const warnings: string[] = [];
    const recorder = { info: () => undefined, warn: (_obj: unknown, msg: string, ...args: unknown[]) => warnings.push(String(msg).replace('%s', String(args[0]))) } as unknown as Logger;
    const config = loadConfig({ DNS_SERVERS: dnsFixture.address, LOG_LEVEL: 'silent', GEOIP_ASN_DB_PATH: '/nonexistent/asn.mmdb' });
    const service = await geoipLookup.setup({ config, logger: recorder });
    try {
      expect(warnings).toEqual([expect.stringMatching(/no ASN database, results carry asn: null \(cannot open the ASN database \/nonexistent\/asn\.mmdb: ENOENT/)]);
      const data = await service.lookup(ctx('8.8.8.8'));
      expect(data).toMatchObject({ ip: '8.8.8.8', found: true, countryCode: 'US', asn: null, source: 'DB-IP Lite (CC BY 4.0)', attribution: 'IP Geolocation by DB-IP (https://db-ip.com)' });
      expect(data).not.toHaveProperty('asnSource');
    } finally {
      await service.close?.();
    }
  });
});

describe('GeoIP lookup: the target policy (ALLOW_PRIVATE_TARGETS unset)', () => {
  it.each([
    ['example.test', 'Domain', /example\.test resolved to 127\.0\.0\.2, which the target policy refuses: .*rule loopback/],
    ['dual.example.test', 'Domain', /rule loopback/],
    ['ipv6.example.test', 'Domain', /ipv6\.example\.test resolved to ::1, .*rule loopback/],
    ['10.0.0.1', 'IPAddress', /rule private/],
    ['2002:a9fe:a9fe::1', 'IPAddress', /rule 6to4-embedded-link-local/],
  ] as const)('%s (%s) fails permanently naming the rule', async (target, type, message) => {
    const err = await strictLookup(ctx(target, type)).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'TARGET_REFUSED', retryable: false });
    expect((err as Error).message).toMatch(message);
  });

  it('public addresses and names resolving only to them are located', async () => {
    expect(await strictLookup(ctx('8.8.8.8'))).toMatchObject({ found: true, countryCode: 'US' });
    expect(await strictLookup(ctx('public.example.test', 'Domain'))).toMatchObject({ ip: '8.8.8.8', found: true });
  });
});
