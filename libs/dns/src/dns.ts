import { promises as dns } from 'node:dns';
import { isIPv4 } from 'node:net';
import { permanentError, transientError, type LookupError, type TargetPolicy, type TargetType } from '@lookup/contracts';
import { SpanKind, tracingActive, withSpan } from '@lookup/logging';

/** DNS for lookups: a shared resolver honouring DNS_SERVERS, the one timeout formula, and DNS errors classified permanent/transient. */

export interface ResolveInput {
  target: string;
  targetType: TargetType;
  signal: AbortSignal;
}

export interface ResolvedTarget {
  /** The address the lookup uses: the target itself, or the first A record (else AAAA) of a domain. */
  ip: string;
  family: 4 | 6;
  /** Set when the target was a domain: the name that was resolved. */
  resolvedFrom?: string;
  /** Every A and AAAA address the domain resolved to. */
  resolvedAddresses?: string[];
}

export interface ResolverSettings {
  /** host[:port] list (config.dnsServers); empty means the system's servers. */
  servers: readonly string[];
  /** Per-try timeout of one query. */
  timeoutMs: number;
}

/** How many times a query is sent before it fails with ETIMEOUT (c-ares `tries`). */
export const DNS_TRIES = 2;

/** Per-try timeouts are kept within these bounds, whatever the budget. */
export const DNS_TRY_TIMEOUT_MIN_MS = 250;
export const DNS_TRY_TIMEOUT_MAX_MS = 2000;

/**
 * The one DNS timeout formula: settings whose every query, all DNS_TRIES tries of it, ends within `budgetMs`.
 * Each try gets budgetMs / DNS_TRIES, kept between DNS_TRY_TIMEOUT_MIN_MS and `maxTryMs`. Call it once (at
 * start-up): the settings object is the key of its shared resolver.
 */
export function resolverSettings(servers: readonly string[], budgetMs: number, maxTryMs = DNS_TRY_TIMEOUT_MAX_MS): ResolverSettings {
  const perTry = Math.floor(Math.floor(budgetMs) / DNS_TRIES);
  return { servers, timeoutMs: Math.max(DNS_TRY_TIMEOUT_MIN_MS, Math.min(maxTryMs, perTry)) };
}

const resolvers = new WeakMap<ResolverSettings, dns.Resolver>();

/**
 * The resolver for these settings, built once and shared by every lookup that uses them (building one and
 * setting its servers per lookup was a fifth of the ReverseDNS worker's CPU). A lookup that is aborted
 * stops waiting (the attempt's timeout races it); its query ends by its own timeout, since cancelling would
 * cancel every query of the shared resolver.
 */
export function createResolver(settings: ResolverSettings): dns.Resolver {
  let resolver = resolvers.get(settings);
  if (!resolver) {
    resolver = new dns.Resolver({ timeout: settings.timeoutMs, tries: DNS_TRIES });
    if (settings.servers.length > 0) resolver.setServers([...settings.servers]);
    if (tracingActive()) resolver = tracedResolver(resolver);
    resolvers.set(settings, resolver);
  }
  return resolver;
}

/**
 * The resolver with every query (resolve*, reverse) in a CLIENT span `dns <method>` naming the question, so a
 * lookup's trace shows its DNS traffic (node's own instrumentation covers dns.lookup only, not a Resolver).
 */
function tracedResolver(resolver: dns.Resolver): dns.Resolver {
  return new Proxy(resolver, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (typeof prop !== 'string' || !/^(resolve|reverse)/.test(prop)) return method.bind(target);
      return (...args: unknown[]) =>
        withSpan(`dns ${prop}`, { 'dns.question.name': String(args[0]), 'rpc.method': prop }, async () => method.apply(target, args), SpanKind.CLIENT);
    },
  });
}

/** The error code of a lookup refused by the target policy (permanent: retrying cannot change the verdict). */
export const TARGET_REFUSED = 'TARGET_REFUSED';

/**
 * Throws a permanent LookupError (code TARGET_REFUSED, message naming the rule) unless the policy allows `ip`.
 * `resolvedFrom` is the name that resolved to it, for the message.
 */
