import { getDomain } from 'tldts';
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
  let res: Response;
  let body: unknown;
  try {
    res = await fetch(p.url, { headers: { accept: 'application/rdap+json, application/json;q=0.9' }, signal: ctx.signal });
    body = await readJson(res);
  } catch (err) {
    if (ctx.signal.aborted) throw transientError('RDAP_ABORTED', `RDAP query to ${host} was cancelled`, err);
    throw transientError('RDAP_UNREACHABLE', `RDAP server ${host} could not be reached: ${causeText(err)}`, err);
  }
  const base = { query: p.query, queryType: p.queryType, server: p.server, url: res.url || p.url };
  if (res.status === 404) return { ...base, found: false };
  if (res.ok) {
    if (body === undefined) throw transientError('RDAP_BAD_RESPONSE', `RDAP server ${host} answered ${res.status} without JSON`);
    const small = JSON.stringify(body).length <= RAW_LIMIT;
    return { ...base, found: true, ...summariseRdap(body), ...(small ? { raw: body } : {}) };
  }
  throw statusError(res, host, body);
}

function statusError(res: Response, host: string, body: unknown) {
  const detail = rdapErrorText(body) ?? res.statusText;
  const retryAfter = res.headers.get('retry-after');
  const message = `RDAP server ${host} answered ${res.status}${detail ? ` (${detail})` : ''}${retryAfter ? `; retry after ${retryAfter}` : ''}`;
  if (res.status === 429) return transientError('RDAP_RATE_LIMITED', message);
  if (res.status === 408) return transientError('RDAP_TIMEOUT', message);
  if (res.status >= 500) return transientError('RDAP_SERVER_ERROR', message);
  if (res.status >= 400) return permanentError('RDAP_REJECTED', message);
  return transientError('RDAP_BAD_RESPONSE', message); // e.g. a redirect fetch did not follow
}

/** The body as JSON, or undefined when it is not JSON (error pages often are not). */
async function readJson(res: Response): Promise<unknown> {
  const text = await res.text();
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
