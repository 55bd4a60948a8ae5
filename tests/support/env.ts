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
