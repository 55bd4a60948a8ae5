import { describe, expect, it } from 'vitest';
import { harness, post } from '../testing/app-harness.ts';

// `callback` on POST /api/lookup and on batch items: its form, the target policy on its host, and CALLBACK_SECRET.
const SECRET = 'a-test-secret-of-enough-length';

describe('POST /api/lookup with a callback', () => {
  it('stores the normalised callback with the job (events default to both)', async () => {
    const h = await harness({ callbackSecret: SECRET });
    const res = await post(h.app, { target: '8.8.8.8', services: ['GeoIP'], callback: { url: 'https://hooks.example.com/x?y=1' } });
    expect(res.statusCode).toBe(202);
    const job = h.jobs.jobs.get(res.json().jobId)!;
    expect(job.callback).toEqual({ url: 'https://hooks.example.com/x?y=1', events: ['completed', 'cancelled'] });
  });

  it('refuses a private callback address with 400 CALLBACK_REFUSED unless ALLOW_PRIVATE_TARGETS', async () => {
    const h = await harness({ callbackSecret: SECRET });
    for (const url of ['http://127.0.0.1:28001/hook', 'http://10.1.2.3/hook', 'http://[::1]/hook', 'http://[::ffff:127.0.0.1]/hook']) {
      const res = await post(h.app, { target: '8.8.8.8', callback: { url } });
      expect(res.statusCode, url).toBe(400);
      expect(res.json()).toMatchObject({ error: 'Callback not allowed', code: 'CALLBACK_REFUSED' });
      expect(res.json().message).toContain('refused by the target policy');
    }
    expect(h.jobs.jobs.size).toBe(0);
    const allowed = await harness({ callbackSecret: SECRET, allowPrivateTargets: true });
    expect((await post(allowed.app, { target: '8.8.8.8', callback: { url: 'http://127.0.0.1:28001/hook', events: ['completed'] } })).statusCode).toBe(202);
  });

  it('refuses malformed callbacks with a clear 400', async () => {
    const h = await harness({ callbackSecret: SECRET });
    const cases: [unknown, string][] = [
      [{ url: 'ftp://hooks.example.com/x' }, 'INVALID_CALLBACK'],
      [{ url: 'not a url' }, 'INVALID_CALLBACK'],
      [{ url: 'https://user:pw@hooks.example.com/x' }, 'INVALID_CALLBACK'],
      [{ url: 'https://hooks.example.com/x', events: ['finished'] }, 'VALIDATION_FAILED'],
      [{ url: 'https://hooks.example.com/x', events: [] }, 'VALIDATION_FAILED'],
      [{ url: 'https://hooks.example.com/x', secret: 'x' }, 'VALIDATION_FAILED'],
    ];
    for (const [callback, code] of cases) {
      const res = await post(h.app, { target: '8.8.8.8', callback });
      expect(res.statusCode, JSON.stringify(callback)).toBe(400);
      expect(res.json().code, JSON.stringify(callback)).toBe(code);
    }
  });

  it('refuses callbacks when CALLBACK_SECRET is not configured', async () => {
    const h = await harness({ callbackSecret: undefined });
    const res = await post(h.app, { target: '8.8.8.8', callback: { url: 'https://hooks.example.com/x' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('CALLBACKS_DISABLED');
  });

  it('checks each batch item\'s callback like a single submission', async () => {
    const h = await harness({ callbackSecret: SECRET });
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/lookup/batch',
      payload: { items: [{ target: '8.8.8.8', callback: { url: 'https://hooks.example.com/a' } }, { target: '8.8.4.4', callback: { url: 'http://192.168.1.1/b' } }] },
    });
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body.jobs).toHaveLength(1);
    expect(h.jobs.jobs.get(body.jobs[0].jobId)!.callback).toEqual({ url: 'https://hooks.example.com/a', events: ['completed', 'cancelled'] });
    expect(body.rejected).toEqual([{ index: 1, error: expect.objectContaining({ code: 'CALLBACK_REFUSED' }) }]);
  });
});
