import { readSync } from 'node:fs';

export interface PageCacheOptions {
  /** An open file descriptor; the cache reads it with positional reads and never closes it. */
  fd: number;
  /** Where the cached region starts in the file, and its length in bytes. */
  start: number;
  length: number;
  /** Bytes per page. */
  pageSize: number;
  /** Pages held at most: the cache's memory is pageSize * maxPages, whatever the file's size. */
  maxPages: number;
  /** Names the file in errors. */
  name: string;
}

/**
 * A bounded cache of fixed-size pages of one region of a file, read with positional reads (pread) into one
 * preallocated arena. Eviction is CLOCK (second chance): nearly LRU, with no list to maintain on a hit.
 * Memory is the arena, allocated once and only made resident as pages are filled.
 */
export class PageCache {
  /** Every cached page lives in this buffer; `page()` returns where. */
  readonly arena: Buffer;
  readonly pageSize: number;
  readonly length: number;
  private readonly slotOfPage = new Map<number, number>();
  private readonly pageOfSlot: Int32Array;
  private readonly referenced: Uint8Array;
  private readonly maxPages: number;
  private used = 0;
  private hand = 0;
  /** Page reads from the file since the cache was made (for tests and diagnostics). */
  reads = 0;

  constructor(private readonly o: PageCacheOptions) {
    if (!(o.pageSize > 0 && o.maxPages > 0)) throw new RangeError('pageSize and maxPages must be positive');
    this.pageSize = o.pageSize;
    this.length = o.length;
    this.maxPages = Math.max(1, Math.min(o.maxPages, Math.ceil(o.length / o.pageSize)));
    this.arena = Buffer.allocUnsafeSlow(this.maxPages * o.pageSize);
    this.pageOfSlot = new Int32Array(this.maxPages).fill(-1);
    this.referenced = new Uint8Array(this.maxPages);
  }

  /** Where page `index` (region offset index * pageSize) starts in `arena`, reading it from the file if needed. */
  page(index: number): number {
    let slot = this.slotOfPage.get(index);
    if (slot === undefined) slot = this.load(index);
    this.referenced[slot] = 1;
    return slot * this.pageSize;
  }

  /** Reads `length` bytes at region offset `offset` into `target` (bypassing the cache: for spans across pages). */
  readInto(target: Buffer, offset: number, length: number): void {
    if (offset < 0 || offset + length > this.length) throw this.outOfRange(offset, length);
    this.readFully(target, 0, length, offset);
  }

  private load(index: number): number {
    const offset = index * this.pageSize;
    if (index < 0 || offset >= this.length) throw this.outOfRange(offset, 1);
    let slot: number;
    if (this.used < this.maxPages) {
      slot = this.used++;
    } else {
      while (this.referenced[this.hand]) {
        this.referenced[this.hand] = 0;
        this.hand = (this.hand + 1) % this.maxPages;
      }
      slot = this.hand;
      this.hand = (this.hand + 1) % this.maxPages;
      this.slotOfPage.delete(this.pageOfSlot[slot]!);
    }
    this.pageOfSlot[slot] = -1;
    this.readFully(this.arena, slot * this.pageSize, Math.min(this.pageSize, this.length - offset), offset);
    this.reads++;
    this.pageOfSlot[slot] = index;
    this.slotOfPage.set(index, slot);
    return slot;
  }

  private readFully(target: Buffer, at: number, length: number, offset: number): void {
    let done = 0;
    while (done < length) {
      const n = readSync(this.o.fd, target, at + done, length - done, this.o.start + offset + done);
      if (n === 0) throw new Error(`${this.o.name} is truncated: ${length - done} bytes missing at offset ${this.o.start + offset + done}`);
      done += n;
    }
  }

  private outOfRange(offset: number, length: number): Error {
    return new Error(`${this.o.name} is corrupt: a read of ${length} bytes at ${offset} is outside its ${this.o.length}-byte section`);
  }
}
