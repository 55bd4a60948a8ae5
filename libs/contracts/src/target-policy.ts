import { isStrictIPv4 } from './target.ts';

/**
 * The target policy (SSRF guard): which addresses a lookup may act on. Every address a worker pings,
 * locates, queries or connects to passes `checkAddress` first, after every DNS resolution; the API applies
 * the same policy to literals and to what it resolves cheaply at submission.
 *
 * Special-purpose addresses follow the IANA IPv4 and IPv6 Special-Purpose Address Registries (plus multicast,
 * 240/4 and everything outside 2000::/3). Every text form of an address classifies the same: zone suffixes are
 * dropped, hex is case-insensitive, hextets may carry leading zeros, and IPv4 embedded in IPv6 (IPv4-mapped,
 * IPv4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo 2001::/32) is classified as the IPv4 address.
 *
 * Decisions (where the registries leave room):
 * - A whole registered block is refused, even where a sub-block is marked globally reachable (192.0.0.9/32
 *   inside 192.0.0.0/24, 2001:3::/32 inside 2001::/23): a lookup target never needs them.
 * - IPv4-mapped (::ffff:a.b.c.d) is the IPv4 address itself (the socket connects to it): same verdict, same rule.
 * - NAT64 64:ff9b::/96 is allowed when its embedded IPv4 is public (how a DNS64 network reaches IPv4 hosts),
 *   refused when it is special. 64:ff9b:1::/48 (local-use NAT64, RFC 8215) is refused outright.
 * - 6to4 2002::/16 is allowed when the IPv4 in bits 16-47 is public, refused when it is special.
 * - Teredo 2001::/32 is refused outright (its packets go through relays to a client address we cannot vouch
 *   for); the rule names the embedded server or client IPv4 (the client's is the last 32 bits XOR 0xffffffff)
 *   when one of them is special.
 * - IPv4-compatible (::a.b.c.d, deprecated by RFC 4291) is refused outright, naming the IPv4 when it is special.
 * - IPv4 is accepted only as a strict dotted quad: '0177.0.0.1' or '127.1' mean 127.0.0.1 to inet_aton, so
 *   any other form is refused as not an address ('invalid-address') rather than guessed at.
 */

export type PolicyVerdict = { allowed: true } | { allowed: false; rule: string; message: string };

export interface TargetPolicy {
  checkAddress(ip: string): PolicyVerdict;
}

export interface TargetPolicyOptions {
  /** ALLOW_PRIVATE_TARGETS: lifts every special-purpose refusal (the deny list still applies). */
  allowPrivate: boolean;
  /** TARGET_ALLOW_CIDRS: ranges whose special-purpose refusal is lifted. */
  allow?: readonly string[];
  /** TARGET_DENY_CIDRS: ranges always refused; wins over everything. */
  deny?: readonly string[];
}

export type AddressScope = 'public' | 'loopback' | 'private' | 'link-local' | 'reserved' | 'multicast' | 'unspecified';

/** A special-purpose block an address falls in. */
export interface SpecialPurpose {
  /** Stable short name, e.g. 'loopback', '6to4-embedded-private'. */
  rule: string;
  /** The registered block, e.g. '127.0.0.0/8'. */
  range: string;
  /** What the block is, e.g. 'loopback'. */
  description: string;
  scope: AddressScope;
}

export type AddressClass =
  | { kind: 'invalid' }
  | { kind: 'public'; family: 4 | 6 }
  | ({ kind: 'special'; family: 4 | 6 } & SpecialPurpose);

// ---------------------------------------------------------------------------------------------------------------
// Parsing

