// Issue 11: the data Ping really returns matches PingDataSchema, which the worker kit checks before storing a
// result and the OpenAPI document publishes: ICMP through the system ping (real, and fake outputs for the cases
// loopback cannot produce), through the in-process socket (a fake one: no I/O), and the TCP fallback. Loopback only.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@lookup/config';
import { compileValidator } from '@lookup/contracts';
import type { LookupFn, LookupService } from '@lookup/worker-kit';
import { startDnsFixture, type DnsFixture, lookupContext as ctx, silentLogger as logger } from '../../../../tests/fixtures/index.ts';
import { PingDataSchema, createPingLookup } from './lookup.ts';
import type { OpenIcmpSocket } from './pinger.ts';

const validator = compileValidator(PingDataSchema);
let dnsFixture: DnsFixture;
let tcpServer: net.Server;
let openPort: number;
let tmp: string;
const closers: Array<() => unknown> = [];

async function setup(service: LookupService, env: Record<string, string> = {}): Promise<LookupFn> {
  const config = loadConfig({ DNS_SERVERS: dnsFixture.address, PING_COUNT: '2', PING_TIMEOUT_MS: '500', PING_ENGINE: 'system', ALLOW_PRIVATE_TARGETS: 'true', ...env });
  const { lookup, close } = await service.setup({ config, logger });
  if (close) closers.push(close);
  return lookup;
}

/** A ping executable printing `output` and exiting with `code`. */
function fakePing(name: string, output: string, code = 0): string {
  const file = path.join(tmp, name);
  writeFileSync(file, `#!/bin/sh\ncat <<'EOF'\n${output}\nEOF\nexit ${code}\n`);
  chmodSync(file, 0o755);
  return file;
}

/** An in-process ICMP socket that answers every echo request (no I/O). */
const fakeSocket: OpenIcmpSocket = (family, onMessage) => ({
  kind: 'dgram',
  ident: -1,
  send(packet, address) {
    const reply = Buffer.from(packet);
    reply[0] = family === 4 ? 0 : 129;
    setImmediate(() => onMessage(reply, address, 64, 0));
    return 0;
  },
  close: () => undefined,
});

beforeAll(async () => {
  dnsFixture = await startDnsFixture();
  tcpServer = net.createServer((socket) => socket.end()).listen(0, '127.0.0.1');
  await new Promise((r) => tcpServer.once('listening', r));
  openPort = (tcpServer.address() as net.AddressInfo).port;
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ping-schema-'));
});

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

afterAll(async () => {
  await dnsFixture?.close();
  await new Promise((r) => tcpServer?.close(r));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('Ping data matches PingDataSchema', () => {
  it('the system ping: an address and a domain (TCP probes where this machine has no ping)', async () => {
    const lookup = await setup(createPingLookup({ tcpPorts: [openPort] }));
    for (const [target, type] of [['127.0.0.1', 'IPAddress'], ['example.test', 'Domain']] as const) {
      const data = await lookup(ctx(target, type));
      expect(validator.errors(data), target).toEqual([]);
    }
  });

  it.each([
    [
      'replies with TTLs, duplicates and ICMP errors',
      'PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.\n64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.041 ms\n' +
        '64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.050 ms (DUP!)\nFrom 127.0.0.1 icmp_seq=2 Destination Host Unreachable\n\n' +
        '--- 127.0.0.1 ping statistics ---\n2 packets transmitted, 1 received, +1 duplicates, +1 errors, 50% packet loss, time 1001ms\n' +
        'rtt min/avg/max/mdev = 0.041/0.041/0.041/0.000 ms',
      0,
    ],
    ['every probe lost', '--- 127.0.0.1 ping statistics ---\n2 packets transmitted, 0 received, 100% packet loss, time 0ms', 1],
    ['the network unreachable', '', 2],
  ])('ICMP through the system ping: %s', async (name, stdout, code) => {
    const command = code === 2 ? fakeUnreachable() : fakePing(name.replace(/\W+/g, '-'), stdout, code);
    const data = await (await setup(createPingLookup({ pingCommand: command })))(ctx('127.0.0.1'));
    expect(data).toMatchObject({ method: 'icmp' });
    expect(validator.errors(data)).toEqual([]);
    if (code === 0) expect(data).toMatchObject({ duplicates: 1, errors: ['Destination Host Unreachable'], probes: [{ seq: 1, ttl: 64 }] });
  });

  it('ICMP through the in-process socket', async () => {
    const lookup = await setup(createPingLookup({ loadIcmpSocket: () => fakeSocket }), { PING_ENGINE: 'socket' });
    const data = await lookup(ctx('example.test', 'Domain'));
    expect(data).toMatchObject({ method: 'icmp', received: 2, resolvedFrom: 'example.test' });
    expect(validator.errors(data)).toEqual([]);
  });

  it('the TCP fallback: an open port, and a port that is not', async () => {
    const missing = path.join(tmp, 'no-such-ping');
    for (const ports of [[openPort], [1]]) {
      const data = await (await setup(createPingLookup({ pingCommand: missing, tcpPorts: ports })))(ctx('127.0.0.1'));
      expect(data).toMatchObject({ method: 'tcp', icmpUnavailable: expect.any(String) });
      expect(validator.errors(data), String(ports)).toEqual([]);
    }
  });

  it('is exact: a field of the wrong type or an unknown field does not match', () => {
    const base = { ip: '127.0.0.1', method: 'icmp', reachable: true, transmitted: 1, received: 1, packetLossPercent: 0, rtt: null, probes: [] };
    expect(validator.errors(base)).toEqual([]);
    expect(validator.errors({ ...base, method: 'udp' })).toEqual(['/method: Expected union value']);
    expect(validator.check({ ...base, probes: [{ seq: 1, timeMs: -1 }] })).toBe(false);
    expect(validator.check({ ...base, loss: 0 })).toBe(false);
  });
});

/** A ping that fails as on a host without a route: no statistics, "Network is unreachable" on stderr. */
function fakeUnreachable(): string {
  const file = path.join(tmp, 'ping-unreachable');
  writeFileSync(file, '#!/bin/sh\necho "ping: connect: Network is unreachable" >&2\nexit 2\n');
  chmodSync(file, 0o755);
  return file;
}
