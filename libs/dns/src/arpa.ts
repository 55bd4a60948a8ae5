import { isIPv4, isIPv6 } from 'node:net';

/**
 * The PTR query name of an address: `4.3.2.1.in-addr.arpa` or the 32 reversed nibbles under `ip6.arpa`
 * (RFC 1035 section 3.5, RFC 3596 section 2.5). A zone index is dropped. Undefined for anything else.
 */
export function reverseName(address: string): string | undefined {
  const ip = address.split('%')[0]!.toLowerCase();
  if (isIPv4(ip)) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  if (!isIPv6(ip)) return undefined;
  const words = ipv6Words(ip);
  const nibbles = words.map((w) => w.toString(16).padStart(4, '0')).join('');
  return `${[...nibbles].reverse().join('.')}.ip6.arpa`;
}

function ipv6Words(ip: string): number[] {
  // A trailing dotted quad (::ffff:192.0.2.1) is the last two 16-bit groups.
  const text = ip.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) => `${hex16(a, b)}:${hex16(c, d)}`);
  const [head = '', rest = ''] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = text.includes('::') && rest ? rest.split(':') : [];
  const fill = text.includes('::') ? 8 - left.length - right.length : 0;
  return [...left, ...Array(fill).fill('0'), ...right].map((g) => parseInt(g, 16));
}

const hex16 = (hi: string, lo: string) => ((Number(hi) << 8) | Number(lo)).toString(16);
