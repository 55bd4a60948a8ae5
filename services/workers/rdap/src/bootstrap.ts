import { readFile } from 'node:fs/promises';
import { isIPv4, isIPv6 } from 'node:net';

/**
 * RDAP service discovery from the IANA bootstrap registries (RFC 9224): dns.json maps TLDs (label
 * suffixes) to servers, ipv4.json / ipv6.json map CIDR blocks to servers.
 */

export const IANA_BOOTSTRAP_URL = 'https://data.iana.org/rdap/';
const SNAPSHOT_DIR = new URL('../bootstrap/', import.meta.url);
const FILES = ['dns', 'ipv4', 'ipv6'] as const;

interface IpBlock {
  family: 4 | 6;
  network: bigint;
  prefix: number;
  urls: string[];
}

export interface BootstrapRegistry {
  /** Publication dates of dns.json, ipv4.json, ipv6.json. */
  publication: Record<(typeof FILES)[number], string | undefined>;
  dns: Map<string, string[]>;
  /** Longest prefix first, so the first block that contains an address is its longest match. */
  ip: IpBlock[];
}

export type BootstrapFiles = Record<(typeof FILES)[number], unknown>;

/** Builds a registry from the three parsed files; throws when one is not a bootstrap file. */
export function buildRegistry(files: BootstrapFiles): BootstrapRegistry {
  const dns = new Map<string, string[]>();
  for (const [entries, urls] of services(files.dns, 'dns.json')) {
    for (const entry of entries) dns.set(entry.toLowerCase().replace(/\.$/, ''), urls);
  }
  const ip: IpBlock[] = [];
  for (const name of ['ipv4', 'ipv6'] as const) {
    for (const [entries, urls] of services(files[name], `${name}.json`)) {
      for (const cidr of entries) {
        const block = parseCidr(cidr);
        if (block) ip.push({ ...block, urls });
      }
    }
  }
  ip.sort((a, b) => b.prefix - a.prefix);
  return { publication: { dns: publication(files.dns), ipv4: publication(files.ipv4), ipv6: publication(files.ipv6) }, dns, ip };
}

function services(file: unknown, name: string): Array<[string[], string[]]> {
  const list = (file as { services?: unknown })?.services;
  if (!Array.isArray(list)) throw new Error(`${name} has no "services" array`);
  return list.filter(
    (s): s is [string[], string[]] =>
      Array.isArray(s) && Array.isArray(s[0]) && Array.isArray(s[1]) && s[1].length > 0 && s[1].every((u: unknown) => typeof u === 'string'),
  );
}

function publication(file: unknown): string | undefined {
  const value = (file as { publication?: unknown })?.publication;
  return typeof value === 'string' ? value : undefined;
}

/** The server for a domain: the entry matching the most trailing labels (RFC 9224 section 4). */
export function findDomainServer(registry: BootstrapRegistry, name: string): string | undefined {
  const labels = name.toLowerCase().replace(/\.$/, '').split('.');
  for (let i = 0; i < labels.length; i += 1) {
    const urls = registry.dns.get(labels.slice(i).join('.'));
    if (urls) return preferHttps(urls);
  }
  return undefined;
}

/** The server for an address: the longest matching prefix (RFC 9224 section 5). */
export function findIpServer(registry: BootstrapRegistry, ip: string): string | undefined {
  const addr = parseIp(ip);
  if (!addr) return undefined;
  const bits = addr.family === 4 ? 32 : 128;
  const block = registry.ip.find(
    (b) => b.family === addr.family && addr.value >> BigInt(bits - b.prefix) === b.network >> BigInt(bits - b.prefix),
  );
  return block ? preferHttps(block.urls) : undefined;
}

function preferHttps(urls: string[]): string {
  return urls.find((u) => u.toLowerCase().startsWith('https:')) ?? urls[0]!;
}

/** An address as a number; IPv4-mapped IPv6 (::ffff:a.b.c.d) counts as the IPv4 address it carries. */
export function parseIp(text: string): { family: 4 | 6; value: bigint } | undefined {
  const ip = text.split('%')[0]!.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  if (mapped) return parseIp(mapped[1]!);
  if (isIPv4(ip)) return { family: 4, value: ip.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n) };
  if (!isIPv6(ip)) return undefined;
  // A trailing dotted quad is the last two 16-bit groups.
  const text6 = ip.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) => `${hex16(a, b)}:${hex16(c, d)}`);
  const [head = '', rest = ''] = text6.split('::');
  const left = head ? head.split(':') : [];
  const right = text6.includes('::') && rest ? rest.split(':') : [];
  const groups = [...left, ...Array(text6.includes('::') ? 8 - left.length - right.length : 0).fill('0'), ...right];
  return { family: 6, value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

const hex16 = (hi: string, lo: string) => ((Number(hi) << 8) | Number(lo)).toString(16);

function parseCidr(cidr: string): Omit<IpBlock, 'urls'> | undefined {
  const [addr = '', len] = cidr.split('/');
  const parsed = parseIp(addr);
  if (!parsed || (parsed.family === 6 && addr.includes('.'))) return undefined;
  const bits = parsed.family === 4 ? 32 : 128;
  const prefix = len === undefined ? bits : Number(len);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) return undefined;
  return { family: parsed.family, network: parsed.value, prefix };
}

/** The snapshot shipped in services/workers/rdap/bootstrap/. */
export async function loadSnapshot(dir: URL = SNAPSHOT_DIR): Promise<BootstrapRegistry> {
  const texts = await Promise.all(FILES.map((f) => readFile(new URL(`${f}.json`, dir), 'utf8')));
  const [dns, ipv4, ipv6] = texts.map((t) => JSON.parse(t) as unknown);
  return buildRegistry({ dns, ipv4, ipv6 });
}

/**
 * Fresh registries from IANA; rejects on any failure so the caller keeps what it has. Fetched through the
 * worker's RDAP client, so redirects, the target policy and RDAP_MAX_RESPONSE_BYTES apply here as well.
 */
export async function fetchBootstrap(
  http: { get(url: string, signal: AbortSignal): Promise<{ status: number; body: Buffer }> },
  signal: AbortSignal,
  baseUrl = IANA_BOOTSTRAP_URL,
): Promise<BootstrapRegistry> {
  const files = await Promise.all(
    FILES.map(async (f) => {
      const res = await http.get(new URL(`${f}.json`, baseUrl).toString(), signal);
      if (res.status < 200 || res.status > 299) throw new Error(`${f}.json: HTTP ${res.status}`);
      return JSON.parse(res.body.toString('utf8')) as unknown;
    }),
  );
  const [dns, ipv4, ipv6] = files;
  return buildRegistry({ dns, ipv4, ipv6 });
}
