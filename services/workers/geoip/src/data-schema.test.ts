// Issue 11: the data GeoIP really returns matches GeoIpDataSchema, which the worker kit checks before storing a
// result and the OpenAPI document publishes. The database read is offline; names resolve through the fixture.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@lookup/config';
import { compileValidator } from '@lookup/contracts';
import type { LookupFn } from '@lookup/worker-kit';
import { startDnsFixture, type DnsFixture, lookupContext as ctx, silentLogger as logger } from '../../../../tests/fixtures/index.ts';
import { GeoIpDataSchema, geoipLookup } from './lookup.ts';

const validator = compileValidator(GeoIpDataSchema);
let dnsFixture: DnsFixture;
let lookup: LookupFn;
let withoutAsn: LookupFn;
const closers: Array<() => unknown> = [];

beforeAll(async () => {
  dnsFixture = await startDnsFixture({ records: { a: { 'public.example.test': ['8.8.8.8'] }, aaaa: { 'v6.example.test': ['2001:4860:4860::8888'] } } });
  const env = { DNS_SERVERS: dnsFixture.address, LOG_LEVEL: 'silent', ALLOW_PRIVATE_TARGETS: 'true' };
  const open = async (extra: Record<string, string> = {}): Promise<LookupFn> => {
    const service = await geoipLookup.setup({ config: loadConfig({ ...env, ...extra }), logger });
    if (service.close) closers.push(service.close);
    return service.lookup;
  };
  lookup = await open();
  withoutAsn = await open({ GEOIP_ASN_DB_PATH: '/nonexistent/asn.mmdb' });
}, 60_000);

afterAll(async () => {
  for (const close of closers) await close();
  await dnsFixture?.close();
});

describe('GeoIP data matches GeoIpDataSchema', () => {
  it.each([
    ['8.8.8.8', 'IPAddress'],
    ['2001:4860:4860::8888', 'IPAddress'],
    ['::ffff:1.1.1.1', 'IPAddress'],
    ['127.0.0.1', 'IPAddress'],
    ['192.0.2.1', 'IPAddress'],
    ['public.example.test', 'Domain'],
    ['v6.example.test', 'Domain'],
    ['example.test', 'Domain'],
  ] as const)('%s (%s)', async (target, type) => {
    const data = await lookup(ctx(target, type));
    expect(validator.errors(data)).toEqual([]);
  });

  it('without an ASN database (asn: null, no asnSource)', async () => {
    const data = await withoutAsn(ctx('8.8.8.8'));
    expect(data).toMatchObject({ asn: null });
    expect(validator.errors(data)).toEqual([]);
  });

  it('is exact: a field of the wrong type or an unknown field does not match', async () => {
    const data = await lookup(ctx('8.8.8.8'));
    expect(validator.errors({ ...data, asn: { number: 'AS15169', organization: null } })).toEqual(['/asn: Expected union value']);
    expect(validator.errors({ ...data, latitude: '37.4' })).toEqual(['/latitude: Expected number']);
    expect(validator.check({ ...data, isp: 'x' })).toBe(false);
  });
});
