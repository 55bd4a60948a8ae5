import { isIP } from 'node:net';
import { SERVICE_CATALOGUE, parseCidr } from '@lookup/contracts';

/**
 * The one place that reads process.env. Every variable is declared here with its default and parser;
 * loadConfig collects every error before failing, and returns a frozen object.
 */

export interface Config {
  /** AMQP_URL: one broker URL, or a comma-separated list of a cluster's nodes (connections fail over in order). */
  amqpUrl: string;
  /** RabbitMQ's management HTTP API (the dashboard's queue panel); derived from AMQP_URL's user, password and host. */
  rabbitmqManagementUrl: string;
  /** QUEUE_TYPE: 'classic' (one broker) or 'quorum' (replicated work, event and delay queues, for a cluster). */
  queueType: 'classic' | 'quorum';
  redisUrl: string;
  /** REDIS_SENTINELS: Sentinel addresses (host:port); when set, the master is found through them by
   *  REDIS_MASTER_NAME and REDIS_URL only supplies the password, database and TLS. */
  redisSentinels: { host: string; port: number }[];
  redisMasterName: string;
  /** REDIS_CLUSTER (or a `redis+cluster://` REDIS_URL): REDIS_URL names one node of a Redis Cluster, the client
   *  discovers the others. */
  redisCluster: boolean;
  /** REDIS_WAIT_REPLICAS: replicas that must acknowledge (WAIT) a state change (a lease grant or renewal, a job's
   *  creation, an outcome, a result) before it counts; defaults to 1 with Sentinel, 0 (no WAIT) otherwise. */
  redisWaitReplicas: number;
  /** REDIS_WAIT_TIMEOUT_MS: how long WAIT waits; a change not acknowledged in time is an error (retried). */
  redisWaitTimeoutMs: number;
  apiHost: string;
  apiPort: number;
  /** METRICS_HOST / METRICS_PORT: where the saga, each worker and the resource worker serve /metrics and /health/*
   *  (the API serves them on API_PORT). Port 0: an ephemeral port, logged at start. */
  metricsHost: string;
  metricsPort: number;
  namespace: string;
  rdapBaseUrl: string | undefined;
  /** Largest RDAP response body the RDAP worker reads; a larger answer fails the lookup. */
  rdapMaxResponseBytes: number;
  /** Refresh the RDAP worker's IANA bootstrap registries at start (only without RDAP_BASE_URL); off under tests. */
  rdapBootstrapRefresh: boolean;
  dnsServers: string[];
  geoipDbPath: string | undefined;
  /** GEOIP_ASN_DB_PATH: an ASN .mmdb file instead of the bundled one (GeoIP's network owner); unreadable: asn null. */
  geoipAsnDbPath: string | undefined;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** LOG_FORMAT: 'json' (one JSON object per line), 'pretty' (human-readable lines), or 'auto' (pretty when
   *  stdout is a terminal, JSON otherwise). */
  logFormat: 'auto' | 'json' | 'pretty';
  /** EXIT_WITH_PARENT: a service stops when the process that started it exits (npm, the supervisor), instead of
   *  running on orphaned. */
  exitWithParent: boolean;
  rateLimitSubmitPerMin: number;
  rateLimitApiPerMin: number;
  rateLimitGlobalPerMin: number;
  /** RATE_LIMIT_RESOURCE_PER_MIN: resource proxy requests (/api/resources/*) per client per minute, a tier of
   *  its own instead of the API tier (0 = only the global cap applies). */
  rateLimitResourcePerMin: number;
  allowPrivateTargets: boolean;
  /** TARGET_ALLOW_CIDRS: ranges the target policy allows although they are special-purpose (private, loopback...). */
  targetAllowCidrs: string[];
  /** TARGET_DENY_CIDRS: ranges the target policy always refuses; wins over ALLOW_PRIVATE_TARGETS and the allow list. */
  targetDenyCidrs: string[];
  adminApiKey: string | undefined;
  /** API_KEYS plus every TENANTS key: each is a valid API key. */
  apiKeys: string[];
  /** TENANTS: API keys mapped to tenants with their quotas (0 = unlimited); a tenant may have several keys. */
  tenants: TenantConfig[];
  /** Which proxies' X-Forwarded-For the API believes (TRUST_PROXY): false (none), a hop count, a list of proxy
   *  addresses/CIDRs, or true (every hop: accepted, with a warning at start). */
  trustProxy: boolean | number | string[];
  bodyLimitBytes: number;
  /** BATCH_MAX_ITEMS: most items in one POST /api/lookup/batch (its body may be up to 1200 bytes per item, or
   *  API_BODY_LIMIT_BYTES when that is larger). */
  batchMaxItems: number;
  /** Requests per minute per client address without a valid API key (only when API_KEYS is set; 0 = unlimited).
   *  They are counted only here, never against a keyed client's or the global quota. */
  rateLimitUnauthenticatedPerMin: number;
  /** Time to receive a whole request (headers and body); over it the connection gets 408 and is closed. */
  apiRequestTimeoutMs: number;
  /** Time to receive the request headers (at most apiRequestTimeoutMs). */
  apiHeadersTimeoutMs: number;
  /** How long an idle keep-alive connection stays open between requests. */
  apiKeepAliveTimeoutMs: number;
  /** A connection with no traffic either way for this long is closed (above the event stream's 15 s heartbeat). */
  apiIdleTimeoutMs: number;
  /** Open connections one client address (IPv6: its /64) may hold; beyond it a new one is closed at once (0 = no cap). */
  apiMaxConnectionsPerClient: number;
  /** Open connections the API accepts in all. */
  apiMaxConnections: number;
  /** Largest request line plus headers, in bytes (node's maxHeaderSize); over it node answers 431. */
  apiMaxHeaderBytes: number;
  /** Longest request URL (path and query) in characters; over it 414. */
  apiMaxUrlLength: number;
  /** Origins allowed to call the API from a browser (CORS); empty = CORS off. */
  corsOrigins: string[];
  resourceDataDir: string;
  resourceHeartbeatMs: number;
  resourceMaxMissed: number;
  /** How long the API waits for a resource owner's answer before it answers 504. */
  resourceProxyTimeoutMs: number;
  /** Largest request body the API forwards to a resource owner. */
  resourceBodyLimitBytes: number;
  /**
   * Largest encoded reply (JSON, body in base64) a resource worker sends back; a larger answer is replaced by a
   * 413 for that request. Kept below RabbitMQ's max_message_size (128 MiB by default), whose breach closes the
   * channel.
   */
  resourceReplyLimitBytes: number;
  /** A resource worker's id (unset: generated at start, unique per process). */
  resourceWorkerId: string | undefined;
  /** Longest a resource request's SQL may run; past it the statement is interrupted and the request answers 504. */
  resourceStatementTimeoutMs: number;
  /** A resource unused this long is closed and its lease released (the next request places it afresh). */
  resourceIdleMs: number;
  /** Most resources one worker keeps open; past it the least recently used idle one is closed, or 503. */
  resourceMaxOpen: number;
  /** How long job documents and results live in Redis. */
  jobTtlSeconds: number;
  /** An event stream sends a `: ping` comment after this long without an event (below the least API_IDLE_TIMEOUT_MS). */
  eventsHeartbeatMs: number;
  /** Messages a consumer may hold unacknowledged. */
  prefetch: number;
  /**
   * Most messages of one event-loop turn (job.submitted, lookup commands, task.completed to the same routing key)
   * sent together as one AMQP message, an envelope; 1 sends every message alone.
   */
  messageBatchMax: number;
  commandBatchMax: number;
  /** Upper bound of one lookup attempt. */
  lookupTimeoutMs: number;
  pingCount: number;
  pingTimeoutMs: number;
  /** How the Ping worker sends ICMP echo: 'socket' (in-process ICMP socket, native addon), 'system' (the system
   *  ping), or 'auto' (the socket when the addon loads and a socket opens, else the system ping). */
  pingEngine: 'auto' | 'socket' | 'system';
  shutdownTimeoutMs: number;
  /** Highest attempt number of a lookup (1 = no retries); transient failures retry up to it. */
  retryMaxAttempts: number;
  /** Backoff before attempt 2; doubles per attempt (with jitter), capped at retryMaxDelayMs. */
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  /** Deliveries of one message before it is dead-lettered as poison (it keeps crashing its consumer). */
  deliveryLimit: number;
  /** Key of completion callbacks' HMAC signature (X-Lookup-Signature); unset: submissions with a callback are refused. */
  callbackSecret: string | undefined;
  /** Attempts of one callback delivery before it is dead-lettered (backoff as RETRY_BASE_DELAY_MS/RETRY_MAX_DELAY_MS). */
  callbackMaxAttempts: number;
  /** Upper bound of one callback attempt (connect, send, answer). */
  callbackTimeoutMs: number;
  /**
   * Result reuse: per service slug (`geoip`, `ping`, ...), how long (seconds) a successful lookup is reused for the
   * same target (CACHE_TTL_<SLUG>, `-` as `_`: CACHE_TTL_GEOIP, CACHE_TTL_REVERSE_DNS); 0 = never.
   */
  cacheTtlSeconds: Readonly<Record<string, number>>;
  /** Time from submission after which every service still missing is recorded TimedOut. */
  jobDeadlineMs: number;
  /** How often the deadline sweeper looks for overdue jobs. */
  deadlineSweepMs: number;
  /**
   * TENANT_DISPATCH_WINDOW: a tenant's jobs dispatched and unfinished at most; the others wait in the tenant's queue in
   * Redis, so one tenant's bulk work cannot starve another's. 0 = off (every job dispatched at once).
   */
  tenantDispatchWindow: number;
  /** How long an Idempotency-Key is remembered. */
  idempotencyTtlSeconds: number;
  /** OpenTelemetry traces (OTEL_*): read before the service starts by @lookup/telemetry (loadTracingConfig). */
  tracing: TracingConfig;
}

