import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addressScope, classifyAddress, createTargetPolicy, parseAddress, parseCidr, targetPolicyFromConfig } from './target-policy.ts';
import { validateTarget } from './target.ts';

// ---------------------------------------------------------------------------------------------------------------
// Renderers: one IPv4 address in every text form it can take inside IPv6, written independently of the code
// under test.

const u32 = (o: number[]) => ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
const octets = (n: number) => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const dottedOf = (n: number) => octets(n).join('.');
const hex = (w: number) => w.toString(16);
const hi = (n: number) => n >>> 16;
const lo = (n: number) => n & 0xffff;

/** Compressed RFC 5952-ish text of eight 16-bit words (longest run of 2+ zero words becomes '::'). */
function compress(words: number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best === -1) return words.map(hex).join(':');
  return `${words.slice(0, best).map(hex).join(':')}::${words.slice(best + bestLen).map(hex).join(':')}`;
}
const full = (words: number[]) => words.map((w) => hex(w).padStart(4, '0')).join(':');

/** Every encoding of IPv4 `n` that stands for or carries it, with the rule prefix the classifier should use. */
function v4Forms(n: number): { form: string; text: string; prefix: string; alwaysRefused: boolean }[] {
  const d = dottedOf(n);
  const teredoClient = (~n) >>> 0;
  const forms = [
    { form: 'dotted', text: d, prefix: '', alwaysRefused: false },
    { form: 'mapped-dotted', text: `::ffff:${d}`, prefix: '', alwaysRefused: false },
    { form: 'mapped-hex', text: `::ffff:${hex(hi(n))}:${hex(lo(n))}`, prefix: '', alwaysRefused: false },
    { form: 'mapped-full-upper', text: full([0, 0, 0, 0, 0, 0xffff, hi(n), lo(n)]).toUpperCase(), prefix: '', alwaysRefused: false },
    { form: 'mapped-zone', text: `::FFFF:${d}%eth0`, prefix: '', alwaysRefused: false },
    { form: 'compat', text: `::${d}`, prefix: 'ipv4-compatible-embedded-', alwaysRefused: true },
    { form: 'nat64-dotted', text: `64:ff9b::${d}`, prefix: 'nat64-embedded-', alwaysRefused: false },
    { form: 'nat64-hex', text: `0064:FF9B:0000:0000:0000:0000:${hex(hi(n))}:${hex(lo(n))}`, prefix: 'nat64-embedded-', alwaysRefused: false },
    { form: '6to4', text: compress([0x2002, hi(n), lo(n), 0, 0, 0, 0, 1]), prefix: '6to4-embedded-', alwaysRefused: false },
    { form: '6to4-full-zone', text: `${full([0x2002, hi(n), lo(n), 0xbeef, 0, 0, 0, 1])}%1`, prefix: '6to4-embedded-', alwaysRefused: false },
    {
      // Teredo with a public server (65.54.227.120) and this address as the (inverted) client
      form: 'teredo-client',
      text: compress([0x2001, 0, 0x4136, 0xe378, 0x8000, 0x63bf, hi(teredoClient), lo(teredoClient)]),
      prefix: 'teredo-embedded-',
      alwaysRefused: true,
    },
    { form: 'teredo-server', text: compress([0x2001, 0, hi(n), lo(n), 0, 0, 0xf7f7, 0xf7f7]), prefix: 'teredo-embedded-', alwaysRefused: true },
  ];
  // ::0.0.0.0 and ::0.0.0.1 are :: and ::1 (unspecified, loopback), not IPv4-compatible addresses.
  return n <= 1 ? forms.filter((f) => f.form !== 'compat') : forms;
}

// ---------------------------------------------------------------------------------------------------------------
// The IANA IPv4 special-purpose blocks, as numeric ranges (an oracle independent of the classifier's table)

