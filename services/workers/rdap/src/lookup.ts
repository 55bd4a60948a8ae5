import { STATUS_CODES } from 'node:http';
import { Type } from '@sinclair/typebox';
import { getDomain } from 'tldts';
import { addressScope, errorMessage, permanentError, ServiceType, targetPolicyFromConfig, transientError } from '@lookup/contracts';
import { resolverSettings } from '@lookup/dns';
import { defineLookupService, type LookupContext, type LookupData, type LookupService } from '@lookup/worker-kit';
import { fetchBootstrap, findDomainServer, findIpServer, loadSnapshot, type BootstrapRegistry } from './bootstrap.ts';
import { rdapErrorText, summariseRdap } from './parse.ts';
import { createRdapHttp, header, type RdapHttp, type RdapHttpResponse } from './rdap-http.ts';

export interface RdapOptions {
  /**
   * Fetch fresh IANA bootstrap files in the background at start-up. Default: only when RDAP_BASE_URL is
   * unset and NODE_ENV is not 'test' (tests must not reach the internet).
   */
  refreshBootstrap?: boolean;
}

interface QueryPlan {
  queryType: 'ip' | 'domain';
  query: string;
  server: string;
  url: string;
}

const REFRESH_TIMEOUT_MS = 5000;
/** Redirects followed per query (registries point to each other: one is usual, two rare). */
const MAX_REDIRECTS = 3;
/** Responses up to this size (bytes) are kept whole in the result as `raw`. */
const RAW_LIMIT = 1024;

const Text = (description?: string) => Type.Optional(Type.String(description ? { description } : {}));
const Texts = (description?: string) => Type.Optional(Type.Array(Type.String(), description ? { description } : {}));

/** A contact of an RDAP object (and of its nested entities), its vCard flattened (parse.ts, RdapEntity). */
const RdapEntitySchema = Type.Object(
  {
    handle: Text(),
    roles: Type.Array(Type.String(), { description: 'e.g. registrant, registrar, abuse, technical' }),
    name: Text(),
    organization: Text(),
    kind: Text('vCard kind: individual, org, ...'),
    email: Text(),
    phone: Text(),
    address: Text(),
    ianaRegistrarId: Text(),
  },
  { additionalProperties: false },
);

/**
 * RDAP's result data: the query made and, when the registry has the object, a summary of it (RFC 9083 fields
 * people look for; each present only when the registry sent it) and, for small answers, the whole answer as `raw`.
 */
export const RdapDataSchema = Type.Object(
  {
    query: Type.String({ description: 'What was asked: the address, or the registrable domain (bbc.co.uk for www.bbc.co.uk)' }),
    queryType: Type.Union([Type.Literal('ip'), Type.Literal('domain')]),
    server: Type.String({ description: 'The RDAP base URL asked' }),
    url: Type.String({ description: 'The query URL' }),
    found: Type.Boolean({ description: 'false when the registry answered 404' }),
    objectClassName: Text('ip network, domain, autnum, ...'),
    handle: Text(),
    name: Text(),
    ldhName: Text('The domain name, lower-case'),
    unicodeName: Text(),
    type: Text(),
    country: Text(),
    ipVersion: Text('v4 or v6'),
    startAddress: Text(),
    endAddress: Text(),
    cidrs: Texts('The network as CIDR blocks'),
    parentHandle: Text(),
    startAutnum: Type.Optional(Type.Number()),
    endAutnum: Type.Optional(Type.Number()),
    originAutnums: Type.Optional(Type.Array(Type.Number(), { description: 'AS numbers announcing the network (ARIN)' })),
    status: Texts(),
    events: Type.Optional(
      Type.Record(Type.String(), Type.String(), { description: 'Event dates keyed by action in camelCase: registration, expiration, lastChanged, ...' }),
    ),
    registrant: Text("The registrant entity's name"),
    registrar: Type.Optional(Type.Object({ name: Text(), ianaId: Text() }, { additionalProperties: false })),
    abuseEmail: Text(),
    entities: Type.Optional(Type.Array(RdapEntitySchema, { description: 'Every entity, nested ones flattened' })),
    nameservers: Texts('Name server names, lower-case'),
    delegationSigned: Type.Optional(Type.Boolean({ description: 'DNSSEC: whether the delegation is signed' })),
    port43: Text('The WHOIS server'),
    raw: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: `The whole RDAP answer, when at most ${RAW_LIMIT} bytes` })),
  },
  { additionalProperties: false, description: 'RDAP: registration data of an IP network or a registrable domain' },
);

/** RDAP (RFC 7480-7484): registration data of an IP network or a registrable domain. */
export function createRdapLookup(options: RdapOptions = {}): LookupService {
  return defineLookupService({
    service: ServiceType.RDAP,
    dataSchema: RdapDataSchema,
    async setup({ config, logger }) {
      let registry = await loadSnapshot();
      const http = createRdapHttp({
        policy: targetPolicyFromConfig(config),
        trustedBaseUrl: config.rdapBaseUrl,
        dns: resolverSettings(config.dnsServers, config.lookupTimeoutMs, 5000),
        maxRedirects: MAX_REDIRECTS,
        maxResponseBytes: config.rdapMaxResponseBytes,
      });
      const refresh = new AbortController();
      const shouldRefresh = options.refreshBootstrap ?? (!config.rdapBaseUrl && config.rdapBootstrapRefresh);
      if (shouldRefresh) {
        fetchBootstrap(http, AbortSignal.any([refresh.signal, AbortSignal.timeout(REFRESH_TIMEOUT_MS)]))
          .then((fresh) => {
            if (fresh.dns.size === 0 || fresh.ip.length === 0) return;
            registry = fresh;
            logger.info({ publication: fresh.publication }, 'RDAP bootstrap registries refreshed from IANA');
          })
          .catch((err) => logger.debug({ reason: errorMessage(err) }, 'RDAP bootstrap refresh failed; using the shipped snapshot'));
      }
      return {
        lookup: async (ctx) => query(ctx, http, plan(ctx, config.rdapBaseUrl, registry)),
        close: async () => {
          refresh.abort();
          await http.close();
        },
      };
    },
  });
}

