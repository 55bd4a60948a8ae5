/** The lookup services. Numeric values are part of the HTTP contract (0-3). */
export enum ServiceType {
  GeoIP = 0,
  Ping = 1,
  RDAP = 2,
  ReverseDNS = 3,
  DNS = 4,
}

export type ServiceName = keyof typeof ServiceType;

export interface ServiceInfo {
  name: ServiceName;
  value: ServiceType;
  description: string;
  /** Routing slug: command routing key `lookup.<slug>`, queue `<ns>.lookup.<slug>`, `npm run start:<slug>`. */
  slug: string;
}

export const SERVICE_CATALOGUE: readonly ServiceInfo[] = Object.freeze([
  { name: 'GeoIP', value: ServiceType.GeoIP, description: 'Geographic location and network owner from a bundled offline database', slug: 'geoip' },
  { name: 'Ping', value: ServiceType.Ping, description: 'Network reachability and round-trip latency (ICMP echo, TCP connect fallback)', slug: 'ping' },
  { name: 'RDAP', value: ServiceType.RDAP, description: 'Registration data via the RDAP protocol (RFC 7480-7484)', slug: 'rdap' },
  { name: 'ReverseDNS', value: ServiceType.ReverseDNS, description: 'Reverse DNS lookup (PTR record)', slug: 'reverse-dns' },
  { name: 'DNS', value: ServiceType.DNS, description: 'Forward DNS records (A, AAAA, CNAME, MX, NS, TXT, SOA)', slug: 'dns' },
] as ServiceInfo[]);

export const ALL_SERVICES: readonly ServiceType[] = Object.freeze(SERVICE_CATALOGUE.map((s) => s.value));

export function serviceInfo(service: ServiceType): ServiceInfo {
  const info = SERVICE_CATALOGUE[service];
  if (!info || info.value !== service) throw new RangeError(`unknown service ${String(service)}`);
  return info;
}

export function serviceName(service: ServiceType): ServiceName {
  return serviceInfo(service).name;
}

const byLowerName = new Map(SERVICE_CATALOGUE.map((s) => [s.name.toLowerCase(), s.value]));

/**
 * Parses one entry of a request's `services` array: a name (case-insensitive) or a number 0-3.
 * Numeric strings ("1") are accepted as numbers. Returns undefined when it names no service.
 */
export function parseService(input: unknown): ServiceType | undefined {
  if (typeof input === 'number') {
    return Number.isInteger(input) && input >= 0 && input < SERVICE_CATALOGUE.length ? (input as ServiceType) : undefined;
  }
  if (typeof input === 'string') {
    const s = input.trim();
    if (/^\d+$/.test(s)) return parseService(Number(s));
    return byLowerName.get(s.toLowerCase());
  }
  return undefined;
}
