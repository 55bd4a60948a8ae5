import { describe, expect, it } from 'vitest';
import { harness } from '../testing/app-harness.ts';

describe('GET /api/lookup/services', () => {
  it('lists the catalogue without slugs', async () => {
    const h = await harness();
    const res = await h.app.inject({ method: 'GET', url: '/api/lookup/services' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.map((s: { name: string; value: number }) => [s.name, s.value])).toEqual([['GeoIP', 0], ['Ping', 1], ['RDAP', 2], ['ReverseDNS', 3], ['DNS', 4]]);
    for (const s of body) {
      expect(Object.keys(s).sort()).toEqual(['description', 'name', 'value']);
      expect(s.description.length).toBeGreaterThan(0);
    }
  });
});
