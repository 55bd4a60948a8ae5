import { describe, expect, it } from 'vitest';
import { reverseName } from './arpa.ts';

describe('reverseName', () => {
  it('builds in-addr.arpa names', () => {
    expect(reverseName('8.8.4.4')).toBe('4.4.8.8.in-addr.arpa');
    expect(reverseName('127.0.0.1')).toBe('1.0.0.127.in-addr.arpa');
  });

  it('builds ip6.arpa names from any IPv6 text form', () => {
    expect(reverseName('2001:db8::567:89ab')).toBe('b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa');
    expect(reverseName('::1')).toBe(`1.${'0.'.repeat(31)}ip6.arpa`);
    expect(reverseName('2001:4860:4860::8888')).toBe(reverseName('2001:4860:4860:0:0:0:0:8888'));
    expect(reverseName('2001:DB8::1')).toBe(reverseName('2001:db8::1'));
  });

  it('handles embedded IPv4 and zone indexes', () => {
    expect(reverseName('::ffff:192.0.2.1')).toBe(`1.0.2.0.0.0.0.c.f.f.f.f.${'0.'.repeat(20)}ip6.arpa`);
    expect(reverseName('64:ff9b::192.0.2.1')).toBe(reverseName('64:ff9b::c000:201'));
    expect(reverseName('fe80::1%eth0')).toBe(reverseName('fe80::1'));
  });

  it('rejects anything that is not an address', () => {
    expect(reverseName('example.test')).toBeUndefined();
    expect(reverseName('1.2.3')).toBeUndefined();
  });
});
