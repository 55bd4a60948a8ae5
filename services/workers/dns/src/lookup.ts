import type { promises as dns } from 'node:dns';
import { Type, type Static } from '@sinclair/typebox';
import { permanentError, ServiceType, targetPolicyFromConfig, transientError, type TargetPolicy } from '@lookup/contracts';
import { assertAddressAllowed, createResolver, dnsFailure, errorCode, resolverSettings, reverseName, type ResolverSettings } from '@lookup/dns';
import { defineLookupService, type LookupContext } from '@lookup/worker-kit';

/** PTR names of an IP target that are resolved forward (in parallel), at most. */
export const MAX_PTR_NAMES = 8;

const Addresses = {
  a: Type.Array(Type.String(), { description: 'A records (IPv4), a CNAME followed' }),
  aaaa: Type.Array(Type.String(), { description: 'AAAA records (IPv6), a CNAME followed' }),
};

/** A domain target: its forward records. A type it has none of is an empty list (SOA: null). */
const DomainRecordsSchema = Type.Object(
  {
    name: Type.String({ description: 'The domain queried' }),
    ...Addresses,
    cname: Type.Array(Type.String(), { description: 'The canonical name, when the domain is an alias' }),
    mx: Type.Array(Type.Object({ exchange: Type.String(), priority: Type.Integer() }, { additionalProperties: false }), { description: 'Mail exchangers' }),
    ns: Type.Array(Type.String(), { description: 'Name servers' }),
    txt: Type.Array(Type.String(), { description: "TXT records, each record's character strings joined" }),
    soa: Type.Union(
      [
        Type.Object(
          {
            nsname: Type.String(),
            hostmaster: Type.String(),
            serial: Type.Integer(),
            refresh: Type.Integer(),
            retry: Type.Integer(),
            expire: Type.Integer(),
            minttl: Type.Integer(),
          },
          { additionalProperties: false },
        ),
        Type.Null(),
      ],
      { description: "The zone's SOA record, when the domain is a zone apex" },
    ),
  },
  { additionalProperties: false, title: 'DNS records of a domain' },
);

/** An IP target: forward-confirmed reverse DNS. */
const ForwardConfirmedSchema = Type.Object(
  {
    ip: Type.String({ description: 'The IP address queried' }),
    ptr: Type.Array(Type.String(), { description: 'Every PTR name of the address' }),
    names: Type.Array(
      Type.Object(
        {
          name: Type.String(),
          ...Addresses,
          forwardConfirmed: Type.Boolean({ description: "Whether the name's A/AAAA records include the address" }),
        },
        { additionalProperties: false },
      ),
      { description: `The first ${MAX_PTR_NAMES} PTR names, each resolved forward` },
    ),
    forwardConfirmed: Type.Boolean({ description: 'Whether any PTR name resolves back to the address' }),
  },
  { additionalProperties: false, title: 'Forward-confirmed reverse DNS of an IP address' },
);

/** DNS's result data: a domain's records, or an IP address's forward-confirmed reverse DNS. */
export const DnsDataSchema = Type.Union([DomainRecordsSchema, ForwardConfirmedSchema]);
export type DnsData = Static<typeof DnsDataSchema>;
type DomainRecords = Static<typeof DomainRecordsSchema>;
type ForwardConfirmed = Static<typeof ForwardConfirmedSchema>;

/**
 * DNS: the forward records of a domain (A, AAAA, CNAME, MX, NS, TXT, SOA, queried at once), or for an IP
 * address the A/AAAA records of each of its PTR names, through node:dns (DNS_SERVERS, else the system's servers).
 * No answer of a type is an empty list; a name that does not exist (NXDOMAIN) and an address without a PTR
 * record are permanent failures; timeouts and SERVFAIL are transient (retried).
 *
 * Like every service, it reports no address the target policy refuses: a domain, or a PTR name, with a refused
 * address among its A/AAAA records fails with TARGET_REFUSED.
 */
export const dnsLookup = defineLookupService({
  service: ServiceType.DNS,
  dataSchema: DnsDataSchema,
  async setup({ config }) {
    // An IP target takes two rounds of queries (PTR, then forward): each gets half the attempt's time.
    const settings = resolverSettings(config.dnsServers, config.lookupTimeoutMs / 2);
    const policy = targetPolicyFromConfig(config);
    return {
      lookup: async (ctx) => {
        const data = ctx.targetType === 'Domain' ? await domainRecords(ctx, settings, policy) : await forwardConfirmed(ctx, settings, policy);
        if (ctx.signal.aborted) throw transientError('DNS_ABORTED', `DNS lookup of ${ctx.target} was cancelled`);
        return data;
      },
    };
  },
});

type Query<T> = (resolver: dns.Resolver, name: string) => Promise<T>;

const RECORD_QUERIES = {
  a: (r, n) => r.resolve4(n),
  aaaa: (r, n) => r.resolve6(n),
  cname: (r, n) => r.resolveCname(n),
  mx: (r, n) => r.resolveMx(n),
  ns: (r, n) => r.resolveNs(n),
  txt: async (r, n) => (await r.resolveTxt(n)).map((chunks) => chunks.join('')),
  soa: (r, n) => r.resolveSoa(n),
} satisfies Record<string, Query<unknown>>;

