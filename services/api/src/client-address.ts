import { isIPv4, isIPv6 } from 'node:net';
import { normalizeIP } from '@fastify/rate-limit';

/** The IPv6 prefix that identifies one client: one subscriber usually gets a whole /64. */
export const IPV6_CLIENT_PREFIX = 64;

/**
 * The part of a client address that identifies one client for quotas and connection caps:
 * - IPv4: the address itself;
 * - IPv4-mapped IPv6 (`::ffff:192.0.2.1`): the embedded IPv4, so a dual-stack socket counts like an IPv4 one;
 * - any other IPv6: its /64, written `2001:db8:0:1::/64`. One subscriber usually gets a whole /64 and can rotate
 *   through its 2^64 addresses at will; keying by the full address would give each one a fresh quota.
 * Anything else (no address, a unix socket) is returned as it is.
 *
 * The IPv6 masking is @fastify/rate-limit's own (`normalizeIP`, what its `ipv6Subnet` option drives in its
 * default key generator); our key generator keys authenticated clients by their API key, so it calls this
 * instead, and the per-client connection cap keys connections the same way.
 */
export function clientAddressKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const bare = address.replace(/%.*$/, ''); // zone id (fe80::1%eth0)
  if (isIPv4(bare)) return bare;
  if (!isIPv6(bare)) return address;
  const key = normalizeIP(bare, IPV6_CLIENT_PREFIX);
  return isIPv4(key) ? key : `${key}/${IPV6_CLIENT_PREFIX}`;
}