const V4_SPECIAL: [string, string][] = [
  ['0.0.0.0/8', 'this-network'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'cgnat'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'ietf-protocol-assignments'],
  ['192.0.2.0/24', 'documentation'],
  ['192.31.196.0/24', 'as112'],
  ['192.52.193.0/24', 'amt'],
  ['192.88.99.0/24', '6to4-relay-anycast'],
  ['192.168.0.0/16', 'private'],
  ['192.175.48.0/24', 'as112'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
];
const V4_RANGES = V4_SPECIAL.map(([cidr, rule]) => {
  const [a, p] = cidr.split('/');
  const start = u32(a!.split('.').map(Number));
  const size = 2 ** (32 - Number(p));
  return { cidr, rule, start, end: start + size - 1 };
});
/** The rule the classifier should give IPv4 `n` (the /32s inside the blocks first), or undefined if public. */
function v4Rule(n: number): string | undefined {
  if (n === 0) return 'unspecified';
  if (n === 0xffffffff) return 'limited-broadcast';
  return V4_RANGES.find((r) => n >= r.start && n <= r.end)?.rule;
}

const strict = createTargetPolicy({ allowPrivate: false });

// ---------------------------------------------------------------------------------------------------------------

describe('classifier: every IPv4 special-purpose block, in every encoding', () => {
  const samples = V4_RANGES.flatMap((r) => [r.start, r.end, r.start + Math.floor((r.end - r.start) / 2)].map((n) => [r.cidr, n] as const));
  samples.push(['0.0.0.0/32', 0], ['255.255.255.255/32', 0xffffffff]);

  it.each(samples)('%s: %s', (_cidr, n) => {
    const rule = v4Rule(n)!;
    expect(rule).toBeDefined();
    for (const f of v4Forms(n)) {
      const verdict = strict.checkAddress(f.text);
      expect(verdict, `${f.form} ${f.text}`).toMatchObject({ allowed: false, rule: `${f.prefix}${rule}` });
      if (!verdict.allowed) {
        expect(verdict.message).toContain(`rule ${f.prefix}${rule}`);
        expect(verdict.message).toMatch(/TARGET_ALLOW_CIDRS/);
        expect(verdict.message).toMatch(/ALLOW_PRIVATE_TARGETS/);
      }
    }
  });

  const justOutside = [
    '9.255.255.255', '11.0.0.0', '1.0.0.0', '100.63.255.255', '100.128.0.0', '126.255.255.255', '128.0.0.0',
    '169.253.255.255', '169.255.0.0', '172.15.255.255', '172.32.0.0', '191.255.255.255', '192.0.1.0', '192.0.3.0',
    '192.31.195.255', '192.31.197.0', '192.52.192.255', '192.52.194.0', '192.88.98.255', '192.88.100.0', '192.167.255.255',
    '192.169.0.0', '192.175.47.255', '192.175.49.0', '198.17.255.255', '198.20.0.0', '198.51.99.255', '198.51.101.0',
    '203.0.112.255', '203.0.114.0', '223.255.255.255', '8.8.8.8', '1.1.1.1',
  ];
  it.each(justOutside)('%s (just outside a block) is public in every encoding but compat and Teredo', (ip) => {
    const n = u32(ip.split('.').map(Number));
    expect(v4Rule(n)).toBeUndefined();
    for (const f of v4Forms(n)) {
      const verdict = strict.checkAddress(f.text);
      if (f.alwaysRefused) expect(verdict, f.text).toMatchObject({ allowed: false, rule: f.form === 'compat' ? 'ipv4-compatible' : 'teredo' });
      else expect(verdict, `${f.form} ${f.text}`).toEqual({ allowed: true });
    }
  });
});

describe('classifier: every IPv6 special-purpose block, in several encodings', () => {
  const cases: [string, string][] = [
    ['::', 'unspecified'],
    ['0:0:0:0:0:0:0:0', 'unspecified'],
    ['0000:0000:0000:0000:0000:0000:0000:0000', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['0000:0000:0000:0000:0000:0000:0000:0001', 'loopback'],
    ['::0001', 'loopback'],
    ['::1%lo', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::FFFF:7F00:0001', 'loopback'],
    ['::127.0.0.1', 'ipv4-compatible-embedded-loopback'],
    ['::7f00:1', 'ipv4-compatible-embedded-loopback'],
    ['::8.8.8.8', 'ipv4-compatible'],
    ['64:ff9b::127.0.0.1', 'nat64-embedded-loopback'],
    ['64:ff9b::a9fe:a9fe', 'nat64-embedded-link-local'],
    ['64:ff9b:1::1', 'nat64-local-use'],
    ['64:ff9b:1:ffff:ffff:ffff:ffff:ffff', 'nat64-local-use'],
    ['64:FF9B:0001::8.8.8.8', 'nat64-local-use'],
    ['64:ff9b:2::8.8.8.8', 'not-global-unicast'],
    ['100::', 'discard-only'],
    ['100::ffff:ffff:ffff:ffff', 'discard-only'],
    ['0100:0000:0000:0000:0000:0000:0000:0001', 'discard-only'],
    ['100:0:0:1::', 'not-global-unicast'],
    ['2001::', 'teredo-embedded-unspecified'], // server 0.0.0.0
    ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', 'teredo'], // server 65.54.227.120, client 8.8.8.8
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo-embedded-documentation'], // RFC 4380's example: client 192.0.2.45
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'teredo-embedded-loopback'],
    ['2001:0:7f00:1::', 'teredo-embedded-loopback'],
    ['2001:0:a9fe:a9fe::1', 'teredo-embedded-link-local'],
    ['2001:1::1', 'ietf-protocol-assignments'],
    ['2001:1::2', 'ietf-protocol-assignments'],
    ['2001:2::', 'benchmarking'],
    ['2001:2:0:ffff:ffff:ffff:ffff:ffff', 'benchmarking'],
    ['2001:3::1', 'amt'],
    ['2001:4:112::1', 'as112'],
    ['2001:10::1', 'orchid'],
    ['2001:1f:ffff::1', 'orchid'],
    ['2001:20::1', 'orchidv2'],
    ['2001:2F:FFFF:FFFF::1', 'orchidv2'],
    ['2001:30::1', 'drone-remote-id'],
    ['2001:1ff:ffff::1', 'ietf-protocol-assignments'],
    ['2001:db8::', 'documentation'],
    ['2001:DB8:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF', 'documentation'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', 'documentation'],
    ['2002:7f00:1::1', '6to4-embedded-loopback'],
    ['2002:a9fe:a9fe::', '6to4-embedded-link-local'],
    ['2002:0a00:0001::1%eth0', '6to4-embedded-private'],
    ['2002:c0a8:101::1', '6to4-embedded-private'],
    ['2002:6440::1', '6to4-embedded-cgnat'],
    ['2002:e000::1', '6to4-embedded-multicast'],
    ['2002::', '6to4-embedded-unspecified'],
    ['3fff::', 'documentation'],
    ['3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff', 'documentation'],
    ['5f00::1', 'srv6-sid'],
    ['5F00:FFFF::1', 'srv6-sid'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456:789a::1', 'unique-local'],
    ['FDFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF', 'unique-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['FE80:0000:0000:0000:0000:0000:0000:0001%25', 'link-local'],
    ['febf:ffff::1', 'link-local'],
    ['fec0::1', 'site-local'],
    ['feff::1', 'site-local'],
    ['ff00::', 'multicast'],
    ['ff02::1', 'multicast'],
    ['FF05::1:3', 'multicast'],
    ['::ffff:0:8.8.8.8', 'not-global-unicast'],
    ['1::', 'not-global-unicast'],
    ['1fff:ffff::1', 'not-global-unicast'],
    ['4000::1', 'not-global-unicast'],
    ['8000::1', 'not-global-unicast'],
    ['e000::1', 'not-global-unicast'],
  ];
  it.each(cases)('%s -> %s', (ip, rule) => {
    const verdict = strict.checkAddress(ip);
    expect(verdict).toMatchObject({ allowed: false, rule });
    if (!verdict.allowed) expect(verdict.message).toContain(`rule ${rule}`);
    expect(classifyAddress(ip)).toMatchObject({ kind: 'special', rule });
  });

  const publicOnes = [
    '2606:4700:4700::1111', '2001:4860:4860::8888', '2001:200::1', '2000::1', '3ffe:ffff::1', '3fff:1000::1', '2001:dc0::1',
    '2002:808:808::1', '2002:0808:0808:0000:0000:0000:0000:0001', '64:ff9b::8.8.8.8', '64:ff9b::808:808', '2620:4f:8000::1',
    '::ffff:8.8.8.8', '::FFFF:808:808', '2A00:1450:4001:0830::200E', '2a00:1450:4001:830::200e%eth0',
  ];
  it.each(publicOnes)('%s is allowed', (ip) => {
    expect(strict.checkAddress(ip)).toEqual({ allowed: true });
    expect(addressScope(ip)).toBe('public');
  });

  const invalid = ['', 'localhost', '127.1', '0177.0.0.1', '0x7f.0.0.1', '2130706433', '127.0.0.01', '1.2.3.4.', ' 127.0.0.1', '[::1]',
    '::ffff:127.000.0.1', '00001::1', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7::8', 'fe80::1%', 'fe80::1%a b', ':::', 'gggg::1', '::1.2.3'];
  it.each(invalid)('%j is not an address: refused as invalid-address', (ip) => {
    expect(parseAddress(ip)).toBeUndefined();
    expect(strict.checkAddress(ip)).toMatchObject({ allowed: false, rule: 'invalid-address' });
    expect(createTargetPolicy({ allowPrivate: true }).checkAddress(ip)).toMatchObject({ allowed: false, rule: 'invalid-address' });
  });
});

describe('the policy: allowPrivate, allow and deny lists', () => {
  it('ALLOW_PRIVATE_TARGETS lifts every special-purpose refusal', () => {
    const open = createTargetPolicy({ allowPrivate: true });
    for (const ip of ['127.0.0.1', '::1', '10.0.0.1', '2002:7f00:1::1', '2001::1', '::127.0.0.1', 'fe80::1%eth0', '255.255.255.255']) {
      expect(open.checkAddress(ip), ip).toEqual({ allowed: true });
    }
  });

  it('the deny list wins over everything, in every encoding of what it names', () => {
    const policy = createTargetPolicy({ allowPrivate: true, allow: ['127.0.0.0/8'], deny: ['127.0.0.0/8', '8.8.4.0/24', '2606:4700::/32'] });
    for (const ip of ['127.0.0.1', '::ffff:127.0.0.1', '::ffff:7f00:1', '64:ff9b::7f00:1', '2002:7f00:1::1', '8.8.4.4', '::ffff:8.8.4.4', '2002:808:404::1', '2606:4700:4700::1111']) {
      const verdict = policy.checkAddress(ip);
      expect(verdict, ip).toMatchObject({ allowed: false, rule: 'deny-list' });
      if (!verdict.allowed) expect(verdict.message).toMatch(/TARGET_DENY_CIDRS/);
    }
    expect(policy.checkAddress('8.8.8.8')).toEqual({ allowed: true });
    expect(policy.checkAddress('10.0.0.1')).toEqual({ allowed: true });
  });

  it('the allow list lifts the refusal for its ranges only (IPv4 ranges cover the IPv4-mapped form)', () => {
    const policy = createTargetPolicy({ allowPrivate: false, allow: ['10.1.0.0/16', 'fd00:1::/32'] });
    expect(policy.checkAddress('10.1.2.3')).toEqual({ allowed: true });
    expect(policy.checkAddress('::ffff:10.1.2.3')).toEqual({ allowed: true });
    expect(policy.checkAddress('fd00:1::5')).toEqual({ allowed: true });
    expect(policy.checkAddress('10.2.0.1')).toMatchObject({ allowed: false, rule: 'private' });
    expect(policy.checkAddress('fd00:2::5')).toMatchObject({ allowed: false, rule: 'unique-local' });
    expect(policy.checkAddress('127.0.0.1')).toMatchObject({ allowed: false, rule: 'loopback' });
    // A tunnel to an allowed IPv4 is another address: 6to4 of 10.1.2.3 is not lifted by 10.1.0.0/16.
    expect(policy.checkAddress('2002:a01:203::1')).toMatchObject({ allowed: false, rule: '6to4-embedded-private' });
  });

  it('deny applies with the default policy too, to public addresses', () => {
    const policy = targetPolicyFromConfig({ allowPrivateTargets: false, targetAllowCidrs: [], targetDenyCidrs: ['1.1.1.1'] });
    expect(policy.checkAddress('1.1.1.1')).toMatchObject({ allowed: false, rule: 'deny-list' });
    expect(policy.checkAddress('1.1.1.2')).toEqual({ allowed: true });
  });

  it('parseCidr validates ranges', () => {
    expect(parseCidr('10.0.0.0/8')).toMatchObject({ family: 4, prefix: 8 });
    expect(parseCidr('FD00::/8')).toMatchObject({ family: 6, prefix: 8, text: 'fd00::/8' });
    expect(parseCidr('1.2.3.4')).toMatchObject({ family: 4, prefix: 32 });
    expect(() => parseCidr('10.0.0.1/8')).toThrow(/host bits/);
    expect(() => parseCidr('10.0.0.0/33')).toThrow(/prefix length/);
    expect(() => parseCidr('fd00::/129')).toThrow(/prefix length/);
    expect(() => parseCidr('example.com/8')).toThrow(/not a CIDR/);
    expect(() => parseCidr('fe80::%eth0/64')).toThrow(/zone/);
    expect(() => createTargetPolicy({ allowPrivate: false, deny: ['nope'] })).toThrow(/not a CIDR/);
  });

  it('addressScope keeps its coarse scopes', () => {
    expect(addressScope('127.0.0.1')).toBe('loopback');
    expect(addressScope('10.0.0.1')).toBe('private');
    expect(addressScope('100.64.0.1')).toBe('private');
    expect(addressScope('169.254.169.254')).toBe('link-local');
    expect(addressScope('224.0.0.1')).toBe('multicast');
    expect(addressScope('0.0.0.0')).toBe('unspecified');
    expect(addressScope('::')).toBe('unspecified');
    expect(addressScope('2002:7f00:1::1')).toBe('loopback');
    expect(addressScope('2001:db8::1')).toBe('reserved');
    expect(addressScope('not an ip')).toBe('reserved');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Properties. NUM_RUNS per property; the report quotes the totals.

export const NUM_RUNS = 2000;

const specialV4 = fc
  .constantFrom(...V4_RANGES, { cidr: '255.255.255.255/32', rule: 'limited-broadcast', start: 0xffffffff, end: 0xffffffff })
  .chain((r) => fc.integer({ min: r.start, max: r.end }));

const publicV4 = fc.integer({ min: 0, max: 0xffffffff }).filter((n) => v4Rule(n) === undefined);

/** Random address in 2000::/3 outside every special block: first word 2003..3ffe. */
const publicV6Words = fc.tuple(fc.integer({ min: 0x2003, max: 0x3ffe }), fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 7, maxLength: 7 }))
  .map(([first, rest]) => [first, ...rest]);

/** Text variants of one IPv6 address: compressed, full with leading zeros, upper case, with zones. */
function v6Variants(words: number[]): string[] {
  const c = compress(words);
  const f = full(words);
  return [c, f, c.toUpperCase(), f.toUpperCase(), `${c}%eth0`, `${f.toUpperCase()}%25`, words.map(hex).join(':'),
    `${words.slice(0, 6).map(hex).join(':')}:${dottedOf(((words[6]! << 16) | words[7]!) >>> 0)}`];
}

describe('properties (fast-check)', () => {
  it('a random IPv4 in a special block is never allowed, in any encoding', () => {
    fc.assert(
      fc.property(specialV4, (n) => {
        for (const f of v4Forms(n)) {
          const verdict = strict.checkAddress(f.text);
          if (verdict.allowed) return false;
          if (verdict.rule !== `${f.prefix}${v4Rule(n)}`) return false;
        }
        return true;
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('a random public IPv4 is allowed as dotted, mapped, NAT64 and 6to4 (compat and Teredo are refused)', () => {
    fc.assert(
      fc.property(publicV4, (n) => v4Forms(n).every((f) => strict.checkAddress(f.text).allowed === !f.alwaysRefused)),
      { numRuns: NUM_RUNS },
    );
  });

  it('a random public IPv6 is allowed in every text form', () => {
    fc.assert(
      fc.property(publicV6Words, (words) => v6Variants(words).every((t) => strict.checkAddress(t).allowed)),
      { numRuns: NUM_RUNS },
    );
  });

  it('a random IPv6 in an always-refused special block is refused in every text form', () => {
    const blocks: [number[], number][] = [
      [[0xfc00], 7], [[0xfe80], 10], [[0xfec0], 10], [[0xff00], 8], [[0x2001, 0x0db8], 32], [[0x3fff], 20], [[0x5f00], 16],
      [[0x0100, 0, 0, 0], 64], [[0x2001, 0x0002, 0], 48], [[0x2001, 0x0010], 28], [[0x2001, 0x0020], 28], [[0x2001, 0], 23],
      [[0x0064, 0xff9b, 0x0001], 48], [[0x4000], 2], [[0x0000], 3],
    ];
    const inBlock = fc.tuple(fc.constantFrom(...blocks), fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }))
      .map(([[net, prefix], random]) => random.map((w, i) => {
        const bits = Math.max(0, Math.min(16, prefix - 16 * i));
        const mask = bits === 0 ? 0 : (0xffff << (16 - bits)) & 0xffff;
        return ((net[i] ?? 0) & mask) | (w & ~mask & 0xffff);
      }));
    fc.assert(
      fc.property(inBlock, (words) => v6Variants(words).every((t) => !strict.checkAddress(t).allowed)),
      { numRuns: NUM_RUNS },
    );
  });

  it('zone, case, leading-zero and dotted-tail variants of any IPv6 classify identically', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }), fc.boolean(), (words, sparse) => {
        const w = sparse ? words.map((x, i) => (i % 3 === 0 ? x : 0)) : words;
        const variants = v6Variants(w);
        const first = JSON.stringify(classifyAddress(variants[0]!));
        const verdict = JSON.stringify(strict.checkAddress(variants[0]!).allowed);
        return variants.every((t) => JSON.stringify(classifyAddress(t)) === first && JSON.stringify(strict.checkAddress(t).allowed) === verdict);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('random IDN, labels and address-like strings through validateTarget never give an accepted literal the policy would misjudge', () => {
    const chars = fc.constantFrom(
      'a', 'b', 'x', 'f', '0', '1', '7', '9', '.', '-', ':', '%', 'ü', '例', '１', '２', '７', '．', '。', 'Ａ', 'ß', '\u200d', 'ﬀ', '⁷', '①',
    );
    const noise = fc.array(chars, { minLength: 1, maxLength: 24 }).map((a) => a.join(''));
    const ipish = fc.oneof(
      specialV4.map(dottedOf),
      specialV4.chain((n) => fc.constantFrom(...v4Forms(n).map((f) => f.text))),
      publicV4.map(dottedOf),
      fc.ipV6(),
      fc.ipV4Extended(),
      fc.domain(),
      fc.webAuthority(),
      noise,
      fc.tuple(noise, fc.domain()).map(([a, b]) => `${a}.${b}`),
      fc.string({ unit: 'grapheme', maxLength: 30 }),
    );
    fc.assert(
      fc.property(ipish, (raw) => {
        const r = validateTarget(raw);
        if (!r.ok) return true;
        if (r.targetType === 'Domain') {
          // A name the system resolver would take for an address must not pass as a domain.
          const looseNumeric = r.target.split('.').every((l) => /^(0x[0-9a-f]*|\d+)$/i.test(l));
          return isIP(r.target) === 0 && !looseNumeric;
        }
        // An accepted literal is an address the policy can classify, and its verdict is the oracle's.
        const parsed = parseAddress(r.target);
        if (!parsed) return false;
        const verdict = strict.checkAddress(r.target);
        if (verdict.allowed === false && verdict.rule === 'invalid-address') return false;
        if (parsed.family === 4) return verdict.allowed === (v4Rule(u32(Array.from(parsed.bytes))) === undefined);
        return true;
      }),
      { numRuns: NUM_RUNS * 5 },
    );
  });
});
