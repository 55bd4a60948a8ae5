import { isCodedError, addressScope, permanentError, ServiceType, targetPolicyFromConfig, type TargetPolicy } from '@lookup/contracts';
import { defineLookupService, resolveTarget, type ResolverSettings, type LookupContext, type LookupData } from '@lookup/worker-kit';
import { openGeoDb, type GeoDb } from './geo-db.ts';

/** GeoIP: location of an address (a domain's first A/AAAA address) from an offline .mmdb city database. */
export const geoipLookup = defineLookupService({
  service: ServiceType.GeoIP,
  async setup({ config, logger }) {
    const db = await openGeoDb(config.geoipDbPath);
    logger.info({ source: db.source, built: db.databaseBuilt }, 'GeoIP database open');
    const dns: ResolverSettings = { servers: config.dnsServers, timeoutMs: dnsTimeout(config.lookupTimeoutMs) };
    const policy = targetPolicyFromConfig(config);
    return { lookup: (ctx) => locate(ctx, db, dns, policy), close: () => db.close() };
  },
});

async function locate(ctx: LookupContext, db: GeoDb, dns: ResolverSettings, policy: TargetPolicy): Promise<LookupData> {
  // The same target policy as every worker: an offline read sends nothing, but a refused target gets no answer
  // from any service (and a private address's location is no one's business).
  const resolved = await resolveTarget(ctx, dns, policy);
  const ip = plainAddress(resolved.ip);
  const credit = { source: db.source, ...(db.attribution ? { attribution: db.attribution } : {}) };
  const base = { ip: resolved.ip, ...(resolved.resolvedFrom ? { resolvedFrom: resolved.resolvedFrom, resolvedAddresses: resolved.resolvedAddresses } : {}) };
  let hit;
  try {
    hit = await db.lookup(ip);
  } catch (err) {
    if (isCodedError(err)) throw err;
    throw permanentError('GEOIP_UNSUPPORTED_ADDRESS', `the GeoIP database cannot look up ${ip}: ${(err as Error).message}`, err);
  }
  if (!hit) {
    const scope = addressScope(ip);
    const reason = scope === 'public' ? 'the address is not in the database' : `${ip} is a ${scope} address`;
    return { ...base, found: false, scope, reason, ...credit };
  }
  return { ...base, found: true, ...hit.record, prefixLength: hit.prefixLength, ...credit };
}

/** Drops an IPv6 zone and unwraps IPv4-mapped IPv6, which the IPv4 database answers for. */
function plainAddress(ip: string): string {
  const addr = ip.split('%')[0]!.toLowerCase();
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/.test(addr) ? addr.slice(7) : addr;
}

function dnsTimeout(lookupTimeoutMs: number): number {
  return Math.max(250, Math.min(2000, Math.floor(lookupTimeoutMs / 4)));
}