/** The OTEL_* variables the suite itself reads; the SDK reads the others (sampler, protocol, headers) as usual. */
export interface TracingConfig {
  /**
   * OTEL_EXPORTER_OTLP_ENDPOINT (http or https): the OTLP/HTTP receiver spans are exported to. Unset (or
   * OTEL_SDK_DISABLED=true): no tracing, and the OpenTelemetry SDK is not even loaded.
   */
  otlpEndpoint: string | undefined;
  /** OTEL_SERVICE_NAME: the service.name of this process's spans instead of `lookup-<process>`. */
  serviceName: string | undefined;
  /** OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL: the OTLP/HTTP encoding (gRPC is not built in). */
  protocol: 'http/protobuf' | 'http/json';
}

/** One TENANTS entry: `name:key:jobsPerDay:jobsInFlight`. */
export interface TenantConfig {
  name: string;
  key: string;
  /** Jobs the tenant may submit per UTC day (0 = unlimited). */
  jobsPerDay: number;
  /** Jobs of the tenant that may be unfinished at once (0 = unlimited). */
  jobsInFlight: number;
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly retryable = false;
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;
type Parser<T> = (raw: string, name: string) => T;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const PING_ENGINES = ['auto', 'socket', 'system'] as const;
const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
const QUEUE_TYPES = ['classic', 'quorum'] as const;

/**
 * With QUEUE_TYPE=quorum, the work queues' `x-delivery-limit` (libs/messaging topology.ts): the broker's backstop
 * behind DELIVERY_LIMIT, which must not exceed it. Fixed, because queue arguments are immutable.
 */
export const QUORUM_DELIVERY_LIMIT = 50;

const int = (min: number, max: number): Parser<number> => (raw, name) => {
  if (!/^-?\d+$/.test(raw.trim())) throw new Error(`${name} must be an integer, got '${raw}'`);
  const n = Number(raw);
  if (n < min || n > max) throw new Error(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
};
const bool: Parser<boolean> = (raw, name) => {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
  throw new Error(`${name} must be true or false, got '${raw}'`);
};
const url = (protocols: string[]): Parser<string> => (raw, name) => {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    throw new Error(`${name} must be a URL, got '${maskUrl(raw)}'`);
  }
  if (!protocols.includes(u.protocol)) throw new Error(`${name} must use ${protocols.join(' or ')}, got '${u.protocol}'`);
  return raw.trim().replace(/\/+$/, '');
};
/**
 * AMQP_URL's items: one amqp:// or amqps:// URL, or several separated by commas (a cluster's nodes; a comma inside a
 * password is written %2C). Throws naming the bad item. Connections use it too (libs/messaging), so they read the
 * list exactly as it was validated.
 */
export function amqpUrlList(raw: string, name = 'AMQP_URL'): string[] {
  const items = raw.split(',').map((s) => s.trim());
  if (items.some((i) => i === '')) throw new Error(`${name} must be one URL or a comma-separated list of URLs, with no empty item, got '${maskUrl(raw)}'`);
  const urls = items.map((item, i) => url(['amqp:', 'amqps:'])(item, items.length > 1 ? `${name} (item ${i + 1} of ${items.length})` : name));
  const seen = new Set<string>();
  for (const u of urls) {
    if (seen.has(u)) throw new Error(`${name} lists the same broker twice: '${maskUrl(u)}'`);
    seen.add(u);
  }
  return urls;
}
const amqpUrls: Parser<string> = (raw, name) => amqpUrlList(raw, name).join(',');
const str: Parser<string> = (raw) => raw.trim();
/** A secret of at least `min` characters (not logged: describeConfig masks it). */
const secretOf = (min: number): Parser<string> => (raw, name) => {
  const v = raw.trim();
  if (v.length < min) throw new Error(`${name} must be at least ${min} characters long (a random string; e.g. openssl rand -hex 32)`);
  return v;
};
const oneOf = <T extends string>(values: readonly T[]): Parser<T> => (raw, name) => {
  const v = raw.trim().toLowerCase();
  if (!(values as readonly string[]).includes(v)) throw new Error(`${name} must be one of ${values.join(', ')}, got '${raw}'`);
  return v as T;
};
const list: Parser<string[]> = (raw) => raw.split(',').map((s) => s.trim()).filter(Boolean);
const cidrList: Parser<string[]> = (raw, name) => {
  const items = list(raw, name);
  for (const item of items) {
    try {
      parseCidr(item);
    } catch (err) {
      throw new Error(`${name} must be a comma-separated list of CIDR ranges: ${(err as Error).message}`);
    }
  }
  return items;
};
const hostPortList: Parser<string[]> = (raw, name) => {
  const items = list(raw, name);
  for (const item of items) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+)(?::(\d{1,5}))?$/.exec(item);
    if (!m || (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535))) {
      throw new Error(`${name} must be a comma-separated list of host[:port], got '${item}'`);
    }
  }
  return items;
};
/** REDIS_SENTINELS: comma-separated host:port (the port is required: Sentinels listen on 26379 by convention only). */
const sentinelList: Parser<{ host: string; port: number }[]> = (raw, name) =>
  list(raw, name).map((item) => {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]+):(\d{1,5})$/.exec(item);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new Error(`${name} must be a comma-separated list of host:port, got '${item}'`);
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  });

