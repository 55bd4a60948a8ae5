import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { targetPolicyFromConfig } from '@lookup/contracts';
import { createRdapHttp } from './rdap-http.ts';
import { buildRegistry, fetchBootstrap, findDomainServer, findIpServer, loadSnapshot, parseIp } from './bootstrap.ts';

const registry = buildRegistry({
  dns: {
    publication: '2026-01-30T00:00:01Z',
    services: [
      [['com', 'net'], ['http://insecure.example/', 'https://rdap.verisign.example/com/v1/']],
      [['uk'], ['https://rdap.nominet.example/uk/']],
      [['co.uk'], ['https://rdap.second-level.example/']],
      [['broken']],
    ],
  },
  ipv4: {
    services: [
      [['8.0.0.0/8'], ['https://rdap.arin.example/registry/']],
      [['8.8.0.0/16'], ['https://rdap.more-specific.example/']],
      [['193.0.0.0/8'], ['https://rdap.ripe.example/']],
    ],
  },
  ipv6: {
    services: [
      [['2001:4800::/23', '2600::/12'], ['https://rdap.arin.example/registry/']],
      [['2001::/16'], ['https://rdap.catch-all.example/']],
      [['2a00::/12'], ['https://rdap.ripe.example/']],
    ],
  },
});

describe('bootstrap matching', () => {
  it('matches domains on the longest label suffix, preferring https', () => {
    expect(findDomainServer(registry, 'google.com')).toBe('https://rdap.verisign.example/com/v1/');
    expect(findDomainServer(registry, 'bbc.co.uk')).toBe('https://rdap.second-level.example/');
    expect(findDomainServer(registry, 'nominet.uk')).toBe('https://rdap.nominet.example/uk/');
    expect(findDomainServer(registry, 'EXAMPLE.NET.')).toBe('https://rdap.verisign.example/com/v1/');
    expect(findDomainServer(registry, 'example.de')).toBeUndefined();
  });

  it('matches addresses on the longest prefix', () => {
    expect(findIpServer(registry, '8.8.8.8')).toBe('https://rdap.more-specific.example/');
    expect(findIpServer(registry, '8.9.0.1')).toBe('https://rdap.arin.example/registry/');
    expect(findIpServer(registry, '193.0.6.139')).toBe('https://rdap.ripe.example/');
    expect(findIpServer(registry, '127.0.0.1')).toBeUndefined();
  });

  it('matches IPv6 on the longest prefix too', () => {
    expect(findIpServer(registry, '2001:4860:4860::8888')).toBe('https://rdap.arin.example/registry/'); // /23 beats /16
    expect(findIpServer(registry, '2001:db8::1')).toBe('https://rdap.catch-all.example/');
    expect(findIpServer(registry, '2a00:1450:4001::1%eth0')).toBe('https://rdap.ripe.example/');
    expect(findIpServer(registry, '2607:f8b0::1')).toBe('https://rdap.arin.example/registry/');
    expect(findIpServer(registry, '::1')).toBeUndefined();
  });

  it('treats IPv4-mapped IPv6 as IPv4', () => {
    expect(findIpServer(registry, '::ffff:8.8.8.8')).toBe('https://rdap.more-specific.example/');
  });

  it('records publication dates', () => {
    expect(registry.publication).toEqual({ dns: '2026-01-30T00:00:01Z', ipv4: undefined, ipv6: undefined });
  });

  it('rejects files that are not bootstrap files', () => {
    expect(() => buildRegistry({ dns: {}, ipv4: { services: [] }, ipv6: { services: [] } })).toThrow(/dns.json/);
  });
});

describe('parseIp', () => {
  it('turns addresses into numbers', () => {
    expect(parseIp('1.2.3.4')).toEqual({ family: 4, value: 0x01020304n });
    expect(parseIp('::1')).toEqual({ family: 6, value: 1n });
    expect(parseIp('2001:db8::')).toEqual({ family: 6, value: 0x20010db8n << 96n });
    expect(parseIp('64:ff9b::192.0.2.1')).toEqual(parseIp('64:ff9b::c000:201'));
    expect(parseIp('example.com')).toBeUndefined();
  });
});

