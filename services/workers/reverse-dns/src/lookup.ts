import { isIPv4 } from 'node:net';
import { Type } from '@sinclair/typebox';
import { permanentError, ServiceType, targetPolicyFromConfig, transientError, type TargetPolicy } from '@lookup/contracts';
import { assertAddressAllowed, createResolver, dnsFailure, errorCode, resolverSettings, resolveTarget, reverseName, type ResolverSettings } from '@lookup/dns';
import { defineLookupService, type LookupContext, type LookupData } from '@lookup/worker-kit';

/** Addresses of a domain whose PTR records are looked up (in parallel), at most. */
export const MAX_DOMAIN_ADDRESSES = 8;

const PtrFields = {
  ip: Type.String(),
  found: Type.Boolean({ description: 'Whether the address has a PTR record' }),
  hostname: Type.Optional(Type.String({ description: 'The first PTR name (when found)' })),
  hostnames: Type.Optional(Type.Array(Type.String(), { description: 'Every PTR name (when found)' })),
};

/**
 * ReverseDNS's result data: the PTR answer for an IP address; for a domain, the same fields for the first of its
 * addresses with a PTR record (else the first), plus the resolution and every address's own answer.
 */
export const ReverseDnsDataSchema = Type.Object(
  {
    ...PtrFields,
    resolvedFrom: Type.Optional(Type.String({ description: 'The domain that was resolved (domain targets only)' })),
    resolvedAddresses: Type.Optional(Type.Array(Type.String(), { description: 'Every address the domain resolved to' })),
    addresses: Type.Optional(
      Type.Array(
        Type.Object(
          {
            ...PtrFields,
            error: Type.Optional(
              Type.Object({ code: Type.String(), message: Type.String() }, { additionalProperties: false, description: "This address's query failed (on the last attempt)" }),
            ),
          },
          { additionalProperties: false },
        ),
        { description: `Domain targets: the PTR answer of each address looked up (at most ${MAX_DOMAIN_ADDRESSES})` },
      ),
    ),
  },
  { additionalProperties: false, description: 'ReverseDNS: PTR records of an address, or of the addresses of a domain' },
);

/**
 * ReverseDNS: PTR records of an IP address, or of the addresses a domain resolves to (A and AAAA), through
 * node:dns (DNS_SERVERS, else the system's servers).
 */
export const reverseDnsLookup = defineLookupService({
  service: ServiceType.ReverseDNS,
  dataSchema: ReverseDnsDataSchema,
  async setup({ config }) {
    const settings = resolverSettings(config.dnsServers, config.lookupTimeoutMs / 2); // half the attempt's time
    const policy = targetPolicyFromConfig(config);
    const lastAttempt = config.retryMaxAttempts;
    return {
      lookup: (ctx) => (ctx.targetType === 'Domain' ? reverseDomain(ctx, settings, policy, lastAttempt) : reverseAddress(ctx, settings, policy)),
    };
  },
});

/** One address's PTR answer: `hostname` is the first of `hostnames`; both absent when found is false. */
interface PtrAnswer {
  ip: string;
  found: boolean;
  hostname?: string;
  hostnames?: string[];
}

/**
 * The PTR query goes to the DNS server, never to the target; the target policy still applies, so the contract
 * is the same for every service (a refused target gets no lookup at all), and the PTR names of internal
 * addresses, which an internal resolver may know, are not handed to whoever asks.
 */
async function reverseAddress(ctx: LookupContext, settings: ResolverSettings, policy: TargetPolicy): Promise<LookupData> {
  assertAddressAllowed(policy, ctx.target);
  const ip = ctx.target.split('%')[0]!; // a zone index means nothing to DNS
  return { ...(await ptr(ip, ctx.target, settings, ctx.signal)) };
}

