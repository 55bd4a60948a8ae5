import { isIP } from 'node:net';

/**
 * Writes the address's bytes (network order) into `out` and returns their count: 4 for IPv4, 16 for IPv6
 * (IPv4-mapped and other embedded dotted forms included; a zone index is ignored). Throws for anything that
 * is not an address.
 */
export function addressBytes(ip: string, out: Uint8Array): 4 | 16 {
  const family = isIP(ip);
  if (family === 4) {
    writeV4(ip, out, 0);
    return 4;
  }
  if (family !== 6) throw new RangeError(`not an IP address: ${JSON.stringify(ip)}`);

  let s = ip;
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  out.fill(0, 0, 16);
  let end = 16; // bytes available to the groups
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) !== -1) {
    writeV4(s.slice(lastColon + 1), out, 12);
    end = 12;
    // Keep the colon: "::1.2.3.4" leaves "::", "a::b:1.2.3.4" leaves "a::b:" (the empty last group is dropped).
    s = s.slice(0, lastColon + 1);
    if (s.endsWith(':') && !s.endsWith('::')) s = s.slice(0, -1);
  }
  const gap = s.indexOf('::');
  const head = gap === -1 ? s : s.slice(0, gap);
  const tail = gap === -1 ? '' : s.slice(gap + 2);
  if (head) writeGroups(head.split(':'), out, 0);
  if (tail) {
    const groups = tail.split(':');
    writeGroups(groups, out, end - 2 * groups.length);
  }
  return 16;
}

function writeV4(s: string, out: Uint8Array, at: number): void {
  let octet = 0;
  let i = at;
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c === 46 /* . */) {
      out[i++] = octet;
      octet = 0;
    } else {
      octet = octet * 10 + (c - 48);
    }
  }
  out[i] = octet;
}

function writeGroups(groups: string[], out: Uint8Array, at: number): void {
  for (let k = 0; k < groups.length; k++) {
    const v = parseInt(groups[k]!, 16);
    out[at + 2 * k] = v >> 8;
    out[at + 2 * k + 1] = v & 0xff;
  }
}
