import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('RESOURCE_REPLY_LIMIT_BYTES', () => {
  it('defaults to 16 MiB and accepts values from 4096 up to 120 MiB (below RabbitMQ 128 MiB max_message_size)', () => {
    expect(loadConfig({}).resourceReplyLimitBytes).toBe(16 * 1024 * 1024);
    expect(loadConfig({ RESOURCE_REPLY_LIMIT_BYTES: '65536' }).resourceReplyLimitBytes).toBe(65536);
    expect(loadConfig({ RESOURCE_REPLY_LIMIT_BYTES: String(120 * 1024 * 1024) }).resourceReplyLimitBytes).toBe(120 * 1024 * 1024);
  });

  it('refuses values at or over RabbitMQ max message size, tiny values and non-integers, naming the variable', () => {
    for (const v of [String(128 * 1024 * 1024), String(120 * 1024 * 1024 + 1), '100', '1.5', 'lots']) {
      expect(() => loadConfig({ RESOURCE_REPLY_LIMIT_BYTES: v }), v).toThrow(ConfigError);
      expect(() => loadConfig({ RESOURCE_REPLY_LIMIT_BYTES: v }), v).toThrow(/RESOURCE_REPLY_LIMIT_BYTES/);
    }
  });
});
