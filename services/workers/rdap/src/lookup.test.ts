import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@lookup/config';
import type { LookupFn } from '@lookup/worker-kit';
import { startRdapFixture, type RdapFixture, lookupContext, silentLogger } from '../../../../tests/fixtures/index.ts';
import { createRdapLookup } from './lookup.ts';

const logger = silentLogger;
let fixture: RdapFixture;
let lookup: LookupFn;

const ctx = lookupContext;

beforeAll(async () => {
  fixture = await startRdapFixture();
  const config = loadConfig({ RDAP_BASE_URL: fixture.url });
  ({ lookup } = await createRdapLookup({ refreshBootstrap: false }).setup({ config, logger }));
});

afterAll(async () => {
  await fixture?.close();
});

describe('RDAP lookup against the local fixture (RDAP_BASE_URL)', () => {
  it('summarises an IP network', async () => {
    const data = await lookup(ctx('127.0.0.1'));
    expect(data).toMatchObject({
      found: true,
      queryType: 'ip',
      query: '127.0.0.1',
      server: fixture.url,
      url: `${fixture.url}/ip/127.0.0.1`,
      objectClassName: 'ip network',
      startAddress: '127.0.0.0',
      endAddress: '127.0.0.255',
      cidrs: ['127.0.0.0/24'],
      registrant: 'Fixture Networks LLC',
      abuseEmail: 'abuse@fixture.test',
      events: { registration: '2014-03-14T16:52:05-04:00' },
    });
    expect(data).not.toHaveProperty('raw'); // too big to keep whole
  });

  it('asks about IPv4-mapped IPv6 as the IPv4 address', async () => {
    expect(await lookup(ctx('::ffff:127.0.0.1'))).toMatchObject({ found: true, query: '127.0.0.1', startAddress: '127.0.0.0' });
  });

  it('queries IPv6 networks', async () => {
    const data = await lookup(ctx('2001:db8::1'));
    expect(data).toMatchObject({ found: true, ipVersion: 'v6', startAddress: '2001:db8::', cidrs: ['2001:db8::/48'] });
  });

  it('reduces a domain to its registrable name before asking', async () => {
    const data = await lookup(ctx('www.shop.example.co.uk', 'Domain'));
    expect(data).toMatchObject({ found: true, queryType: 'domain', query: 'example.co.uk', ldhName: 'example.co.uk' });
    expect(data).toMatchObject({
      registrar: { name: 'Fixture Registrar, Inc.', ianaId: '9999' },
      nameservers: ['ns1.fixture.test', 'ns2.fixture.test'],
      events: { expiration: '2030-09-14T04:00:00Z' },
    });
  });

  it('reports a 404 as found: false, a successful lookup', async () => {
    expect(await lookup(ctx('unknown-name.test', 'Domain'))).toEqual({
      found: false,
      queryType: 'domain',
      query: 'unknown-name.test',
      server: fixture.url,
      url: `${fixture.url}/domain/unknown-name.test`,
    });
    expect(await lookup(ctx('192.0.2.10'))).toMatchObject({ found: false, queryType: 'ip' });
  });

  it('treats 5xx and 429 as transient', async () => {
    await expect(lookup(ctx('status-503.test', 'Domain'))).rejects.toMatchObject({ code: 'RDAP_SERVER_ERROR', retryable: true });
    await expect(lookup(ctx('status-429.test', 'Domain'))).rejects.toMatchObject({
      code: 'RDAP_RATE_LIMITED',
      retryable: true,
      message: expect.stringContaining('retry after 1'),
    });
  });

  it('treats 400 as permanent', async () => {
    await expect(lookup(ctx('status-400.test', 'Domain'))).rejects.toMatchObject({ code: 'RDAP_REJECTED', retryable: false });
  });

  it('treats an unreachable server as transient', async () => {
    const closed = await startRdapFixture();
    await closed.close();
    const config = loadConfig({ RDAP_BASE_URL: closed.url });
    const { lookup: broken } = await createRdapLookup({ refreshBootstrap: false }).setup({ config, logger });
    await expect(broken(ctx('127.0.0.1'))).rejects.toMatchObject({ code: 'RDAP_UNREACHABLE', retryable: true });
  });

  it('stops when the attempt is aborted', async () => {
    const slow = await startRdapFixture({ delayMs: 2000 });
    try {
      const config = loadConfig({ RDAP_BASE_URL: slow.url });
      const { lookup: slowLookup } = await createRdapLookup({ refreshBootstrap: false }).setup({ config, logger });
      const controller = new AbortController();
      const pending = slowLookup(ctx('127.0.0.1', 'IPAddress', controller.signal));
      setTimeout(() => controller.abort(), 50);
      await expect(pending).rejects.toMatchObject({ code: 'RDAP_ABORTED', retryable: true });
    } finally {
      await slow.close();
    }
  });
});

describe('RDAP lookup through the bootstrap snapshot (no request is sent)', () => {
  it('fails permanently when no registry covers the target', async () => {
    const config = loadConfig({});
    const { lookup: bootstrapped } = await createRdapLookup({ refreshBootstrap: false }).setup({ config, logger });
    await expect(bootstrapped(ctx('127.0.0.1'))).rejects.toMatchObject({
      code: 'RDAP_NO_SERVER',
      retryable: false,
      message: expect.stringContaining('loopback'),
    });
    await expect(bootstrapped(ctx('example.de', 'Domain'))).rejects.toMatchObject({ code: 'RDAP_NO_SERVER', retryable: false });
  });
});

describe('RDAP redirects', () => {
  it('follows a registry redirect to the server that holds the resource', async () => {
    const { createServer } = await import('node:http');
    // A "registry" that holds nothing itself and points to the fixture, as RIRs do for each other's space.
    const registry = createServer((req, res) => {
      res.writeHead(301, { location: `${fixture.url}${req.url}` });
      res.end();
    });
    await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
    try {
      const { port } = registry.address() as { port: number };
      // The fixture is another origin on loopback: a redirect there passes the target policy only when it is lifted.
      const config = loadConfig({ RDAP_BASE_URL: `http://127.0.0.1:${port}`, ALLOW_PRIVATE_TARGETS: 'true' });
      const { lookup: viaRegistry } = await createRdapLookup({ refreshBootstrap: false }).setup({ config, logger });
      expect(await viaRegistry(ctx('127.0.0.1'))).toMatchObject({ found: true, startAddress: '127.0.0.0', registrant: 'Fixture Networks LLC' });
    } finally {
      await new Promise((r) => registry.close(r));
    }
  });
});
