import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { addressBytes } from './ip-bytes.ts';
import { BufferSource, MmdbDecoder, PagedSource } from './mmdb-decoder.ts';
import { PageCache } from './page-cache.ts';

/** The database's metadata, in the shape mmdb-lib (maxmind) gives it. */
export interface MmdbMetadata {
  binaryFormatMajorVersion: number;
  binaryFormatMinorVersion: number;
  buildEpoch: Date;
  databaseType: string;
  description: Record<string, string>;
  ipVersion: number;
  languages: string[];
  nodeByteSize: number;
  nodeCount: number;
  recordSize: number;
  searchTreeSize: number;
  treeDepth: number;
}

export interface MmdbReaderOptions {
  /** Memory for search tree nodes read from the file (default 4 MiB). */
  treeCacheBytes?: number;
  /** Memory for data section pages read from the file (default 1 MiB). */
  dataCacheBytes?: number;
  /** Bytes per cached page (default 4096). */
  pageSize?: number;
}

export interface MmdbNetwork {
  /** Where the network's record starts in the data section (pass to `decode`); undefined: no record. */
  dataOffset: number | undefined;
  /** Prefix length of the network the address is in (of the IPv4 address, for IPv4 in an IPv6 tree). */
  prefixLength: number;
}

const METADATA_MARKER = Buffer.from('abcdef4d61784d696e642e636f6d', 'hex'); // "\xab\xcd\xefMaxMind.com"
const METADATA_MAX = 128 * 1024;
const DATA_SECTION_SEPARATOR = 16;
/** The first PREFIX_BITS bits of an address index a table of where the tree walk stands after them. */
const PREFIX_BITS = 16;

/**
 * Reads a MaxMind DB (.mmdb) file without holding it in memory: the file stays open and search tree nodes and
 * data records are read with positional reads through two bounded page caches. Where the walk stands after an
 * address's first 16 bits is remembered per 16-bit prefix (a 320 KiB table filled as prefixes are met), so a
 * lookup walks only the rest of the tree, whose nodes lie close together (writers number nodes depth first):
 * usually one page. Results are those of mmdb-lib's Reader (maxmind). Lookups are synchronous.
 */
export class MmdbReader {
  readonly metadata: MmdbMetadata;
  private readonly tree: PageCache;
  private readonly data: PageCache;
  private readonly decoder: MmdbDecoder;
  private readonly nodeCount: number;
  private readonly nodeByteSize: number;
  private readonly recordSize: number;
  private readonly nodesPerPage: number;
  private readonly ipv4Start: number;
  private readonly bytes = new Uint8Array(16);
  private readonly prefixTables = new Map<number, PrefixTable>();
  // The tree page last fetched (see node()).
  private page = -1;
  private pageBase = 0;
  private fd: number | undefined;

  private constructor(fd: number, readonly name: string, fileSize: number, options: MmdbReaderOptions) {
    this.fd = fd;
    const { metadata, metadataStart } = readMetadata(fd, name, fileSize);
    this.metadata = metadata;
    this.nodeCount = metadata.nodeCount;
    this.nodeByteSize = metadata.nodeByteSize;
    this.recordSize = metadata.recordSize;
    const dataStart = metadata.searchTreeSize + DATA_SECTION_SEPARATOR;
    if (dataStart > metadataStart) {
      throw new Error(`${name} is corrupt or truncated: its search tree (${metadata.searchTreeSize} bytes) does not fit before its metadata`);
    }
    const separator = Buffer.alloc(DATA_SECTION_SEPARATOR);
    readSync(fd, separator, 0, DATA_SECTION_SEPARATOR, metadata.searchTreeSize);
    if (separator.some((b) => b !== 0)) throw new Error(`${name} is corrupt: no data section separator after its search tree`);

    const pageSize = options.pageSize ?? 4096;
    this.nodesPerPage = Math.max(1, Math.floor(pageSize / this.nodeByteSize));
    const treePageSize = this.nodesPerPage * this.nodeByteSize; // pages hold whole nodes
    this.tree = new PageCache({
      fd, name, start: 0, length: metadata.searchTreeSize, pageSize: treePageSize,
      maxPages: Math.floor((options.treeCacheBytes ?? 4 * 1024 * 1024) / treePageSize),
    });
    this.data = new PageCache({
      fd, name, start: dataStart, length: metadataStart - dataStart, pageSize,
      maxPages: Math.floor((options.dataCacheBytes ?? 1024 * 1024) / pageSize),
    });
    this.decoder = new MmdbDecoder(new PagedSource(this.data));
    this.ipv4Start = this.findIpv4Start();
  }

