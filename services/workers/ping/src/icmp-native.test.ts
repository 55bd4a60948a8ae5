// The native addon itself (native/icmp.c, compiled by `npm run build`). Loopback only: 127.0.0.1 and ::1.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildEchoRequest, parseIcmpMessage } from './icmp-packet.ts';
import { loadIcmpAddon, type IcmpAddon } from './icmp-native.ts';

let addon: IcmpAddon | undefined;
let addonError = '';
try {
  addon = loadIcmpAddon();
} catch (err) {
  addonError = (err as Error).message;
}
const hasIPv6Loopback = Object.values(os.networkInterfaces()).some((list) => list?.some((i) => i.address === '::1'));

/** Opens a socket, sends one echo request to `address`, resolves with the first echo reply to it. */
function echo(family: 4 | 6, address: string) {
  return new Promise<{ message: Buffer; source: string; ttl: number; ageMs: number; kind: string }>((resolve, reject) => {
    const identifier = 0x7000 + (process.pid & 0x0fff);
    const { handle, kind, ident } = addon!.open(family, (message, source, ttl, ageMs) => {
      const parsed = parseIcmpMessage(family, message);
      if (parsed?.kind !== 'echo-reply' || parsed.identifier !== (kind === 'dgram' ? ident : identifier) || parsed.sequence !== 1) return;
      clearTimeout(timer);
      addon!.close(handle);
      resolve({ message, source, ttl, ageMs, kind });
    });
    const timer = setTimeout(() => {
      addon!.close(handle);
      reject(new Error(`no echo reply from ${address} within 2 s`));
    }, 2000);
    const sent = addon!.send(handle, buildEchoRequest(family, identifier, 1, Buffer.from('lookup-test')), address);
    if (sent !== 0) reject(new Error(`send: ${sent}`));
  });
}

describe.skipIf(!addon)(`ICMP addon${addon ? '' : ` — skipped: ${addonError}`}`, () => {
  it('echoes 127.0.0.1: the message starts at the ICMP header (no IP header), with the TTL and a wait time', async () => {
    const reply = await echo(4, '127.0.0.1');
    expect(['dgram', 'raw']).toContain(reply.kind);
    expect(reply.message[0]).toBe(0); // echo reply type, not an IPv4 header (0x45)
    expect(reply.message.subarray(8).toString()).toBe('lookup-test');
    expect(reply.source).toBe('127.0.0.1');
    expect(reply.ttl).toBe(64);
    expect(reply.ageMs).toBeGreaterThanOrEqual(0);
  });

  it.skipIf(!hasIPv6Loopback)('echoes ::1 with the hop limit', async () => {
    const reply = await echo(6, '::1');
    expect(reply.message[0]).toBe(129);
    expect(reply.source).toBe('::1');
    expect(reply.ttl).toBe(64);
  });

  it('returns the errno name for a failed send, EBADF after close, and close is safe twice', () => {
    const { handle } = addon!.open(4, () => undefined);
    expect(addon!.send(handle, buildEchoRequest(4, 1, 1, Buffer.alloc(0)), 'not-an-address')).toBe('EINVAL');
    addon!.close(handle);
    addon!.close(handle);
    expect(addon!.send(handle, buildEchoRequest(4, 1, 1, Buffer.alloc(0)), '127.0.0.1')).toBe('EBADF');
  });

  it('rejects bad arguments with a TypeError', () => {
    expect(() => addon!.open(5 as 4, () => undefined)).toThrow(TypeError);
    expect(() => addon!.open(4, 'not a function' as never)).toThrow(TypeError);
    expect(() => addon!.send({}, Buffer.alloc(8), '127.0.0.1')).toThrow(TypeError);
    expect(() => addon!.close(undefined)).toThrow(TypeError);
  });
});

// Unprivileged ICMP datagram sockets (what the ping-worker container uses) need the process's group in
// net.ipv4.ping_group_range, which is per network namespace. As root, a private namespace (unshare -n) can allow
// it without touching the host's setting; its loopback is its own, so nothing leaves it.
const NETNS_SETUP = 'ip link set lo up && echo "0 2147483647" > /proc/sys/net/ipv4/ping_group_range';
const netnsProblem = (() => {
  if (!addon) return addonError;
  if (process.getuid?.() !== 0) return 'needs root to create a network namespace';
  const probe = spawnSync('unshare', ['-n', 'sh', '-c', NETNS_SETUP], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return `unshare -n is not available here (${probe.error?.message ?? probe.stderr.trim()})`;
  return undefined;
})();

describe.skipIf(netnsProblem !== undefined)(`ICMP datagram sockets${netnsProblem ? ` — skipped: ${netnsProblem}` : ''}`, () => {
  it('pings 127.0.0.1 and ::1 through IcmpPinger on datagram sockets (kernel identifier, no IP header)', () => {
    const script = fileURLToPath(new URL('./__fixtures__/ping-in-netns.ts', import.meta.url));
    const cmd = `${NETNS_SETUP} && exec "$0" --import tsx "$1" dgram`;
    const r = spawnSync('unshare', ['-n', 'sh', '-c', cmd, process.execPath, script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(out.kind4).toBe('dgram');
    expect(out.v4).toMatchObject({ transmitted: 2, received: 2, probes: [{ seq: 1, ttl: 64 }, { seq: 2, ttl: 64 }] });
    if (hasIPv6Loopback) {
      expect(out.kind6).toBe('dgram');
      expect(out.v6).toMatchObject({ transmitted: 2, received: 2 });
    }
  });
});
