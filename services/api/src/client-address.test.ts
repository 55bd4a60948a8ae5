import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { clientAddressKey } from './client-address.ts';

describe('clientAddressKey', () => {
  it('keeps IPv4 addresses, unwraps IPv4-mapped IPv6, and keys other IPv6 addresses by their /64', () => {
    expect(clientAddressKey('203.0.113.9')).toBe('203.0.113.9');
    expect(clientAddressKey('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(clientAddressKey('::FFFF:cb00:7109')).toBe('203.0.113.9');
    expect(clientAddressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(clientAddressKey('2001:DB8:0:0:ffff::1')).toBe('2001:db8::/64');
    expect(clientAddressKey('2001:db8::1')).toBe('2001:db8::/64');
    expect(clientAddressKey('::1')).toBe('::/64');
    expect(clientAddressKey('fe80::1%eth0')).toBe('fe80::/64');
    expect(clientAddressKey('64:ff9b::192.0.2.1')).toBe('64:ff9b::/64');
    expect(clientAddressKey(undefined)).toBe('unknown');
    expect(clientAddressKey('not-an-ip')).toBe('not-an-ip');
  });

  it('gives every address inside one /64 the same key, and addresses of different /64s different keys', () => {
    const group = fc.integer({ min: 0, max: 0xffff });
    const prefix = fc.tuple(group, group, group, group).filter(([a]) => a !== 0); // not ::/8 (mapped, compat)
    const iid = fc.tuple(group, group, group, group);
    const text = (g: number[]) => g.map((x) => x.toString(16)).join(':');
    fc.assert(
      fc.property(prefix, iid, iid, prefix, (p, a, b, q) => {
        expect(clientAddressKey(text([...p, ...a]))).toBe(clientAddressKey(text([...p, ...b])));
        if (text(p) !== text(q)) expect(clientAddressKey(text([...p, ...a]))).not.toBe(clientAddressKey(text([...q, ...a])));
      }),
      { numRuns: 500 },
    );
  });
});
