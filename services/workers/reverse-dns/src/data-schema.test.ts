// Issue 11: the data ReverseDNS really returns matches ReverseDnsDataSchema, which the worker kit checks before
// storing a result and the OpenAPI document publishes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@lookup/config';
import { compileValidator } from '@lookup/contracts';
import type { LookupFn } from '@lookup/worker-kit';
import { startDnsFixture, type DnsFixture, lookupContext as ctx, silentLogger as logger } from '../../../../tests/fixtures/index.ts';
import { ReverseDnsDataSchema, reverseDnsLookup } from './lookup.ts';

const validator = compileValidator(ReverseDnsDataSchema);
let dnsFixture: DnsFixture;
let lookup: LookupFn;

beforeAll(async () => {
  dnsFixture = await startDnsFixture({
    records: { ptr: { '2001:db8::53': ['ns.example.test'] }, a: { 'partial.example.test': ['127.0.0.9', '127.0.0.2'], 'noptr.example.test': ['127.0.0.77'] } },
  });
  // RETRY_MAX_ATTEMPTS=1: every attempt is the last, so a domain's partial answer is kept (with `error`).
  const config = loadConfig({ DNS_SERVERS: dnsFixture.address, LOOKUP_TIMEOUT_MS: '1000', ALLOW_PRIVATE_TARGETS: 'true', RETRY_MAX_ATTEMPTS: '1' });
  ({ lookup } = await reverseDnsLookup.setup({ config, logger }));
});

afterAll(async () => {
  await dnsFixture?.close();
});

describe('ReverseDNS data matches ReverseDnsDataSchema', () => {
  it.each([
    ['127.0.0.2', 'IPAddress'],
    ['127.0.0.3', 'IPAddress'],
    ['127.0.0.77', 'IPAddress'],
    ['2001:db8::53', 'IPAddress'],
    ['example.test', 'Domain'],
    ['dual.example.test', 'Domain'],
    ['noptr.example.test', 'Domain'],
  ] as const)('%s (%s)', async (target, type) => {
    const data = await lookup(ctx(target, type));
    expect(validator.errors(data)).toEqual([]);
  });

  it('a domain with one failed address on the last attempt (its `error`)', async () => {
    const data = await lookup(ctx('partial.example.test', 'Domain'));
    expect(data.addresses).toEqual(expect.arrayContaining([expect.objectContaining({ error: expect.objectContaining({ code: 'DNS_SERVFAIL' }) })]));
    expect(validator.errors(data)).toEqual([]);
  });

  it('is exact: a field of the wrong type or an unknown field does not match', () => {
    expect(validator.errors({ ip: '127.0.0.2', found: 'yes' })).toEqual(['/found: Expected boolean']);
    expect(validator.check({ ip: '127.0.0.2', found: false, hostName: 'x' })).toBe(false);
  });
});
