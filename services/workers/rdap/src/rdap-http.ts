import { isIP } from 'node:net';
import { Agent, request, type Dispatcher } from 'undici';
import { errorMessage, isCodedError, permanentError, transientError, type LookupError, type TargetPolicy } from '@lookup/contracts';
import { checkedLookup as sharedCheckedLookup, type ResolverSettings } from '@lookup/dns';

/**
 * The RDAP worker's HTTP client, safe to point at servers a stranger can influence (bootstrap entries, redirects):
 *
 * - Redirects are followed by hand, at most `maxRedirects` of them, only to http(s) and never from https to http.
 * - Every hop whose origin is not RDAP_BASE_URL's (operator config, trusted as it is) passes the target policy:
 *   an IP literal is checked before connecting; a host name is resolved by the connection's own `lookup`, which
 *   checks EVERY address it resolved and hands the socket exactly those addresses, so what is checked is what is
 *   connected to (no second resolution between check and connect). The URL's host is untouched, so the Host
 *   header and TLS SNI/certificate checks name the server as usual.
 * - A body larger than `maxResponseBytes` is refused from its Content-Length, or aborted while streaming as soon
 *   as it passes the cap; it is never held whole.
 */

export interface RdapHttpOptions {
  policy: TargetPolicy;
  /** RDAP_BASE_URL. Only its exact origin (scheme, host, port) skips the policy; a redirect anywhere else does not. */
  trustedBaseUrl?: string | undefined;
  /** Resolver for host names on checked hops (DNS_SERVERS, or the system's servers). */
  dns: ResolverSettings;
  maxRedirects: number;
  /** RDAP_MAX_RESPONSE_BYTES. */
  maxResponseBytes: number;
}

export interface RdapHttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body, at most maxResponseBytes long. */
  body: Buffer;
  /** Where the answer came from, after redirects. */
  url: URL;
}

export interface RdapHttp {
  get(url: string, signal: AbortSignal): Promise<RdapHttpResponse>;
  close(): Promise<void>;
}

const ACCEPT = 'application/rdap+json, application/json;q=0.9';
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** How much of a redirect's body is read (to keep the connection) before the connection is dropped instead. */
const REDIRECT_BODY_DRAIN = 64 * 1024;
export const TARGET_REFUSED = 'RDAP_TARGET_REFUSED';

export function createRdapHttp(options: RdapHttpOptions): RdapHttp {
  const trustedOrigin = options.trustedBaseUrl ? new URL(options.trustedBaseUrl).origin : undefined;
  // Keep-alive agents (undici's request() rather than fetch(): the WHATWG layer was most of this worker's CPU).
  const trusted: Dispatcher = new Agent({ keepAliveTimeout: 10_000, connections: 64 });
  const guarded: Dispatcher = new Agent({
    keepAliveTimeout: 10_000,
    connections: 64,
    connect: { lookup: checkedLookup(options.policy, options.dns) },
  });

  async function get(start: string, signal: AbortSignal): Promise<RdapHttpResponse> {
    let url = new URL(start);
    for (let redirects = 0; ; redirects += 1) {
      const isTrusted = url.origin === trustedOrigin;
      if (!isTrusted) checkLiteral(url, options.policy);
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, { dispatcher: isTrusted ? trusted : guarded, method: 'GET', headers: { accept: ACCEPT }, signal });
      } catch (err) {
        throw connectError(err, url, signal);
      }
      if (REDIRECTS.has(res.statusCode)) {
        await res.body.dump({ limit: REDIRECT_BODY_DRAIN }).catch(() => undefined);
        if (redirects >= options.maxRedirects) {
          throw permanentError('RDAP_TOO_MANY_REDIRECTS', `RDAP server ${url.host} redirected more than ${options.maxRedirects} times; giving up`);
        }
        url = redirectTarget(url, header(res.headers, 'location'));
        continue;
      }
      const body = await readCapped(res, url, options.maxResponseBytes, signal);
      return { status: res.statusCode, headers: res.headers, body, url };
    }
  }

  return {
    get,
    close: async () => {
      await Promise.allSettled([trusted.close(), guarded.close()]);
    },
  };
}

