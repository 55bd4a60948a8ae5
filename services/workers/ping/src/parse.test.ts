import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { icmpNotPermitted, parsePingOutput, rttWithMdev } from './parse.ts';

const recorded = (name: string) => readFileSync(new URL(`./__fixtures__/${name}`, import.meta.url), 'utf8');

describe('parsePingOutput', () => {
  it('parses a successful run (iputils, loopback, recorded on Linux)', () => {
    const summary = parsePingOutput(recorded('loopback-success.txt'));
    expect(summary).toEqual({
      transmitted: 3,
      received: 3,
      packetLossPercent: 0,
      rtt: { minMs: 0.032, avgMs: 0.032, maxMs: 0.034, mdevMs: 0 },
      probes: [
        { seq: 1, ttl: 64, timeMs: 0.032 },
        { seq: 2, ttl: 64, timeMs: 0.034 },
        { seq: 3, ttl: 64, timeMs: 0.032 },
      ],
    });
  });

  it('parses partial loss', () => {
    const summary = parsePingOutput(recorded('partial-loss.txt'))!;
    expect(summary).toMatchObject({ transmitted: 4, received: 3, packetLossPercent: 25 });
    expect(summary.probes.map((p) => p.seq)).toEqual([1, 3, 4]);
    expect(summary.rtt).toEqual({ minMs: 2.87, avgMs: 3.366, maxMs: 4.02, mdevMs: 0.482 });
  });

  it('parses 100% loss: no probes and no round-trip times', () => {
    const summary = parsePingOutput(recorded('total-loss.txt'));
    expect(summary).toEqual({ transmitted: 3, received: 0, packetLossPercent: 100, probes: [] });
  });

  it('collects ICMP errors reported instead of replies', () => {
    const summary = parsePingOutput(recorded('host-unreachable.txt'));
    expect(summary).toEqual({
      transmitted: 3,
      received: 0,
      packetLossPercent: 100,
      errors: ['Destination Host Unreachable'],
      probes: [],
    });
  });

  it('parses IPv6 output and ignores duplicate replies', () => {
    const summary = parsePingOutput(recorded('ipv6-remote.txt'))!;
    expect(summary).toMatchObject({ transmitted: 3, received: 3, duplicates: 1, packetLossPercent: 0 });
    expect(summary.probes).toEqual([
      { seq: 1, ttl: 117, timeMs: 12.4 },
      { seq: 2, ttl: 117, timeMs: 12.1 },
      { seq: 3, ttl: 117, timeMs: 12.3 },
    ]);
    expect(summary.rtt?.avgMs).toBe(12.267);
  });

  it('parses IPv6 loopback output (recorded on Linux)', () => {
    const summary = parsePingOutput(recorded('ipv6-loopback.txt'))!;
    expect(summary).toMatchObject({ transmitted: 3, received: 3, packetLossPercent: 0 });
    expect(summary.probes).toHaveLength(3);
  });

  it('accepts BusyBox output', () => {
    const summary = parsePingOutput(recorded('busybox-success.txt'));
    expect(summary).toEqual({
      transmitted: 2,
      received: 2,
      packetLossPercent: 0,
      rtt: { minMs: 0.061, avgMs: 0.072, maxMs: 0.084 },
      probes: [
        { seq: 0, ttl: 64, timeMs: 0.061 },
        { seq: 1, ttl: 64, timeMs: 0.084 },
      ],
    });
  });

  it('returns undefined when ping printed no statistics', () => {
    expect(parsePingOutput(recorded('socket-not-permitted.stderr.txt'))).toBeUndefined();
    expect(parsePingOutput('')).toBeUndefined();
  });
});

describe('icmpNotPermitted', () => {
  it('recognises a refused raw socket', () => {
    expect(icmpNotPermitted(recorded('socket-not-permitted.stderr.txt'))).toBe(true);
  });

  it('recognises sends blocked by the local firewall', () => {
    expect(icmpNotPermitted(recorded('sendmsg-not-permitted.txt'))).toBe(true);
  });

  it('does not fire on ordinary output', () => {
    for (const file of ['loopback-success.txt', 'partial-loss.txt', 'total-loss.txt', 'host-unreachable.txt']) {
      expect(icmpNotPermitted(recorded(file))).toBe(false);
    }
  });
});

describe('rttWithMdev', () => {
  it('adds the mean deviation as iputils computes it (1, 2, 3 ms: mdev 0.816)', () => {
    expect(rttWithMdev([{ timeMs: 1 }, { timeMs: 2 }, { timeMs: 3 }])).toEqual({ minMs: 1, avgMs: 2, maxMs: 3, mdevMs: 0.816 });
    expect(rttWithMdev([{ timeMs: 0.05 }])).toEqual({ minMs: 0.05, avgMs: 0.05, maxMs: 0.05, mdevMs: 0 });
    expect(rttWithMdev([])).toBeUndefined();
  });
});
