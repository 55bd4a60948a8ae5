import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addressBytes } from './ip-bytes.ts';
import { parseCsvLine, RangeCsv } from './range-csv.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'range-csv-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(scratch, name);
  writeFileSync(file, text);
  return file;
}

/** A deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const v4 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

describe('parseCsvLine', () => {
  it('reads plain and quoted fields (RFC 4180)', () => {
    expect(parseCsvLine('1.0.0.0,1.0.0.255,13335,"Cloudflare, Inc."')).toEqual(['1.0.0.0', '1.0.0.255', '13335', 'Cloudflare, Inc.']);
    expect(parseCsvLine('a,"say ""hi""",c')).toEqual(['a', 'say "hi"', 'c']);
    expect(parseCsvLine('a,,')).toEqual(['a', '', '']);
  });
});

describe('RangeCsv', () => {
  it('finds the range holding an address, and nothing in gaps, below the first or above the last range', () => {
    // Small pages, so the search crosses page boundaries and lines span pages.
    const rows: [number, number][] = [];
    const random = prng(7);
    let at = 1000;
    for (let i = 0; i < 3000; i++) {
      const start = at + Math.floor(random() * 3); // gaps of 0-2 addresses
      const end = start + Math.floor(random() * 50);
      rows.push([start, end]);
      at = end + 1;
    }
    const file = write('v4.csv', rows.map(([s, e], i) => `${v4(s)},${v4(e)},${i + 1},"Org ${i + 1}, Inc."`).join('\n') + '\n');
    const csv = RangeCsv.open(file, { pageSize: 256, cacheBytes: 4096 });
    try {
      expect(csv.ipVersion).toBe(4);
      let checked = 0;
      for (let i = 0; i < rows.length; i++) {
        const [s, e] = rows[i]!;
        for (const ip of [s, e, s + Math.floor((e - s) / 2)]) {
          expect(csv.find(v4(ip))?.row.fields, v4(ip)).toEqual([String(i + 1), `Org ${i + 1}, Inc.`]);
          checked++;
        }
        const next = rows[i + 1];
        for (let gap = e + 1; next && gap < next[0]; gap++) expect(csv.find(v4(gap)), v4(gap)).toBeUndefined();
      }
      expect(checked).toBe(9000);
      expect(csv.find(v4(999))).toBeUndefined();
      expect(csv.find('0.0.0.0')).toBeUndefined();
      expect(csv.find('255.255.255.255')).toBeUndefined();
      expect(csv.find('::1')).toBeUndefined(); // the other family
    } finally {
      csv.close();
    }
    expect(() => csv.find('1.2.3.4')).toThrow(/closed/);
  });

  it('reads IPv6 ranges and CRLF line ends', () => {
    const file = write('v6.csv', '2001::,2001::ffff,1,a\r\n2001:db8::,2001:db8::ff,2,b\r\n2001:db8:1::,2001:db8:1::1,3,c\r\n');
    const csv = RangeCsv.open(file, { pageSize: 16, cacheBytes: 64 });
    try {
      expect(csv.ipVersion).toBe(6);
      expect(csv.find('2001::1')?.row.fields).toEqual(['1', 'a']);
      expect(csv.find('2001:db8::80')?.row.fields).toEqual(['2', 'b']);
      expect(csv.find('2001:db8:1::1')?.row.fields).toEqual(['3', 'c']);
      expect(csv.find('2001:db8::100')).toBeUndefined();
      expect(csv.find('1.2.3.4')).toBeUndefined();
    } finally {
      csv.close();
    }
  });

  it('refuses a file that is not a range CSV', () => {
    expect(() => RangeCsv.open(write('empty.csv', ''))).toThrow('empty.csv is empty');
    expect(() => RangeCsv.open(write('header.csv', 'start,end,asn\n1.0.0.0,1.0.0.255,1\n'))).toThrow('header.csv is not a range CSV');
    expect(() => RangeCsv.open(path.join(scratch, 'missing.csv'))).toThrow(/ENOENT/);
  });
});

describe('RangeCsv on the bundled ASN files, against a reference that reads them whole', () => {
  const dir = path.dirname(createRequire(import.meta.url).resolve('@ip-location-db/asn/package.json'));
  const hex = (ip: string, length: number) => {
    const b = new Uint8Array(16);
    addressBytes(ip, b);
    return Buffer.from(b.subarray(0, length)).toString('hex');
  };

  it.each([
    ['asn-ipv4.csv', 4],
    ['asn-ipv6.csv', 16],
  ] as const)('%s: the same row as a reference reading it whole, for 20,000 addresses near ranges and every 97th range edge', (name, length) => {
    // Reference: every row in memory (hex keys compare as the bytes do), binary search over the starts.
    const lines = readFileSync(path.join(dir, name), 'utf8').split('\n').filter(Boolean);
    const rows = lines.map((l) => {
      const f = parseCsvLine(l);
      return { start: hex(f[0]!, length), end: hex(f[1]!, length), asn: f[2] };
    });
    // Sorted by start; ranges are disjoint but for a handful of nested ones (one in the IPv4 file), where the
    // later, narrower range wins, in the reference as in RangeCsv.
    let overlaps = 0;
    for (let i = 1; i < rows.length; i++) {
      expect(rows[i]!.start > rows[i - 1]!.start, `${name} sorted at line ${i + 1}`).toBe(true);
      if (rows[i]!.start <= rows[i - 1]!.end) overlaps++;
    }
    expect(overlaps).toBeLessThan(10);
    const reference = (ip: string) => {
      const key = hex(ip, length);
      let lo = 0;
      let hi = rows.length - 1;
      let found = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (rows[mid]!.start <= key) {
          found = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      return found >= 0 && key <= rows[found]!.end ? rows[found]!.asn : undefined;
    };
    // An address near a random range: its first address with the low bytes (1 to half of them) random.
    const random = prng(length);
    const randomIp = () => {
      const bytes = Buffer.from(rows[Math.floor(random() * rows.length)]!.start, 'hex');
      const k = 1 + Math.floor(random() * (length / 2));
      for (let i = length - k; i < length; i++) bytes[i] = Math.floor(random() * 256);
      if (length === 4) return [...bytes].join('.');
      return Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(2 * i).toString(16)).join(':');
    };
    const csv = RangeCsv.open(path.join(dir, name));
    try {
      let hits = 0;
      const wrong: string[] = [];
      for (let n = 0; n < 20_000; n++) {
        const ip = randomIp();
        const got = csv.find(ip)?.row.fields[0];
        if (got !== reference(ip)) wrong.push(`${ip}: ${got} instead of ${reference(ip)}`);
        if (got) hits++;
      }
      for (let i = 0; i < rows.length; i += 97) {
        for (const ip of parseCsvLine(lines[i]!).slice(0, 2)) {
          const got = csv.find(ip)?.row.fields[0];
          if (got !== reference(ip)) wrong.push(`${ip} (line ${i + 1}): ${got} instead of ${reference(ip)}`);
        }
      }
      expect(wrong.slice(0, 10)).toEqual([]);
      expect(hits).toBeGreaterThan(5000); // many land in ranges, the others in gaps
    } finally {
      csv.close();
    }
  }, 120_000);
});
