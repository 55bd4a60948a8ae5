import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '@lookup/config';
import type { LookupFn } from '@lookup/worker-kit';
import {
  DEFAULT_FIXTURE_SECRET,
  lookupContext as ctx,
  silentLogger as logger,
  startDnsFixture,
  startRdapFixture,
  type DnsFixture,
  type RdapFixture,
} from '../../../../tests/fixtures/index.ts';
import { createRdapLookup } from './lookup.ts';

/**
 * Finding 2 of issue 10: an RDAP server (or whoever controls one a bootstrap entry or redirect points to) must not
 * be able to make the worker fetch internal URLs, return non-RDAP bodies, or hold an unbounded answer.
 * Everything runs on loopback: `rdap` is the configured RDAP_BASE_URL (trusted origin); `internal` stands for an
 * internal service on another port (and on 127.0.0.2, which the DNS fixture gives for example.test).
 */

let rdap: RdapFixture;
let internal: RdapFixture;
let internal2: RdapFixture;
let dns: DnsFixture;

async function lookupWith(env: Record<string, string> = {}): Promise<LookupFn> {
  const config = loadConfig({ RDAP_BASE_URL: rdap.url, DNS_SERVERS: dns.address, ...env });
  return (await createRdapLookup({ refreshBootstrap: false }).setup({ config, logger })).lookup;
}

beforeAll(async () => {
  internal = await startRdapFixture();
  internal2 = await startRdapFixture({ host: '127.0.0.2' });
  const port2 = new URL(internal2.url).port;
  dns = await startDnsFixture({ records: { a: { localhost: ['127.0.0.1'] } } });
  rdap = await startRdapFixture({
    redirects: {
      'leak.test': `${internal.url}/secret.json`,
      'leak-localhost.test': `http://localhost:${new URL(internal.url).port}/secret.json`,
      'leak-named.test': `http://example.test:${port2}/secret.json`,
      'pinned.test': `http://example.test:${port2}/domain/pinned.test`,
      'elsewhere.test': `${internal.url}/domain/elsewhere.test`,
      'ftp.test': 'ftp://127.0.0.1/secret.json',
      'file.test': 'file:///etc/passwd',
    },
  });
});

afterAll(async () => {
  await Promise.all([rdap?.close(), internal?.close(), internal2?.close(), dns?.close()]);
});

describe('redirects are checked against the target policy (ALLOW_PRIVATE_TARGETS unset)', () => {
  it('refuses a 302 to another loopback port and never contacts it', async () => {
    const lookup = await lookupWith();
    const failure = lookup(ctx('leak.test', 'Domain'));
    await expect(failure).rejects.toMatchObject({
      code: 'RDAP_TARGET_REFUSED',
      retryable: false,
      message: expect.stringMatching(/rule 'loopback'/),
    });
    await expect(failure).rejects.not.toMatchObject({ message: expect.stringContaining(DEFAULT_FIXTURE_SECRET) });
    expect(internal.paths).not.toContain('/secret.json');
  });

  it('refuses a redirect to a host name whose address is refused, without connecting', async () => {
    const lookup = await lookupWith();
    await expect(lookup(ctx('leak-named.test', 'Domain'))).rejects.toMatchObject({
      code: 'RDAP_TARGET_REFUSED',
      retryable: false,
      message: expect.stringMatching(/example\.test resolves to 127\.0\.0\.2.*rule 'loopback'/),
    });
    expect(internal2.paths).not.toContain('/secret.json');
  });

  it('refuses a redirect to localhost', async () => {
    const lookup = await lookupWith();
    await expect(lookup(ctx('leak-localhost.test', 'Domain'))).rejects.toMatchObject({
      code: 'RDAP_TARGET_REFUSED',
      message: expect.stringContaining('localhost resolves to 127.0.0.1'),
    });
    expect(internal.paths).not.toContain('/secret.json');
  });

  it('refuses a good RDAP answer one redirect away on another origin, but follows redirects on the configured origin', async () => {
    const lookup = await lookupWith();
    await expect(lookup(ctx('elsewhere.test', 'Domain'))).rejects.toMatchObject({ code: 'RDAP_TARGET_REFUSED' });
    const before = rdap.paths.length;
    expect(await lookup(ctx('redirect-2.test', 'Domain'))).toMatchObject({ found: true, ldhName: 'redirect-0.test' });
    expect(rdap.paths.slice(before)).toEqual(['/domain/redirect-2.test', '/domain/redirect-1.test', '/domain/redirect-0.test']);
  });

  it('gives up after three redirects', async () => {
    const lookup = await lookupWith();
    const before = rdap.paths.length;
    await expect(lookup(ctx('redirect-9.test', 'Domain'))).rejects.toMatchObject({ code: 'RDAP_TOO_MANY_REDIRECTS', retryable: false });
    expect(rdap.paths.length - before).toBe(4); // the query and three redirects
  });

  it('never follows a redirect to a scheme other than http(s)', async () => {
    const lookup = await lookupWith({ ALLOW_PRIVATE_TARGETS: 'true' });
    await expect(lookup(ctx('ftp.test', 'Domain'))).rejects.toMatchObject({ code: 'RDAP_REDIRECT_REFUSED', retryable: false });
    await expect(lookup(ctx('file.test', 'Domain'))).rejects.toMatchObject({ code: 'RDAP_REDIRECT_REFUSED', retryable: false });
  });
});

