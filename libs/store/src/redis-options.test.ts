// Issue 15: every client is built from one set of connection options; with Sentinels it follows failovers.
import { describe, expect, it } from 'vitest';
import { describeRedisTarget, redisConnectionOptions } from './redis.ts';

describe('redisConnectionOptions', () => {
  it('connects straight to REDIS_URL without Sentinels (password, database, TLS from the URL)', () => {
    const o = redisConnectionOptions({ redisUrl: 'rediss://:s%40cret@10.0.0.5:6380/3', redisSentinels: [], redisMasterName: 'mymaster' });
    expect(o).toMatchObject({ host: '10.0.0.5', port: 6380, password: 's@cret', db: 3, tls: {} });
    expect(o.sentinels).toBeUndefined();
  });

  it('asks the Sentinels for the master, follows a switch and reconnects on READONLY', () => {
    const target = { redisUrl: 'redis://:pw@ignored:6379', redisSentinels: [{ host: '127.0.0.1', port: 27001 }], redisMasterName: 'm1' };
    const o = redisConnectionOptions(target);
    expect(o).toMatchObject({ sentinels: [{ host: '127.0.0.1', port: 27001 }], name: 'm1', password: 'pw', failoverDetector: true });
    expect(o.host).toBeUndefined();
    const reconnect = o.reconnectOnError as (err: Error) => boolean | 1 | 2;
    expect(reconnect(new Error("READONLY You can't write against a read only replica."))).toBe(2);
    expect(reconnect(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'))).toBe(false);
    expect(describeRedisTarget(target)).toBe('sentinel://127.0.0.1:27001/m1');
  });
});