export const rdapLookup = createRdapLookup();

function plan(ctx: LookupContext, baseUrl: string | undefined, registry: BootstrapRegistry): QueryPlan {
  if (ctx.targetType === 'IPAddress') {
    // Zone dropped; IPv4-mapped IPv6 asked as the IPv4 address registries know it by.
    const ip = ctx.target.split('%')[0]!.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
    const server = baseUrl ?? findIpServer(registry, ip);
    if (!server) {
      const scope = addressScope(ip);
      const why = scope === 'public' ? 'no RDAP service in the IANA bootstrap registry covers it' : `it is a ${scope} address, which no registry describes`;
      throw permanentError('RDAP_NO_SERVER', `no RDAP data for ${ip}: ${why}`);
    }
    return { queryType: 'ip', query: ip, server, url: join(server, 'ip', ip) };
  }
  // The registrable name (bbc.co.uk for www.bbc.co.uk), from the public suffix list.
  const name = getDomain(ctx.target) ?? ctx.target;
  const server = baseUrl ?? findDomainServer(registry, name);
  if (!server) {
    throw permanentError('RDAP_NO_SERVER', `no RDAP service is registered with IANA for .${name.split('.').pop()} (${name})`);
  }
  return { queryType: 'domain', query: name, server, url: join(server, 'domain', name) };
}

async function query(ctx: LookupContext, http: RdapHttp, p: QueryPlan): Promise<LookupData> {
  ctx.logger.debug({ url: p.url }, 'RDAP query');
  const res = await http.get(p.url, ctx.signal);
  const host = res.url.host;
  const base = { query: p.query, queryType: p.queryType, server: p.server, url: p.url };
  if (res.status === 404) return { ...base, found: false };
  if (res.status >= 200 && res.status < 300) {
    const body = rdapBody(res, host);
    return { ...base, found: true, ...summariseRdap(body), ...(res.body.length <= RAW_LIMIT ? { raw: body } : {}) };
  }
  throw statusError(res.status, res.headers, host, rdapErrorBody(res));
}

/**
 * A successful answer's RDAP object. Anything else (another content type, text that is not JSON, JSON that is
 * not an RDAP object) fails the lookup and is never passed on.
 */
function rdapBody(res: RdapHttpResponse, host: string): Record<string, unknown> {
  const type = mediaType(res.headers);
  if (type !== 'application/rdap+json' && type !== 'application/json') {
    throw permanentError(
      'RDAP_NOT_RDAP',
      `RDAP server ${host} answered ${res.status} with content type '${type?.slice(0, 80) ?? 'none'}', not application/rdap+json; the body was discarded`,
    );
  }
  const body = parseJson(res.body);
  if (body === undefined) throw permanentError('RDAP_NOT_RDAP', `RDAP server ${host} answered ${res.status} with a body that is not JSON; it was discarded`);
  if (!looksLikeRdap(body)) {
    throw permanentError(
      'RDAP_NOT_RDAP',
      `RDAP server ${host} answered ${res.status} with JSON that is not an RDAP object (no objectClassName or rdapConformance); it was discarded`,
    );
  }
  return body;
}

/** An error answer's body, for its title and description, only when it is an RDAP error object. */
function rdapErrorBody(res: RdapHttpResponse): unknown {
  const type = mediaType(res.headers);
  if (type !== 'application/rdap+json' && type !== 'application/json') return undefined;
  const body = parseJson(res.body);
  return looksLikeRdap(body) || typeof (body as { errorCode?: unknown })?.errorCode === 'number' ? body : undefined;
}

function looksLikeRdap(body: unknown): body is Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const obj = body as Record<string, unknown>;
  return typeof obj.objectClassName === 'string' || Array.isArray(obj.rdapConformance);
}

function mediaType(headers: Record<string, string | string[] | undefined>): string | undefined {
  return header(headers, 'content-type')?.split(';')[0]!.trim().toLowerCase() || undefined;
}

function statusError(status: number, headers: Record<string, string | string[] | undefined>, host: string, body: unknown) {
  const detail = rdapErrorText(body)?.slice(0, 300) ?? STATUS_CODES[status];
  const retryAfter = header(headers, 'retry-after');
  const message = `RDAP server ${host} answered ${status}${detail ? ` (${detail})` : ''}${retryAfter ? `; retry after ${retryAfter}` : ''}`;
  if (status === 429) return transientError('RDAP_RATE_LIMITED', message);
  if (status === 408) return transientError('RDAP_TIMEOUT', message);
  if (status >= 500) return transientError('RDAP_SERVER_ERROR', message);
  if (status >= 400) return permanentError('RDAP_REJECTED', message);
  return transientError('RDAP_BAD_RESPONSE', message); // e.g. a 1xx or 3xx without a redirect
}

/** The body as JSON, or undefined when it is not JSON (error pages often are not). */
function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function join(server: string, kind: 'ip' | 'domain', key: string): string {
  return `${server.replace(/\/+$/, '')}/${kind}/${key}`;
}
