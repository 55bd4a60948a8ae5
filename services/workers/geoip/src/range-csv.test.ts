import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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
