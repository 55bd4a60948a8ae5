import { describe, expect, it } from 'vitest';
import { SERVICE_CATALOGUE } from '@lookup/contracts';
import { ConfigError, cacheTtlVariable, loadConfig } from './config.ts';

describe('CACHE_TTL_<SERVICE>', () => {
  it('names one variable per catalogue service, 0 (never reuse) by default', () => {
    expect(SERVICE_CATALOGUE.map((s) => cacheTtlVariable(s.slug))).toEqual(['CACHE_TTL_GEOIP', 'CACHE_TTL_PING', 'CACHE_TTL_RDAP', 'CACHE_TTL_REVERSE_DNS', 'CACHE_TTL_DNS']);
    expect(Object.values(loadConfig({}).cacheTtlSeconds)).toEqual([0, 0, 0, 0, 0]);
  });

  it('reads each window in seconds, and refuses a bad one naming the variable', () => {
    const config = loadConfig({ CACHE_TTL_GEOIP: '86400', CACHE_TTL_RDAP: '3600', CACHE_TTL_REVERSE_DNS: '60' });
    expect(config.cacheTtlSeconds).toMatchObject({ geoip: 86400, rdap: 3600, 'reverse-dns': 60, ping: 0 });
    expect(() => loadConfig({ CACHE_TTL_PING: '-1' })).toThrow(ConfigError);
    expect(() => loadConfig({ CACHE_TTL_PING: 'soon' })).toThrow(/CACHE_TTL_PING/);
  });
});
