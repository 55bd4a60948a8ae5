import { describe, expect, it } from 'vitest';
import { harness } from '../testing/app-harness.ts';

describe('GET /dashboard', () => {
  it('serves one HTML page whose scripts and styles are same-origin files, nothing inline, under the strict CSP', async () => {
    const h = await harness();
    const res = await h.app.inject({ method: 'GET', url: '/dashboard' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("script-src-attr 'none'");
    const html = res.body;
    // Every <script> has a src (no inline code), no element has an on* handler or a style attribute.
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/\bsrc="\/dashboard\/[a-z-]+\.js"/);
      expect(body!.trim()).toBe('');
    }
    expect(html).not.toMatch(/\son[a-z]+\s*=/i);
    expect(html).not.toMatch(/\sstyle\s*=/i);
    expect(html).not.toMatch(/<style\b/i);
    // Each referenced asset is served with its type; the modules import only each other.
    const refs = [...html.matchAll(/(?:src|href)="(\/dashboard\/[^"]+)"/g)].map((m) => m[1]!);
    expect(refs).toEqual(['/dashboard/dashboard.css', '/dashboard/dashboard.js']);
    const js = await h.app.inject({ method: 'GET', url: '/dashboard/dashboard.js' });
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    const imports = [...js.body.matchAll(/from '(\.\/[^']+)'/g)].map((m) => m[1]!);
    expect(imports.sort()).toEqual(['./prom-text.js', './sse.js']);
    for (const file of imports) expect((await h.app.inject({ method: 'GET', url: `/dashboard/${file.slice(2)}` })).statusCode).toBe(200);
    expect((await h.app.inject({ method: 'GET', url: '/dashboard/dashboard.css' })).headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('serves nothing else from the folder: an unknown or traversing name is the JSON 404', async () => {
    const h = await harness();
    for (const url of ['/dashboard/prom-text.d.ts', '/dashboard/..%2Fpackage.json', '/dashboard/nope.js']) {
      const res = await h.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
      expect(res.json()).toMatchObject({ code: 'NOT_FOUND' });
    }
  });

  it('needs no API key (the page asks for it), and the /api calls it makes still do', async () => {
    const h = await harness({ apiKeys: ['k'] });
    expect((await h.app.inject({ method: 'GET', url: '/dashboard' })).statusCode).toBe(200);
    expect((await h.app.inject({ method: 'GET', url: '/api/lookup' })).statusCode).toBe(401);
    expect((await h.app.inject({ method: 'GET', url: '/api/lookup', headers: { 'x-api-key': 'k' } })).statusCode).toBe(200);
  });
});