describe('the shipped snapshot', () => {
  it('loads and routes well-known names and addresses to the right registries', async () => {
    const snapshot = await loadSnapshot();
    expect(snapshot.dns.size).toBeGreaterThan(1000);
    expect(findDomainServer(snapshot, 'google.com')).toBe('https://rdap.verisign.com/com/v1/');
    expect(findDomainServer(snapshot, 'wikipedia.org')).toBe('https://rdap.publicinterestregistry.org/rdap/');
    expect(findDomainServer(snapshot, 'bbc.co.uk')).toBe('https://rdap.nominet.uk/uk/');
    expect(findDomainServer(snapshot, 'example.dev')).toBe('https://pubapi.registry.google/rdap/');
    expect(findIpServer(snapshot, '8.8.8.8')).toBe('https://rdap.arin.net/registry/');
    expect(findIpServer(snapshot, '193.0.6.139')).toBe('https://rdap.db.ripe.net/');
    expect(findIpServer(snapshot, '1.1.1.1')).toBe('https://rdap.apnic.net/');
    expect(findIpServer(snapshot, '200.160.2.3')).toBe('https://rdap.lacnic.net/rdap/');
    expect(findIpServer(snapshot, '41.0.0.1')).toBe('https://rdap.afrinic.net/rdap/');
    expect(findIpServer(snapshot, '2001:4860:4860::8888')).toBe('https://rdap.arin.net/registry/');
    expect(findIpServer(snapshot, '2a00:1450::1')).toBe('https://rdap.db.ripe.net/');
  });
});

describe('fetchBootstrap', () => {
  // A local stand-in for data.iana.org/rdap/, serving the snapshot.
  async function serve(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
    const server = http.createServer(handler).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}/rdap/`, close: () => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))) };
  }
  // The worker's own client: the loopback stand-in is trusted here as RDAP_BASE_URL would be.
  const client = (trusted: string | undefined, maxResponseBytes = 1024 * 1024) =>
    createRdapHttp({
      policy: targetPolicyFromConfig({ allowPrivateTargets: false }),
      trustedBaseUrl: trusted,
      dns: { servers: ['127.0.0.1:9'], timeoutMs: 500 },
      maxRedirects: 3,
      maxResponseBytes,
    });

  it('builds a registry from the three files', async () => {
    const dir = new URL('../bootstrap/', import.meta.url);
    const iana = await serve(async (req, res) => {
      const name = /\/rdap\/(dns|ipv4|ipv6)\.json$/.exec(req.url ?? '')?.[1];
      if (!name) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(await readFile(new URL(`${name}.json`, dir)));
    });
    const http = client(iana.url);
    try {
      const fresh = await fetchBootstrap(http, AbortSignal.timeout(5000), iana.url);
      expect(findDomainServer(fresh, 'google.com')).toBe('https://rdap.verisign.com/com/v1/');
      expect(fresh.publication.dns).toBe('2026-01-30T00:00:01Z');
    } finally {
      await http.close();
      await iana.close();
    }
  });

  it('rejects when a file is missing, so the caller keeps its snapshot', async () => {
    const iana = await serve((_req, res) => void res.writeHead(503).end());
    const http = client(iana.url);
    try {
      await expect(fetchBootstrap(http, AbortSignal.timeout(5000), iana.url)).rejects.toThrow(/HTTP 503/);
    } finally {
      await http.close();
      await iana.close();
    }
  });

  it('goes through the worker\'s RDAP client: the target policy and RDAP_MAX_RESPONSE_BYTES apply', async () => {
    let requests = 0;
    const iana = await serve((_req, res) => {
      requests += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ services: [], padding: 'x'.repeat(4096) }));
    });
    const untrusted = client(undefined);
    const small = client(iana.url, 1024);
    try {
      // Not the configured origin: a loopback server is refused before any connection.
      await expect(fetchBootstrap(untrusted, AbortSignal.timeout(5000), iana.url)).rejects.toMatchObject({ code: 'RDAP_TARGET_REFUSED' });
      expect(requests).toBe(0);
      // Trusted, but each file is larger than the cap.
      await expect(fetchBootstrap(small, AbortSignal.timeout(5000), iana.url)).rejects.toMatchObject({ code: 'RDAP_RESPONSE_TOO_LARGE' });
    } finally {
      await Promise.all([untrusted.close(), small.close()]);
      await iana.close();
    }
  });
});
