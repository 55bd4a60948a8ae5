import type { PageCache } from './page-cache.ts';

/**
 * Bytes the decoder reads: `at(offset, length)` makes `length` bytes at `offset` readable in `buf` and returns
 * their index there. `buf` may change from call to call, so read it after each `at`.
 */
export interface ByteSource {
  buf: Buffer;
  at(offset: number, length: number): number;
}

/** A whole section held in memory (the metadata: at most 128 KiB). */
export class BufferSource implements ByteSource {
  constructor(public buf: Buffer) {}
  at(offset: number, length: number): number {
    if (offset < 0 || offset + length > this.buf.length) throw new RangeError(`a read of ${length} bytes at ${offset} is outside the ${this.buf.length}-byte section`);
    return offset;
  }
}

const SCRATCH_KEEP = 64 * 1024;

/**
 * A section read through a PageCache. Reads within one page return the page in the cache's arena; the few that
 * span two pages are read straight from the file into a scratch buffer.
 */
export class PagedSource implements ByteSource {
  buf: Buffer;
  private scratch = Buffer.allocUnsafeSlow(512);
  // The page last returned, so that the common run of reads within one page skips the cache's map.
  private lo = 0;
  private hi = 0;
  private base = 0;

  constructor(private readonly cache: PageCache) {
    this.buf = cache.arena;
  }

  at(offset: number, length: number): number {
    if (offset >= this.lo && offset + length <= this.hi) {
      this.buf = this.cache.arena;
      return this.base + (offset - this.lo);
    }
    const size = this.cache.pageSize;
    const page = Math.floor(offset / size);
    const lo = page * size;
    const hi = Math.min(lo + size, this.cache.length);
    if (offset >= 0 && offset + length <= hi) {
      // page() may evict the page remembered in lo/hi; they are replaced at once.
      this.base = this.cache.page(page);
      this.lo = lo;
      this.hi = hi;
      this.buf = this.cache.arena;
      return this.base + (offset - lo);
    }
    const target = length <= this.scratch.length ? this.scratch : Buffer.allocUnsafeSlow(length);
    if (length > this.scratch.length && length <= SCRATCH_KEEP) this.scratch = target;
    this.cache.readInto(target, offset, length);
    this.buf = target;
    return 0;
  }
}

// Data field types (MaxMind DB spec, "Output Data Section").
const POINTER = 1;
const UTF8_STRING = 2;
const DOUBLE = 3;
const BYTES = 4;
const UINT16 = 5;
const UINT32 = 6;
const MAP = 7;
const INT32 = 8;
const UINT64 = 9;
const UINT128 = 10;
const ARRAY = 11;
const BOOLEAN = 14;
const FLOAT = 15;

const POINTER_VALUE_OFFSET = [0, 2048, 526336, 0];
const STRING_CACHE_MAX = 4096;

/**
 * Decodes MaxMind DB data fields from a ByteSource, with the same results as mmdb-lib's Decoder (which
 * maxmind uses): the same types (BigInt for uint64/uint128, Buffer for bytes), the same leniencies.
 * Offsets are relative to the section's start, which is what pointers are relative to.
 */
export class MmdbDecoder {
  /** The offset just past the field the last decode() read. */
  next = 0;
  // Strings reached through pointers: map keys and shared values ("country_code", "US", ...). Strings are
  // immutable, so sharing them is safe; the map is emptied when full, which bounds it.
  private readonly strings = new Map<number, string>();

  constructor(private readonly src: ByteSource) {}

