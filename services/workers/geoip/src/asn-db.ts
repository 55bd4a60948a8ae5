import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { isIPv4 } from 'node:net';
import { DBIP_ATTRIBUTION, DBIP_SOURCE, openMmdbFile, type GeoDbOptions, type MmdbFile } from './geo-db.ts';
import { RangeCsv } from './range-csv.ts';

/** The network owner: the autonomous system that announces the address's network. */
export interface AsnRecord {
  /** The AS number (e.g. 15169). */
  number: number;
  /** The organisation the AS is registered to; null when the database does not name it. */
  organization: string | null;
}

export interface AsnDb {
  /** The owner of `ip`'s network; undefined when the database knows none (or holds no networks of that family). */
  lookup(ip: string): Readonly<AsnRecord> | undefined;
  source: string;
  attribution?: string;
  /** The data's date: the package version's date or the .mmdb build time, ISO 8601. */
  databaseBuilt: string | undefined;
  close(): void;
}

/**
 * The bundled ASN data: ip-location-db's `asn` package (AS numbers from Route Views, the five RIRs' delegation
 * statistics published by the NRO, and DB-IP's IP to ASN Lite; organisation names mostly from DB-IP), all
 * CC BY 4.0. The registry holds it only as CSV (no `-mmdb` variant), one sorted range file per family, which
 * RangeCsv searches in place.
 */
export const BUNDLED_ASN_PACKAGE = '@ip-location-db/asn';
const BUNDLED_FILES = { v4: 'asn-ipv4.csv', v6: 'asn-ipv6.csv' };
export const ASN_SOURCE = 'ip-location-db asn: Route Views, NRO, DB-IP Lite (CC BY 4.0)';
export const ASN_ATTRIBUTION = 'AS numbers by Route Views (https://www.routeviews.org) and the NRO (https://www.nro.net); ' + DBIP_ATTRIBUTION;

export interface AsnDbOptions extends GeoDbOptions {
  /** Memory for CSV file pages, per file (default 512 KiB). */
  csvCacheBytes?: number;
}

/** A .mmdb ASN file's caches are smaller than a city file's: records are tiny and few (about 80,000 ASes). */
const MMDB_DEFAULTS: GeoDbOptions = { treeCacheBytes: 2 * 1024 * 1024, dataCacheBytes: 256 * 1024 };

/**
 * Opens `dbPath` (config.geoipAsnDbPath) or, when unset, the bundled ip-location-db ASN files. `dbPath` is a
 * `.mmdb` file (MaxMind's GeoLite2-ASN, or an ip-location-db `*asn*-mmdb` file: the same record layout) read by
 * MmdbReader, or a range CSV of one family in the bundled layout (`first,last,asn,organisation`). Throws an
 * error naming the file (or the missing package) when it cannot be opened: the caller carries on without
 * network owners.
 */
export async function openAsnDb(dbPath?: string, options: AsnDbOptions = {}): Promise<AsnDb> {
  if (dbPath) return /\.mmdb$/i.test(dbPath) ? openMmdb(dbPath, { ...MMDB_DEFAULTS, ...options }) : openCsvFiles([dbPath], options, path.basename(dbPath), undefined);
  let dir: string;
  let version: string | undefined;
  try {
    const pkg = createRequire(import.meta.url).resolve(`${BUNDLED_ASN_PACKAGE}/package.json`);
    dir = path.dirname(pkg);
    version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version?: string }).version;
  } catch (err) {
    throw new Error(`the ASN database package ${BUNDLED_ASN_PACKAGE} is not installed (${(err as Error).message.split('\n')[0]})`, { cause: err });
  }
  const db = openCsvFiles([path.join(dir, BUNDLED_FILES.v4), path.join(dir, BUNDLED_FILES.v6)], options, ASN_SOURCE, ASN_ATTRIBUTION);
  return { ...db, databaseBuilt: versionDate(version) };
}

