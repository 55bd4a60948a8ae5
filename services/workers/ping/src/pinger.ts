import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { buildEchoRequest, parseIcmpMessage, type IpFamily } from './icmp-packet.ts';
import { lossPercent, rttWithMdev, type PingProbe, type PingSummary } from './parse.ts';

/** Called for every datagram an ICMP socket receives: the ICMP message, its source, TTL (-1 unknown), and how
 *  long it waited in the socket before it was read (ms; 0 unknown). */
export type IcmpMessageHandler = (message: Buffer, source: string, ttl: number, ageMs: number) => void;

/** One ICMP socket of one address family (the native addon's, or a fake in tests). */
export interface IcmpSocket {
  /** 'dgram': an unprivileged ping socket (the kernel sets the identifier and delivers only our replies);
   *  'raw': a raw socket (sees every ICMP message of the host; we filter). */
  readonly kind: 'dgram' | 'raw';
  /** The identifier the kernel puts in every echo request of a datagram socket; -1 for raw sockets. */
  readonly ident: number;
  /** Sends one datagram; 0, or the errno name ('EHOSTUNREACH', ...). */
  send(packet: Buffer, address: string): 0 | string;
  /** Stops receiving and closes the socket; safe to call twice. */
  close(): void;
}

/** Opens an ICMP socket; throws (with the reason) when it cannot. */
export type OpenIcmpSocket = (family: IpFamily, onMessage: IcmpMessageHandler) => IcmpSocket;

export interface PingRunOptions {
  count: number;
  /** How long to wait for each reply, from its request. */
  timeoutMs: number;
  /** Time between requests (none before the first). */
  intervalMs: number;
  signal: AbortSignal;
}

export interface IcmpPingerOptions {
  /** Echo identifier for raw sockets (datagram sockets get theirs from the kernel); random by default. */
  identifier?: number;
  /** Monotonic clock in ms (performance.now by default). */
  now?: () => number;
}

/** Codes of the errors ping() rejects with (besides the abort signal's reason). */
export const PingerErrors = {
  /** No socket for the address family could be opened. */
  SOCKET_UNAVAILABLE: 'ICMP_SOCKET_UNAVAILABLE',
  /** The system refused to send ICMP echo (EPERM / EACCES: a firewall rule, no permission). */
  NOT_PERMITTED: 'ICMP_NOT_PERMITTED',
  /** close() was called. */
  CLOSED: 'ICMP_PINGER_CLOSED',
} as const;

export class PingerError extends Error {
  constructor(
    readonly code: (typeof PingerErrors)[keyof typeof PingerErrors],
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PingerError';
  }
}

interface Probe {
  run: Run;
  /** 1-based index within its lookup (reported as `seq`, as ping reports icmp_seq). */
  index: number;
  sentAt: number;
  timer?: ReturnType<typeof setTimeout>;
  settled: boolean;
}

interface Run {
  family: IpFamily;
  transmitted: number;
  replies: PingProbe[];
  errors: Set<string>;
  duplicates: number;
  /** Wire sequence numbers this run holds in the family's pending map (until the run ends). */
  sequences: number[];
  outstanding: number;
  timers: Set<ReturnType<typeof setTimeout>>;
  finish(): void;
  fail(err: unknown): void;
}

interface Channel {
  socket: IcmpSocket;
  identifier: number;
  nextSequence: number;
  pending: Map<number, Probe>;
}

const COOKIE_BYTES = 8;

/**
 * ICMP echo from inside the process, for every lookup of a worker (as fping does): one socket per address
 * family, opened on first use and shared by all lookups; 16-bit sequence numbers allocated across lookups with a
 * pending map that routes each reply to its probe. Every request carries this pinger's random 8-byte cookie, so
 * on a raw socket (which sees all ICMP of the host) only replies to our own requests count.
 */
export class IcmpPinger {
  private readonly channels = new Map<IpFamily, Channel>();
  private readonly runs = new Set<Run>();
  private readonly cookie = randomBytes(COOKIE_BYTES);
  private readonly identifier: number;
  private readonly now: () => number;
  private closed = false;

  constructor(
    private readonly openSocket: OpenIcmpSocket,
    options: IcmpPingerOptions = {},
  ) {
    this.identifier = (options.identifier ?? randomBytes(2).readUInt16BE(0)) & 0xffff;
    this.now = options.now ?? (() => performance.now());
  }

  /** The socket kind for a family, opening the socket if need be; throws PingerError SOCKET_UNAVAILABLE. */
  open(family: IpFamily): IcmpSocket['kind'] {
    return this.channel(family).socket.kind;
  }

  /** Sends `count` echo requests to `address` and resolves with what came back (never rejects for loss). */
  ping(address: string, family: IpFamily, options: PingRunOptions): Promise<PingSummary> {
    return new Promise<PingSummary>((resolve, reject) => {
      const { signal } = options;
      if (signal.aborted) return reject(signal.reason);
      let channel: Channel;
      try {
        channel = this.channel(family);
      } catch (err) {
        return reject(err);
      }
      const onAbort = () => run.fail(signal.reason);
      const end = () => {
        signal.removeEventListener('abort', onAbort);
        for (const t of run.timers) clearTimeout(t);
        run.timers.clear();
        for (const seq of run.sequences) {
          const probe = channel.pending.get(seq);
          if (probe?.run === run) channel.pending.delete(seq);
        }
        this.runs.delete(run);
      };
      const run: Run = {
        family,
        transmitted: 0,
        replies: [],
        errors: new Set(),
        duplicates: 0,
        sequences: [],
        outstanding: options.count,
        timers: new Set(),
        finish: () => {
          end();
          resolve(summarise(run));
        },
        fail: (err) => {
          end();
          reject(err);
        },
      };
      this.runs.add(run);
      signal.addEventListener('abort', onAbort, { once: true });
      // The later requests are scheduled first: if the first one fails the run, end() cancels them.
      for (let index = 2; index <= options.count; index += 1) {
        const timer = setTimeout(() => {
          run.timers.delete(timer);
          this.send(channel, run, address, index, options.timeoutMs);
        }, (index - 1) * options.intervalMs);
        run.timers.add(timer);
      }
      this.send(channel, run, address, 1, options.timeoutMs);
    });
  }

