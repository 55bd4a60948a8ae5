/**
 * ICMP and ICMPv6 echo messages (RFC 792, RFC 4443): building echo requests and reading what an ICMP socket
 * delivers. Pure functions on buffers; the socket itself is the native addon (native/icmp.c), which hands over
 * each datagram starting at the ICMP header (for IPv4 raw sockets it strips the IP header).
 */

export type IpFamily = 4 | 6;

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP6_DEST_UNREACH = 1;
export const ICMP6_TIME_EXCEEDED = 3;
export const ICMP6_ECHO_REQUEST = 128;
export const ICMP6_ECHO_REPLY = 129;

const HEADER = 8; // type, code, checksum, identifier, sequence
const IPV6_HEADER = 40;

/** The Internet checksum (RFC 1071): one's complement of the one's complement sum of 16-bit words. */
export function internetChecksum(data: Uint8Array): number {
  let sum = 0;
  const even = data.length & ~1;
  for (let i = 0; i < even; i += 2) sum += (data[i]! << 8) | data[i + 1]!;
  if (even < data.length) sum += data[even]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * An echo request: type 8 (ICMPv6: 128), code 0, identifier, sequence number, then `data`. The IPv4 checksum is
 * filled in; the ICMPv6 checksum covers a pseudo-header with addresses only the kernel knows, and Linux computes
 * it for every ICMPv6 socket, so it is left 0. (On an IPv4 datagram socket the kernel also rewrites the
 * identifier to the socket's and recomputes the checksum.)
 */
export function buildEchoRequest(family: IpFamily, identifier: number, sequence: number, data: Uint8Array): Buffer {
  const packet = Buffer.alloc(HEADER + data.length);
  packet[0] = family === 4 ? ICMP_ECHO_REQUEST : ICMP6_ECHO_REQUEST;
  packet[1] = 0;
  packet.writeUInt16BE(identifier & 0xffff, 4);
  packet.writeUInt16BE(sequence & 0xffff, 6);
  packet.set(data, HEADER);
  if (family === 4) packet.writeUInt16BE(internetChecksum(packet), 2);
  return packet;
}

export type IcmpMessage =
  /** An answer to an echo request. */
  | { kind: 'echo-reply'; identifier: number; sequence: number; data: Buffer }
  /** An ICMP error about one of our echo requests (its identifier and sequence are quoted in the error). */
  | { kind: 'error'; identifier: number; sequence: number; message: string };

/**
 * Reads one ICMP message (starting at the ICMP header). Returns undefined for anything that is neither an echo
 * reply nor an error quoting an echo request: echo requests (a raw socket on loopback sees our own), other
 * types, and truncated messages.
 */
export function parseIcmpMessage(family: IpFamily, message: Buffer): IcmpMessage | undefined {
  if (message.length < HEADER) return undefined;
  const type = message[0]!;
  const code = message[1]!;
  if (type === (family === 4 ? ICMP_ECHO_REPLY : ICMP6_ECHO_REPLY)) {
    if (code !== 0) return undefined;
    return { kind: 'echo-reply', identifier: message.readUInt16BE(4), sequence: message.readUInt16BE(6), data: message.subarray(HEADER) };
  }
  const text = family === 4 ? icmpErrorText(type, code) : icmp6ErrorText(type, code);
  if (text === undefined) return undefined;
  // The error quotes the start of the datagram that caused it: its IP header, then at least 8 bytes of it.
  let quoted: number;
  if (family === 4) {
    const ip = HEADER;
    if (message.length < ip + 20 || message[ip]! >> 4 !== 4) return undefined;
    quoted = ip + (message[ip]! & 0x0f) * 4;
  } else {
    quoted = HEADER + IPV6_HEADER; // the ICMPv6 echo request follows the fixed header (no extension headers)
  }
  if (message.length < quoted + HEADER) return undefined;
  if (message[quoted] !== (family === 4 ? ICMP_ECHO_REQUEST : ICMP6_ECHO_REQUEST)) return undefined;
  return { kind: 'error', identifier: message.readUInt16BE(quoted + 4), sequence: message.readUInt16BE(quoted + 6), message: text };
}

// The wording of iputils ping, so results read the same whichever engine sent the probe.
const UNREACH4: Record<number, string> = {
  0: 'Destination Net Unreachable',
  1: 'Destination Host Unreachable',
  2: 'Destination Protocol Unreachable',
  3: 'Destination Port Unreachable',
  4: 'Frag needed',
  5: 'Source Route Failed',
  6: 'Destination Net Unknown',
  7: 'Destination Host Unknown',
  9: 'Destination Net Prohibited',
  10: 'Destination Host Prohibited',
  13: 'Communication prohibited by filter',
};
const UNREACH6: Record<number, string> = {
  0: 'Destination unreachable: No route',
  1: 'Destination unreachable: Administratively prohibited',
  2: 'Destination unreachable: Beyond scope',
  3: 'Destination unreachable: Address unreachable',
  4: 'Destination unreachable: Port unreachable',
  5: 'Destination unreachable: Source address failed ingress/egress policy',
  6: 'Destination unreachable: Reject route to destination',
};

function icmpErrorText(type: number, code: number): string | undefined {
  if (type === ICMP_DEST_UNREACH) return UNREACH4[code] ?? `Destination unreachable, code ${code}`;
  if (type === ICMP_TIME_EXCEEDED) return code === 0 ? 'Time to live exceeded' : 'Frag reassembly time exceeded';
  return undefined;
}

function icmp6ErrorText(type: number, code: number): string | undefined {
  if (type === ICMP6_DEST_UNREACH) return UNREACH6[code] ?? `Destination unreachable: Unknown code ${code}`;
  if (type === ICMP6_TIME_EXCEEDED) return code === 0 ? 'Time exceeded: Hop limit' : 'Time exceeded: Defragmentation failure';
  return undefined;
}
