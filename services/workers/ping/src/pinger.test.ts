import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildEchoRequest, type IpFamily } from './icmp-packet.ts';
import { IcmpPinger, PingerErrors, type IcmpMessageHandler, type IcmpSocket, type OpenIcmpSocket } from './pinger.ts';

/**
 * A fake ICMP socket: records what is sent, and lets the test deliver datagrams as the kernel would. No I/O.
 * `answer` decides what the "network" sends back for each request (nothing by default).
 */
class FakeSocket implements IcmpSocket {
  readonly sent: Array<{ packet: Buffer; address: string }> = [];
  closed = 0;
  sendResult: 0 | string = 0;
  answer?: (packet: Buffer, address: string) => void;

  constructor(
    readonly family: IpFamily,
    readonly deliver: IcmpMessageHandler,
    readonly kind: 'dgram' | 'raw' = 'raw',
    readonly ident = -1,
  ) {}

  send(packet: Buffer, address: string): 0 | string {
    this.sent.push({ packet: Buffer.from(packet), address });
    if (this.sendResult === 0) this.answer?.(packet, address);
    return this.sendResult;
  }

  close(): void {
    this.closed += 1;
  }

  /** The echo reply to `request` (same identifier, sequence and data), as the target would send it. */
  static replyTo(request: Buffer, family: IpFamily): Buffer {
    const reply = Buffer.from(request);
    reply[0] = family === 4 ? 0 : 129;
    return reply;
  }
}

function harness(options: { kind?: 'dgram' | 'raw'; ident?: number; identifier?: number } = {}) {
  const sockets = new Map<IpFamily, FakeSocket>();
  const open: OpenIcmpSocket = (family, deliver) => {
    const socket = new FakeSocket(family, deliver, options.kind, options.ident);
    sockets.set(family, socket);
    return socket;
  };
  let clock = 1000;
  const pinger = new IcmpPinger(open, { identifier: options.identifier ?? 0x4242, now: () => clock });
  return {
    pinger,
    sockets,
    socket: (family: IpFamily = 4) => sockets.get(family)!,
    advanceClock: (ms: number) => (clock += ms),
  };
}

