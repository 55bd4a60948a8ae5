import { describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, loadConfig } from './config.ts';

describe('RABBITMQ_MANAGEMENT_URL', () => {
  it("is derived from AMQP_URL's user, password and host by default (port 15672, or 15671 for amqps)", () => {
    expect(loadConfig({}).rabbitmqManagementUrl).toBe('http://guest:guest@127.0.0.1:15672');
    expect(loadConfig({ AMQP_URL: 'amqp://app:s3cret@broker.internal:5673/prod' }).rabbitmqManagementUrl).toBe('http://app:s3cret@broker.internal:15672');
    expect(loadConfig({ AMQP_URL: 'amqps://app:pw@[::1]:5671' }).rabbitmqManagementUrl).toBe('https://app:pw@[::1]:15671');
    expect(loadConfig({ AMQP_URL: 'amqp://127.0.0.1' }).rabbitmqManagementUrl).toBe('http://127.0.0.1:15672');
  });

  it('takes an http(s) URL, masks its password in the logged configuration, and refuses anything else', () => {
    const config = loadConfig({ RABBITMQ_MANAGEMENT_URL: 'http://admin:hush@127.0.0.1:25672/' });
    expect(config.rabbitmqManagementUrl).toBe('http://admin:hush@127.0.0.1:25672');
    expect(describeConfig(config).rabbitmqManagementUrl).toBe('http://admin:***@127.0.0.1:25672');
    expect(() => loadConfig({ RABBITMQ_MANAGEMENT_URL: 'amqp://127.0.0.1' })).toThrow(ConfigError);
    expect(() => loadConfig({ RABBITMQ_MANAGEMENT_URL: 'not a url' })).toThrow(/RABBITMQ_MANAGEMENT_URL must be a URL/);
  });
});
