import { describe, expect, it } from 'vitest';
import { buildApp } from '../app.ts';
import { harness, apps } from '../testing/app-harness.ts';

describe('admin dead-letter routes', () => {
  const deadLetters = { list: async () => ({ count: 0, messages: [] }), replay: async () => 1, discard: async () => 1 };
  async function adminApp(adminApiKey: string | undefined) {
    const h = await harness({ adminApiKey });
    const app = await buildApp({ ...h.deps, deadLetters });
    apps.push(app);
    return app;
  }

  it('do not exist while ADMIN_API_KEY is unset: 404, as for any unknown path', async () => {
    const app = await adminApp(undefined);
    const list = await app.inject({ method: 'GET', url: '/api/admin/dead-letters', headers: { 'x-admin-key': 'x' } });
    expect(list.statusCode).toBe(404);
    expect(list.json()).toEqual({ error: 'Not found', message: 'No route for GET /api/admin/dead-letters', code: 'NOT_FOUND' });
    const replay = await app.inject({ method: 'POST', url: '/api/admin/dead-letters/replay', payload: { all: true } });
    expect(replay.statusCode).toBe(404);
  });

  it('check the admin key before validating the body or query (401, never 400, without it)', async () => {
    const app = await adminApp('sesame');
    const badBody = await app.inject({ method: 'POST', url: '/api/admin/dead-letters/replay', payload: { bogus: [1, 2] } });
    expect(badBody.statusCode).toBe(401);
    const badQuery = await app.inject({ method: 'GET', url: '/api/admin/dead-letters?limit=zero&x=1' });
    expect(badQuery.statusCode).toBe(401);
    const withKey = await app.inject({ method: 'POST', url: '/api/admin/dead-letters/replay', headers: { 'x-admin-key': 'sesame' }, payload: { bogus: [1, 2] } });
    expect(withKey.statusCode).toBe(400);
    const ok = await app.inject({ method: 'POST', url: '/api/admin/dead-letters/replay', headers: { 'x-admin-key': 'sesame' }, payload: { all: true } });
    expect(ok.json()).toEqual({ replayed: 1 });
  });
});