export function assertAddressAllowed(policy: TargetPolicy, ip: string, resolvedFrom?: string): void {
  const verdict = policy.checkAddress(ip);
  if (verdict.allowed) return;
  const message = resolvedFrom ? `${resolvedFrom} resolved to ${ip}, which the target policy refuses: ${verdict.message}` : verdict.message;
  throw permanentError(TARGET_REFUSED, message);
}

/** Every A and AAAA answer for `name`, and how each of the two queries ended ('OK' or the error code). */
export interface AddressAnswers {
  a: string[];
  aaaa: string[];
  codes: [string, string];
}

/** Queries A and AAAA for `name` at once through the shared resolver for `settings`. */
export async function queryAddresses(name: string, settings: ResolverSettings): Promise<AddressAnswers> {
  const resolver = createResolver(settings);
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)]);
  return {
    a: v4.status === 'fulfilled' ? v4.value : [],
    aaaa: v6.status === 'fulfilled' ? v6.value : [],
    codes: [v4, v6].map((r) => (r.status === 'fulfilled' ? 'OK' : errorCode(r.reason))) as [string, string],
  };
}

/**
 * An IP target as it is; a domain resolved to A/AAAA records, IPv4 preferred. Every address passes the target
 * policy: an IP target that it refuses, or a domain with ANY refused address among its answers, fails with a
 * permanent TARGET_REFUSED error whose message names the rule. (Refusing the whole name, rather than using only
 * its allowed addresses, keeps a name that mixes public and internal answers from reaching the internal one
 * on another attempt or through another service.)
 */
export async function resolveTarget(input: ResolveInput, settings: ResolverSettings, policy: TargetPolicy): Promise<ResolvedTarget> {
  if (input.targetType === 'IPAddress') {
    assertAddressAllowed(policy, input.target);
    return { ip: input.target, family: isIPv4(input.target) ? 4 : 6 };
  }
  if (input.signal.aborted) throw transientError('DNS_ABORTED', `resolving ${input.target} was cancelled`);
  const { a, aaaa, codes } = await queryAddresses(input.target, settings);
  const first = a[0] ?? aaaa[0];
  if (first !== undefined) {
    const addresses = [...a, ...aaaa];
    for (const address of addresses) assertAddressAllowed(policy, address, input.target);
    return { ip: first, family: a[0] !== undefined ? 4 : 6, resolvedFrom: input.target, resolvedAddresses: addresses };
  }
  throw resolveError(input.target, codes.map((c) => (c === 'OK' ? 'ENODATA' : c)), input.signal.aborted);
}

function resolveError(name: string, codes: string[], aborted: boolean): LookupError {
  if (codes.every((c) => c === 'ENOTFOUND')) {
    return permanentError('DNS_NXDOMAIN', `${name} does not exist (DNS answered NXDOMAIN)`);
  }
  if (codes.every((c) => c === 'ENOTFOUND' || c === 'ENODATA')) {
    return permanentError('DNS_NO_ADDRESS', `${name} has no A or AAAA records`);
  }
  const code = codes.find((c) => c !== 'ENOTFOUND' && c !== 'ENODATA') ?? 'EUNKNOWN';
  return dnsFailure(`${name} could not be resolved`, code, aborted);
}

/** A failed DNS query as a LookupError: bad queries are permanent; timeouts, SERVFAIL and the like transient. */
export function dnsFailure(what: string, code: string, aborted: boolean, cause?: unknown): LookupError {
  if (aborted || code === 'ECANCELLED') return transientError('DNS_ABORTED', `${what}: cancelled`, cause);
  if (code === 'EINVAL' || code === 'EBADNAME' || code === 'EBADQUERY') {
    return permanentError('DNS_BAD_QUERY', `${what}: bad query (${code})`, cause);
  }
  const reasons: Record<string, [string, string]> = {
    ETIMEOUT: ['DNS_TIMEOUT', 'the DNS server did not answer in time'],
    ESERVFAIL: ['DNS_SERVFAIL', 'the DNS server answered SERVFAIL'],
    EREFUSED: ['DNS_ERROR', 'the DNS server refused the query'],
    ECONNREFUSED: ['DNS_ERROR', 'the DNS server could not be contacted'],
  };
  const [errCode, text] = reasons[code] ?? ['DNS_ERROR', `DNS error ${code}`];
  return transientError(errCode, `${what}: ${text}`, cause);
}

export function errorCode(err: unknown): string {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string'
    ? (err as { code: string }).code
    : 'EUNKNOWN';
}
