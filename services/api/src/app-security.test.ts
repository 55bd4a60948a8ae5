import { describe, expect, it } from 'vitest';
import { harness } from './testing/app-harness.ts';

describe('security headers, CORS and limits', () => {
  it('sends helmet headers on API answers, errors and docs', async () => {
    const h = await harness();
    for (const url of ['/api/lookup/services', '/nope', '/swagger/json']) {
      const res = await h.app.inject({ method: 'GET', url });
      expect(res.headers['x-content-type-options'], url).toBe('nosniff');
      expect(res.headers['x-frame-options'], url).toBe('SAMEORIGIN');
      expect(res.headers['content-security-policy'], url).toMatch(/default-src 'self'/);
    }
  });

  it('allows everything Swagger UI loads under its CSP: same-origin scripts and styles, nothing inline', async () => {
    const h = await harness();
    const page = await h.app.inject({ method: 'GET', url: '/swagger/' });
    expect(page.statusCode).toBe(200);
    const csp = Object.fromEntries(
      String(page.headers['content-security-policy']).split(';').map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map(([k, ...v]) => [k, v]),
    ) as Record<string, string[]>;
    expect(csp['script-src']).toEqual(["'self'"]);
    expect(csp['upgrade-insecure-requests']).toBeUndefined(); // would break the page over plain HTTP
    // No inline script or style element, no inline event handler: everything comes from 'self'.
    expect(page.body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    expect(page.body).not.toMatch(/<style/);
    expect(page.body).not.toMatch(/\son[a-z]+=/i);
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(5);
    for (const asset of assets) {
      expect(asset, 'same-origin, relative').toMatch(/^\.\//);
      const res = await h.app.inject({ method: 'GET', url: new URL(asset, 'http://x/swagger/').pathname });
      expect(res.statusCode, asset).toBe(200);
    }
    const init = await h.app.inject({ method: 'GET', url: '/swagger/static/swagger-initializer.js' });
    expect(init.statusCode).toBe(200);
    expect(init.body).toContain("resolveUrl('./json')"); // the document is fetched from 'self' (connect-src via default-src)
    expect(csp['img-src']).toEqual(expect.arrayContaining(["'self'", 'data:']));
  });

  it('leaves CORS off unless CORS_ORIGINS is set', async () => {
    const h = await harness();
    const res = await h.app.inject({ method: 'GET', url: '/api/lookup/services', headers: { origin: 'https://app.example.com' } });
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = await h.app.inject({ method: 'OPTIONS', url: '/api/lookup', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } });
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('answers CORS for the listed origins only, preflights before the API key, and keeps 404s as 404', async () => {
    const h = await harness({ corsOrigins: ['https://app.example.com'], apiKeys: ['k-one'] });
    const preflight = await h.app.inject({
      method: 'OPTIONS', url: '/api/lookup',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-api-key' },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(String(preflight.headers['access-control-allow-headers'])).toMatch(/X-API-Key/);
    const ok = await h.app.inject({ method: 'GET', url: '/api/lookup/services', headers: { origin: 'https://app.example.com', 'x-api-key': 'k-one' } });
    expect(ok.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(String(ok.headers['access-control-expose-headers'])).toMatch(/Retry-After/);
    const other = await h.app.inject({ method: 'GET', url: '/api/lookup/services', headers: { origin: 'https://evil.example', 'x-api-key': 'k-one' } });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    const missing = await h.app.inject({ method: 'GET', url: '/nope' });
    expect(missing.statusCode).toBe(404);
  });

  it('answers 414 JSON for a URL over API_MAX_URL_LENGTH, before the API key and the rate limit', async () => {
    const h = await harness({ apiMaxUrlLength: 300, apiKeys: ['k-one'] });
    const res = await h.app.inject({ method: 'GET', url: `/api/lookup/services?q=${'a'.repeat(400)}` });
    expect(res.statusCode).toBe(414);
    expect(res.json()).toMatchObject({ error: 'URI too long', message: expect.stringMatching(/300/) });
    expect(h.limiter.calls).toEqual([]);
    const fine = await h.app.inject({ method: 'GET', url: `/api/lookup/services?q=${'a'.repeat(100)}`, headers: { 'x-api-key': 'k-one' } });
    expect(fine.statusCode).not.toBe(414);
  });
});