export interface ParsedAddress {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

/**
 * Parses an IP address in any text form a socket would accept for it: strict dotted-quad IPv4; IPv6 in any
 * RFC 4291 form (`::` compression, 1-4 hex digits per group, either case, a trailing dotted IPv4), with an
 * optional `%zone` suffix. Anything else is undefined.
 */
export function parseAddress(ip: string): ParsedAddress | undefined {
  if (typeof ip !== 'string' || ip.length === 0 || ip.length > 128) return undefined;
  if (isStrictIPv4(ip)) return { family: 4, bytes: Uint8Array.from(ip.split('.').map(Number)) };
  const pct = ip.indexOf('%');
  if (pct !== -1) {
    if (!/^[0-9A-Za-z_.\-]{1,64}$/.test(ip.slice(pct + 1))) return undefined;
  }
  const bytes = parseIPv6(pct === -1 ? ip : ip.slice(0, pct));
  return bytes ? { family: 6, bytes } : undefined;
}

function parseIPv6(text: string): Uint8Array | undefined {
  let s = text.toLowerCase();
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (lastColon === -1) return undefined;
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    if (!isStrictIPv4(last)) return undefined;
    const o = last.split('.').map(Number);
    tail = [(o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!];
    s = s.slice(0, lastColon + 1) + '0:0'; // placeholder groups, replaced below
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const group = /^[0-9a-f]{1,4}$/;
  const split = (h: string): string[] | undefined => {
    if (h === '') return [];
    const parts = h.split(':');
    return parts.every((p) => group.test(p)) ? parts : undefined;
  };
  const head = split(halves[0]!);
  const rest = halves.length === 2 ? split(halves[1]!) : [];
  if (!head || !rest) return undefined;
  let groups: string[];
  if (halves.length === 2) {
    const fill = 8 - head.length - rest.length;
    if (fill < 1) return undefined; // '::' stands for at least one group
    groups = [...head, ...Array<string>(fill).fill('0'), ...rest];
  } else {
    if (head.length !== 8) return undefined;
    groups = head;
  }
  const words = groups.map((g) => parseInt(g, 16));
  if (tail.length) words.splice(6, 2, ...tail);
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 0xff;
  });
  return bytes;
}

// ---------------------------------------------------------------------------------------------------------------
// CIDR

export interface Cidr {
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
  /** As written in config, normalised to lower case. */
  text: string;
}

/**
 * Parses 'address/prefix' (a bare address is a single-address range). Throws with a message naming the
 * problem; a range with host bits set ('10.0.0.1/8') is refused rather than silently widened or narrowed.
 */
export function parseCidr(text: string): Cidr {
  const t = text.trim();
  const slash = t.indexOf('/');
  const addrText = slash === -1 ? t : t.slice(0, slash);
  if (addrText.includes('%')) throw new Error(`'${text}' is not a CIDR range (no zone allowed)`);
  const addr = parseAddress(addrText);
  if (!addr) throw new Error(`'${text}' is not a CIDR range (expected address/prefix, e.g. 10.0.0.0/8 or fd00::/8)`);
  const max = addr.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const p = t.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) throw new Error(`'${text}' has an invalid prefix length (0-${max} for IPv${addr.family})`);
    prefix = Number(p);
  }
  for (let bit = prefix; bit < max; bit++) {
    if (addr.bytes[bit >> 3]! & (0x80 >> (bit & 7))) {
      throw new Error(`'${text}' has host bits set after /${prefix}; write the network address of the range`);
    }
  }
  return { family: addr.family, bytes: addr.bytes, prefix, text: t.toLowerCase() };
}

function inPrefix(bytes: Uint8Array, net: Uint8Array, prefix: number): boolean {
  const full = prefix >> 3;
  for (let i = 0; i < full; i++) if (bytes[i] !== net[i]) return false;
  const rem = prefix & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return (bytes[full]! & mask) === (net[full]! & mask);
}

export function cidrContains(cidr: Cidr, addr: ParsedAddress): boolean {
  return cidr.family === addr.family && inPrefix(addr.bytes, cidr.bytes, cidr.prefix);
}

// ---------------------------------------------------------------------------------------------------------------
// The registries

interface Block {
  net: Uint8Array;
  prefix: number;
  range: string;
  rule: string;
  description: string;
  scope: AddressScope;
}

function block(range: string, rule: string, description: string, scope: AddressScope): Block {
  const c = parseCidr(range);
  return { net: c.bytes, prefix: c.prefix, range, rule, description, scope };
}