  /** Opens `file`; throws an error naming the file when it cannot be read or is not a MaxMind DB. */
  static open(file: string, options: MmdbReaderOptions = {}): MmdbReader {
    const name = path.basename(file);
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (err) {
      throw new Error(`cannot open the GeoIP database ${file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const { size } = fstatSync(fd);
      return new MmdbReader(fd, name, size, options);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** The network `ip` is in and where its record is. Throws for a string that is not an IP address. */
  find(ip: string): MmdbNetwork {
    if (this.fd === undefined) throw new Error(`${this.name} is closed`);
    const bytes = this.bytes;
    const length = addressBytes(ip, bytes);
    const bitLength = length * 8;
    const nodeCount = this.nodeCount;
    // As mmdb-lib: a 4-byte address walks an IPv6 tree from the node of ::/96 and counts its own 32 bits.
    const start = length === 4 ? this.ipv4Start : 0;
    let node = start;
    let depth = 0;

    if (start < nodeCount) {
      const table = this.prefixTable(start);
      const prefix = (bytes[0]! << 8) | bytes[1]!;
      const known = table.depth[prefix]!;
      if (known !== 0) {
        node = table.node[prefix]!;
        depth = known - 1;
      } else {
        for (; depth < PREFIX_BITS && node < nodeCount; depth++) node = this.record(node, (bytes[depth >> 3]! >> (7 - (depth & 7))) & 1);
        table.node[prefix] = node;
        table.depth[prefix] = depth + 1;
      }
    }
    for (; depth < bitLength && node < nodeCount; depth++) node = this.record(node, (bytes[depth >> 3]! >> (7 - (depth & 7))) & 1);

    return { dataOffset: node > nodeCount ? node - nodeCount - DATA_SECTION_SEPARATOR : undefined, prefixLength: depth };
  }

  /** Decodes the record at `dataOffset` (from `find`). */
  decode(dataOffset: number): unknown {
    if (this.fd === undefined) throw new Error(`${this.name} is closed`);
    return this.decoder.decode(dataOffset);
  }

  /** mmdb-lib's Reader.getWithPrefixLength: [record or null, prefix length]. */
  getWithPrefixLength(ip: string): [unknown, number] {
    const { dataOffset, prefixLength } = this.find(ip);
    return [dataOffset === undefined ? null : this.decode(dataOffset), prefixLength];
  }

  /** Page reads from the file so far (tree, data). */
  get reads(): { tree: number; data: number } {
    return { tree: this.tree.reads, data: this.data.reads };
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    closeSync(fd);
  }

  /** The left (bit 0) or right (bit 1) record of `node`. */
  private record(node: number, bit: number): number {
    const page = Math.floor(node / this.nodesPerPage);
    if (page !== this.page) {
      // Every tree page fetch goes through here, so page/pageBase always name a page still in the cache.
      this.pageBase = this.tree.page(page);
      this.page = page;
    }
    const a = this.tree.arena;
    const o = this.pageBase + (node - page * this.nodesPerPage) * this.nodeByteSize;
    switch (this.recordSize) {
      case 24:
        return bit ? (a[o + 3]! << 16) | (a[o + 4]! << 8) | a[o + 5]! : (a[o]! << 16) | (a[o + 1]! << 8) | a[o + 2]!;
      case 28:
        return bit
          ? ((a[o + 3]! & 0x0f) << 24) | (a[o + 4]! << 16) | (a[o + 5]! << 8) | a[o + 6]!
          : ((a[o + 3]! & 0xf0) << 20) | (a[o]! << 16) | (a[o + 1]! << 8) | a[o + 2]!;
      default:
        return a.readUInt32BE(bit ? o + 4 : o);
    }
  }

  private findIpv4Start(): number {
    if (this.metadata.ipVersion === 4) return 0;
    let node = 0;
    for (let i = 0; i < 96 && node < this.nodeCount; i++) node = this.record(node, 0);
    return node;
  }

  private prefixTable(start: number): PrefixTable {
    let table = this.prefixTables.get(start);
    if (!table) {
      table = { node: new Uint32Array(1 << PREFIX_BITS), depth: new Uint8Array(1 << PREFIX_BITS) };
      this.prefixTables.set(start, table);
    }
    return table;
  }
}

interface PrefixTable {
  /** Record value reached after the prefix's first bits (a node, or a data pointer / no-data if it ended sooner). */
  node: Uint32Array;
  /** Bits walked + 1; 0 while the prefix has not been met. */
  depth: Uint8Array;
}

function readMetadata(fd: number, name: string, fileSize: number): { metadata: MmdbMetadata; metadataStart: number } {
  const tailLength = Math.min(fileSize, METADATA_MAX);
  const tail = Buffer.alloc(tailLength);
  if (tailLength > 0) readSync(fd, tail, 0, tailLength, fileSize - tailLength);
  const marker = tail.lastIndexOf(METADATA_MARKER);
  if (marker === -1) {
    const head = Buffer.alloc(2);
    if (fileSize >= 2) readSync(fd, head, 0, 2, 0);
    const why = fileSize === 0 ? 'the file is empty' : head[0] === 0x1f && head[1] === 0x8b ? 'it is gzip-compressed; decompress it first' : 'no metadata marker in its last 128 KiB';
    throw new Error(`${name} is not a MaxMind DB (.mmdb) file: ${why}`);
  }
  const metadataStart = fileSize - tailLength + marker;
  let raw: Record<string, any>;
  try {
    raw = new MmdbDecoder(new BufferSource(tail.subarray(marker + METADATA_MARKER.length))).decode(0) as Record<string, any>;
  } catch (err) {
    throw new Error(`${name} is not a readable MaxMind DB file: its metadata cannot be decoded (${(err as Error).message})`, { cause: err });
  }
  const problem = (what: string) => new Error(`${name} is not a supported MaxMind DB file: ${what}`);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw problem('its metadata is not a map');
  if (raw.binary_format_major_version !== 2) throw problem(`binary format ${raw.binary_format_major_version} (2 is supported)`);
  if (![24, 28, 32].includes(raw.record_size)) throw problem(`record size ${raw.record_size} (24, 28 or 32 are supported)`);
  if (raw.ip_version !== 4 && raw.ip_version !== 6) throw problem(`IP version ${raw.ip_version}`);
  if (!Number.isInteger(raw.node_count) || raw.node_count <= 0) throw problem(`node count ${raw.node_count}`);
  return {
    metadataStart,
    metadata: {
      binaryFormatMajorVersion: raw.binary_format_major_version,
      binaryFormatMinorVersion: raw.binary_format_minor_version,
      buildEpoch: new Date(Number(raw.build_epoch) * 1000),
      databaseType: raw.database_type,
      description: raw.description,
      ipVersion: raw.ip_version,
      languages: raw.languages,
      nodeByteSize: raw.record_size / 4,
      nodeCount: raw.node_count,
      recordSize: raw.record_size,
      searchTreeSize: (raw.node_count * raw.record_size) / 4,
      treeDepth: Math.pow(2, raw.ip_version + 1),
    },
  };
}