/**
 * TENANTS: comma-separated `name:key:jobsPerDay:jobsInFlight` (name: 1-64 letters, digits, '-' or '_'; key: no ':'
 * or ','; quotas: integers, 0 = unlimited). A tenant with several keys repeats its name with the same quotas.
 */
export const tenantList: Parser<TenantConfig[]> = (raw, name) => {
  const tenants = list(raw, name).map((item, i) => {
    const [tenant, key, perDay, inFlight, extra] = item.split(':');
    if (!tenant || !key || perDay === undefined || inFlight === undefined || extra !== undefined) {
      throw new Error(`${name} item ${i + 1} must be name:key:jobsPerDay:jobsInFlight, got '${tenant ?? ''}:***'`);
    }
    if (!/^[a-zA-Z0-9_-]{1,64}$/.test(tenant)) throw new Error(`${name} item ${i + 1}: the tenant name must be 1-64 letters, digits, '-' or '_', got '${tenant}'`);
    const quota = (v: string, what: string) => int(0, 100_000_000)(v, `${name} item ${i + 1} (${tenant}) ${what}`);
    return { name: tenant, key, jobsPerDay: quota(perDay, 'jobsPerDay'), jobsInFlight: quota(inFlight, 'jobsInFlight') };
  });
  const keys = new Set<string>();
  const byName = new Map<string, TenantConfig>();
  for (const t of tenants) {
    if (keys.has(t.key)) throw new Error(`${name} gives one key to two entries (tenant '${t.name}')`);
    keys.add(t.key);
    const first = byName.get(t.name);
    if (first && (first.jobsPerDay !== t.jobsPerDay || first.jobsInFlight !== t.jobsInFlight)) {
      throw new Error(`${name}: tenant '${t.name}' is listed with different quotas; give each of its keys the same jobsPerDay and jobsInFlight`);
    }
    byName.set(t.name, first ?? t);
  }
  return tenants;
};

