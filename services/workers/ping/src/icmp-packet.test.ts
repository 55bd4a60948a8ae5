import { describe, expect, it } from 'vitest';
import { buildEchoRequest, internetChecksum, parseIcmpMessage } from './icmp-packet.ts';

const cookie = Buffer.from('0102030405060708', 'hex');

/** An IPv4 header (20 bytes, no options) as a raw socket or an ICMP error quotes it. */
function ipv4Header(protocol = 1): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h[8] = 64;
  h[9] = protocol;
  return h;
}

/** An ICMP error of `type`/`code` quoting `original` after its IP header (IPv4) or IPv6 header. */
function icmpError(family: 4 | 6, type: number, code: number, original: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = type;
  header[1] = code;
  return Buffer.concat([header, family === 4 ? ipv4Header() : Buffer.alloc(40), original]);
}

describe('internetChecksum', () => {
  it('matches the worked example of RFC 1071 (sum 0xddf2, checksum 0x220d)', () => {
    expect(internetChecksum(Buffer.from('0001f203f4f5f6f7', 'hex'))).toBe(0x220d);
  });

  it('pads an odd length with a zero byte', () => {
    expect(internetChecksum(Buffer.from('0001f203f4f5f6', 'hex'))).toBe(internetChecksum(Buffer.from('0001f203f4f5f600', 'hex')));
  });

  it('folds carries more than once', () => {
    expect(internetChecksum(Buffer.alloc(4, 0xff))).toBe(0);
    expect(internetChecksum(Buffer.from('ffff0001', 'hex'))).toBe(0xfffe);
  });
});

describe('buildEchoRequest', () => {
  it('builds an ICMP echo request whose checksum verifies', () => {
    const packet = buildEchoRequest(4, 0x1234, 0xbeef, cookie);
    expect(packet.subarray(0, 2)).toEqual(Buffer.from([8, 0]));
    expect(packet.readUInt16BE(4)).toBe(0x1234);
    expect(packet.readUInt16BE(6)).toBe(0xbeef);
    expect(packet.subarray(8)).toEqual(cookie);
    expect(packet.readUInt16BE(2)).not.toBe(0);
    expect(internetChecksum(packet)).toBe(0); // a correct checksum makes the whole message sum to 0xffff
  });

  it('builds an ICMPv6 echo request (type 128) and leaves the checksum to the kernel', () => {
    const packet = buildEchoRequest(6, 0x1234, 7, cookie);
    expect(packet[0]).toBe(128);
    expect(packet.readUInt16BE(2)).toBe(0);
    expect(packet.readUInt16BE(6)).toBe(7);
  });

  it('keeps identifier and sequence to 16 bits', () => {
    const packet = buildEchoRequest(4, 0x1_0005, 0x1_0003, cookie);
    expect(packet.readUInt16BE(4)).toBe(5);
    expect(packet.readUInt16BE(6)).toBe(3);
  });
});

describe('parseIcmpMessage', () => {
  it('reads an echo reply (ICMP type 0, ICMPv6 type 129)', () => {
    const v4 = buildEchoRequest(4, 0x1234, 42, cookie);
    v4[0] = 0;
    expect(parseIcmpMessage(4, v4)).toEqual({ kind: 'echo-reply', identifier: 0x1234, sequence: 42, data: cookie });
    const v6 = buildEchoRequest(6, 0x4321, 43, cookie);
    v6[0] = 129;
    expect(parseIcmpMessage(6, v6)).toEqual({ kind: 'echo-reply', identifier: 0x4321, sequence: 43, data: cookie });
  });

  it('ignores echo requests (a raw socket on loopback sees our own) and the other family\'s types', () => {
    expect(parseIcmpMessage(4, buildEchoRequest(4, 1, 1, cookie))).toBeUndefined();
    expect(parseIcmpMessage(6, buildEchoRequest(6, 1, 1, cookie))).toBeUndefined();
    const v6reply = buildEchoRequest(6, 1, 1, cookie);
    v6reply[0] = 129;
    expect(parseIcmpMessage(4, v6reply)).toBeUndefined();
  });

  it('ignores truncated messages and unrelated types', () => {
    expect(parseIcmpMessage(4, Buffer.from([0, 0, 0, 0, 0, 1]))).toBeUndefined();
    const redirect = buildEchoRequest(4, 1, 1, cookie);
    redirect[0] = 5;
    expect(parseIcmpMessage(4, redirect)).toBeUndefined();
    expect(parseIcmpMessage(4, icmpError(4, 3, 1, Buffer.from([8, 0, 0])))).toBeUndefined();
  });

  it('reads a destination-unreachable error quoting one of our echo requests (IPv4)', () => {
    const error = icmpError(4, 3, 1, buildEchoRequest(4, 0x1234, 9, cookie));
    expect(parseIcmpMessage(4, error)).toEqual({ kind: 'error', identifier: 0x1234, sequence: 9, message: 'Destination Host Unreachable' });
  });

  it('reads ICMPv6 errors and time exceeded', () => {
    expect(parseIcmpMessage(6, icmpError(6, 1, 3, buildEchoRequest(6, 5, 6, cookie)))).toEqual({
      kind: 'error',
      identifier: 5,
      sequence: 6,
      message: 'Destination unreachable: Address unreachable',
    });
    expect(parseIcmpMessage(4, icmpError(4, 11, 0, buildEchoRequest(4, 5, 6, cookie)))).toMatchObject({ message: 'Time to live exceeded' });
  });

  it('ignores an error about something other than an echo request (e.g. a UDP datagram)', () => {
    const udp = Buffer.from('d43100350008abcd', 'hex');
    expect(parseIcmpMessage(4, icmpError(4, 3, 3, udp))).toBeUndefined();
  });
});
