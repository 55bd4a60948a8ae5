import { STATUS_CODES } from 'node:http';
import { getDomain } from 'tldts';
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import { addressScope, errorMessage, permanentError, ServiceType, transientError } from '@lookup/contracts';
import { defineLookupService, type LookupContext, type LookupData, type LookupService } from '@lookup/worker-kit';
import { fetchBootstrap, findDomainServer, findIpServer, loadSnapshot, type BootstrapRegistry } from './bootstrap.ts';
import { rdapErrorText, summariseRdap } from './parse.ts';

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
/**
 * One keep-alive agent for every query, following the redirects RDAP relies on (a registry answers 301/302
 * for resources another registry holds). undici's request() instead of fetch(): the WHATWG layer was most of
 * this worker's CPU.
 */
const http: Dispatcher = new Agent({ keepAliveTimeout: 10_000, connections: 64 }).compose(interceptors.redirect({ maxRedirections: 5 }));
const ACCEPT = 'application/rdap+json, application/json;q=0.9';
/** Responses up to this size (JSON characters) are kept whole in the result as `raw`. */
const RAW_LIMIT = 1024;

/** RDAP (RFC 7480-7484): registration data of an IP network or a registrable domain. */
export function createRdapLookup(options: RdapOptions = {}): LookupService {
  return defineLookupService({
    service: ServiceType.RDAP,
    async setup({ config, logger }) {
      let registry = await loadSnapshot();
      const refresh = new AbortController();
      const shouldRefresh = options.refreshBootstrap ?? (!config.rdapBaseUrl && process.env.NODE_ENV !== 'test');
      if (shouldRefresh) {
        fetchBootstrap(AbortSignal.any([refresh.signal, AbortSignal.timeout(REFRESH_TIMEOUT_MS)]))
          .then((fresh) => {
            if (fresh.dns.size === 0 || fresh.ip.length === 0) return;
            registry = fresh;
            logger.info({ publication: fresh.publication }, 'RDAP bootstrap registries refreshed from IANA');
          })
          .catch((err) => logger.debug({ reason: errorMessage(err) }, 'RDAP bootstrap refresh failed; using the shipped snapshot'));
      }
      return {
        lookup: async (ctx) => query(ctx, plan(ctx, config.rdapBaseUrl, registry)),
        close: () => refresh.abort(),
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

async function query(ctx: LookupContext, p: QueryPlan): Promise<LookupData> {
  const host = new URL(p.url).host;
  ctx.logger.debug({ url: p.url }, 'RDAP query');
  let status: number;
  let headers: Record<string, string | string[] | undefined>;
  let text: string;
  try {
    const res = await request(p.url, { dispatcher: http, method: 'GET', headers: { accept: ACCEPT }, signal: ctx.signal });
    status = res.statusCode;
    headers = res.headers;
    text = await res.body.text();
  } catch (err) {
    if (ctx.signal.aborted) throw transientError('RDAP_ABORTED', `RDAP query to ${host} was cancelled`, err);
    throw transientError('RDAP_UNREACHABLE', `RDAP server ${host} could not be reached: ${causeText(err)}`, err);
  }
  const body = parseJson(text);
  const base = { query: p.query, queryType: p.queryType, server: p.server, url: p.url };
  if (status === 404) return { ...base, found: false };
  if (status >= 200 && status < 300) {
    if (body === undefined) throw transientError('RDAP_BAD_RESPONSE', `RDAP server ${host} answered ${status} without JSON`);
    return { ...base, found: true, ...summariseRdap(body), ...(text.length <= RAW_LIMIT ? { raw: body } : {}) };
  }
  throw statusError(status, headers, host, body);
}

function statusError(status: number, headers: Record<string, string | string[] | undefined>, host: string, body: unknown) {
  const detail = rdapErrorText(body) ?? STATUS_CODES[status];
  const header = headers['retry-after'];
  const retryAfter = Array.isArray(header) ? header[0] : header;
  const message = `RDAP server ${host} answered ${status}${detail ? ` (${detail})` : ''}${retryAfter ? `; retry after ${retryAfter}` : ''}`;
  if (status === 429) return transientError('RDAP_RATE_LIMITED', message);
  if (status === 408) return transientError('RDAP_TIMEOUT', message);
  if (status >= 500) return transientError('RDAP_SERVER_ERROR', message);
  if (status >= 400) return permanentError('RDAP_REJECTED', message);
  return transientError('RDAP_BAD_RESPONSE', message); // e.g. more redirects than we follow
}

/** The body as JSON, or undefined when it is not JSON (error pages often are not). */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function join(server: string, kind: 'ip' | 'domain', key: string): string {
  return `${server.replace(/\/+$/, '')}/${kind}/${key}`;
}

function causeText(err: unknown): string {
  const cause = (err as { cause?: unknown })?.cause;
  const code = (cause as { code?: unknown })?.code;
  return typeof code === 'string' ? code : errorMessage(cause ?? err);
}
