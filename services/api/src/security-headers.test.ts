import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import helmet from 'helmet';
import { describe, expect, it } from 'vitest';
import { API_SECURITY_HEADERS, securityHeaders } from './security-headers.ts';

const OPTIONS = { contentSecurityPolicy: { useDefaults: true, directives: { upgradeInsecureRequests: null } } } as const;

describe('securityHeaders', () => {
  it('are exactly the headers helmet sets on a real response', async () => {
    const server = createServer((req, res) => helmet(OPTIONS)(req, res, () => res.end()));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      const fromHelmet = Object.fromEntries(
        [...res.headers].filter(([k]) => !['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding'].includes(k)),
      );
      expect(securityHeaders(OPTIONS)).toEqual(fromHelmet);
      expect(API_SECURITY_HEADERS).toEqual(fromHelmet);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('keep Swagger UI working over plain HTTP: no upgrade-insecure-requests', () => {
    expect(API_SECURITY_HEADERS['content-security-policy']).toMatch(/default-src 'self'/);
    expect(API_SECURITY_HEADERS['content-security-policy']).not.toMatch(/upgrade-insecure-requests/);
  });
});