  decode(offset: number): unknown {
    const src = this.src;
    let i = src.at(offset, 1);
    const ctrl = src.buf[i]!;
    offset++;
    let type = ctrl >> 5;

    if (type === POINTER) {
      const pointerSize = (ctrl >> 3) & 3;
      i = src.at(offset, pointerSize + 1);
      const b = src.buf;
      let packed: number;
      if (pointerSize === 0) packed = ((ctrl & 7) << 8) | b[i]!;
      else if (pointerSize === 1) packed = ((ctrl & 7) << 16) | (b[i]! << 8) | b[i + 1]!;
      else if (pointerSize === 2) packed = (ctrl & 7) * 0x1000000 + ((b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!);
      else packed = b.readUInt32BE(i);
      const target = POINTER_VALUE_OFFSET[pointerSize]! + packed;
      const after = offset + pointerSize + 1;
      let value: unknown = this.strings.get(target);
      if (value === undefined) {
        value = this.decode(target);
        if (typeof value === 'string') {
          if (this.strings.size >= STRING_CACHE_MAX) this.strings.clear();
          this.strings.set(target, value);
        }
      }
      this.next = after;
      return value;
    }

    if (type === 0) {
      // Extended type: the next byte holds the type minus 7.
      i = src.at(offset, 1);
      type = src.buf[i]! + 7;
      if (type < 8) throw new Error(`invalid extended type at offset ${offset}`);
      offset++;
    }

    let size = ctrl & 0x1f;
    if (size >= 29) {
      const extra = size - 28;
      i = src.at(offset, extra);
      const b = src.buf;
      if (size === 29) size = 29 + b[i]!;
      else if (size === 30) size = 285 + ((b[i]! << 8) | b[i + 1]!);
      else size = 65821 + ((b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!);
      offset += extra;
    }
    return this.decodeByType(type, offset, size);
  }

  private decodeByType(type: number, offset: number, size: number): unknown {
    const src = this.src;
    switch (type) {
      case UTF8_STRING: {
        this.next = offset + size;
        if (size === 0) return '';
        const i = src.at(offset, size);
        return src.buf.toString('utf8', i, i + size);
      }
      case MAP: {
        const map: Record<string, unknown> = {};
        for (let n = 0; n < size; n++) {
          const key = this.decode(offset) as string;
          const value = this.decode(this.next);
          offset = this.next;
          map[key] = value;
        }
        this.next = offset;
        return map;
      }
      case UINT32:
      case UINT16: {
        this.next = offset + size;
        if (size === 0) return 0;
        if (size > 4) throw new Error(`invalid size for unsigned integer: ${size}`);
        const i = src.at(offset, size);
        return src.buf.readUIntBE(i, size);
      }
      case DOUBLE: {
        this.next = offset + size;
        const i = src.at(offset, 8);
        return src.buf.readDoubleBE(i);
      }
      case ARRAY: {
        const array = new Array<unknown>(size);
        for (let n = 0; n < size; n++) {
          array[n] = this.decode(offset);
          offset = this.next;
        }
        this.next = offset;
        return array;
      }
      case BOOLEAN:
        this.next = offset;
        return size !== 0;
      case FLOAT: {
        this.next = offset + size;
        const i = src.at(offset, 4);
        return src.buf.readFloatBE(i);
      }
      case BYTES: {
        this.next = offset + size;
        if (size === 0) return Buffer.alloc(0);
        const i = src.at(offset, size);
        return Buffer.from(src.buf.subarray(i, i + size)); // a copy: the page it came from is reused
      }
      case INT32: {
        this.next = offset + size;
        if (size === 0) return 0;
        if (size < 4) {
          const i = src.at(offset, size);
          return src.buf.readUIntBE(i, size);
        }
        const i = src.at(offset, 4);
        return src.buf.readInt32BE(i);
      }
      case UINT64:
      case UINT128: {
        this.next = offset + size;
        if (size > 16) throw new Error(`invalid size for big unsigned integer: ${size}`);
        let value = 0n;
        if (size === 0) return value;
        const i = src.at(offset, size);
        const b = src.buf;
        for (let n = 0; n < size; n++) value = (value << 8n) | BigInt(b[i + n]!);
        return value;
      }
    }
    throw new Error(`unknown data type ${type} at offset ${offset}`);
  }
}
