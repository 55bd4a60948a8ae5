// TENANTS: API keys mapped to tenants with quotas (issue 16, per-tenant quotas).
import { describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, loadConfig } from './config.ts';

const problems = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (err) {
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
};

describe('TENANTS', () => {
  it('parses name:key:jobsPerDay:jobsInFlight entries, and every tenant key becomes an API key', () => {
    const c = loadConfig({ TENANTS: 'acme:key-a1:1000:5, acme:key-a2:1000:5,beta:key-b:0:2', API_KEYS: 'plain' });
    expect(c.tenants).toEqual([
      { name: 'acme', key: 'key-a1', jobsPerDay: 1000, jobsInFlight: 5 },
      { name: 'acme', key: 'key-a2', jobsPerDay: 1000, jobsInFlight: 5 },
      { name: 'beta', key: 'key-b', jobsPerDay: 0, jobsInFlight: 2 },
    ]);
    expect(c.apiKeys).toEqual(['plain', 'key-a1', 'key-a2', 'key-b']);
    expect(JSON.stringify(describeConfig(c))).not.toMatch(/key-a1|key-b/);
  });

  it('has no tenants by default', () => {
    expect(loadConfig({}).tenants).toEqual([]);
  });

  it('names each malformed entry without echoing its key', () => {
    const found = problems({ TENANTS: 'acme:secret-key:10' });
    expect(found).toEqual(["TENANTS item 1 must be name:key:jobsPerDay:jobsInFlight, got 'acme:***'"]);
    expect(problems({ TENANTS: 'bad name:k:1:1' })[0]).toMatch(/tenant name must be 1-64 letters/);
    expect(problems({ TENANTS: 'acme:k:ten:1' })[0]).toMatch(/TENANTS item 1 \(acme\) jobsPerDay must be an integer/);
    expect(problems({ TENANTS: 'acme:k:1:-1' })[0]).toMatch(/jobsInFlight must be between 0 and/);
  });

  it('refuses one key for two entries, and one tenant with different quotas', () => {
    expect(problems({ TENANTS: 'a:k:1:1,b:k:1:1' })[0]).toMatch(/one key to two entries/);
    expect(problems({ TENANTS: 'a:k1:1:1,a:k2:2:1' })[0]).toMatch(/tenant 'a' is listed with different quotas/);
  });
});
