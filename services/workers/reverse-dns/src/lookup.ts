import { permanentError, ServiceType, targetPolicyFromConfig, type TargetPolicy } from '@lookup/contracts';
import { assertAddressAllowed, createResolver, defineLookupService, dnsFailure, errorCode, type LookupContext, type LookupData, type ResolverSettings } from '@lookup/worker-kit';
import { reverseName } from './arpa.ts';

/** ReverseDNS: PTR records of an IP address through node:dns (DNS_SERVERS, else the system's servers). */
export const reverseDnsLookup = defineLookupService({
  service: ServiceType.ReverseDNS,
  async setup({ config }) {
    const settings = { servers: config.dnsServers, timeoutMs: Math.max(250, Math.min(2000, Math.floor(config.lookupTimeoutMs / 4))) };
    const policy = targetPolicyFromConfig(config);
    return { lookup: (ctx) => reverse(ctx, settings, policy) };
  },
});

/**
 * The PTR query goes to the DNS server, never to the target; the target policy still applies, so the contract
 * is the same for every service (a refused target gets no lookup at all), and the PTR names of internal
 * addresses, which an internal resolver may know, are not handed to whoever asks.
 */
async function reverse(ctx: LookupContext, settings: ResolverSettings, policy: TargetPolicy): Promise<LookupData> {
  if (ctx.targetType === 'Domain') {
    throw permanentError('REVERSE_DNS_NEEDS_IP', `ReverseDNS needs an IP address; ${ctx.target} is a domain`);
  }
  assertAddressAllowed(policy, ctx.target);
  const ip = ctx.target.split('%')[0]!; // a zone index means nothing to DNS
  const name = reverseName(ip);
  if (!name) throw permanentError('DNS_BAD_QUERY', `'${ctx.target}' is not an IP address`);
  const resolver = createResolver(settings, ctx.signal);
  try {
    // Not resolver.reverse(): c-ares reports SERVFAIL and timeouts from it as ENOTFOUND, which would turn
    // a transient failure into a confident "no PTR record".
    const hostnames = await resolver.resolvePtr(name);
    return hostnames.length > 0 ? { ip, found: true, hostname: hostnames[0], hostnames } : { ip, found: false };
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOTFOUND' || code === 'ENODATA') return { ip, found: false };
    throw dnsFailure(`reverse lookup of ${ip} failed`, code, ctx.signal.aborted, err);
  }
}
