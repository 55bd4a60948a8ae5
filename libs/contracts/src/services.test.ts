import { describe, expect, it } from 'vitest';
import { ALL_SERVICES, SERVICE_CATALOGUE, ServiceType, parseService, serviceInfo, serviceName } from './services.ts';

describe('parseService', () => {
  const accepted: [unknown, ServiceType][] = [
    ['GeoIP', ServiceType.GeoIP],
    ['geoip', ServiceType.GeoIP],
    ['GEOIP', ServiceType.GeoIP],
    [' GeoIP ', ServiceType.GeoIP],
    ['Ping', ServiceType.Ping],
    ['pInG', ServiceType.Ping],
    ['RDAP', ServiceType.RDAP],
    ['rdap', ServiceType.RDAP],
    ['ReverseDNS', ServiceType.ReverseDNS],
    ['reversedns', ServiceType.ReverseDNS],
    [0, ServiceType.GeoIP],
    [1, ServiceType.Ping],
    [2, ServiceType.RDAP],
    [3, ServiceType.ReverseDNS],
    ['0', ServiceType.GeoIP],
    ['3', ServiceType.ReverseDNS],
    [' 2 ', ServiceType.RDAP],
  ];
  it.each(accepted)('%j -> %s', (input, expected) => {
    expect(parseService(input)).toBe(expected);
  });

  const rejected: unknown[] = [
    5, -1, 1.5, Number.NaN, Infinity, '5', '-1', '1.0', '0x1', '', '  ', 'Geo IP', 'reverse-dns', 'Reverse DNS', 'whois',
    'traceroute', '__proto__', 'constructor', 'toString', null, undefined, true, {}, [], [0],
  ];
  it.each(rejected.map((r) => [r]))('%j names no service', (input) => {
    expect(parseService(input)).toBeUndefined();
  });
});

describe('catalogue', () => {
  it('lists the services with the contract numbers, in order', () => {
    expect(SERVICE_CATALOGUE.map((s) => [s.name, s.value])).toEqual([
      ['GeoIP', 0],
      ['Ping', 1],
      ['RDAP', 2],
      ['ReverseDNS', 3],
      ['DNS', 4],
    ]);
    expect(ALL_SERVICES).toEqual([0, 1, 2, 3, 4]);
    expect(new Set(SERVICE_CATALOGUE.map((s) => s.slug)).size).toBe(5);
  });

  it('serviceName / serviceInfo', () => {
    expect(serviceName(ServiceType.ReverseDNS)).toBe('ReverseDNS');
    expect(serviceInfo(ServiceType.Ping).slug).toBe('ping');
    expect(() => serviceInfo(7 as ServiceType)).toThrow(RangeError);
  });
});
