/**
 * A readable summary of an RDAP object (RFC 9083): the fields people look for, with vCards flattened and
 * events keyed by action. Absent data is left out rather than set to null.
 */

type Json = Record<string, unknown>;

export interface RdapEntity {
  handle?: string;
  roles: string[];
  name?: string;
  organization?: string;
  kind?: string;
  email?: string;
  phone?: string;
  address?: string;
  ianaRegistrarId?: string;
}

const MAX_ENTITY_DEPTH = 3;

export function summariseRdap(raw: unknown): Json {
  const obj = asObject(raw);
  const entities = collectEntities(obj.entities, 1);
  const registrar = entities.find((e) => e.roles.includes('registrar'));
  const summary: Json = {
    objectClassName: str(obj.objectClassName),
    handle: str(obj.handle),
    name: str(obj.name),
    ldhName: str(obj.ldhName)?.toLowerCase(),
    unicodeName: str(obj.unicodeName),
    type: str(obj.type),
    country: str(obj.country),
    ipVersion: str(obj.ipVersion),
    startAddress: str(obj.startAddress),
    endAddress: str(obj.endAddress),
    cidrs: cidrs(obj.cidr0_cidrs),
    parentHandle: str(obj.parentHandle),
    startAutnum: num(obj.startAutnum),
    endAutnum: num(obj.endAutnum),
    originAutnums: numbers(obj.arin_originas0_originautnums),
    status: strings(obj.status),
    events: events(obj.events),
    registrant: entities.find((e) => e.roles.includes('registrant'))?.name,
    registrar: registrar ? compact({ name: registrar.name, ianaId: registrar.ianaRegistrarId }) : undefined,
    abuseEmail: entities.find((e) => e.roles.includes('abuse') && e.email)?.email,
    entities: entities.length > 0 ? entities : undefined,
    nameservers: nameservers(obj.nameservers),
    delegationSigned: typeof asObject(obj.secureDNS).delegationSigned === 'boolean' ? asObject(obj.secureDNS).delegationSigned : undefined,
    port43: str(obj.port43),
  };
  return compact(summary);
}

/** Entities and their nested entities (e.g. an abuse contact inside the registrant), flattened. */
function collectEntities(value: unknown, depth: number): RdapEntity[] {
  if (!Array.isArray(value) || depth > MAX_ENTITY_DEPTH) return [];
  return value.flatMap((item) => {
    const e = asObject(item);
    const card = vcard(e.vcardArray);
    const registrarId = (Array.isArray(e.publicIds) ? e.publicIds : [])
      .map(asObject)
      .find((p) => str(p.type)?.toLowerCase() === 'iana registrar id');
    const entity = compact({
      handle: str(e.handle),
      roles: strings(e.roles) ?? [],
      ...card,
      ianaRegistrarId: str(registrarId?.identifier),
    }) as unknown as RdapEntity;
    return [entity, ...collectEntities(e.entities, depth + 1)];
  });
}

/** The useful properties of a jCard (RFC 7095): ["vcard", [[name, params, type, value], ...]]. */
export function vcard(value: unknown): Omit<RdapEntity, 'roles' | 'handle' | 'ianaRegistrarId'> {
  const props = Array.isArray(value) && Array.isArray(value[1]) ? (value[1] as unknown[]) : [];
  const out: Record<string, string | undefined> = {};
  for (const prop of props) {
    if (!Array.isArray(prop) || typeof prop[0] !== 'string') continue;
    const [name, params, , val] = prop as [string, Json, string, unknown];
    const text = flatten(val);
    if (name === 'fn') out.name ??= text;
    else if (name === 'org') out.organization ??= text;
    else if (name === 'kind') out.kind ??= text;
    else if (name === 'email') out.email ??= text;
    else if (name === 'tel') out.phone ??= text?.replace(/^tel:/i, '') || undefined;
    else if (name === 'adr') out.address ??= str(asObject(params).label)?.replace(/\s*\n\s*/g, ', ') ?? text;
  }
  return compact(out);
}

/** Events keyed by action in camelCase: registration, expiration, lastChanged, lastUpdateOfRdapDatabase... */
function events(value: unknown): Record<string, string> | undefined {
  if (!Array.isArray(value)) return undefined;
  const out: Record<string, string> = {};
  for (const item of value.map(asObject)) {
    const action = str(item.eventAction);
    const date = str(item.eventDate);
    if (action && date) out[camelCase(action)] ??= date;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function nameservers(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const names = value.map((n) => str(asObject(n).ldhName)?.toLowerCase()).filter((n): n is string => !!n);
  return names.length > 0 ? names : undefined;
}

function cidrs(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const list = value
    .map(asObject)
    .map((c) => {
      const prefix = str(c.v4prefix) ?? str(c.v6prefix);
      return prefix !== undefined && typeof c.length === 'number' ? `${prefix}/${c.length}` : undefined;
    })
    .filter((c): c is string => !!c);
  return list.length > 0 ? list : undefined;
}

function flatten(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim() === '' ? undefined : value.trim();
  if (Array.isArray(value)) {
    const parts = value.map(flatten).filter((p): p is string => !!p);
    return parts.length > 0 ? parts.join(', ') : undefined;
  }
  return undefined;
}

function camelCase(action: string): string {
  const words = action.toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
  return words.map((w, i) => (i === 0 ? w : w[0]!.toUpperCase() + w.slice(1))).join('');
}

function compact<T extends Record<string, unknown>>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as T;
}

const asObject = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
function strings(v: unknown): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const list = v.filter((s): s is string => typeof s === 'string');
  return list.length > 0 ? list : undefined;
}
function numbers(v: unknown): number[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const list = v.filter((n): n is number => typeof n === 'number');
  return list.length > 0 ? list : undefined;
}

/** title and description of an RDAP error response (RFC 9083 section 6), for error messages. */
export function rdapErrorText(raw: unknown): string | undefined {
  const obj = asObject(raw);
  const parts = [str(obj.title), ...(strings(obj.description) ?? [])].filter((p): p is string => !!p);
  return parts.length > 0 ? parts.join(': ') : undefined;
}
