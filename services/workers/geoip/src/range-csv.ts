import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { addressBytes } from './ip-bytes.ts';
import { PageCache } from './page-cache.ts';

/** One row of a range CSV: its first and last address (bytes, network order) and the fields after them. */
export interface RangeRow {
  start: Uint8Array;
  end: Uint8Array;
  /** The fields after the two addresses, unquoted (RFC 4180: "a, b" and "" inside quotes). */
  fields: string[];
}

export interface RangeCsvOptions {
  /** Memory for file pages (default 512 KiB). */
  cacheBytes?: number;
  /** Bytes per page (default 4096). */
  pageSize?: number;
}

const MAX_LINE = 4096;
const MEMO_DEPTH = 13;
const EMPTY = new Uint8Array(0);

/**
 * A sorted range CSV (`first,last,field...` per line, one address family, ranges ascending and disjoint, as
 * ip-location-db ships them) searched in place: a binary search over byte offsets with positional reads through
 * a bounded page cache, so the file is never read whole or held in memory and opening it reads one line. The
 * top of the search reads the same few pages for every address, so they stay cached; a lookup reads at most
 * log2(file size / page size) other pages.
 */
export class RangeCsv {
  private readonly pages: PageCache;
  private readonly size: number;
  private readonly family: 4 | 16;
  private readonly ip = new Uint8Array(16);
  /** Binary search probes of the first MEMO_DEPTH levels, by offset: at most 2^MEMO_DEPTH (~0.5 MiB). */
  private readonly probes = new Map<number, { s: number; start: Uint8Array }>();
  private readonly line = Buffer.alloc(MAX_LINE);
  private fd: number | undefined;

  private constructor(fd: number, readonly name: string, size: number, options: RangeCsvOptions) {
    this.fd = fd;
    this.size = size;
    const pageSize = options.pageSize ?? 4096;
    this.pages = new PageCache({ fd, name, start: 0, length: size, pageSize, maxPages: Math.max(1, Math.floor((options.cacheBytes ?? 512 * 1024) / pageSize)) });
    const first = this.rowAt(0);
    if (!first) throw new Error(`${name} is not a range CSV: its first line is not "first address,last address,..."`);
    this.family = first.start.length as 4 | 16;
  }

