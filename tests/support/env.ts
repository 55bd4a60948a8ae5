/**
 * Where tests find RabbitMQ and Redis: the same variables and defaults the services use. When the
 * global setup had to start them in containers, it provides their URLs instead.
 */
async function provided(key: string): Promise<string | undefined> {
  try {
    const { inject } = await import('vitest');
    return (inject as (k: string) => string | undefined)(key);
  } catch {
    return undefined; // not inside a vitest run (e.g. the benchmark)
  }
}

export const AMQP_URL = (await provided('amqpUrl')) || process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';
export const REDIS_URL = (await provided('redisUrl')) || process.env.REDIS_URL || 'redis://127.0.0.1:6379';
export const REPO_ROOT = new URL('../../', import.meta.url).pathname;

/**
 * Environment for a suite under test: loopback fixtures for RDAP and DNS, private targets allowed, rate
 * limits off, one ping probe, quick retries. `overrides` win.
 */
export function fixtureEnv(fixtures: { rdapUrl: string; dnsAddress: string }, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    RDAP_BASE_URL: fixtures.rdapUrl,
    DNS_SERVERS: fixtures.dnsAddress,
    ALLOW_PRIVATE_TARGETS: 'true',
    PING_COUNT: '1',
    RATE_LIMIT_SUBMIT_PER_MIN: '0',
    RATE_LIMIT_API_PER_MIN: '0',
    RATE_LIMIT_GLOBAL_PER_MIN: '0',
    RATE_LIMIT_RESOURCE_PER_MIN: '0',
    RETRY_BASE_DELAY_MS: '100',
    ...overrides,
  };
}