/**
 * A domain: resolved to its A and AAAA addresses (every one passes the target policy, as for GeoIP and Ping),
 * then the PTR records of up to MAX_DOMAIN_ADDRESSES of them, IPv4 and IPv6 taken in turn, all at once. The
 * top-level `ip`, `found`, `hostname`, `hostnames` have the IP target's meaning for the first address with a
 * PTR record (else the first address), so a reader of the IP shape reads a domain's answer too; `addresses`
 * holds every address looked up.
 *
 * One address's query failing (SERVFAIL, a timeout) fails the attempt transiently while attempts remain, so it
 * is retried whole; on the last attempt the answer is kept, with that address's `error`, rather than lost.
 */
async function reverseDomain(ctx: LookupContext, settings: ResolverSettings, policy: TargetPolicy, lastAttempt: number): Promise<LookupData> {
  const resolved = await resolveTarget(ctx, settings, policy);
  const all = resolved.resolvedAddresses ?? [resolved.ip];
  const chosen = pickAddresses(all, MAX_DOMAIN_ADDRESSES);
  const settled = await Promise.allSettled(chosen.map((ip) => ptr(ip, ip, settings, ctx.signal)));
  if (ctx.signal.aborted) throw transientError('DNS_ABORTED', `reverse lookups of ${ctx.target}'s addresses were cancelled`);

  const failures = settled.flatMap((s, i) => (s.status === 'rejected' ? [{ ip: chosen[i]!, reason: s.reason as Error & { code?: string; retryable?: boolean } }] : []));
  const permanent = failures.find((f) => f.reason.retryable === false);
  if (permanent) throw permanent.reason;
  if (failures.length === settled.length || (failures.length > 0 && ctx.attempt < lastAttempt)) {
    const first = failures[0]!;
    const more = failures.length > 1 ? ` (and ${failures.length - 1} more of the ${chosen.length} addresses)` : '';
    throw transientError(first.reason.code ?? 'DNS_ERROR', `${ctx.target}: ${first.reason.message}${more}`, first.reason);
  }

  const addresses = settled.map((s, i) =>
    s.status === 'fulfilled' ? s.value : { ip: chosen[i]!, found: false, error: { code: s.reason.code ?? 'DNS_ERROR', message: (s.reason as Error).message } },
  );
  const main = addresses.find((a) => a.found) ?? addresses[0]!;
  return {
    ip: main.ip,
    found: main.found,
    ...('hostname' in main ? { hostname: main.hostname, hostnames: main.hostnames } : {}),
    resolvedFrom: resolved.resolvedFrom ?? ctx.target,
    resolvedAddresses: all,
    addresses,
  };
}

/**
 * Up to `max` distinct addresses, IPv4 and IPv6 taken in turn (so a name with many A records still shows its
 * IPv6 ones), each family in the order DNS gave it.
 */
export function pickAddresses(addresses: readonly string[], max: number): string[] {
  const unique = [...new Set(addresses)];
  const v4 = unique.filter((a) => isIPv4(a));
  const v6 = unique.filter((a) => !isIPv4(a));
  const out: string[] = [];
  for (let i = 0; out.length < max && (i < v4.length || i < v6.length); i++) {
    if (i < v4.length) out.push(v4[i]!);
    if (i < v6.length && out.length < max) out.push(v6[i]!);
  }
  return out;
}

async function ptr(ip: string, shown: string, settings: ResolverSettings, signal: AbortSignal): Promise<PtrAnswer> {
  const name = reverseName(ip);
  if (!name) throw permanentError('DNS_BAD_QUERY', `'${shown}' is not an IP address`);
  const resolver = createResolver(settings);
  try {
    // Not resolver.reverse(): c-ares reports SERVFAIL and timeouts from it as ENOTFOUND, which would turn
    // a transient failure into a confident "no PTR record".
    const hostnames = await resolver.resolvePtr(name);
    return hostnames.length > 0 ? { ip, found: true, hostname: hostnames[0], hostnames } : { ip, found: false };
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOTFOUND' || code === 'ENODATA') return { ip, found: false };
    throw dnsFailure(`reverse lookup of ${ip} failed`, code, signal.aborted, err);
  }
}