/** IANA IPv4 Special-Purpose Address Registry, plus multicast; most specific first. */
const IPV4_BLOCKS: readonly Block[] = [
  block('0.0.0.0/32', 'unspecified', '"this host on this network" address', 'unspecified'),
  block('255.255.255.255/32', 'limited-broadcast', 'limited broadcast address', 'reserved'),
  block('0.0.0.0/8', 'this-network', '"this network" address', 'reserved'),
  block('10.0.0.0/8', 'private', 'private-use address', 'private'),
  block('100.64.0.0/10', 'cgnat', 'shared (carrier-grade NAT) address', 'private'),
  block('127.0.0.0/8', 'loopback', 'loopback address', 'loopback'),
  block('169.254.0.0/16', 'link-local', 'link-local address', 'link-local'),
  block('172.16.0.0/12', 'private', 'private-use address', 'private'),
  block('192.0.0.0/24', 'ietf-protocol-assignments', 'IETF protocol assignment address', 'reserved'),
  block('192.0.2.0/24', 'documentation', 'documentation address (TEST-NET-1)', 'reserved'),
  block('192.31.196.0/24', 'as112', 'AS112-v4 address', 'reserved'),
  block('192.52.193.0/24', 'amt', 'AMT address', 'reserved'),
  block('192.88.99.0/24', '6to4-relay-anycast', 'deprecated 6to4 relay anycast address', 'reserved'),
  block('192.168.0.0/16', 'private', 'private-use address', 'private'),
  block('192.175.48.0/24', 'as112', 'direct delegation AS112 address', 'reserved'),
  block('198.18.0.0/15', 'benchmarking', 'benchmarking address', 'reserved'),
  block('198.51.100.0/24', 'documentation', 'documentation address (TEST-NET-2)', 'reserved'),
  block('203.0.113.0/24', 'documentation', 'documentation address (TEST-NET-3)', 'reserved'),
  block('224.0.0.0/4', 'multicast', 'multicast address', 'multicast'),
  block('240.0.0.0/4', 'reserved', 'reserved (future use) address', 'reserved'),
];

/**
 * IANA IPv6 Special-Purpose Address Registry, plus multicast and the deprecated site-local block; most
 * specific first. The blocks that embed IPv4 are handled before this table (see classifyIPv6).
 */
const IPV6_BLOCKS: readonly Block[] = [
  block('::/128', 'unspecified', 'unspecified address', 'unspecified'),
  block('::1/128', 'loopback', 'loopback address', 'loopback'),
  block('64:ff9b:1::/48', 'nat64-local-use', 'local-use NAT64 address', 'reserved'),
  block('100::/64', 'discard-only', 'discard-only address', 'reserved'),
  block('2001:2::/48', 'benchmarking', 'benchmarking address', 'reserved'),
  block('2001:4:112::/48', 'as112', 'AS112-v6 address', 'reserved'),
  block('2001:3::/32', 'amt', 'AMT address', 'reserved'),
  block('2001:10::/28', 'orchid', 'deprecated ORCHID address', 'reserved'),
  block('2001:20::/28', 'orchidv2', 'ORCHIDv2 address', 'reserved'),
  block('2001:30::/28', 'drone-remote-id', 'drone remote ID address', 'reserved'),
  block('2001::/23', 'ietf-protocol-assignments', 'IETF protocol assignment address', 'reserved'),
  block('2001:db8::/32', 'documentation', 'documentation address', 'reserved'),
  block('3fff::/20', 'documentation', 'documentation address', 'reserved'),
  block('5f00::/16', 'srv6-sid', 'segment routing (SRv6) SID address', 'reserved'),
  block('fc00::/7', 'unique-local', 'unique-local address', 'private'),
  block('fe80::/10', 'link-local', 'link-local address', 'link-local'),
  block('fec0::/10', 'site-local', 'deprecated site-local address', 'private'),
  block('ff00::/8', 'multicast', 'multicast address', 'multicast'),
];

const NOT_GLOBAL_UNICAST: SpecialPurpose = {
  rule: 'not-global-unicast',
  range: 'outside 2000::/3',
  description: 'address outside global unicast',
  scope: 'reserved',
};

function lookupBlock(blocks: readonly Block[], bytes: Uint8Array): SpecialPurpose | undefined {
  for (const b of blocks) {
    if (inPrefix(bytes, b.net, b.prefix)) return { rule: b.rule, range: b.range, description: b.description, scope: b.scope };
  }
  return undefined;
}

function classifyIPv4(bytes: Uint8Array): SpecialPurpose | undefined {
  return lookupBlock(IPV4_BLOCKS, bytes);
}

const v4 = (bytes: Uint8Array, at: number, xor = 0): Uint8Array =>
  Uint8Array.from(bytes.subarray(at, at + 4), (b) => b ^ xor);
