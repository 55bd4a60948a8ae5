import { describe, expect, it } from 'vitest';
import { targetPolicyFromConfig } from '@lookup/contracts';
import { ConfigError, loadConfig } from './config.ts';

describe('TARGET_ALLOW_CIDRS / TARGET_DENY_CIDRS', () => {
  it('default to empty lists', () => {
    const config = loadConfig({});
    expect(config.targetAllowCidrs).toEqual([]);
    expect(config.targetDenyCidrs).toEqual([]);
    expect(config.allowPrivateTargets).toBe(false);
  });

  it('read comma-separated CIDR lists, and the policy is one call away', () => {
    const config = loadConfig({ TARGET_ALLOW_CIDRS: '10.1.0.0/16, fd00::/8', TARGET_DENY_CIDRS: '8.8.4.4,2606:4700::/32' });
    expect(config.targetAllowCidrs).toEqual(['10.1.0.0/16', 'fd00::/8']);
    expect(config.targetDenyCidrs).toEqual(['8.8.4.4', '2606:4700::/32']);
    const policy = targetPolicyFromConfig(config);
    expect(policy.checkAddress('10.1.2.3')).toEqual({ allowed: true });
    expect(policy.checkAddress('10.2.0.1')).toMatchObject({ allowed: false, rule: 'private' });
    expect(policy.checkAddress('8.8.4.4')).toMatchObject({ allowed: false, rule: 'deny-list' });
  });

  it('refuse a bad range at start, naming the variable and the entry', () => {
    let error: unknown;
    try {
      loadConfig({ TARGET_ALLOW_CIDRS: '10.0.0.0/8,10.0.0.1/8', TARGET_DENY_CIDRS: 'example.com' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^TARGET_ALLOW_CIDRS .*'10\.0\.0\.1\/8' has host bits set/);
    expect(problems[1]).toMatch(/^TARGET_DENY_CIDRS .*'example\.com' is not a CIDR range/);
  });
});
