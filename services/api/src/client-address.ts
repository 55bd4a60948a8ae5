import { parseAddress } from '@lookup/contracts';

/**
 * The part of a client address that identifies one client for quotas and connection caps:
 * - IPv4: the address itself;
 * - IPv4-mapped IPv6 (`::ffff:192.0.2.1`): the embedded IPv4, so a dual-stack socket counts like an IPv4 one;
 * - any other IPv6: its /64, written `2001:db8:0:1::/64`. One subscriber usually gets a whole /64 and can rotate
 *   through its 2^64 addresses at will; keying by the full address would give each one a fresh quota.
 * Anything else (no address, a unix socket) is returned as it is.
 */
export function clientAddressKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const parsed = parseAddress(address); // the target policy's parser: every IPv6 text form, zone ids dropped
  if (!parsed) return address;
  const b = parsed.bytes;
  if (parsed.family === 4) return b.join('.');
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups = [0, 1, 2, 3].map((i) => (b[2 * i]! << 8) | b[2 * i + 1]!);
  return `${compressIPv6([...groups, 0, 0, 0, 0])}/64`;
}

/** Canonical text (RFC 5952): lower case, the longest run of two or more zero groups as `::`. */
function compressIPv6(groups: number[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}
