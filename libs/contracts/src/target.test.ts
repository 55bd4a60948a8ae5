import { describe, expect, it } from 'vitest';
import { isIPv6WithZone, isStrictIPv4, validateTarget } from './target.ts';
import { addressScope, type AddressScope } from './target-policy.ts';

const label = (n: number, ch = 'a') => ch.repeat(n);
/** A domain of exactly `length` characters made of 63-character labels and a final shorter one. */
function nameOfLength(length: number): string {
  const labels: string[] = [];
  let left = length;
  while (left > 0) {
    const take = Math.min(63, left);
    labels.push(label(take, 'b'));
    left -= take + 1;
    if (left === 0) {
      // would end with a dot: shorten the last label by one and add a 1-char label instead
      labels[labels.length - 1] = label(take - 2, 'b');
      labels.push('c');
    }
  }
  return labels.join('.');
}

describe('validateTarget: accepted', () => {
  const accepted: [string, string, 'IPAddress' | 'Domain'][] = [
    ['8.8.8.8', '8.8.8.8', 'IPAddress'],
    [' 8.8.8.8 ', '8.8.8.8', 'IPAddress'],
    ['\t1.1.1.1\n', '1.1.1.1', 'IPAddress'],
    ['0.0.0.0', '0.0.0.0', 'IPAddress'],
    ['255.255.255.255', '255.255.255.255', 'IPAddress'],
    ['10.0.0.1', '10.0.0.1', 'IPAddress'],
    ['::1', '::1', 'IPAddress'],
    ['::', '::', 'IPAddress'],
    ['2001:db8::1', '2001:db8::1', 'IPAddress'],
    ['2001:DB8::A', '2001:db8::a', 'IPAddress'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:0db8:0000:0000:0000:0000:0000:0001', 'IPAddress'],
    ['fe80::1%eth0', 'fe80::1%eth0', 'IPAddress'],
    ['FE80::1%Eth0', 'fe80::1%Eth0', 'IPAddress'],
    ['fe80::1%25', 'fe80::1%25', 'IPAddress'],
    ['::ffff:1.2.3.4', '::ffff:1.2.3.4', 'IPAddress'],
    ['example.com', 'example.com', 'Domain'],
    ['EXAMPLE.Com', 'example.com', 'Domain'],
    ['example.com.', 'example.com', 'Domain'],
    ['  example.com  ', 'example.com', 'Domain'],
    ['a.b', 'a.b', 'Domain'],
    ['sub.domain.example.co.uk', 'sub.domain.example.co.uk', 'Domain'],
    ['a-b.example.com', 'a-b.example.com', 'Domain'],
    ['a--b.example.com', 'a--b.example.com', 'Domain'],
    ['123.example.com', '123.example.com', 'Domain'],
    ['example.c0m', 'example.c0m', 'Domain'],
    ['0xdead.com', '0xdead.com', 'Domain'],
    ['xn--bcher-kva.de', 'xn--bcher-kva.de', 'Domain'],
    ['bücher.de', 'xn--bcher-kva.de', 'Domain'],
    ['BÜCHER.de', 'xn--bcher-kva.de', 'Domain'],
    ['bücher.de.', 'xn--bcher-kva.de', 'Domain'],
    ['例え.jp', 'xn--r8jz45g.jp', 'Domain'],
    [`${label(63)}.com`, `${label(63)}.com`, 'Domain'],
    [nameOfLength(253), nameOfLength(253), 'Domain'],
    [`${nameOfLength(253)}.`, nameOfLength(253), 'Domain'],
  ];
  it.each(accepted)('%j -> %j (%s)', (input, target, targetType) => {
    expect(validateTarget(input)).toEqual({ ok: true, target, targetType });
  });

  it('builds names of the intended length', () => {
    expect(nameOfLength(253)).toHaveLength(253);
    expect(nameOfLength(254)).toHaveLength(254);
  });
});

describe('validateTarget: rejected', () => {
  const rejected: [string, unknown, RegExp][] = [
    // not a string / empty
    ['number', 8, /string/],
    ['null', null, /string/],
    ['empty', '', /empty/],
    ['whitespace only', ' \t\n ', /empty/],
    ['too long input', 'a'.repeat(1025), /longer than 1024/],
    // the defects of a naive IPv4 validator
    ['three octets', '1.2.3', /IPv4/],
    ['two octets', '127.1', /IPv4/],
    ['one number', '2130706433', /IPv4/],
    ['five octets', '1.2.3.4.5', /IPv4/],
    ['octet above 255', '999.1.1.1', /IPv4/],
    ['octet 256', '256.1.1.1', /IPv4/],
    ['leading zeros', '01.02.03.04', /IPv4/],
    ['one leading zero', '01.2.3.4', /IPv4/],
    ['hex first octet', '0x7f.0.0.1', /IPv4/],
    ['hex last octet', '127.0.0.0x1', /IPv4/],
    ['hex shorthand', '0x7f.1', /IPv4/],
    ['hex whole', '0x7f000001', /IPv4/],
    ['fullwidth digits', '１２７.０.０.１', /IPv4/],
    ['trailing dot on an address', '1.2.3.4.', /IPv4/],
    ['negative octet', '-1.2.3.4', /label/],
    // IPv6
    ['triple colon', '2001:::1', /IPv6/],
    ['bad hex group', 'gggg::1', /IPv6/],
    ['two double colons', '1::2::3', /IPv6/],
    ['too many groups', '1:2:3:4:5:6:7:8:9', /IPv6/],
    ['group too long', '12345::1', /IPv6/],
    ['empty zone', 'fe80::1%', /IPv6/],
    ['bad embedded IPv4', '::ffff:256.1.1.1', /IPv6/],
    ['bracketed', '[::1]', /IPv6/],
    // URLs and ports
    ['http URL', 'http://x.com', /URL/],
    ['https URL with path', 'https://example.com/a?b=c', /URL/],
    ['path', 'example.com/path', /URL/],
    ['user info', 'user@example.com', /URL/],
    ['query', 'example.com?x', /URL/],
    ['host and port', 'example.com:8080', /port/],
    ['address and port', '8.8.8.8:53', /port/],
    // domains
    ['single label', 'localhost', /two labels/],
    ['single label with trailing dot', 'localhost.', /two labels/],
    ['two trailing dots', 'example.com..', /empty label/],
    ['leading dot', '.example.com', /empty label/],
    ['empty inner label', 'a..b.com', /empty label/],
    ['only a dot', '.', /empty label/],
    ['leading hyphen', '-bad.com', /letters, digits and inner hyphens/],
    ['trailing hyphen', 'bad-.com', /letters, digits and inner hyphens/],
    ['hyphen TLD', 'example.-com', /letters, digits and inner hyphens/],
    ['underscore', 'under_score.com', /letters, digits and inner hyphens/],
    ['space inside', 'exa mple.com', /whitespace/],
    ['other punctuation', 'exa!mple.com', /letters, digits and inner hyphens/],
    ['numeric TLD', 'example.123', /top-level/],
    ['label of 64', `${label(64)}.com`, /longer than 63/],
    ['name of 254', nameOfLength(254), /longer than 253/],
    ['name of 254 plus dot', `${nameOfLength(254)}.`, /longer than 253/],
    ['invalid IDN', 'ex\u0000ample.com', /./],
  ];
  it.each(rejected)('%s: %j', (_name, input, message) => {
    const result = validateTarget(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(message);
  });
});

describe('isStrictIPv4 / isIPv6WithZone', () => {
  it('dotted quad only', () => {
    expect(isStrictIPv4('192.168.0.1')).toBe(true);
    expect(isStrictIPv4('192.168.00.1')).toBe(false);
    expect(isStrictIPv4('192.168.0')).toBe(false);
    expect(isStrictIPv4(' 1.2.3.4')).toBe(false);
  });
  it('IPv6 with an optional zone', () => {
    expect(isIPv6WithZone('fe80::1%eth0')).toBe(true);
    expect(isIPv6WithZone('fe80::1%eth 0')).toBe(false);
    expect(isIPv6WithZone('fe80::1%')).toBe(false);
    expect(isIPv6WithZone('1.2.3.4')).toBe(false);
  });
});

describe('addressScope', () => {
  const cases: [string, AddressScope][] = [
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['172.32.0.1', 'public'],
    ['100.128.0.1', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    ['0.0.0.0', 'unspecified'],
    ['192.0.2.1', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['198.51.100.1', 'reserved'],
    ['203.0.113.1', 'reserved'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['FE80::1', 'link-local'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'reserved'],
    ['100::1', 'reserved'],
    ['::ffff:1.2.3.4', 'public'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:7f00:1', 'loopback'], // the same address as ::ffff:127.0.0.1, in hex
    ['2606:4700:4700::1111', 'public'],
    ['2001:4860:4860::8888', 'public'],
  ];
  it.each(cases)('%s is %s', (ip, scope) => {
    expect(addressScope(ip)).toBe(scope);
  });

  it('every accepted loopback/private target is refused by scope', () => {
    for (const ip of ['127.0.0.1', '::1', '10.1.1.1', 'fe80::1%lo']) {
      const r = validateTarget(ip);
      expect(r.ok).toBe(true);
      if (r.ok) expect(addressScope(r.target)).not.toBe('public');
    }
  });
});