describe('redirects the policy allows (ALLOW_PRIVATE_TARGETS=true)', () => {
  it('follows them, connecting to the address it checked', async () => {
    const lookup = await lookupWith({ ALLOW_PRIVATE_TARGETS: 'true' });
    // example.test exists only in the DNS fixture (127.0.0.2, where internal2 listens): reaching it proves the
    // connection used the checked answer, not a second resolution by the system.
    expect(await lookup(ctx('pinned.test', 'Domain'))).toMatchObject({ found: true, ldhName: 'pinned.test' });
    expect(internal2.paths).toContain('/domain/pinned.test');
    expect(await lookup(ctx('elsewhere.test', 'Domain'))).toMatchObject({ found: true, ldhName: 'elsewhere.test' });
  });
});

describe('only RDAP bodies are returned', () => {
  it.each([
    ['not-json.test', /content type 'text\/html'/],
    ['html-json.test', /content type 'text\/html'/],
    ['not-rdap.test', /not an RDAP object/],
  ])('refuses %s', async (name, message) => {
    const lookup = await lookupWith();
    await expect(lookup(ctx(name, 'Domain'))).rejects.toMatchObject({ code: 'RDAP_NOT_RDAP', retryable: false, message: expect.stringMatching(message) });
  });

  it('keeps a small RDAP answer whole in raw', async () => {
    const lookup = await lookupWith({ ALLOW_PRIVATE_TARGETS: 'true' });
    // /secret.json is a small RDAP-looking object: with the policy lifted, it is an acceptable answer.
    const redirectsToSecret = await lookup(ctx('leak.test', 'Domain'));
    expect(redirectsToSecret).toMatchObject({ found: true, raw: { objectClassName: 'domain' } });
  });
});

describe('RDAP_MAX_RESPONSE_BYTES', () => {
  it('aborts a streamed body as soon as it passes the cap, without reading it whole', async () => {
    const lookup = await lookupWith(); // default cap: 1 MiB
    await expect(lookup(ctx('huge-64mb.test', 'Domain'))).rejects.toMatchObject({
      code: 'RDAP_RESPONSE_TOO_LARGE',
      retryable: false,
      message: expect.stringContaining('RDAP_MAX_RESPONSE_BYTES (1048576 bytes)'),
    });
    const body = rdap.largeBodies.find((b) => b.path === '/domain/huge-64mb.test')!;
    await vi.waitFor(() => expect(body.closed).toBe(true));
    expect(body.completed).toBe(false);
    expect(body.sent).toBeLessThan(body.total / 2);
  });

  it('refuses from Content-Length before reading', async () => {
    const lookup = await lookupWith({ RDAP_MAX_RESPONSE_BYTES: String(2 * 1024 * 1024) });
    await expect(lookup(ctx('huge-length-5mb.test', 'Domain'))).rejects.toMatchObject({
      code: 'RDAP_RESPONSE_TOO_LARGE',
      message: expect.stringMatching(/5242880 bytes \(Content-Length\).*RDAP_MAX_RESPONSE_BYTES \(2097152 bytes\)/),
    });
  });

  it('accepts an answer within the cap, and keeps only its summary', async () => {
    const lookup = await lookupWith({ RDAP_MAX_RESPONSE_BYTES: String(3 * 1024 * 1024) });
    const data = await lookup(ctx('huge-2mb.test', 'Domain'));
    expect(data).toMatchObject({ found: true, ldhName: 'huge.test' });
    expect(data).not.toHaveProperty('raw');
    expect(JSON.stringify(data).length).toBeLessThan(4096);
  });

  it('is validated at start-up', () => {
    expect(() => loadConfig({ RDAP_MAX_RESPONSE_BYTES: '100' })).toThrow(/RDAP_MAX_RESPONSE_BYTES must be between 1024 and/);
    expect(() => loadConfig({ RDAP_MAX_RESPONSE_BYTES: '1MB' })).toThrow(/RDAP_MAX_RESPONSE_BYTES must be an integer/);
    expect(loadConfig({}).rdapMaxResponseBytes).toBe(1024 * 1024);
  });
});
