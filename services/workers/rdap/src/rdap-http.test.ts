import type { LookupAddress } from 'node:dns';
import type { TargetPolicy } from '@lookup/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsFixture, type DnsFixture } from '../../../../tests/fixtures/index.ts';
import { checkedLookup, redirectTarget } from './rdap-http.ts';

describe('redirectTarget', () => {
  const from = new URL('https://rdap.example/ip/192.0.2.1');

  it('resolves relative locations and drops credentials and fragments', () => {
    expect(redirectTarget(from, '/registry/ip/192.0.2.1').href).toBe('https://rdap.example/registry/ip/192.0.2.1');
    expect(redirectTarget(from, 'https://user:pw@other.example:8443/x#frag').href).toBe('https://other.example:8443/x');
    expect(redirectTarget(new URL('http://a.example/'), 'https://b.example/').href).toBe('https://b.example/');
  });

  it('refuses downgrades, other schemes and missing locations', () => {
    expect(() => redirectTarget(from, 'http://rdap.example/ip/192.0.2.1')).toThrow(/https to http/);
    for (const location of ['ftp://rdap.example/', 'file:///etc/passwd', 'gopher://127.0.0.1:6379/_FLUSHALL', 'data:,x']) {
      expect(() => redirectTarget(from, location)).toThrow(expect.objectContaining({ code: 'RDAP_REDIRECT_REFUSED', retryable: false }));
    }
    expect(() => redirectTarget(from, undefined)).toThrow(expect.objectContaining({ code: 'RDAP_BAD_RESPONSE' }));
  });
});

describe('checkedLookup (the connection lookup of checked hops)', () => {
  let dns: DnsFixture;
  beforeAll(async () => {
    dns = await startDnsFixture({ records: { a: { 'two.example.test': ['127.0.0.2', '127.0.0.3'] }, aaaa: { 'two.example.test': ['::1'] } } });
  });
  afterAll(async () => dns?.close());

  // Refuses one address only, so the test shows that every resolved address is checked, not just the first.
  const refuse = (bad: string): TargetPolicy => ({
    checkAddress: (ip) => (ip === bad ? { allowed: false, rule: 'deny-test', message: `${ip} is denied` } : { allowed: true }),
  });
  const call = (policy: TargetPolicy, host: string, options: { all?: boolean; family?: number }) =>
    new Promise<{ err: NodeJS.ErrnoException | null; address: string | LookupAddress[]; family?: number }>((resolve) =>
      checkedLookup(policy, { servers: [dns.address], timeoutMs: 2000 })(host, options, (err, address, family) => resolve({ err, address, family })),
    );

  it('refuses the host when any of its addresses is refused', async () => {
    for (const bad of ['127.0.0.2', '127.0.0.3', '::1']) {
      const { err } = await call(refuse(bad), 'two.example.test', { all: true });
      expect(err).toMatchObject({ code: 'RDAP_TARGET_REFUSED', message: expect.stringContaining(`resolves to ${bad}`) });
      expect(err?.message).toContain("rule 'deny-test'");
    }
  });

  it('hands the socket exactly the checked addresses', async () => {
    expect(await call(refuse('none'), 'two.example.test', { all: true })).toMatchObject({
      err: null,
      address: [
        { address: '127.0.0.2', family: 4 },
        { address: '127.0.0.3', family: 4 },
        { address: '::1', family: 6 },
      ],
    });
    expect(await call(refuse('none'), 'two.example.test', { family: 6 })).toMatchObject({ err: null, address: '::1', family: 6 });
    expect(await call(refuse('none'), 'two.example.test', {})).toMatchObject({ err: null, address: '127.0.0.2', family: 4 });
  });

  it('passes resolution failures on', async () => {
    expect((await call(refuse('none'), 'missing.example.test', {})).err).toMatchObject({ code: 'ENOTFOUND' });
  });
});
