// Issue 11: the data RDAP really returns matches RdapDataSchema, which the worker kit checks before storing a
// result and the OpenAPI document publishes. Everything is on loopback: the RDAP fixture, and a one-answer server
// for a small answer (kept whole as `raw`).
import { readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@lookup/config';
import { compileValidator } from '@lookup/contracts';
import type { LookupFn } from '@lookup/worker-kit';
import { startRdapFixture, type RdapFixture, lookupContext as ctx, silentLogger as logger } from '../../../../tests/fixtures/index.ts';
import { RdapDataSchema, createRdapLookup } from './lookup.ts';
import { summariseRdap } from './parse.ts';

const validator = compileValidator(RdapDataSchema);
let fixture: RdapFixture;
let small: http.Server;
let lookup: LookupFn;
let smallLookup: LookupFn;

const SMALL_ANSWER = {
  objectClassName: 'domain',
  ldhName: 'SMALL.TEST',
  status: ['active'],
  secureDNS: { delegationSigned: false },
  nameservers: [{ objectClassName: 'nameserver', ldhName: 'NS1.SMALL.TEST' }],
  entities: [{ objectClassName: 'entity', roles: ['registrar'], vcardArray: ['vcard', [['fn', {}, 'text', 'Small Registrar']]] }],
};

beforeAll(async () => {
  fixture = await startRdapFixture();
  ({ lookup } = await createRdapLookup({ refreshBootstrap: false }).setup({ config: loadConfig({ RDAP_BASE_URL: fixture.url }), logger }));
  small = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/rdap+json' }).end(JSON.stringify(SMALL_ANSWER)));
  await new Promise<void>((r) => small.listen(0, '127.0.0.1', r));
  const smallUrl = `http://127.0.0.1:${(small.address() as AddressInfo).port}`;
  ({ lookup: smallLookup } = await createRdapLookup({ refreshBootstrap: false }).setup({ config: loadConfig({ RDAP_BASE_URL: smallUrl }), logger }));
});

afterAll(async () => {
  await fixture?.close();
  await new Promise((r) => small?.close(r));
});

describe('RDAP data matches RdapDataSchema', () => {
  it.each([
    ['127.0.0.1', 'IPAddress'],
    ['::ffff:127.0.0.1', 'IPAddress'],
    ['2001:db8::1', 'IPAddress'],
    ['192.0.2.10', 'IPAddress'],
    ['www.shop.example.co.uk', 'Domain'],
    ['unknown-name.test', 'Domain'],
  ] as const)('%s (%s)', async (target, type) => {
    const data = await lookup(ctx(target, type));
    expect(validator.errors(data)).toEqual([]);
  });

  it('a small answer, kept whole as raw', async () => {
    const data = await smallLookup(ctx('small.test', 'Domain'));
    expect(data).toMatchObject({ found: true, ldhName: 'small.test', delegationSigned: false, raw: SMALL_ANSWER });
    expect(validator.errors(data)).toEqual([]);
  });

  const dir = new URL('./__fixtures__/', import.meta.url);
  it.each(readdirSync(dir).filter((f) => f.endsWith('.json') && !f.startsWith('error')))('the summary of the registry answer %s', (file) => {
    const body = JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as Record<string, unknown>;
    const data = { query: 'q', queryType: 'domain', server: 'http://127.0.0.1:1', url: 'http://127.0.0.1:1/domain/q', found: true, ...summariseRdap(body), raw: body };
    expect(validator.errors(data)).toEqual([]);
  });

  it('is exact: a field of the wrong type or an unknown field does not match', () => {
    const base = { query: 'q', queryType: 'domain', server: 's', url: 'u', found: true };
    expect(validator.errors({ ...base, nameservers: 'ns1.test' })).toEqual(['/nameservers: Expected array']);
    expect(validator.check({ ...base, queryType: 'autnum' })).toBe(false);
    expect(validator.check({ ...base, whois: 'x' })).toBe(false);
  });
});