  /** Opens `file`; throws an error naming it when it cannot be read, is empty, or its first line is not a range row. */
  static open(file: string, options: RangeCsvOptions = {}): RangeCsv {
    const name = path.basename(file);
    const fd = openSync(file, 'r'); // its error names the file
    try {
      const { size } = fstatSync(fd);
      if (size === 0) throw new Error(`${name} is empty`);
      return new RangeCsv(fd, name, size, options);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** 4 or 6: the address family of the file's ranges. */
  get ipVersion(): 4 | 6 {
    return this.family === 4 ? 4 : 6;
  }

  /** Page reads from the file so far. */
  get reads(): number {
    return this.pages.reads;
  }

  /**
   * The row whose range holds `ip` and where it starts in the file (a stable key for caching), or undefined
   * when no range holds it or `ip` is of the other family. Throws for a string that is not an IP address.
   */
  find(ip: string): { offset: number; row: RangeRow } | undefined {
    if (this.fd === undefined) throw new Error(`${this.name} is closed`);
    if (addressBytes(ip, this.ip) !== this.family) return undefined;
    // The last line whose first address is <= ip. Invariant: lo is a line start whose first address is <= ip
    // (or 0, not yet checked); no line starting at or after hi begins at or below ip.
    let lo = 0;
    let hi = this.size;
    for (let depth = 0; hi - lo > 1; depth++) {
      const mid = lo + Math.floor((hi - lo) / 2);
      // The first probes are the same for every address: their line starts and first addresses are kept.
      let probe = depth < MEMO_DEPTH ? this.probes.get(mid) : undefined;
      if (!probe) {
        const s = this.lineStartAtOrAfter(mid);
        probe = { s, start: s < this.size ? this.startAt(s) : EMPTY };
        if (depth < MEMO_DEPTH) this.probes.set(mid, probe);
      }
      if (probe.s >= hi) hi = mid; // no line starts in [mid, hi)
      else if (compare(probe.start, this.ip, this.family) <= 0) lo = probe.s;
      else hi = probe.s;
    }
    // [lo, hi) now holds lo's line only (no line start in (lo, hi)).
    if (this.compareStart(lo) > 0) return undefined; // below the first range
    const row = this.rowAt(lo);
    if (!row || compare(this.ip, row.end, this.family) > 0) return undefined; // in a gap between ranges
    return { offset: lo, row };
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    closeSync(fd);
  }

  /** Sign of (first address of the line at `offset`) - ip. */
  private compareStart(offset: number): number {
    return compare(this.startAt(offset), this.ip, this.family);
  }

  /** The first address of the line at `offset`, as bytes (a new array). */
  private startAt(offset: number): Uint8Array {
    const n = this.readLine(offset);
    const comma = this.line.indexOf(44 /* , */, 0);
    if (comma <= 0 || comma >= n) throw this.corrupt(offset);
    const text = this.line.toString('latin1', 0, comma);
    const bytes = new Uint8Array(16);
    let length: number;
    try {
      length = addressBytes(text, bytes);
    } catch {
      throw this.corrupt(offset);
    }
    if (length !== this.family) throw this.corrupt(offset);
    return bytes.subarray(0, length);
  }

  /** The row at line start `offset`, or undefined when the line is not a range row. */
  private rowAt(offset: number): RangeRow | undefined {
    const n = this.readLine(offset);
    const fields = parseCsvLine(this.line.toString('utf8', 0, n));
    if (fields.length < 2) return undefined;
    const start = new Uint8Array(16);
    const end = new Uint8Array(16);
    try {
      const a = addressBytes(fields[0]!, start);
      const b = addressBytes(fields[1]!, end);
      if (a !== b) return undefined;
      return { start: start.subarray(0, a), end: end.subarray(0, b), fields: fields.slice(2) };
    } catch {
      return undefined;
    }
  }

  /** Copies the line starting at `offset` (without its newline) into this.line; returns its length. */
  private readLine(offset: number): number {
    let n = 0;
    let at = offset;
    const pageSize = this.pages.pageSize;
    while (at < this.size && n < MAX_LINE) {
      const page = Math.floor(at / pageSize);
      const base = this.pages.page(page);
      const from = base + (at - page * pageSize);
      const to = base + Math.min(pageSize, this.size - page * pageSize);
      const arena = this.pages.arena;
      const nl = arena.indexOf(10 /* \n */, from);
      const stop = nl === -1 || nl >= to ? to : nl;
      const take = Math.min(stop - from, MAX_LINE - n);
      arena.copy(this.line, n, from, from + take);
      n += take;
      at += take;
      if (stop !== to) break; // found the newline
    }
    if (n >= MAX_LINE) throw new Error(`${this.name} is corrupt: a line at offset ${offset} is longer than ${MAX_LINE} bytes`);
    return n > 0 && this.line[n - 1] === 13 /* \r */ ? n - 1 : n;
  }

  /** The first line start at or after `offset` (the size when there is none). */
  private lineStartAtOrAfter(offset: number): number {
    if (offset <= 0) return 0;
    // A line starts at offset when the byte before it is a newline.
    let at = offset - 1;
    const pageSize = this.pages.pageSize;
    while (at < this.size) {
      const page = Math.floor(at / pageSize);
      const base = this.pages.page(page);
      const to = base + Math.min(pageSize, this.size - page * pageSize);
      const nl = this.pages.arena.indexOf(10, base + (at - page * pageSize));
      if (nl !== -1 && nl < to) return page * pageSize + (nl - base) + 1;
      at = (page + 1) * pageSize;
    }
    return this.size;
  }

  private corrupt(offset: number): Error {
    return new Error(`${this.name} is corrupt: the line at offset ${offset} does not start with an IPv${this.ipVersion} address`);
  }
}

function compare(a: Uint8Array, b: Uint8Array, length: number): number {
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** The fields of one CSV line (RFC 4180 quoting). */
export function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q === -1) {
          value += line.slice(i);
          i = line.length;
          break;
        }
        value += line.slice(i, q);
        if (line[q + 1] === '"') {
          value += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      out.push(value);
      const comma = line.indexOf(',', i);
      if (comma === -1) return out;
      i = comma + 1;
    } else {
      const comma = line.indexOf(',', i);
      if (comma === -1) {
        out.push(line.slice(i));
        return out;
      }
      out.push(line.slice(i, comma));
      i = comma + 1;
    }
  }
}