/** TRUST_PROXY: false/true, a hop count, or a comma-separated list of proxy IP addresses or CIDRs. */
const trustProxyParser: Parser<boolean | number | string[]> = (raw, name) => {
  const v = raw.trim().toLowerCase();
  if (['false', 'no', 'off'].includes(v)) return false;
  if (['true', 'yes', 'on'].includes(v)) return true;
  if (/^\d+$/.test(v)) return int(0, 100)(v, name) || false;
  const items = list(raw, name);
  for (const item of items) {
    const [addr, prefix, extra] = item.split('/');
    const family = isIP(addr ?? '');
    const maxPrefix = family === 4 ? 32 : 128;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= maxPrefix);
    if (family === 0 || !prefixOk || extra !== undefined) {
      throw new Error(`${name} must be false, a hop count, or a comma-separated list of proxy addresses or CIDRs, got '${item}'`);
    }
  }
  return items;
};
/** CORS_ORIGINS: '*' alone, or a comma-separated list of origins (scheme://host[:port], no path). */
const originList: Parser<string[]> = (raw, name) => {
  const items = list(raw, name);
  if (items.length === 1 && items[0] === '*') return items;
  for (const item of items) {
    let origin: string | undefined;
    try {
      const u = new URL(item);
      origin = ['http:', 'https:'].includes(u.protocol) ? u.origin : undefined;
    } catch {
      origin = undefined;
    }
    if (origin !== item.replace(/\/$/, '')) throw new Error(`${name} must be '*' or a comma-separated list of origins like https://app.example.com, got '${item}'`);
  }
  return items.map((i) => i.replace(/\/$/, ''));
};

