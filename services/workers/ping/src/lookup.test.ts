import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@lookup/config';
import type { LookupFn, LookupService } from '@lookup/worker-kit';
import { startDnsFixture, type DnsFixture, lookupContext, silentLogger } from '../../../../tests/fixtures/index.ts';
import { createPingLookup, pingLookup } from './lookup.ts';

// Loopback targets only: nothing here leaves the machine.
const hasIPv6Loopback = Object.values(os.networkInterfaces()).some((list) => list?.some((i) => i.address === '::1'));
const logger = silentLogger;
let dnsFixture: DnsFixture;
let tcpServer: net.Server;
let openPort: number;
let closedPort: number;
let tmp: string;

const ctx = lookupContext;

async function setup(service: LookupService, env: Record<string, string> = {}): Promise<LookupFn> {
  const config = loadConfig({ DNS_SERVERS: dnsFixture.address, PING_COUNT: '1', PING_TIMEOUT_MS: '1000', ...env });
  return (await service.setup({ config, logger })).lookup;
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
    const fakePing = path.join(tmp, 'ping-loss');
    writeFileSync(
      fakePing,
      '#!/bin/sh\nprintf "PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.\\n\\n--- 127.0.0.1 ping statistics ---\\n1 packets transmitted, 0 received, 100%% packet loss, time 0ms\\n"\nexit 1\n',
    );
    chmodSync(fakePing, 0o755);
    const lookup = await setup(createPingLookup({ pingCommand: fakePing }));
    const data = await lookup(ctx('127.0.0.1'));
    expect(data).toMatchObject({ method: 'icmp', reachable: false, transmitted: 1, received: 0, packetLossPercent: 100, rtt: null });
  });
});
