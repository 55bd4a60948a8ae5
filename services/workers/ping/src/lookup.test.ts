import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@lookup/config';
import { createLogger } from '@lookup/logging';
import type { LookupFn, LookupService } from '@lookup/worker-kit';
import { startDnsFixture, type DnsFixture, lookupContext, silentLogger } from '../../../../tests/fixtures/index.ts';
import { createPingLookup, pingLookup } from './lookup.ts';
import { loadIcmpAddon } from './icmp-native.ts';
import type { IcmpSocket, OpenIcmpSocket } from './pinger.ts';

// Loopback targets only: nothing here leaves the machine.
const hasIPv6Loopback = Object.values(os.networkInterfaces()).some((list) => list?.some((i) => i.address === '::1'));
const logger = silentLogger;
let dnsFixture: DnsFixture;
let tcpServer: net.Server;
let openPort: number;
let closedPort: number;
let tmp: string;

const ctx = lookupContext;
const closers: Array<() => unknown> = [];

/** The service's lookup function; the system ping engine unless `env` says otherwise. Closed after each test. */
async function setup(service: LookupService, env: Record<string, string> = {}, log = logger): Promise<LookupFn> {
  // Loopback targets are private: allowed here, except in the target-policy tests, which set it to false.
  const config = loadConfig({ DNS_SERVERS: dnsFixture.address, PING_COUNT: '1', PING_TIMEOUT_MS: '1000', PING_ENGINE: 'system', ALLOW_PRIVATE_TARGETS: 'true', ...env });
  const { lookup, close } = await service.setup({ config, logger: log });
  if (close) closers.push(close);
  return lookup;
}

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A logger whose lines the test can read. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({ service: 'test', level: 'info', destination: { write: (line: string) => lines.push(JSON.parse(line)) } });
  return { log, lines };
}

/** A fake in-process ICMP socket (no I/O) that answers every echo request like a host on the other end. */
function fakeIcmp(options: { unavailable?: Array<4 | 6>; sendResult?: string } = {}) {
  const opened: Array<4 | 6> = [];
  const sockets: IcmpSocket[] = [];
  let closed = 0;
  const open: OpenIcmpSocket = (family, onMessage) => {
    opened.push(family);
    if (options.unavailable?.includes(family)) throw new Error(`no ICMP socket for IPv${family}: raw EPERM`);
    const socket: IcmpSocket = {
      kind: 'raw',
      ident: -1,
      send(packet, address) {
        if (options.sendResult) return options.sendResult;
        const reply = Buffer.from(packet);
        reply[0] = family === 4 ? 0 : 129;
        setImmediate(() => onMessage(reply, address, 42, 0));
        return 0;
      },
      close: () => void (closed += 1),
    };
    sockets.push(socket);
    return socket;
  };
  return { open, opened, closedCount: () => closed };
}

/** A ping executable that reports one lost probe: a result from it proves the system ping ran. */
function fakeLossPing(): string {
  const fakePing = path.join(tmp, 'ping-loss');
  writeFileSync(
    fakePing,
    '#!/bin/sh\nprintf "PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.\\n\\n--- 127.0.0.1 ping statistics ---\\n1 packets transmitted, 0 received, 100%% packet loss, time 0ms\\n"\nexit 1\n',
  );
  chmodSync(fakePing, 0o755);
  return fakePing;
}

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

beforeAll(async () => {
  dnsFixture = await startDnsFixture();
  tcpServer = net.createServer((socket) => socket.end()).listen(0, '127.0.0.1');
  await new Promise((r) => tcpServer.once('listening', r));
  openPort = (tcpServer.address() as net.AddressInfo).port;
  closedPort = await freePort();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ping-test-'));
});

