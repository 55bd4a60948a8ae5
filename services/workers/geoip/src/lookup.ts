import { Type } from '@sinclair/typebox';
import { isCodedError, addressScope, permanentError, ServiceType, targetPolicyFromConfig, type AddressScope, type TargetPolicy } from '@lookup/contracts';
import { resolverSettings, resolveTarget, type ResolverSettings } from '@lookup/dns';
import { defineLookupService, type LookupContext, type LookupData } from '@lookup/worker-kit';
import { openAsnDb, type AsnDb, type AsnRecord } from './asn-db.ts';
import { openGeoDb, type GeoDb } from './geo-db.ts';

const Text = (description: string) => Type.Optional(Type.String({ description }));
const SCOPES = ['public', 'loopback', 'private', 'link-local', 'reserved', 'multicast', 'unspecified'] as const satisfies readonly AddressScope[];

/**
 * GeoIP's result data: the address looked up, whether the database has it, its location (each field present
 * only when the database knows it), its network owner, and the data's credits.
 */
export const GeoIpDataSchema = Type.Object(
  {
    ip: Type.String({ description: 'The address looked up (for a domain, its first A/AAAA address)' }),
    resolvedFrom: Text('The domain that was resolved (domain targets only)'),
    resolvedAddresses: Type.Optional(Type.Array(Type.String(), { description: 'Every address the domain resolved to' })),
    found: Type.Boolean({ description: 'Whether the location database has the address' }),
    scope: Type.Optional(
      Type.Union(SCOPES.map((s) => Type.Literal(s)), {
        description: 'When not found: what kind of address it is',
      }),
    ),
    reason: Text('When not found: why'),
    continentCode: Text('Two-letter continent code'),
    countryCode: Text('ISO 3166-1 alpha-2 country code'),
    country: Text('Country name (English)'),
    region: Text('First-level subdivision (state, province)'),
    district: Text('Second-level subdivision'),
    city: Text('City'),
    postalCode: Text('Postal code'),
    latitude: Type.Optional(Type.Number()),
    longitude: Type.Optional(Type.Number()),
    timeZone: Text('IANA time zone, e.g. Europe/Berlin'),
    prefixLength: Type.Optional(Type.Integer({ minimum: 0, maximum: 128, description: "When found: the prefix length of the database's matching network" })),
    asn: Type.Union(
      [
        Type.Object(
          {
            number: Type.Integer({ minimum: 1, maximum: 0xffffffff, description: 'AS number' }),
            organization: Type.Union([Type.String(), Type.Null()], { description: 'The organisation the AS is registered to, when known' }),
          },
          { additionalProperties: false },
        ),
        Type.Null(),
      ],
      { description: "The network owner (the AS announcing the address's network); null when unknown or without an ASN database" },
    ),
    source: Type.String({ description: 'The location data source' }),
    asnSource: Text('The network owner data source (when an ASN database is open)'),
    attribution: Text('Credits the data licences ask for'),
  },
  { additionalProperties: false, description: 'GeoIP: location and network owner of an address' },
);

/**
 * GeoIP: location and network owner (AS number and organisation) of an address (a domain's first A/AAAA
 * address) from offline .mmdb databases: a city database and an ASN database.
 */
export const geoipLookup = defineLookupService({
  service: ServiceType.GeoIP,
  dataSchema: GeoIpDataSchema,
  async setup({ config, logger }) {
    const db = await openGeoDb(config.geoipDbPath);
    logger.info({ source: db.source, built: db.databaseBuilt }, 'GeoIP database open');
    // The network owner is an extra: without its database the worker still locates addresses (asn: null).
    let asn: AsnDb | undefined;
    try {
      asn = await openAsnDb(config.geoipAsnDbPath);
      logger.info({ source: asn.source, built: asn.databaseBuilt }, 'GeoIP ASN database open');
    } catch (err) {
      logger.warn({ err }, 'GeoIP: no ASN database, results carry asn: null (%s)', (err as Error).message);
    }
    const dns = resolverSettings(config.dnsServers, config.lookupTimeoutMs / 2); // half the attempt's time
    const policy = targetPolicyFromConfig(config);
    const credit = credits(db, asn);
    return {
      lookup: (ctx) => locate(ctx, db, asn, credit, dns, policy),
      close: () => {
        db.close();
        asn?.close();
      },
    };
  },
});

async function locate(
  ctx: LookupContext,
  db: GeoDb,
  asnDb: AsnDb | undefined,
  credit: Credit,
  dns: ResolverSettings,
  policy: TargetPolicy,
): Promise<LookupData> {
  // The same target policy as every worker: an offline read sends nothing, but a refused target gets no answer
  // from any service (and a private address's location is no one's business).
  const resolved = await resolveTarget(ctx, dns, policy);
  const ip = plainAddress(resolved.ip);
  const asn = owner(asnDb, ip);
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
    return { ...base, found: false, scope, reason, asn, ...credit };
  }
  return { ...base, found: true, ...hit.record, prefixLength: hit.prefixLength, asn, ...credit };
}

/** The AS that announces `ip`'s network, or null (unknown, or no ASN database). Never fails the lookup. */
function owner(asnDb: AsnDb | undefined, ip: string): Readonly<AsnRecord> | null {
  if (!asnDb) return null;
  try {
    return asnDb.lookup(ip) ?? null;
  } catch {
    return null; // an address the ASN file cannot take: the location answer still stands
  }
}

/**
 * `source` (the location data's), `asnSource` (the network owner data's, when an ASN database is open) and
 * `attribution`: every credit the data's licences ask for, each once (the city and ASN data both credit DB-IP).
 */
interface Credit {
  source: string;
  asnSource?: string;
  attribution?: string;
}

function credits(db: GeoDb, asnDb: AsnDb | undefined): Credit {
  const parts = [db.attribution, asnDb?.attribution].flatMap((a) => (a ? a.split('; ') : []));
  const attribution = [...new Set(parts)].join('; ');
  return { source: db.source, ...(asnDb ? { asnSource: asnDb.source } : {}), ...(attribution ? { attribution } : {}) };
}

/** Drops an IPv6 zone and unwraps IPv4-mapped IPv6, which the IPv4 database answers for. */
function plainAddress(ip: string): string {
  const addr = ip.split('%')[0]!.toLowerCase();
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/.test(addr) ? addr.slice(7) : addr;
}
