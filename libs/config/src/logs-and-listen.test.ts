// Issue 12: the API listens on loopback unless API_HOST says otherwise; LOG_FORMAT and EXIT_WITH_PARENT.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('API_HOST, LOG_FORMAT, EXIT_WITH_PARENT', () => {
  it('listens on 127.0.0.1 by default (compose sets 0.0.0.0 inside the container)', () => {
    expect(loadConfig({}).apiHost).toBe('127.0.0.1');
    expect(loadConfig({ API_HOST: '0.0.0.0' }).apiHost).toBe('0.0.0.0');
  });

  it('LOG_FORMAT is auto by default, accepts json and pretty, and refuses anything else', () => {
    expect(loadConfig({}).logFormat).toBe('auto');
    expect(loadConfig({ LOG_FORMAT: 'pretty' }).logFormat).toBe('pretty');
    expect(loadConfig({ LOG_FORMAT: 'JSON' }).logFormat).toBe('json');
    expect(() => loadConfig({ LOG_FORMAT: 'yaml' })).toThrow(ConfigError);
    expect(() => loadConfig({ LOG_FORMAT: 'yaml' })).toThrow(/LOG_FORMAT must be one of auto, json, pretty/);
  });

  it('EXIT_WITH_PARENT is on by default and can be turned off', () => {
    expect(loadConfig({}).exitWithParent).toBe(true);
    expect(loadConfig({ EXIT_WITH_PARENT: 'false' }).exitWithParent).toBe(false);
    expect(() => loadConfig({ EXIT_WITH_PARENT: 'maybe' })).toThrow(/EXIT_WITH_PARENT must be true or false/);
  });
});
