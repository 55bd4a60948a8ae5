/**
 * The one place that reads process.env. Every variable is declared here with its default and parser;
 * loadConfig collects every error before failing, and returns a frozen object.
 */

export interface Config {
  amqpUrl: string;
  redisUrl: string;
  apiHost: string;
  apiPort: number;
  namespace: string;
  rdapBaseUrl: string | undefined;
  dnsServers: string[];
  geoipDbPath: string | undefined;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  rateLimitSubmitPerMin: number;
  rateLimitApiPerMin: number;
  rateLimitGlobalPerMin: number;
  allowPrivateTargets: boolean;
  adminApiKey: string | undefined;
  apiKeys: string[];
  trustProxy: boolean;
  bodyLimitBytes: number;
  resourceDataDir: string;
  resourceHeartbeatMs: number;
  resourceMaxMissed: number;
  /** How long the API waits for a resource owner's answer before it answers 504. */
  resourceProxyTimeoutMs: number;
  /** Largest request body the API forwards to a resource owner. */
  resourceBodyLimitBytes: number;
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
  /** Messages a consumer may hold unacknowledged. */
  prefetch: number;
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
  /** Time from submission after which every service still missing is recorded TimedOut. */
  jobDeadlineMs: number;
  /** How often the deadline sweeper looks for overdue jobs. */
  deadlineSweepMs: number;
  /** How long an Idempotency-Key is remembered. */
  idempotencyTtlSeconds: number;
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
const str: Parser<string> = (raw) => raw.trim();
const oneOf = <T extends string>(values: readonly T[]): Parser<T> => (raw, name) => {
  const v = raw.trim().toLowerCase();
  if (!(values as readonly string[]).includes(v)) throw new Error(`${name} must be one of ${values.join(', ')}, got '${raw}'`);
  return v as T;
};
const list: Parser<string[]> = (raw) => raw.split(',').map((s) => s.trim()).filter(Boolean);
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
    amqpUrl: read('AMQP_URL', url(['amqp:', 'amqps:']), 'amqp://guest:guest@127.0.0.1:5672'),
    redisUrl: read('REDIS_URL', url(['redis:', 'rediss:']), 'redis://127.0.0.1:6379'),
    apiHost: read('API_HOST', str, '0.0.0.0'),
    apiPort: read('API_PORT', int(0, 65535), 8080),
    namespace,
    rdapBaseUrl: read<string | undefined>('RDAP_BASE_URL', url(['http:', 'https:']), undefined),
    dnsServers: read('DNS_SERVERS', hostPortList, []),
    geoipDbPath: read<string | undefined>('GEOIP_DB_PATH', str, undefined),
    logLevel: logLevel as Config['logLevel'],
    rateLimitSubmitPerMin: read('RATE_LIMIT_SUBMIT_PER_MIN', int(0, 10_000_000), 20),
    rateLimitApiPerMin: read('RATE_LIMIT_API_PER_MIN', int(0, 10_000_000), 100),
    rateLimitGlobalPerMin: read('RATE_LIMIT_GLOBAL_PER_MIN', int(0, 100_000_000), 1000),
    allowPrivateTargets: read('ALLOW_PRIVATE_TARGETS', bool, false),
    adminApiKey: read<string | undefined>('ADMIN_API_KEY', str, undefined),
    apiKeys: read('API_KEYS', list, []),
    trustProxy: read('TRUST_PROXY', bool, false),
    bodyLimitBytes: read('API_BODY_LIMIT_BYTES', int(256, 10 * 1024 * 1024), 16 * 1024),
    resourceDataDir: read('RESOURCE_DATA_DIR', str, './data/resources'),
    resourceHeartbeatMs: read('RESOURCE_HEARTBEAT_MS', int(50, 600_000), 2000),
    resourceMaxMissed: read('RESOURCE_MAX_MISSED', int(1, 100), 3),
    resourceProxyTimeoutMs: read('RESOURCE_PROXY_TIMEOUT_MS', int(100, 600_000), 30_000),
    resourceBodyLimitBytes: read('RESOURCE_BODY_LIMIT_BYTES', int(256, 64 * 1024 * 1024), 1024 * 1024),
    resourceWorkerId: read<string | undefined>('RESOURCE_WORKER_ID', str, undefined),
    resourceStatementTimeoutMs: read('RESOURCE_STATEMENT_TIMEOUT_MS', int(10, 600_000), 5_000),
    resourceIdleMs: read('RESOURCE_IDLE_MS', int(100, 7 * 24 * 3600 * 1000), 300_000),
    resourceMaxOpen: read('RESOURCE_MAX_OPEN', int(1, 10_000), 32),
    jobTtlSeconds: read('JOB_TTL_SECONDS', int(60, 365 * 24 * 3600), 24 * 3600),
    prefetch: read('PREFETCH', int(1, 10_000), 64),
    lookupTimeoutMs: read('LOOKUP_TIMEOUT_MS', int(100, 600_000), 10_000),
    pingCount: read('PING_COUNT', int(1, 20), 3),
    pingTimeoutMs: read('PING_TIMEOUT_MS', int(50, 60_000), 2000),
    pingEngine: read('PING_ENGINE', oneOf(PING_ENGINES), 'auto'),
    shutdownTimeoutMs: read('SHUTDOWN_TIMEOUT_MS', int(100, 600_000), 10_000),
    retryMaxAttempts: read('RETRY_MAX_ATTEMPTS', int(1, 10), 3),
    retryBaseDelayMs: read('RETRY_BASE_DELAY_MS', int(10, 600_000), 500),
    retryMaxDelayMs: read('RETRY_MAX_DELAY_MS', int(10, 3_600_000), 30_000),
    deliveryLimit: read('DELIVERY_LIMIT', int(1, 1000), 5),
    jobDeadlineMs: 0,
    deadlineSweepMs: read('DEADLINE_SWEEP_MS', int(50, 60_000), 1000),
    idempotencyTtlSeconds: read('IDEMPOTENCY_TTL_SECONDS', int(1, 30 * 24 * 3600), 24 * 3600),
  };
  // Default deadline: every attempt of the slowest lookup at its full timeout, the backoffs between them,
  // and five seconds of slack.
  const backoffs = Array.from({ length: config.retryMaxAttempts - 1 }, (_, i) => Math.min(config.retryMaxDelayMs, config.retryBaseDelayMs * 2 ** i));
  const defaultDeadline = config.lookupTimeoutMs * config.retryMaxAttempts + backoffs.reduce((a, b) => a + b, 0) + 5_000;
  config.jobDeadlineMs = read('JOB_DEADLINE_MS', int(100, 24 * 3600 * 1000), defaultDeadline);
  if (config.resourceWorkerId !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(config.resourceWorkerId)) {
    problems.push(`RESOURCE_WORKER_ID must be 1-64 letters, digits, '.', '-' or '_', got '${config.resourceWorkerId}'`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
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

/** The URL with any password replaced by '***', for logs. */
export function maskUrl(raw: string): string {
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
    adminApiKey: config.adminApiKey ? '***' : undefined,
    apiKeys: config.apiKeys.map(() => '***'),
  };
}