export function loadConfig(env: Env = process.env): Readonly<Config> {
  const problems: string[] = [];
  function read<T>(name: string, parse: Parser<T>, fallback: T): T {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    try {
      return parse(raw, name);
    } catch (err) {
      problems.push((err as Error).message);
      return fallback;
    }
  }
  const namespace = read('NAMESPACE', str, 'lookup');
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$/.test(namespace)) {
    problems.push(`NAMESPACE must be 1-64 letters, digits, '-' or '_', got '${namespace}'`);
  }
  const logLevel = read('LOG_LEVEL', str, 'info');
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got '${logLevel}'`);
  }
  const config: Config = {
    rabbitmqManagementUrl: '',
    amqpUrl: read('AMQP_URL', amqpUrls, 'amqp://guest:guest@127.0.0.1:5672'),
    queueType: read('QUEUE_TYPE', oneOf(QUEUE_TYPES), 'classic'),
    redisUrl: read('REDIS_URL', url(['redis:', 'rediss:', 'redis+cluster:']), 'redis://127.0.0.1:6379'),
    redisSentinels: read('REDIS_SENTINELS', sentinelList, []),
    redisMasterName: read('REDIS_MASTER_NAME', str, 'mymaster'),
    redisCluster: read('REDIS_CLUSTER', bool, false),
    redisWaitReplicas: 0,
    redisWaitTimeoutMs: read('REDIS_WAIT_TIMEOUT_MS', int(10, 60_000), 500),
    apiHost: read('API_HOST', str, '127.0.0.1'),
    apiPort: read('API_PORT', int(0, 65535), 8080),
    metricsHost: read('METRICS_HOST', str, '127.0.0.1'),
    metricsPort: read('METRICS_PORT', int(0, 65535), 9464),
    namespace,
    rdapBaseUrl: read<string | undefined>('RDAP_BASE_URL', url(['http:', 'https:']), undefined),
    rdapMaxResponseBytes: read('RDAP_MAX_RESPONSE_BYTES', int(1024, 256 * 1024 * 1024), 1024 * 1024),
    // Test runners set NODE_ENV=test: no test may reach the internet for the registries.
    rdapBootstrapRefresh: read('RDAP_BOOTSTRAP_REFRESH', bool, env.NODE_ENV !== 'test'),
    dnsServers: read('DNS_SERVERS', hostPortList, []),
    geoipDbPath: read<string | undefined>('GEOIP_DB_PATH', str, undefined),
    geoipAsnDbPath: read<string | undefined>('GEOIP_ASN_DB_PATH', str, undefined),
    logLevel: logLevel as Config['logLevel'],
    logFormat: read('LOG_FORMAT', oneOf(LOG_FORMATS), 'auto'),
    exitWithParent: read('EXIT_WITH_PARENT', bool, true),
    rateLimitSubmitPerMin: read('RATE_LIMIT_SUBMIT_PER_MIN', int(0, 10_000_000), 20),
    rateLimitApiPerMin: read('RATE_LIMIT_API_PER_MIN', int(0, 10_000_000), 100),
    rateLimitGlobalPerMin: read('RATE_LIMIT_GLOBAL_PER_MIN', int(0, 100_000_000), 1000),
    rateLimitResourcePerMin: read('RATE_LIMIT_RESOURCE_PER_MIN', int(0, 10_000_000), 600),
    allowPrivateTargets: read('ALLOW_PRIVATE_TARGETS', bool, false),
    targetAllowCidrs: read('TARGET_ALLOW_CIDRS', cidrList, []),
    targetDenyCidrs: read('TARGET_DENY_CIDRS', cidrList, []),
    adminApiKey: read<string | undefined>('ADMIN_API_KEY', str, undefined),
    apiKeys: read('API_KEYS', list, []),
    tenants: read('TENANTS', tenantList, []),
    trustProxy: read('TRUST_PROXY', trustProxyParser, false),
    bodyLimitBytes: read('API_BODY_LIMIT_BYTES', int(256, 10 * 1024 * 1024), 16 * 1024),
    batchMaxItems: read('BATCH_MAX_ITEMS', int(1, 10_000), 1000),
    rateLimitUnauthenticatedPerMin: read('RATE_LIMIT_UNAUTHENTICATED_PER_MIN', int(0, 10_000_000), 30),
    apiRequestTimeoutMs: read('API_REQUEST_TIMEOUT_MS', int(1000, 3_600_000), 30_000),
    apiHeadersTimeoutMs: read('API_HEADERS_TIMEOUT_MS', int(1000, 3_600_000), 10_000),
    apiKeepAliveTimeoutMs: read('API_KEEP_ALIVE_TIMEOUT_MS', int(100, 600_000), 72_000),
    apiIdleTimeoutMs: read('API_IDLE_TIMEOUT_MS', int(20_000, 3_600_000), 60_000),
    apiMaxConnectionsPerClient: read('API_MAX_CONNECTIONS_PER_CLIENT', int(0, 1_000_000), 64),
    apiMaxConnections: read('API_MAX_CONNECTIONS', int(1, 1_000_000), 10_000),
    apiMaxHeaderBytes: read('API_MAX_HEADER_BYTES', int(1024, 1024 * 1024), 16 * 1024),
    apiMaxUrlLength: read('API_MAX_URL_LENGTH', int(256, 1024 * 1024), 8192),
    corsOrigins: read('CORS_ORIGINS', originList, []),
    resourceDataDir: read('RESOURCE_DATA_DIR', str, './data/resources'),
    resourceHeartbeatMs: read('RESOURCE_HEARTBEAT_MS', int(50, 600_000), 2000),
    resourceMaxMissed: read('RESOURCE_MAX_MISSED', int(1, 100), 3),
    resourceProxyTimeoutMs: read('RESOURCE_PROXY_TIMEOUT_MS', int(100, 600_000), 30_000),
    resourceBodyLimitBytes: read('RESOURCE_BODY_LIMIT_BYTES', int(256, 64 * 1024 * 1024), 1024 * 1024),
    resourceReplyLimitBytes: read('RESOURCE_REPLY_LIMIT_BYTES', int(4096, 120 * 1024 * 1024), 16 * 1024 * 1024),
    resourceWorkerId: read<string | undefined>('RESOURCE_WORKER_ID', str, undefined),
    resourceStatementTimeoutMs: read('RESOURCE_STATEMENT_TIMEOUT_MS', int(10, 600_000), 5_000),
    resourceIdleMs: read('RESOURCE_IDLE_MS', int(100, 7 * 24 * 3600 * 1000), 300_000),
    resourceMaxOpen: read('RESOURCE_MAX_OPEN', int(1, 10_000), 16),
    jobTtlSeconds: read('JOB_TTL_SECONDS', int(60, 365 * 24 * 3600), 24 * 3600),
    eventsHeartbeatMs: read('EVENTS_HEARTBEAT_MS', int(50, 19_000), 15_000),
    prefetch: read('PREFETCH', int(1, 10_000), 64),
    // At most libs/messaging's MAX_ENVELOPE_ITEMS (256), the most items a consumer accepts in one envelope.
    messageBatchMax: read('MESSAGE_BATCH_MAX', int(1, 256), 256),
    // Lookup commands on the work queues: a smaller cap, so scaled-out workers still share a backlog (prefetch counts envelopes).
    commandBatchMax: read('COMMAND_BATCH_MAX', int(1, 256), 16),
    lookupTimeoutMs: read('LOOKUP_TIMEOUT_MS', int(100, 600_000), 10_000),
    pingCount: read('PING_COUNT', int(1, 20), 3),
    pingTimeoutMs: read('PING_TIMEOUT_MS', int(50, 60_000), 2000),
    pingEngine: read('PING_ENGINE', oneOf(PING_ENGINES), 'auto'),
    shutdownTimeoutMs: read('SHUTDOWN_TIMEOUT_MS', int(100, 600_000), 10_000),
    retryMaxAttempts: read('RETRY_MAX_ATTEMPTS', int(1, 10), 3),
    retryBaseDelayMs: read('RETRY_BASE_DELAY_MS', int(10, 600_000), 500),
    retryMaxDelayMs: read('RETRY_MAX_DELAY_MS', int(10, 3_600_000), 30_000),
    deliveryLimit: read('DELIVERY_LIMIT', int(1, 1000), 5),
    callbackSecret: read<string | undefined>('CALLBACK_SECRET', secretOf(16), undefined),
    callbackMaxAttempts: read('CALLBACK_MAX_ATTEMPTS', int(1, 20), 5),
    callbackTimeoutMs: read('CALLBACK_TIMEOUT_MS', int(100, 120_000), 10_000),
    cacheTtlSeconds: Object.freeze(
      Object.fromEntries(SERVICE_CATALOGUE.map((s) => [s.slug, read(cacheTtlVariable(s.slug), int(0, 30 * 24 * 3600), 0)])),
    ),
    jobDeadlineMs: 0,
    deadlineSweepMs: read('DEADLINE_SWEEP_MS', int(50, 60_000), 1000),
    tenantDispatchWindow: read('TENANT_DISPATCH_WINDOW', int(0, 100_000), 32),
    idempotencyTtlSeconds: read('IDEMPOTENCY_TTL_SECONDS', int(1, 30 * 24 * 3600), 24 * 3600),
    tracing: {
      otlpEndpoint: read('OTEL_SDK_DISABLED', bool, false) ? undefined : read<string | undefined>('OTEL_EXPORTER_OTLP_ENDPOINT', url(['http:', 'https:']), undefined),
      serviceName: read<string | undefined>('OTEL_SERVICE_NAME', str, undefined),
      protocol: read('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', oneOf(OTLP_PROTOCOLS), read('OTEL_EXPORTER_OTLP_PROTOCOL', oneOf(OTLP_PROTOCOLS), 'http/protobuf')),
    },
  };
  // Default deadline: every attempt of the slowest lookup at its full timeout, the backoffs between them,
  // and five seconds of slack.
  const backoffs = Array.from({ length: config.retryMaxAttempts - 1 }, (_, i) => Math.min(config.retryMaxDelayMs, config.retryBaseDelayMs * 2 ** i));
  const defaultDeadline = config.lookupTimeoutMs * config.retryMaxAttempts + backoffs.reduce((a, b) => a + b, 0) + 5_000;
  config.rabbitmqManagementUrl = read('RABBITMQ_MANAGEMENT_URL', url(['http:', 'https:']), managementUrlFor(config.amqpUrl));
  if (config.redisUrl.startsWith('redis+cluster:')) config.redisCluster = true;
  if (config.redisCluster && config.redisSentinels.length > 0) problems.push('REDIS_CLUSTER and REDIS_SENTINELS exclude each other: a Redis Cluster fails over by itself');
  config.redisWaitReplicas = read('REDIS_WAIT_REPLICAS', int(0, 16), config.redisSentinels.length > 0 ? 1 : 0);
  if (config.redisCluster && config.redisWaitReplicas > 0) {
    problems.push('REDIS_WAIT_REPLICAS must be 0 with REDIS_CLUSTER: WAIT covers one connection, and a cluster client writes over one per node');
  }
  if (config.redisWaitReplicas > 0 && config.redisWaitTimeoutMs >= config.resourceHeartbeatMs) {
    problems.push(`REDIS_WAIT_TIMEOUT_MS (${config.redisWaitTimeoutMs}) must be below RESOURCE_HEARTBEAT_MS (${config.resourceHeartbeatMs}): a lease renewal waits for its replicas within one heartbeat`);
  }
  if (config.redisSentinels.length > 0 && !/^[a-zA-Z0-9._-]{1,64}$/.test(config.redisMasterName)) {
    problems.push(`REDIS_MASTER_NAME must be 1-64 letters, digits, '.', '-' or '_', got '${config.redisMasterName}'`);
  }
  // A tenant's key is an API key too (once API_KEYS or TENANTS is set, every /api request needs a key).
  config.apiKeys = [...new Set([...config.apiKeys, ...config.tenants.map((t) => t.key)])];
  config.jobDeadlineMs = read('JOB_DEADLINE_MS', int(100, 24 * 3600 * 1000), defaultDeadline);
  if (config.apiHeadersTimeoutMs > config.apiRequestTimeoutMs) {
    problems.push(`API_HEADERS_TIMEOUT_MS (${config.apiHeadersTimeoutMs}) must not exceed API_REQUEST_TIMEOUT_MS (${config.apiRequestTimeoutMs})`);
  }
  if (config.queueType === 'quorum' && config.deliveryLimit > QUORUM_DELIVERY_LIMIT) {
    problems.push(`DELIVERY_LIMIT (${config.deliveryLimit}) must be at most ${QUORUM_DELIVERY_LIMIT} with QUEUE_TYPE=quorum (the quorum work queues' x-delivery-limit, the broker's backstop behind it)`);
  }
  if (config.resourceWorkerId !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(config.resourceWorkerId)) {
    problems.push(`RESOURCE_WORKER_ID must be 1-64 letters, digits, '.', '-' or '_', got '${config.resourceWorkerId}'`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

/**
 * The tracing part of the configuration alone, validated as loadConfig does (ConfigError naming each bad
 * variable): what @lookup/telemetry reads before a service's own code, and its configuration, are loaded.
 */
export function loadTracingConfig(env: Env = process.env): Readonly<TracingConfig> {
  const names = ['OTEL_SDK_DISABLED', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_SERVICE_NAME', 'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'];
  return Object.freeze({ ...loadConfig(Object.fromEntries(names.map((n) => [n, env[n]]))).tracing });
}

/** The variable of a service's result-reuse window: CACHE_TTL_ and its slug upper-cased, `-` as `_`. */
export function cacheTtlVariable(slug: string): string {
  return `CACHE_TTL_${slug.toUpperCase().replace(/-/g, '_')}`;
}

/** Loads the configuration or stops the process with a message naming each bad variable. */
export function loadConfigOrExit(env: Env = process.env): Readonly<Config> {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
}

/**
 * The management API beside a broker: AMQP_URL's user, password and host (the first broker's), on port 15672 (http),
 * or 15671 (https) for amqps.
 */
export function managementUrlFor(amqpUrl: string): string {
  try {
    const u = new URL(amqpUrl.split(',')[0]!.trim());
    const secure = u.protocol === 'amqps:';
    const auth = u.username ? `${u.username}${u.password ? `:${u.password}` : ''}@` : '';
    return `${secure ? 'https' : 'http'}://${auth}${u.hostname.includes(':') && !u.hostname.startsWith('[') ? `[${u.hostname}]` : u.hostname}:${secure ? 15671 : 15672}`;
  } catch {
    return 'http://guest:guest@127.0.0.1:15672';
  }
}

/** The URL (or each URL of a comma-separated list such as AMQP_URL's) with any password replaced by '***', for logs. */
export function maskUrl(raw: string): string {
  if (raw.includes(',')) return raw.split(',').map(maskOneUrl).join(',');
  return maskOneUrl(raw);
}

function maskOneUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return raw.replace(/\/\/([^:/@]+):([^@]+)@/, '//$1:***@');
  }
}

/** Configuration safe to log: URLs masked, secrets hidden. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    amqpUrl: maskUrl(config.amqpUrl),
    redisUrl: maskUrl(config.redisUrl),
    rabbitmqManagementUrl: maskUrl(config.rabbitmqManagementUrl),
    adminApiKey: config.adminApiKey ? '***' : undefined,
    callbackSecret: config.callbackSecret ? '***' : undefined,
    apiKeys: config.apiKeys.map(() => '***'),
    tenants: config.tenants.map((t) => ({ ...t, key: '***' })),
    tracing: { ...config.tracing, otlpEndpoint: config.tracing.otlpEndpoint === undefined ? undefined : maskUrl(config.tracing.otlpEndpoint) },
  };
}