/** ip-location-db versions end in the data's date and hour: 2.3.2026061719 is 2026-06-17 19:00 UTC. */
function versionDate(version: string | undefined): string | undefined {
  const m = /\.(\d{4})(\d\d)(\d\d)(\d\d)$/.exec(version ?? '');
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:00:00.000Z` : undefined;
}

function openCsvFiles(files: string[], options: AsnDbOptions, source: string, attribution: string | undefined): AsnDb {
  const opened: RangeCsv[] = [];
  try {
    for (const file of files) opened.push(openCsv(file, options));
  } catch (err) {
    for (const f of opened) f.close();
    throw err;
  }
  const byFamily = new Map(opened.map((f) => [f.ipVersion, f]));
  const max = options.recordCacheSize ?? 4096;
  // Records by (family, line offset), least recently used first; null: the row names no valid AS number.
  const records = new Map<number, Readonly<AsnRecord> | null>();
  return {
    lookup(ip) {
      const family = isIPv4(ip) ? 4 : 6;
      const file = byFamily.get(family);
      const hit = file?.find(ip);
      if (!hit) return undefined;
      const key = family === 4 ? hit.offset : -1 - hit.offset;
      let record = records.get(key);
      if (record !== undefined) {
        records.delete(key);
      } else {
        const [asn, organization] = hit.row.fields;
        const normalised = normaliseAsnRecord({ autonomous_system_number: asn, autonomous_system_organization: organization });
        record = normalised ? Object.freeze(normalised) : null;
        if (records.size >= max) records.delete(records.keys().next().value!);
      }
      records.set(key, record);
      return record ?? undefined;
    },
    source,
    ...(attribution ? { attribution } : {}),
    databaseBuilt: undefined,
    close: () => {
      for (const f of opened) f.close();
    },
  };
}

function openCsv(file: string, options: AsnDbOptions): RangeCsv {
  try {
    return RangeCsv.open(file, { cacheBytes: options.csvCacheBytes });
  } catch (err) {
    throw new Error(`cannot open the ASN database ${file}: ${(err as Error).message}`, { cause: err });
  }
}

async function openMmdb(dbPath: string, options: GeoDbOptions): Promise<AsnDb> {
  const file = openFile(dbPath, options);
  const { ipVersion, databaseType, buildEpoch } = file.reader.metadata;
  const isDbIp = /db-?ip/i.test(databaseType) || /dbip/i.test(path.basename(dbPath));
  return {
    // An IPv4-only file knows no IPv6 network's owner: unknown, not an error (the city answer still stands).
    lookup: (ip) => (ipVersion === 4 && !isIPv4(ip) ? undefined : file.match(ip)?.record),
    source: isDbIp ? DBIP_SOURCE : databaseType,
    attribution: isDbIp ? DBIP_ATTRIBUTION : undefined,
    databaseBuilt: buildEpoch.toISOString(),
    close: () => file.reader.close(),
  };
}

function openFile(file: string, options: GeoDbOptions): MmdbFile<AsnRecord> {
  try {
    return openMmdbFile(file, options, normaliseAsnRecord);
  } catch (err) {
    const message = (err as Error).message;
    // MmdbReader says "GeoIP database" when it cannot open a file; its other messages name the file.
    if (!message.startsWith('cannot open the GeoIP database ')) throw err;
    throw new Error(message.replace('cannot open the GeoIP database ', 'cannot open the ASN database '), { cause: err });
  }
}

/**
 * Reads the record layout ip-location-db's ASN files and MaxMind's GeoLite2-ASN share
 * (autonomous_system_number, autonomous_system_organization). Undefined when the record has no AS number.
 */
export function normaliseAsnRecord(raw: unknown): AsnRecord | undefined {
  const r = (raw ?? {}) as Record<string, unknown>;
  const n = r.autonomous_system_number;
  const number = typeof n === 'number' ? n : typeof n === 'string' && /^\d{1,10}$/.test(n.trim()) ? Number(n.trim()) : NaN;
  if (!Number.isSafeInteger(number) || number <= 0 || number > 0xffffffff) return undefined;
  const org = r.autonomous_system_organization;
  return { number, organization: typeof org === 'string' && org.trim() !== '' ? org.trim() : null };
}