/** Where a redirect may lead: an http(s) URL, resolved against the current one, never https to http. */
export function redirectTarget(from: URL, location: string | undefined): URL {
  if (!location) throw permanentError('RDAP_BAD_RESPONSE', `RDAP server ${from.host} answered a redirect without a Location`);
  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    throw permanentError('RDAP_REDIRECT_REFUSED', `RDAP server ${from.host} redirected to an invalid URL`);
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw permanentError('RDAP_REDIRECT_REFUSED', `RDAP server ${from.host} redirected to a ${next.protocol} URL; only http and https are followed`);
  }
  if (from.protocol === 'https:' && next.protocol === 'http:') {
    throw permanentError('RDAP_REDIRECT_REFUSED', `RDAP server ${from.host} redirected from https to http (${next.host}); downgrades are refused`);
  }
  // Credentials in a Location are never sent on.
  next.username = '';
  next.password = '';
  next.hash = '';
  return next;
}

/** A hop to an IP literal: checked here, since the connection does not resolve (and so never calls lookup). */
function checkLiteral(url: URL, policy: TargetPolicy): void {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!isIP(host)) return;
  const verdict = policy.checkAddress(host);
  if (!verdict.allowed) throw refused(url.host, host, host, verdict);
}

function refused(where: string, hostname: string, ip: string, verdict: { rule: string; message: string }): LookupError {
  const resolved = hostname === ip ? '' : `${hostname} resolves to ${ip}, `;
  return permanentError(
    TARGET_REFUSED,
    `RDAP refused to connect to ${where}: ${resolved}refused by the target policy (rule '${verdict.rule}': ${verdict.message})`,
  );
}

/**
 * The connection lookup of checked hops (libs/dns checkedLookup): every address a host name resolves to must pass
 * the policy, and the socket gets exactly those addresses; a refusal is this worker's RDAP_TARGET_REFUSED.
 */
export function checkedLookup(policy: TargetPolicy, dns: ResolverSettings) {
  return sharedCheckedLookup(policy, dns, (hostname, ip, verdict) => refused(hostname, hostname, ip, verdict));
}

/** Reads at most `cap` bytes; more (announced or streamed) aborts the response and fails the lookup. */
async function readCapped(res: Dispatcher.ResponseData, url: URL, cap: number, signal: AbortSignal): Promise<Buffer> {
  const limit = `RDAP_MAX_RESPONSE_BYTES (${cap} bytes)`;
  const tooLarge = (what: string) => permanentError('RDAP_RESPONSE_TOO_LARGE', `RDAP server ${url.host} ${what}`);
  const length = Number(header(res.headers, 'content-length'));
  if (Number.isFinite(length) && length > cap) {
    res.body.destroy();
    throw tooLarge(`announced ${length} bytes (Content-Length), more than ${limit}; the answer was refused unread`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > cap) {
        res.body.destroy();
        throw tooLarge(`sent more than ${limit}; the answer was cut off and refused`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (isCodedError(err)) throw err;
    throw connectError(err, url, signal);
  }
  return Buffer.concat(chunks, total);
}

function connectError(err: unknown, url: URL, signal: AbortSignal): LookupError {
  const policy = findCoded(err);
  if (policy) return policy;
  if (signal.aborted) return transientError('RDAP_ABORTED', `RDAP query to ${url.host} was cancelled`, err);
  return transientError('RDAP_UNREACHABLE', `RDAP server ${url.host} could not be reached: ${causeText(err)}`, err);
}

/** A LookupError raised by our lookup, however deep undici and net wrapped it. */
function findCoded(err: unknown): LookupError | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth += 1) {
    if (isCodedError(e) && e.code === TARGET_REFUSED) return e as LookupError;
  }
  return undefined;
}

function causeText(err: unknown): string {
  const cause = (err as { cause?: unknown })?.cause;
  const code = (cause as { code?: unknown })?.code ?? (err as { code?: unknown })?.code;
  return typeof code === 'string' && !code.startsWith('UND_ERR') ? code : errorMessage(cause ?? err);
}

export function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
