// Issue 15: REDIS_SENTINELS, REDIS_MASTER_NAME, REDIS_WAIT_REPLICAS and REDIS_WAIT_TIMEOUT_MS.
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';

describe('Redis through Sentinel', () => {
  it('has no Sentinels and no lease wait by default', () => {
    const c = loadConfig({});
    expect(c.redisSentinels).toEqual([]);
    expect(c.redisMasterName).toBe('mymaster');
    expect(c.redisWaitReplicas).toBe(0);
  });

  it('parses host:port lists (IPv6 in brackets) and waits for one replica by default with Sentinels', () => {
    const c = loadConfig({ REDIS_SENTINELS: '127.0.0.1:27001, [::1]:27002,sentinel-3:26379', REDIS_MASTER_NAME: 'lookup-master' });
    expect(c.redisSentinels).toEqual([
      { host: '127.0.0.1', port: 27001 },
      { host: '::1', port: 27002 },
      { host: 'sentinel-3', port: 26379 },
    ]);
    expect(c.redisMasterName).toBe('lookup-master');
    expect(c.redisWaitReplicas).toBe(1);
    expect(loadConfig({ REDIS_SENTINELS: '127.0.0.1:27001', REDIS_WAIT_REPLICAS: '0' }).redisWaitReplicas).toBe(0);
  });

  it('refuses a Sentinel without a port, a bad port, a bad master name and a bad replica count', () => {
    expect(() => loadConfig({ REDIS_SENTINELS: '127.0.0.1' })).toThrow(/REDIS_SENTINELS must be a comma-separated list of host:port, got '127.0.0.1'/);
    expect(() => loadConfig({ REDIS_SENTINELS: '127.0.0.1:70000' })).toThrow(/REDIS_SENTINELS/);
    expect(() => loadConfig({ REDIS_SENTINELS: '127.0.0.1:27001', REDIS_MASTER_NAME: 'a b' })).toThrow(/REDIS_MASTER_NAME/);
    expect(() => loadConfig({ REDIS_WAIT_REPLICAS: '-1' })).toThrow(/REDIS_WAIT_REPLICAS/);
    expect(() => loadConfig({ REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '2000' })).toThrow(/REDIS_WAIT_TIMEOUT_MS \(2000\) must be below RESOURCE_HEARTBEAT_MS \(2000\)/);
    expect(loadConfig({ REDIS_WAIT_REPLICAS: '1' }).redisWaitTimeoutMs).toBe(500);
  });

  it('REDIS_CLUSTER or a redis+cluster:// URL selects Redis Cluster, without Sentinels or WAIT', () => {
    expect(loadConfig({}).redisCluster).toBe(false);
    expect(loadConfig({ REDIS_CLUSTER: 'true', REDIS_URL: 'redis://127.0.0.1:7000' }).redisCluster).toBe(true);
    expect(loadConfig({ REDIS_URL: 'redis+cluster://127.0.0.1:7000' }).redisCluster).toBe(true);
    expect(() => loadConfig({ REDIS_CLUSTER: 'true', REDIS_SENTINELS: '127.0.0.1:27001' })).toThrow(/REDIS_CLUSTER and REDIS_SENTINELS exclude each other/);
    expect(() => loadConfig({ REDIS_CLUSTER: 'true', REDIS_WAIT_REPLICAS: '1' })).toThrow(/REDIS_WAIT_REPLICAS must be 0 with REDIS_CLUSTER/);
    expect(() => loadConfig({ REDIS_URL: 'http://127.0.0.1:7000' })).toThrow(/REDIS_URL must use redis: or rediss: or redis\+cluster:/);
  });
});