afterAll(async () => {
  await dnsFixture?.close();
  await new Promise((r) => tcpServer?.close(r));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('Ping lookup (ICMP through the system ping)', () => {
  it('pings 127.0.0.1', async () => {
    const lookup = await setup(pingLookup);
    const data = await lookup(ctx('127.0.0.1'));
    expect(data).toMatchObject({ ip: '127.0.0.1', method: 'icmp', reachable: true, transmitted: 1, received: 1, packetLossPercent: 0 });
    expect((data.probes as unknown[]).length).toBe(1);
    expect(data.rtt).toMatchObject({ minMs: expect.any(Number), avgMs: expect.any(Number), maxMs: expect.any(Number) });
  });

  it('honours PING_COUNT', async () => {
    const lookup = await setup(pingLookup, { PING_COUNT: '3' });
    const data = await lookup(ctx('127.0.0.1'));
    expect(data).toMatchObject({ transmitted: 3, received: 3 });
  });

  it.skipIf(!hasIPv6Loopback)('pings ::1 with -6', async () => {
    const lookup = await setup(pingLookup);
    const data = await lookup(ctx('::1'));
    expect(data).toMatchObject({ ip: '::1', method: 'icmp', reachable: true, received: 1 });
  });

  it('resolves a domain first and pings the address it got', async () => {
    const lookup = await setup(pingLookup);
    const data = await lookup(ctx('example.test', 'Domain'));
    expect(data).toMatchObject({ ip: '127.0.0.2', resolvedFrom: 'example.test', method: 'icmp', reachable: true });
  });

  it('fails permanently for a domain that does not exist', async () => {
    const lookup = await setup(pingLookup);
    await expect(lookup(ctx('missing.example.test', 'Domain'))).rejects.toMatchObject({ code: 'DNS_NXDOMAIN', retryable: false });
  });

  it('stops when the attempt is aborted', async () => {
    const lookup = await setup(pingLookup, { PING_COUNT: '10' });
    const controller = new AbortController();
    const pending = lookup({ ...ctx('127.0.0.1'), signal: controller.signal });
    setTimeout(() => controller.abort(new Error('attempt timed out')), 100);
    await expect(pending).rejects.toMatchObject({ code: 'PING_ABORTED', retryable: true });
  });
});

describe('Ping lookup (TCP fallback)', () => {
  it('probes with TCP connect when the ping binary is missing', async () => {
    const lookup = await setup(createPingLookup({ pingCommand: path.join(tmp, 'no-such-ping'), tcpPorts: [openPort] }), { PING_COUNT: '2' });
    const data = await lookup(ctx('127.0.0.1'));
    expect(data).toMatchObject({ method: 'tcp', port: openPort, reachable: true, transmitted: 2, received: 2, packetLossPercent: 0 });
    expect(data.icmpUnavailable).toMatch(/ENOENT/);
    expect(data.probes).toEqual([
      expect.objectContaining({ seq: 1, port: openPort, outcome: 'open', timeMs: expect.any(Number) }),
      expect.objectContaining({ seq: 2, port: openPort, outcome: 'open' }),
    ]);
  });

  it('probes with TCP connect when ICMP is not permitted', async () => {
    const fakePing = path.join(tmp, 'ping-eperm');
    writeFileSync(fakePing, '#!/bin/sh\necho "ping: socktype: SOCK_RAW" >&2\necho "ping: socket: Operation not permitted" >&2\nexit 2\n');
    chmodSync(fakePing, 0o755);
    const lookup = await setup(createPingLookup({ pingCommand: fakePing, tcpPorts: [openPort] }));
    const data = await lookup(ctx('127.0.0.1'));
    expect(data).toMatchObject({ method: 'tcp', reachable: true, icmpUnavailable: 'ping: socktype: SOCK_RAW' });
  });

  it('counts a refused connection as an answer: the host is up', async () => {
    const lookup = await setup(createPingLookup({ pingCommand: path.join(tmp, 'no-such-ping'), tcpPorts: [closedPort] }));
    const data = await lookup(ctx('127.0.0.1'));
    expect(data).toMatchObject({ method: 'tcp', reachable: true, probes: [expect.objectContaining({ outcome: 'refused' })] });
  });

  it('reports a ping run with 100% loss as unreachable (still a successful lookup)', async () => {
    const lookup = await setup(createPingLookup({ pingCommand: fakeLossPing() }));
    const data = await lookup(ctx('127.0.0.1'));
    expect(data).toMatchObject({ method: 'icmp', reachable: false, transmitted: 1, received: 0, packetLossPercent: 100, rtt: null });
  });
});

describe('Ping engine selection (PING_ENGINE)', () => {
  it('auto: uses the in-process socket when it opens, and says so once at start-up', async () => {
    const icmp = fakeIcmp();
    const { log, lines } = capturingLogger();
    const lookup = await setup(createPingLookup({ loadIcmpSocket: () => icmp.open, pingCommand: fakeLossPing() }), { PING_ENGINE: 'auto' }, log);
    expect(lines.filter((l) => String(l.msg).startsWith('ping engine'))).toEqual([
      expect.objectContaining({ pingEngine: 'socket', socket: 'raw', msg: expect.stringContaining('ping engine: in-process raw ICMP socket') }),
    ]);
    const data = await lookup(ctx('127.0.0.1'));
    expect(data).toEqual({
      ip: '127.0.0.1',
      method: 'icmp',
      reachable: true,
      transmitted: 1,
      received: 1,
      packetLossPercent: 0,
      probes: [{ seq: 1, ttl: 42, timeMs: expect.any(Number) }],
      rtt: { minMs: expect.any(Number), avgMs: expect.any(Number), maxMs: expect.any(Number), mdevMs: 0 },
    });
    expect(icmp.opened).toEqual([4]); // IPv4 at start-up, to decide; IPv6 only when a target needs it
  });

  it('auto: falls back to the system ping when the addon is missing, and says why', async () => {
    const { log, lines } = capturingLogger();
    const missing = () => {
      throw new Error('the ICMP addon is not built');
    };
    const lookup = await setup(createPingLookup({ loadIcmpSocket: missing, pingCommand: fakeLossPing() }), { PING_ENGINE: 'auto' }, log);
    expect(lines.find((l) => String(l.msg).startsWith('ping engine'))).toMatchObject({
      pingEngine: 'system',
      reason: 'the ICMP addon is not built',
    });
    expect(await lookup(ctx('127.0.0.1'))).toMatchObject({ method: 'icmp', transmitted: 1, received: 0, reachable: false });
  });

  it('auto: falls back to the system ping when no socket opens (no CAP_NET_RAW, group outside ping_group_range)', async () => {
    const icmp = fakeIcmp({ unavailable: [4] });
    const lookup = await setup(createPingLookup({ loadIcmpSocket: () => icmp.open, pingCommand: fakeLossPing() }), { PING_ENGINE: 'auto' });
    expect(await lookup(ctx('127.0.0.1'))).toMatchObject({ method: 'icmp', received: 0 });
    expect(icmp.opened).toEqual([4]);
  });

  it('auto: a family whose socket does not open goes to the system ping; the other keeps the socket', async () => {
    const icmp = fakeIcmp({ unavailable: [6] });
    const lookup = await setup(createPingLookup({ loadIcmpSocket: () => icmp.open, pingCommand: fakeLossPing() }), { PING_ENGINE: 'auto' });
    expect(await lookup(ctx('::1'))).toMatchObject({ ip: '::1', method: 'icmp', received: 0 }); // the fake system ping
    expect(await lookup(ctx('127.0.0.1'))).toMatchObject({ method: 'icmp', received: 1, probes: [{ ttl: 42 }] }); // the socket
  });

  it('system: never loads the addon', async () => {
    let loads = 0;
    const lookup = await setup(
      createPingLookup({ loadIcmpSocket: () => (loads++, fakeIcmp().open), pingCommand: fakeLossPing() }),
      { PING_ENGINE: 'system' },
    );
    expect(await lookup(ctx('127.0.0.1'))).toMatchObject({ method: 'icmp', received: 0 });
    expect(loads).toBe(0);
  });

  it('socket: start-up fails when the socket is unavailable', async () => {
    const missing = () => {
      throw new Error('the ICMP addon is not built');
    };
    await expect(setup(createPingLookup({ loadIcmpSocket: missing }), { PING_ENGINE: 'socket' })).rejects.toThrow(
      'PING_ENGINE=socket, but the ICMP addon is not built',
    );
  });

  it('probes with TCP connect when the system refuses ICMP echo on the socket (EPERM)', async () => {
    const icmp = fakeIcmp({ sendResult: 'EPERM' });
    const lookup = await setup(createPingLookup({ loadIcmpSocket: () => icmp.open, tcpPorts: [openPort] }), { PING_ENGINE: 'auto' });
    const data = await lookup(ctx('127.0.0.1'));
    expect(data).toMatchObject({ method: 'tcp', port: openPort, reachable: true, icmpUnavailable: expect.stringContaining('EPERM') });
  });

  it('closes the sockets when the service closes (safe twice)', async () => {
    const icmp = fakeIcmp();
    const config = loadConfig({ DNS_SERVERS: dnsFixture.address, PING_COUNT: '1', PING_ENGINE: 'auto', ALLOW_PRIVATE_TARGETS: 'true' });
    const { lookup, close } = await createPingLookup({ loadIcmpSocket: () => icmp.open }).setup({ config, logger });
    await lookup(ctx('::1'));
    await close!();
    await close!();
    expect(icmp.closedCount()).toBe(2); // IPv4 and IPv6, once each
    await expect(lookup(ctx('127.0.0.1'))).rejects.toMatchObject({ code: 'PING_FAILED', retryable: true });
  });
});

// The real addon (scripts/build.mjs compiles native/icmp.c into dist/native/icmp.node; `npm run build`).
let addonError: string | undefined;
try {
  loadIcmpAddon();
} catch (err) {
  addonError = (err as Error).message;
}

describe.skipIf(addonError !== undefined)(`Ping lookup (in-process ICMP socket)${addonError ? ` — skipped: ${addonError}` : ''}`, () => {
  const socketEnv = { PING_ENGINE: 'socket' };

  it('pings 127.0.0.1 (3 probes) through the socket', async () => {
    const lookup = await setup(pingLookup, { ...socketEnv, PING_COUNT: '3' });
    const data = await lookup(ctx('127.0.0.1'));
    expect(data).toMatchObject({ ip: '127.0.0.1', method: 'icmp', reachable: true, transmitted: 3, received: 3, packetLossPercent: 0 });
    expect(data.probes).toEqual([1, 2, 3].map((seq) => ({ seq, ttl: 64, timeMs: expect.any(Number) })));
    expect(data.rtt).toEqual({ minMs: expect.any(Number), avgMs: expect.any(Number), maxMs: expect.any(Number), mdevMs: expect.any(Number) });
  });

  it.skipIf(!hasIPv6Loopback)('pings ::1 through the socket', async () => {
    const lookup = await setup(pingLookup, socketEnv);
    const data = await lookup(ctx('::1'));
    expect(data).toMatchObject({ ip: '::1', method: 'icmp', reachable: true, received: 1, probes: [{ seq: 1, ttl: 64 }] });
  });

  it('resolves a domain and pings the address, many lookups at once on one socket', async () => {
    const lookup = await setup(pingLookup, socketEnv);
    const results = await Promise.all([
      ...Array.from({ length: 20 }, () => lookup(ctx('127.0.0.1'))),
      ...Array.from({ length: 20 }, () => lookup(ctx('127.0.0.2'))),
      lookup(ctx('example.test', 'Domain')),
    ]);
    for (const data of results) expect(data).toMatchObject({ method: 'icmp', reachable: true, received: 1 });
    expect(results.at(-1)).toMatchObject({ ip: '127.0.0.2', resolvedFrom: 'example.test' });
  });

  it('stops when the attempt is aborted', async () => {
    const lookup = await setup(pingLookup, { ...socketEnv, PING_COUNT: '10' });
    const controller = new AbortController();
    const pending = lookup({ ...ctx('127.0.0.1'), signal: controller.signal });
    setTimeout(() => controller.abort(new Error('attempt timed out')), 100);
    await expect(pending).rejects.toMatchObject({ code: 'PING_ABORTED', retryable: true });
  });
});

describe('Ping lookup: the target policy (ALLOW_PRIVATE_TARGETS unset)', () => {
  /** A ping executable that records each run: an empty record proves no ICMP probe was sent. */
  function recordingPing(): { command: string; runs: () => string } {
    const log = path.join(tmp, `ping-runs-${Math.random().toString(36).slice(2)}`);
    const command = path.join(tmp, `ping-recording-${Math.random().toString(36).slice(2)}`);
    writeFileSync(log, '');
    // Records the run, then says ICMP is not permitted, so the lookup goes on to the TCP fallback.
    writeFileSync(command, `#!/bin/sh\necho "$@" >> '${log}'\necho "ping: socket: Operation not permitted" >&2\nexit 2\n`);
    chmodSync(command, 0o755);
    return { command, runs: () => readFileSync(log, 'utf8') };
  }

  it.each([
    ['example.test', 'Domain', /example\.test resolved to 127\.0\.0\.2, which the target policy refuses: .*rule loopback/],
    ['dual.example.test', 'Domain', /dual\.example\.test resolved to 127\.0\.0\.1, .*rule loopback/],
    ['ipv6.example.test', 'Domain', /ipv6\.example\.test resolved to ::1, .*rule loopback/],
    ['127.0.0.1', 'IPAddress', /^127\.0\.0\.1 is refused by the target policy \(rule loopback\)/],
    ['::ffff:127.0.0.1', 'IPAddress', /rule loopback/],
    ['2002:7f00:1::1', 'IPAddress', /rule 6to4-embedded-loopback/],
  ] as const)('%s (%s) fails permanently naming the rule; no ICMP probe and no TCP connection', async (target, type, message) => {
    const ping = recordingPing();
    let connections = 0;
    const server = net.createServer((socket) => {
      connections += 1;
      socket.end();
    }).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const icmp = fakeIcmp();
      let echoes = 0;
      const countingOpen: OpenIcmpSocket = (family, onMessage) => {
        const socket = icmp.open(family, onMessage);
        return { ...socket, send: (packet, address) => ((echoes += 1), socket.send(packet, address)) };
      };
      for (const engine of ['system', 'auto'] as const) {
        const service = createPingLookup({ pingCommand: ping.command, tcpPorts: [port], ...(engine === 'auto' ? { loadIcmpSocket: () => countingOpen } : {}) });
        const lookup = await setup(service, { ALLOW_PRIVATE_TARGETS: 'false', PING_ENGINE: engine });
        const err = await lookup(ctx(target, type)).then(() => undefined, (e: unknown) => e);
        expect(err, engine).toMatchObject({ code: 'TARGET_REFUSED', retryable: false });
        expect((err as Error).message).toMatch(message);
        expect((err as Error).message).toMatch(/TARGET_ALLOW_CIDRS/);
      }
      expect(ping.runs()).toBe('');
      expect(echoes).toBe(0);
      expect(connections).toBe(0);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('the same lookups run when ALLOW_PRIVATE_TARGETS=true (the refusal above is the policy, not the fake ping)', async () => {
    const ping = recordingPing();
    const lookup = await setup(createPingLookup({ pingCommand: ping.command, tcpPorts: [openPort] }), { ALLOW_PRIVATE_TARGETS: 'true' });
    const data = await lookup(ctx('example.test', 'Domain'));
    expect(data).toMatchObject({ ip: '127.0.0.2', method: 'tcp', reachable: true });
    expect(ping.runs()).toMatch(/127\.0\.0\.2/);
  });

  it('TARGET_ALLOW_CIDRS lifts the refusal for its range only', async () => {
    const lookup = await setup(createPingLookup({ pingCommand: path.join(tmp, 'no-such-ping'), tcpPorts: [openPort] }), {
      ALLOW_PRIVATE_TARGETS: 'false',
      TARGET_ALLOW_CIDRS: '127.0.0.2/32',
    });
    expect(await lookup(ctx('example.test', 'Domain'))).toMatchObject({ ip: '127.0.0.2', method: 'tcp', reachable: true });
    await expect(lookup(ctx('dual.example.test', 'Domain'))).rejects.toMatchObject({ code: 'TARGET_REFUSED' });
  });
});