const dotted = (b: Uint8Array) => Array.from(b).join('.');
const zeroes = (bytes: Uint8Array, from: number, to: number) => bytes.subarray(from, to).every((b) => b === 0);

/** A special IPv4 embedded in an IPv6 block: the IPv4's rule, prefixed with how it was embedded. */
function embedded(via: string, viaRange: string, viaText: string, addr: Uint8Array, special: SpecialPurpose): SpecialPurpose {
  return {
    rule: `${via}-embedded-${special.rule}`,
    range: `${viaRange} embedding ${special.range}`,
    description: `${viaText} embedding the ${special.description} ${dotted(addr)}`,
    scope: special.scope,
  };
}

function classifyIPv6(bytes: Uint8Array): SpecialPurpose | undefined {
  // ::ffff:0:0/96 IPv4-mapped: the IPv4 address itself.
  if (zeroes(bytes, 0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) {
    const addr = v4(bytes, 12);
    const special = classifyIPv4(addr);
    return special ? { ...special, range: `${special.range}, as IPv4-mapped ::ffff:0:0/96` } : undefined;
  }
  // ::/96 IPv4-compatible (deprecated), except :: and ::1: refused, naming the IPv4 when it is special.
  if (zeroes(bytes, 0, 12) && !(zeroes(bytes, 12, 15) && bytes[15]! <= 1)) {
    const addr = v4(bytes, 12);
    const special = classifyIPv4(addr);
    if (special) return embedded('ipv4-compatible', '::/96', 'deprecated IPv4-compatible address', addr, special);
    return { rule: 'ipv4-compatible', range: '::/96', description: 'deprecated IPv4-compatible address', scope: 'reserved' };
  }
  // 64:ff9b::/96 NAT64 well-known prefix: as its embedded IPv4.
  if (bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && zeroes(bytes, 4, 12)) {
    const addr = v4(bytes, 12);
    const special = classifyIPv4(addr);
    return special ? embedded('nat64', '64:ff9b::/96', 'NAT64 address', addr, special) : undefined;
  }
  // 2002::/16 6to4: as the IPv4 in bits 16-47.
  if (bytes[0] === 0x20 && bytes[1] === 0x02) {
    const addr = v4(bytes, 2);
    const special = classifyIPv4(addr);
    return special ? embedded('6to4', '2002::/16', '6to4 address', addr, special) : undefined;
  }
  // 2001::/32 Teredo: refused outright, naming a special server (bits 32-63) or client (last 32 bits, inverted).
  if (bytes[0] === 0x20 && bytes[1] === 0x01 && bytes[2] === 0 && bytes[3] === 0) {
    const server = v4(bytes, 4);
    const client = v4(bytes, 12, 0xff);
    const sSpecial = classifyIPv4(server);
    if (sSpecial) return embedded('teredo', '2001::/32', 'Teredo address with server', server, sSpecial);
    const cSpecial = classifyIPv4(client);
    if (cSpecial) return embedded('teredo', '2001::/32', 'Teredo address with client', client, cSpecial);
    return { rule: 'teredo', range: '2001::/32', description: 'Teredo address', scope: 'reserved' };
  }
  const special = lookupBlock(IPV6_BLOCKS, bytes);
  if (special) return special;
  if ((bytes[0]! & 0xe0) !== 0x20) return NOT_GLOBAL_UNICAST;
  return undefined;
}

/** Classifies an address in any text form; see the module comment for the rules. */
export function classifyAddress(ip: string): AddressClass {
  const addr = parseAddress(ip);
  if (!addr) return { kind: 'invalid' };
  const special = addr.family === 4 ? classifyIPv4(addr.bytes) : classifyIPv6(addr.bytes);
  return special ? { kind: 'special', family: addr.family, ...special } : { kind: 'public', family: addr.family };
}

/**
 * The coarse scope of an IP literal (v4 or v6, zone allowed), for messages and data. Anything not 'public'
 * is refused by the default target policy. Something that is not an address is 'reserved'.
 */
export function addressScope(ip: string): AddressScope {
  const c = classifyAddress(ip);
  return c.kind === 'public' ? 'public' : c.kind === 'special' ? c.scope : 'reserved';
}

// ---------------------------------------------------------------------------------------------------------------
// The policy

/** Every IPv4 address an IPv6 address stands for or carries (mapped, compatible, NAT64, 6to4, Teredo). */
function embeddedIPv4s(addr: ParsedAddress): ParsedAddress[] {
  if (addr.family === 4) return [];
  const b = addr.bytes;
  const out: Uint8Array[] = [];
  const mapped = zeroes(b, 0, 10) && b[10] === 0xff && b[11] === 0xff;
  const compatible = zeroes(b, 0, 12) && !(zeroes(b, 12, 15) && b[15]! <= 1);
  if (mapped || compatible) out.push(v4(b, 12));
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b) out.push(v4(b, 12));
  if (b[0] === 0x20 && b[1] === 0x02) out.push(v4(b, 2));
  if (b[0] === 0x20 && b[1] === 0x01 && b[2] === 0 && b[3] === 0) out.push(v4(b, 4), v4(b, 12, 0xff));
  return out.map((bytes) => ({ family: 4 as const, bytes }));
}