async function domainRecords(ctx: LookupContext, settings: ResolverSettings, policy: TargetPolicy): Promise<DomainRecords> {
  const name = ctx.target;
  const answers = await queryAll(name, RECORD_QUERIES, settings, ctx.signal);
  const found = Object.values(answers).some((a) => a.ok);
  if (!found && Object.values(answers).some((a) => a.code === 'ENOTFOUND')) {
    throw permanentError('DNS_NXDOMAIN', `${name} does not exist (DNS answered NXDOMAIN)`);
  }
  const list = <T>(a: Answer<T[]>): T[] => (a.ok ? a.value : []);
  const records: DomainRecords = {
    name,
    a: list(answers.a),
    aaaa: list(answers.aaaa),
    cname: list(answers.cname),
    mx: list(answers.mx),
    ns: list(answers.ns),
    txt: list(answers.txt),
    soa: answers.soa.ok ? answers.soa.value : null,
  };
  for (const ip of [...records.a, ...records.aaaa]) assertAddressAllowed(policy, ip, name);
  return records;
}

/**
 * Forward-confirmed reverse DNS: the PTR names of the address, then the A and AAAA records of each (at most
 * MAX_PTR_NAMES, at once); a name is confirmed when they include the address. No PTR record at all is a
 * permanent failure: there is no name to confirm.
 */
async function forwardConfirmed(ctx: LookupContext, settings: ResolverSettings, policy: TargetPolicy): Promise<ForwardConfirmed> {
  assertAddressAllowed(policy, ctx.target);
  const ip = ctx.target.split('%')[0]!; // a zone index means nothing to DNS
  const arpa = reverseName(ip);
  if (!arpa) throw permanentError('DNS_BAD_QUERY', `'${ctx.target}' is not an IP address`);
  const { ptr } = await queryAll(arpa, { ptr: (r, n) => r.resolvePtr(n) }, settings, ctx.signal);
  const ptrNames = ptr.ok ? ptr.value : [];
  if (ptrNames.length === 0) {
    throw permanentError('DNS_NO_PTR', `${ip} has no PTR record, so there is no name to confirm (DNS answered ${ptr.ok ? 'no records' : ptr.code})`);
  }
  const names = await Promise.all(
    ptrNames.slice(0, MAX_PTR_NAMES).map(async (name) => {
      const { a, aaaa } = await queryAll(name, { a: RECORD_QUERIES.a, aaaa: RECORD_QUERIES.aaaa }, settings, ctx.signal);
      const addresses = { a: a.ok ? a.value : [], aaaa: aaaa.ok ? aaaa.value : [] };
      for (const address of [...addresses.a, ...addresses.aaaa]) assertAddressAllowed(policy, address, name);
      return { name, ...addresses, forwardConfirmed: [...addresses.a, ...addresses.aaaa].some((address) => reverseName(address) === arpa) };
    }),
  );
  return { ip, ptr: ptrNames, names, forwardConfirmed: names.some((n) => n.forwardConfirmed) };
}

type Answer<T> = { ok: true; value: T; code?: undefined } | { ok: false; code: 'ENOTFOUND' | 'ENODATA' };

/**
 * Runs the queries for `name` at once. A query answered with no records (ENODATA) or NXDOMAIN (ENOTFOUND)
 * settles as such; any other failure (a timeout, SERVFAIL, a bad name) fails the lookup through dnsFailure,
 * so a retry asks again rather than storing a partial answer.
 */
async function queryAll<Q extends Record<string, Query<unknown>>>(
  name: string,
  queries: Q,
  settings: ResolverSettings,
  signal: AbortSignal,
): Promise<{ [K in keyof Q]: Answer<Awaited<ReturnType<Q[K]>>> }> {
  const resolver = createResolver(settings);
  const keys = Object.keys(queries) as Array<keyof Q & string>;
  const settled = await Promise.allSettled(keys.map((k) => queries[k]!(resolver, name)));
  const out = {} as Record<string, Answer<unknown>>;
  for (const [i, s] of settled.entries()) {
    const key = keys[i]!;
    if (s.status === 'fulfilled') {
      out[key] = { ok: true, value: s.value };
      continue;
    }
    const code = errorCode(s.reason);
    if (code === 'ENOTFOUND' || code === 'ENODATA' || (key === 'soa' && code === 'EBADRESP')) {
      // c-ares answers EBADRESP to an SOA query whose answer holds no SOA record (an alias's CNAME): no SOA.
      out[key] = { ok: false, code: code === 'ENOTFOUND' ? 'ENOTFOUND' : 'ENODATA' };
      continue;
    }
    throw dnsFailure(`DNS ${key.toUpperCase()} query for ${name} failed`, code, signal.aborted, s.reason);
  }
  return out as { [K in keyof Q]: Answer<Awaited<ReturnType<Q[K]>>> };
}
