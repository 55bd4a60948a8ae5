import { describe, expect, it } from 'vitest';
import { normaliseRecord } from './geo-db.ts';

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
