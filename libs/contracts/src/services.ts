/**
 * The lookup services. Numeric values are part of the HTTP contract. Every bound and list of names elsewhere
 * (message and HTTP schemas, error messages, the OpenAPI document) is derived from SERVICE_CATALOGUE below.
 */
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

/** The highest service number: services are numbered 0..MAX_SERVICE_VALUE, in catalogue order. */
export const MAX_SERVICE_VALUE: number = SERVICE_CATALOGUE.length - 1;

/** The service names, comma-separated in catalogue order ("GeoIP, Ping, ..."), for messages and descriptions. */
export const SERVICE_NAME_LIST: string = SERVICE_CATALOGUE.map((s) => s.name).join(', ');

/** Each service name with its number ("GeoIP 0, Ping 1, ..."). */
export const SERVICE_NUMBER_LIST: string = SERVICE_CATALOGUE.map((s) => `${s.name} ${s.value}`).join(', ');

/** The accepted numbers as text: "0-N" (or "0" with a single service). */
export const SERVICE_NUMBER_RANGE: string = MAX_SERVICE_VALUE > 0 ? `0-${MAX_SERVICE_VALUE}` : '0';

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
 * Parses one entry of a request's `services` array: a name (case-insensitive) or a service number
 * (SERVICE_NUMBER_RANGE).
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