/** IPv4-mapped IPv6 is the IPv4 address: allow-list entries for either form apply to both. */
function canonical(addr: ParsedAddress): ParsedAddress[] {
  if (addr.family === 6 && zeroes(addr.bytes, 0, 10) && addr.bytes[10] === 0xff && addr.bytes[11] === 0xff) {
    return [addr, { family: 4, bytes: v4(addr.bytes, 12) }];
  }
  return [addr];
}

const article = (phrase: string) => (/^[aeiou]/i.test(phrase) && !/^uni/i.test(phrase) ? `an ${phrase}` : `a ${phrase}`);

const lift = (ip: string) =>
  `to allow it, add a range containing ${ip.split('%')[0]} to TARGET_ALLOW_CIDRS, or set ALLOW_PRIVATE_TARGETS=true (development and tests only)`;

/**
 * The target policy. Order: the deny list (matched against the address and every IPv4 it embeds) wins over
 * everything; something that is not an IP address is refused; a special-purpose address is refused unless
 * `allowPrivate` is set or an allow-list range contains it; anything else is allowed.
 * Throws at creation if a list entry is not a CIDR range (config validates them at start).
 */
export function createTargetPolicy(opts: TargetPolicyOptions): TargetPolicy {
  const allow = (opts.allow ?? []).map(parseCidr);
  const deny = (opts.deny ?? []).map(parseCidr);
  const allowPrivate = opts.allowPrivate === true;
  return {
    checkAddress(ip: string): PolicyVerdict {
      const addr = parseAddress(ip);
      const shown = typeof ip === 'string' ? ip.slice(0, 100) : String(ip);
      if (!addr) {
        return {
          allowed: false,
          rule: 'invalid-address',
          message: `'${shown}' is not an IP address the target policy can check (rule invalid-address); only strict dotted-quad IPv4 and RFC 4291 IPv6 are used`,
        };
      }
      if (deny.length > 0) {
        const candidates = [addr, ...embeddedIPv4s(addr)];
        for (const cidr of deny) {
          if (candidates.some((a) => cidrContains(cidr, a))) {
            return {
              allowed: false,
              rule: 'deny-list',
              message: `${shown} is refused by the target policy: it is in TARGET_DENY_CIDRS (${cidr.text}; rule deny-list); remove that range from TARGET_DENY_CIDRS to allow it`,
            };
          }
        }
      }
      const special = addr.family === 4 ? classifyIPv4(addr.bytes) : classifyIPv6(addr.bytes);
      if (!special || allowPrivate) return { allowed: true };
      const forms = canonical(addr);
      if (allow.some((cidr) => forms.some((a) => cidrContains(cidr, a)))) return { allowed: true };
      return {
        allowed: false,
        rule: special.rule,
        message: `${shown} is refused by the target policy (rule ${special.rule}): ${article(special.description)} (${special.range}); ${lift(shown)}`,
      };
    },
  };
}

/** The policy a service's config asks for: `targetPolicyFromConfig(config)`. */
export function targetPolicyFromConfig(config: {
  allowPrivateTargets: boolean;
  targetAllowCidrs?: readonly string[];
  targetDenyCidrs?: readonly string[];
}): TargetPolicy {
  return createTargetPolicy({ allowPrivate: config.allowPrivateTargets, allow: config.targetAllowCidrs ?? [], deny: config.targetDenyCidrs ?? [] });
}