  /** Closes the sockets; lookups still waiting reject with PingerError CLOSED. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const run of [...this.runs]) run.fail(new PingerError(PingerErrors.CLOSED, 'the pinger was closed'));
    for (const channel of this.channels.values()) channel.socket.close();
    this.channels.clear();
  }

  private channel(family: IpFamily): Channel {
    if (this.closed) throw new PingerError(PingerErrors.CLOSED, 'the pinger was closed');
    let channel = this.channels.get(family);
    if (channel) return channel;
    let socket: IcmpSocket;
    try {
      socket = this.openSocket(family, (message, source, ttl, ageMs) => this.onMessage(family, message, ttl, ageMs));
    } catch (err) {
      throw new PingerError(PingerErrors.SOCKET_UNAVAILABLE, `no ICMP socket for IPv${family}: ${(err as Error).message}`, { cause: err });
    }
    // A datagram socket's identifier is the kernel's (it rewrites ours); a raw socket uses ours.
    const identifier = socket.kind === 'dgram' && socket.ident >= 0 ? socket.ident : this.identifier;
    channel = { socket, identifier, nextSequence: randomBytes(2).readUInt16BE(0), pending: new Map() };
    this.channels.set(family, channel);
    return channel;
  }

  private send(channel: Channel, run: Run, address: string, index: number, timeoutMs: number): void {
    if (channel.pending.size >= 0x10000) {
      run.fail(new Error('all 65536 ICMP sequence numbers are in use'));
      return;
    }
    let seq = channel.nextSequence;
    while (channel.pending.has(seq)) seq = (seq + 1) & 0xffff;
    channel.nextSequence = (seq + 1) & 0xffff;

    const probe: Probe = { run, index, sentAt: 0, settled: false };
    const packet = buildEchoRequest(run.family, channel.identifier, seq, this.cookie);
    channel.pending.set(seq, probe);
    run.sequences.push(seq);
    run.transmitted += 1;
    const timer = setTimeout(() => {
      run.timers.delete(timer);
      this.settle(probe);
    }, timeoutMs);
    probe.timer = timer;
    run.timers.add(timer);
    probe.sentAt = this.now();
    const result = channel.socket.send(packet, address);
    if (result === 'EPERM' || result === 'EACCES') {
      run.fail(new PingerError(PingerErrors.NOT_PERMITTED, `sendto: ${result} (ICMP echo is not permitted)`));
    } else if (result !== 0) {
      run.errors.add(`sendto: ${result}`);
      this.settle(probe);
    }
  }

  private onMessage(family: IpFamily, message: Buffer, ttl: number, ageMs: number): void {
    const channel = this.channels.get(family);
    if (!channel) return;
    const parsed = parseIcmpMessage(family, message);
    if (!parsed || parsed.identifier !== channel.identifier) return; // another process's, or our own request
    const probe = channel.pending.get(parsed.sequence);
    if (!probe) return; // its lookup ended (timed out, aborted) or never ours
    if (parsed.kind === 'error') {
      if (probe.settled) return;
      probe.run.errors.add(parsed.message);
      this.settle(probe);
      return;
    }
    if (!this.cookie.equals(parsed.data.subarray(0, COOKIE_BYTES))) return; // same identifier, another sender
    if (probe.settled) {
      if (probe.run.replies.some((r) => r.seq === probe.index)) probe.run.duplicates += 1;
      return; // a late reply after the timeout is not counted, as ping does not
    }
    const timeMs = Math.max(0, this.now() - ageMs - probe.sentAt);
    const reply: PingProbe = { seq: probe.index, timeMs: Math.round(timeMs * 1000) / 1000 };
    if (ttl >= 0) reply.ttl = ttl;
    probe.run.replies.push(reply);
    this.settle(probe);
  }

  private settle(probe: Probe): void {
    if (probe.settled) return;
    probe.settled = true;
    if (probe.timer) {
      clearTimeout(probe.timer);
      probe.run.timers.delete(probe.timer);
    }
    probe.run.outstanding -= 1;
    if (probe.run.outstanding === 0) probe.run.finish();
  }
}

function summarise(run: Run): PingSummary {
  const replies = [...run.replies].sort((a, b) => a.seq - b.seq);
  const summary: PingSummary = {
    transmitted: run.transmitted,
    received: replies.length,
    packetLossPercent: lossPercent(run.transmitted, replies.length),
    probes: replies,
  };
  if (run.duplicates > 0) summary.duplicates = run.duplicates;
  if (run.errors.size > 0) summary.errors = [...run.errors];
  const rtt = rttWithMdev(replies);
  if (rtt) summary.rtt = rtt;
  return summary;
}