const never = new AbortController().signal;
const once = { count: 1, timeoutMs: 1000, intervalMs: 200, signal: never };

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('IcmpPinger', () => {
  it('sends an echo request and reports the reply with its ttl and round-trip time', async () => {
    const h = harness();
    h.pinger.open(4);
    h.socket().answer = (packet) => {
      h.advanceClock(0.5);
      h.socket().deliver(FakeSocket.replyTo(packet, 4), '127.0.0.1', 64, 0);
    };
    const result = await h.pinger.ping('127.0.0.1', 4, once);
    expect(result).toEqual({
      transmitted: 1,
      received: 1,
      packetLossPercent: 0,
      probes: [{ seq: 1, ttl: 64, timeMs: 0.5 }],
      rtt: { minMs: 0.5, avgMs: 0.5, maxMs: 0.5, mdevMs: 0 },
    });
    const { packet, address } = h.socket().sent[0]!;
    expect(address).toBe('127.0.0.1');
    expect(packet[0]).toBe(8);
    expect(packet.readUInt16BE(4)).toBe(0x4242);
  });

  it('takes the time a reply waited in the socket (ageMs) out of its round-trip time; no ttl when unknown', async () => {
    const h = harness();
    h.pinger.open(6);
    h.socket(6).answer = (packet) => {
      h.advanceClock(5);
      h.socket(6).deliver(FakeSocket.replyTo(packet, 6), '::1', -1, 4.25);
    };
    const result = await h.pinger.ping('::1', 6, once);
    expect(result.probes).toEqual([{ seq: 1, timeMs: 0.75 }]);
    expect(h.socket(6).sent[0]!.packet[0]).toBe(128);
  });

  it('sends PING_COUNT requests at the interval and numbers the probes 1..count', async () => {
    const h = harness();
    h.pinger.open(4);
    h.socket().answer = (packet) => h.socket().deliver(FakeSocket.replyTo(packet, 4), '127.0.0.1', 64, 0);
    const pending = h.pinger.ping('127.0.0.1', 4, { ...once, count: 3 });
    expect(h.socket().sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(200);
    expect(h.socket().sent).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(200);
    const result = await pending;
    expect(result).toMatchObject({ transmitted: 3, received: 3, packetLossPercent: 0 });
    expect(result.probes.map((p) => p.seq)).toEqual([1, 2, 3]);
    // Wire sequence numbers are consecutive (mod 2^16), not 1..3: they are shared by every lookup of the worker.
    const wire = h.socket().sent.map((s) => s.packet.readUInt16BE(6));
    expect(wire[1]).toBe((wire[0]! + 1) & 0xffff);
  });

  it('ignores replies with a foreign identifier, our own echo requests, and foreign data', async () => {
    const h = harness();
    h.pinger.open(4);
    const pending = h.pinger.ping('127.0.0.1', 4, once);
    const request = h.socket().sent[0]!.packet;
    const seq = request.readUInt16BE(6);
    h.socket().deliver(request, '127.0.0.1', 64, 0); // a raw socket on loopback sees our own request
    h.socket().deliver(buildEchoRequest(4, 0x4243, seq, request.subarray(8)).fill(0, 0, 1), '127.0.0.1', 64, 0); // another pinger
    const otherCookie = FakeSocket.replyTo(request, 4);
    otherCookie[8]! ^= 0xff; // same identifier and sequence, another sender's data
    h.socket().deliver(otherCookie, '127.0.0.1', 64, 0);
    h.socket().deliver(Buffer.from([0, 0]), '127.0.0.1', 64, 0); // truncated
    await vi.advanceTimersByTimeAsync(10);
    h.socket().deliver(FakeSocket.replyTo(request, 4), '127.0.0.1', 63, 0);
    await expect(pending).resolves.toMatchObject({ received: 1, probes: [{ seq: 1, ttl: 63 }] });
  });

  it('uses the identifier the kernel gave a datagram socket', async () => {
    const h = harness({ kind: 'dgram', ident: 777 });
    expect(h.pinger.open(4)).toBe('dgram');
    h.socket().answer = (packet) => h.socket().deliver(FakeSocket.replyTo(packet, 4), '127.0.0.1', 64, 0);
    await expect(h.pinger.ping('127.0.0.1', 4, once)).resolves.toMatchObject({ received: 1 });
    expect(h.socket().sent[0]!.packet.readUInt16BE(4)).toBe(777);
  });

  it('routes replies of concurrent lookups to their own probes', async () => {
    const h = harness();
    h.pinger.open(4);
    const a = h.pinger.ping('127.0.0.1', 4, once);
    const b = h.pinger.ping('127.0.0.2', 4, once);
    const [ra, rb] = h.socket().sent;
    h.advanceClock(2);
    h.socket().deliver(FakeSocket.replyTo(rb!.packet, 4), '127.0.0.2', 62, 0);
    h.advanceClock(1);
    h.socket().deliver(FakeSocket.replyTo(ra!.packet, 4), '127.0.0.1', 61, 0);
    await expect(a).resolves.toMatchObject({ probes: [{ seq: 1, ttl: 61, timeMs: 3 }] });
    await expect(b).resolves.toMatchObject({ probes: [{ seq: 1, ttl: 62, timeMs: 2 }] });
  });

  it('counts a probe without a reply within the timeout as lost, and ignores its late reply', async () => {
    const h = harness();
    h.pinger.open(4);
    const pending = h.pinger.ping('127.0.0.1', 4, { ...once, count: 2 });
    await vi.advanceTimersByTimeAsync(200);
    const [first, second] = h.socket().sent;
    h.socket().deliver(FakeSocket.replyTo(second!.packet, 4), '127.0.0.1', 64, 0);
    await vi.advanceTimersByTimeAsync(1000);
    const result = await pending;
    expect(result).toMatchObject({ transmitted: 2, received: 1, packetLossPercent: 50, probes: [{ seq: 2 }] });
    h.socket().deliver(FakeSocket.replyTo(first!.packet, 4), '127.0.0.1', 64, 0); // too late: nothing waits for it
  });

  it('reports total loss with no rtt', async () => {
    const h = harness();
    h.pinger.open(4);
    const pending = h.pinger.ping('127.0.0.1', 4, once);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await pending).toEqual({ transmitted: 1, received: 0, packetLossPercent: 100, probes: [] });
  });

  it('counts duplicate replies', async () => {
    const h = harness();
    h.pinger.open(4);
    const pending = h.pinger.ping('127.0.0.1', 4, { ...once, count: 2 });
    const reply = FakeSocket.replyTo(h.socket().sent[0]!.packet, 4);
    h.socket().deliver(reply, '127.0.0.1', 64, 0);
    h.socket().deliver(reply, '127.0.0.1', 64, 0);
    await vi.advanceTimersByTimeAsync(1200);
    expect(await pending).toMatchObject({ transmitted: 2, received: 1, duplicates: 1 });
  });

  it('records destination-unreachable errors (raw sockets) and counts the probe as lost at once', async () => {
    const h = harness();
    h.pinger.open(4);
    const pending = h.pinger.ping('127.0.0.1', 4, once);
    const request = h.socket().sent[0]!.packet;
    const quotedIpHeader = Buffer.alloc(20);
    quotedIpHeader[0] = 0x45; // IPv4, 20-byte header
    const error = Buffer.concat([Buffer.from([3, 1, 0, 0, 0, 0, 0, 0]), quotedIpHeader, request.subarray(0, 8)]);
    h.socket().deliver(error, '127.0.0.1', 64, 0);
    expect(await pending).toMatchObject({ transmitted: 1, received: 0, packetLossPercent: 100, errors: ['Destination Host Unreachable'] });
  });

  it('records a failed send as a lost probe with the errno', async () => {
    const h = harness();
    h.pinger.open(4);
    h.socket().sendResult = 'ENETUNREACH';
    expect(await h.pinger.ping('127.0.0.1', 4, once)).toMatchObject({ transmitted: 1, received: 0, errors: ['sendto: ENETUNREACH'] });
  });

  it('rejects with NOT_PERMITTED when the system refuses to send ICMP echo, and cancels the later probes', async () => {
    const h = harness();
    h.pinger.open(4);
    h.socket().sendResult = 'EPERM';
    await expect(h.pinger.ping('127.0.0.1', 4, { ...once, count: 3 })).rejects.toMatchObject({ code: PingerErrors.NOT_PERMITTED });
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.socket().sent).toHaveLength(1);
  });

  it('stops on abort: rejects with the reason, sends nothing more, and ignores a later reply', async () => {
    const h = harness();
    h.pinger.open(4);
    const controller = new AbortController();
    const pending = h.pinger.ping('127.0.0.1', 4, { ...once, count: 5, signal: controller.signal });
    await vi.advanceTimersByTimeAsync(200);
    const reason = new Error('attempt timed out');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await vi.advanceTimersByTimeAsync(2000);
    expect(h.socket().sent).toHaveLength(2);
    h.socket().deliver(FakeSocket.replyTo(h.socket().sent[1]!.packet, 4), '127.0.0.1', 64, 0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const h = harness();
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    await expect(h.pinger.ping('127.0.0.1', 4, { ...once, signal: controller.signal })).rejects.toThrow('gone');
  });

  it('wraps sequence numbers at 16 bits and skips ones still pending', async () => {
    const h = harness();
    h.pinger.open(4);
    const sent = () => h.socket().sent.map((s) => s.packet.readUInt16BE(6));
    // Find where the counter is, then hold one request pending and go round 2^16 sequence numbers.
    const held = h.pinger.ping('127.0.0.1', 4, { ...once, timeoutMs: 60_000 });
    const heldSeq = sent()[0]!;
    h.socket().answer = (packet) => h.socket().deliver(FakeSocket.replyTo(packet, 4), '127.0.0.1', 64, 0);
    for (let i = 0; i < 0x10000; i += 1) await h.pinger.ping('127.0.0.1', 4, once);
    const wire = sent();
    expect(wire.slice(1).includes(heldSeq)).toBe(false);
    expect(Math.max(...wire)).toBeLessThanOrEqual(0xffff);
    expect(new Set(wire).size).toBe(0x10000);
    h.socket().deliver(FakeSocket.replyTo(h.socket().sent[0]!.packet, 4), '127.0.0.1', 64, 0);
    await expect(held).resolves.toMatchObject({ received: 1 });
  });

  it('opens one socket per family, lazily, and reports an unavailable family', async () => {
    const opened: IpFamily[] = [];
    const pinger = new IcmpPinger((family, deliver) => {
      opened.push(family);
      if (family === 6) throw Object.assign(new Error('Address family not supported by protocol'), { code: 'EAFNOSUPPORT' });
      return new FakeSocket(family, deliver);
    });
    expect(opened).toEqual([]);
    const a = pinger.ping('127.0.0.1', 4, once);
    const b = pinger.ping('127.0.0.2', 4, once);
    expect(opened).toEqual([4]);
    await expect(pinger.ping('::1', 6, once)).rejects.toMatchObject({ code: PingerErrors.SOCKET_UNAVAILABLE });
    pinger.close();
    await expect(a).rejects.toMatchObject({ code: PingerErrors.CLOSED });
    await expect(b).rejects.toMatchObject({ code: PingerErrors.CLOSED });
  });

  it('close() closes each socket once, rejects waiting lookups, refuses new ones, and is safe twice', async () => {
    const h = harness();
    h.pinger.open(4);
    h.pinger.open(6);
    const pending = h.pinger.ping('127.0.0.1', 4, { ...once, count: 3 });
    h.pinger.close();
    h.pinger.close();
    await expect(pending).rejects.toMatchObject({ code: PingerErrors.CLOSED });
    expect(h.socket(4).closed).toBe(1);
    expect(h.socket(6).closed).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
    await expect(h.pinger.ping('127.0.0.1', 4, once)).rejects.toMatchObject({ code: PingerErrors.CLOSED });
  });
});
