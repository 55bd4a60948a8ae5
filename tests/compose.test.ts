// Keeps docker-compose.yml, compose.demo.yml, compose.observability.yml, .env.example, the Dockerfile and the root
// package.json's start scripts in step, checks the observability profile's files (deploy/observability: Prometheus,
// Grafana, the OpenTelemetry collector), and the process supervisor (scripts/start.mjs) that `npm start` and the
// image's CMD run. No Docker
// engine is needed: compose files are rendered with `docker-compose config` (v1, or the v2 plugin), the Dockerfile
// is read as text.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_CATALOGUE } from '@lookup/contracts';
import { declarations, topology } from '@lookup/messaging';
import { isKnownSeries, promqlMetricNames, SUITE_HISTOGRAMS, SUITE_METRICS } from './support/metric-names.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const START = path.join(ROOT, 'scripts', 'start.mjs');
const IMAGE = 'distributed-lookup:latest';

interface StartModule {
  splitCommand(command: string): string[];
  readServices(pkg: unknown): Array<{ name: string; command: string; argv: string[] }>;
}

interface ComposeService {
  build?: { context?: string; args?: Record<string, string> } | string;
  image?: string;
  pull_policy?: string;
  profiles?: string[];
  command?: unknown;
  container_name?: string;
  ports?: unknown[];
  restart?: string;
  env_file?: unknown;
  healthcheck?: { test?: unknown; disable?: boolean };
  depends_on?: Record<string, { condition?: string }> | string[];
  environment?: Record<string, unknown> | string[];
  networks?: Record<string, { ipv4_address?: string } | null> | string[];
  cap_add?: string[];
  sysctls?: Record<string, string> | string[];
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
  networks?: Record<string, { ipam?: { config?: Array<{ subnet?: string }> } } | null>;
}

const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
/** The files under a repository folder, as repository paths. */
const listFiles = (dir: string): string[] =>
  readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(`${dir}/${e.name}`) : [`${dir}/${e.name}`]));
const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
const compose = parse(read('docker-compose.yml'), { merge: true }) as ComposeFile;
const services = compose.services;
/** The suite's own services (one per start:<name> script): every service of this image but the demo's fixtures. */
const appServices = Object.entries(services).filter(([name, s]) => s.image === IMAGE && name !== 'fixtures');
/** The `observability` profile's services (upstream images: Prometheus, Grafana, the OpenTelemetry collector, Jaeger). */
const OBSERVABILITY = Object.entries(services).filter(([, s]) => s.profiles?.includes('observability')).map(([n]) => n).sort();
/** One compose service per catalogue entry: `<slug>-worker`. */
const LOOKUP_WORKERS = SERVICE_CATALOGUE.map((s) => `${s.slug}-worker`);

/** Every variable libs/config/src/config.ts reads: its `read('NAME', ...)` calls. */
const CONFIG_VARIABLES = [...read('libs/config/src/config.ts').matchAll(/\bread(?:<[^>]*>)?\(\s*'([A-Z][A-Z0-9_]*)'/g)].map((m) => m[1]!);
/** What compose sets in the containers over .env, and to what (the rest comes from .env unchanged). */
const SET_BY_COMPOSE: Record<string, (service: string) => string | RegExp | undefined> = {
  AMQP_URL: () => 'amqp://lookup:rmqTestSecret42@rabbitmq:5672',
  REDIS_URL: () => 'redis://:redisTestSecret42@redis:6379',
  API_HOST: (s) => (s === 'api' ? '0.0.0.0' : undefined),
  API_PORT: (s) => (s === 'api' ? '8080' : undefined),
  // Every app container (the API ignores them): the metrics listener where Prometheus and the healthcheck find it.
  METRICS_HOST: () => '0.0.0.0',
  METRICS_PORT: () => '9464',
  RESOURCE_DATA_DIR: (s) => (s === 'resource-worker' ? '/app/data/resources' : undefined),
  ADMIN_API_KEY: (s) => (s === 'api' ? 'adminTestKey42' : ''),
  API_KEYS: (s) => (s === 'api' ? 'k1,k2' : ''),
  TENANTS: (s) => (s === 'api' ? 'acme:k3:100:5' : ''),
};

let start: StartModule;
beforeAll(async () => {
  start = (await import(pathToFileURL(START).href)) as StartModule;
});

/** `docker-compose` (v1, Debian's package) or, failing that, the `docker compose` v2 plugin (looked up once). */
let composeTool: { cmd: string; prefix: string[] } | null | undefined;
function findCompose(): { cmd: string; prefix: string[] } | null {
  return (composeTool ??= lookUpCompose());
}
function lookUpCompose(): { cmd: string; prefix: string[] } | null {
  const v1 = spawnSync('docker-compose', ['version'], { encoding: 'utf8' });
  if (!v1.error && v1.status === 0) return { cmd: 'docker-compose', prefix: [] };
  const v2 = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
  if (!v2.error && v2.status === 0) return { cmd: 'docker', prefix: ['compose'] };
  return null;
}

/** A published port in either rendering (v1: "127.0.0.1:5672:5672/tcp"; v2: {host_ip, published, target}). */
function portBinding(port: unknown): { hostIp: string; published: string; target: string } {
  if (typeof port === 'string') {
    const m = /^(?:(\[[^\]]+\]|[^:]+):)?(?:(\d*):)?(\d+)(?:\/\w+)?$/.exec(port);
    expect(m, `port ${port}`).toBeTruthy();
    return { hostIp: m![1] ?? '', published: m![2] ?? '', target: m![3]! };
  }
  const p = port as { host_ip?: string; published?: string | number; target: string | number };
  return { hostIp: p.host_ip ?? '', published: String(p.published ?? ''), target: String(p.target) };
}

const asEnv = (env: ComposeService['environment']): Record<string, string> =>
  Array.isArray(env)
    ? Object.fromEntries(env.map((e) => [e.split('=')[0]!, e.slice(e.indexOf('=') + 1)]))
    : Object.fromEntries(Object.entries(env ?? {}).map(([k, v]) => [k, v == null ? '' : String(v)]));

/** What the observability profile publishes on this machine by default (all on 127.0.0.1). */
const OBSERVABILITY_PORTS = {
  prometheus: ['127.0.0.1:9090:9090'],
  grafana: ['127.0.0.1:3000:3000'],
  jaeger: ['127.0.0.1:16686:16686'],
  'otel-collector': ['127.0.0.1:4317:4317', '127.0.0.1:4318:4318'],
};

describe('docker-compose.yml', () => {
  /**
   * Renders the compose files the way a user's checkout would: a project directory holding them and a `.env` with
   * exactly `vars` (never the developer's .env or shell: only PATH and HOME are passed), then
   * `<compose> [-f file]... [--profile p]... config [args]`. Asynchronous, so this worker is never blocked while
   * docker-compose runs (several seconds each on a loaded machine: a long synchronous stretch starves vitest's worker
   * RPC, "Timeout calling onTaskUpdate").
   */
  async function composeConfig(
    vars: Record<string, string>,
    options: { args?: string[]; files?: string[]; profiles?: string[] } = {},
  ): Promise<{ status: number | null; stdout: string; stderr: string }> {
    const { args = ['-q'], files = ['docker-compose.yml'], profiles = [] } = options;
    const tool = findCompose();
    if (!tool) {
      // Fail, never skip: a skipped check is one nobody notices.
      throw new Error(
        'neither `docker-compose` nor `docker compose` is installed: install docker-compose ' +
          '(Debian: apt-get install docker-compose) to run this test; .ci/run does so',
      );
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'compose-project-'));
    try {
      for (const file of files) copyFileSync(path.join(ROOT, file), path.join(dir, file));
      copyFileSync(path.join(ROOT, 'Dockerfile'), path.join(dir, 'Dockerfile'));
      writeFileSync(path.join(dir, '.env'), Object.entries(vars).map(([k, v]) => `${k}=${v}\n`).join(''));
      const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir };
      const argv = [...tool.prefix, ...files.flatMap((f) => ['-f', f]), ...profiles.flatMap((p) => ['--profile', p]), 'config', ...args];
      return await new Promise((resolve, reject) => {
        const child = spawn(tool.cmd, argv, { cwd: dir, env });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', reject);
        child.on('close', (status) => resolve({ status, stdout, stderr }));
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  /** The compose model docker-compose renders from `vars` and `options` (composeConfig), which must render. */
  async function renderedAsync(vars: Record<string, string>, options: { files?: string[]; profiles?: string[] } = {}): Promise<ComposeFile> {
    const r = await composeConfig(vars, { ...options, args: [] });
    expect(r.status, `config said:\n${r.stdout}${r.stderr}`).toBe(0);
    return parse(r.stdout) as ComposeFile;
  }
  const SECRETS = { RABBITMQ_PASSWORD: 'rmqTestSecret42', REDIS_PASSWORD: 'redisTestSecret42', ADMIN_API_KEY: 'adminTestKey42', API_KEYS: 'k1,k2', TENANTS: 'acme:k3:100:5' };
  const DEMO = { files: ['docker-compose.yml', 'compose.demo.yml'], profiles: ['demo'] };
  const OBSERVE = { files: ['docker-compose.yml', 'compose.observability.yml'], profiles: ['observability'] };
  /** Every file and every profile at once. */
  const ALL = { files: ['docker-compose.yml', 'compose.demo.yml', 'compose.observability.yml'], profiles: ['demo', 'observability'] };

  it('is valid for docker-compose (config -q exits 0) once the secrets are set, alone and with the demo override', async () => {
    const r = await composeConfig(SECRETS);
    expect(r.status, `config -q said:\n${r.stdout}${r.stderr}`).toBe(0);
    const demo = await composeConfig(SECRETS, DEMO);
    expect(demo.status, `config -q (demo) said:\n${demo.stdout}${demo.stderr}`).toBe(0);
  });

  it('refuses to start without the RabbitMQ and Redis passwords, naming them', async () => {
    const r = await composeConfig({});
    expect(r.status).not.toBe(0);
    expect(`${r.stdout}${r.stderr}`).toMatch(/RABBITMQ_PASSWORD|REDIS_PASSWORD/);
    const noRedis = await composeConfig({ RABBITMQ_PASSWORD: 'x1' });
    expect(noRedis.status).not.toBe(0);
    expect(`${noRedis.stdout}${noRedis.stderr}`).toMatch(/REDIS_PASSWORD/);
  });

  it('takes every secret from the environment (.env): rendered into the services, never written in the file', async () => {
    const out = await renderedAsync(SECRETS);
    const env = (name: string) => asEnv(out.services[name]!.environment);
    expect(env('api').AMQP_URL).toBe('amqp://lookup:rmqTestSecret42@rabbitmq:5672');
    expect(env('api').REDIS_URL).toBe('redis://:redisTestSecret42@redis:6379');
    expect(env('api').ADMIN_API_KEY).toBe('adminTestKey42');
    expect(env('api').API_KEYS).toBe('k1,k2');
    // Only the API gets the keys: .env reaches every app container, the others have them blanked.
    for (const [name] of appServices.filter(([n]) => n !== 'api')) {
      expect(env(name).ADMIN_API_KEY ?? '', `${name}: ADMIN_API_KEY`).toBe('');
      expect(env(name).API_KEYS ?? '', `${name}: API_KEYS`).toBe('');
      expect(env(name).TENANTS ?? '', `${name}: TENANTS`).toBe('');
    }
    expect(env('rabbitmq')).toMatchObject({ RABBITMQ_DEFAULT_USER: 'lookup', RABBITMQ_DEFAULT_PASS: 'rmqTestSecret42' });
    expect(env('redis')).toMatchObject({ REDISCLI_AUTH: 'redisTestSecret42' });
    expect(env('rabbitmq').ADMIN_API_KEY).toBeUndefined(); // the images get no env_file

    for (const file of ['docker-compose.yml', 'compose.demo.yml', 'compose.observability.yml']) {
      const raw = read(file);
      expect(raw).not.toMatch(/guest/);
      // Every password, key or URL credential is a ${VARIABLE} (or blanked: ""), never a literal.
      for (const line of raw.split('\n').filter((l) => !l.trim().startsWith('#'))) {
        const m = /^\s*(\w*(?:PASS|PASSWORD|KEY|KEYS|AUTH))\s*:\s*(.*)$/.exec(line);
        if (m) expect(m[2], line).toMatch(/^(\$\{\w+:[-?][^}]*\}|"")(\s*#.*)?$/);
      }
      expect(raw).not.toMatch(/:\/\/[^$\s/]*:[^$\s@]+@/); // no user:password@ literal in a URL
    }
  });

  it('documents every variable it substitutes in .env.example, and keeps .env out of git and the image', () => {
    const example = read('.env.example');
    const documented = new Set([...example.matchAll(/^(\w+)=/gm)].map((m) => m[1]!));
    for (const file of ['docker-compose.yml', 'compose.demo.yml', 'compose.observability.yml']) {
      const used = new Set([...read(file).matchAll(/\$\{(\w+)/g)].map((m) => m[1]!));
      for (const name of used) expect(documented.has(name), `${file}'s ${name} in .env.example`).toBe(true);
    }
    // The example holds no secret: the required ones are blank.
    expect(example).toMatch(/^RABBITMQ_PASSWORD=$/m);
    expect(example).toMatch(/^REDIS_PASSWORD=$/m);
    expect(example).toMatch(/^ADMIN_API_KEY=$/m);
    expect(example).toMatch(/^API_KEYS=$/m);
    expect(read('.gitignore').split('\n')).toContain('.env');
    expect(read('.dockerignore').split('\n')).toContain('.env');
  });

  it('passes every configuration variable of libs/config from .env (env_file) to every app container, documented in .env.example', async () => {
    // The parse found the whole list (a parse that found nothing would make this test pass vacuously).
    expect(CONFIG_VARIABLES.length).toBeGreaterThanOrEqual(50);
    expect(CONFIG_VARIABLES).toEqual(
      expect.arrayContaining(['RETRY_MAX_ATTEMPTS', 'LOOKUP_TIMEOUT_MS', 'PING_COUNT', 'PREFETCH', 'JOB_DEADLINE_MS', 'TRUST_PROXY',
        'TARGET_ALLOW_CIDRS', 'TARGET_DENY_CIDRS', 'RDAP_MAX_RESPONSE_BYTES', 'API_MAX_CONNECTIONS', 'RESOURCE_MAX_OPEN']),
    );
    const example = read('.env.example');
    for (const name of CONFIG_VARIABLES) {
      expect(example, `.env.example documents ${name} (a "${name}=" line, commented or not)`).toMatch(new RegExp(`^(# ?)?${name}=`, 'm'));
    }

    for (const [name, svc] of appServices) expect(svc.env_file, `${name}: env_file`).toEqual('.env');
    // A .env setting every variable to a value of its own: each container sees it, unless compose sets it there.
    const vars: Record<string, string> = { ...SECRETS };
    for (const name of CONFIG_VARIABLES) if (!(name in vars)) vars[name] = `from-env-file-${name.toLowerCase()}`;
    const out = await renderedAsync(vars);
    for (const [service] of appServices) {
      const env = asEnv(out.services[service]!.environment);
      for (const name of CONFIG_VARIABLES) {
        const forced = SET_BY_COMPOSE[name]?.(service);
        expect(env[name], `${service}: ${name}`).toEqual(forced ?? vars[name]);
      }
    }
  });

  it('has a service for every start:<name> script, whose command is exactly the script argv', () => {
    const scripts = start.readServices(pkg);
    expect(scripts.map((s) => s.name)).toEqual(expect.arrayContaining(['api', 'saga', 'geoip', 'ping', 'rdap', 'reverse-dns', 'resource-worker']));
    for (const script of scripts) {
      const name = [script.name, `${script.name}-worker`].find((n) => services[n] !== undefined);
      expect(name, `no compose service "${script.name}" or "${script.name}-worker" for script start:${script.name}`).toBeDefined();
      expect(services[name!]!.command, `compose service ${name}'s command vs start:${script.name}`).toEqual(script.argv);
    }
  });

  it('runs only services that have a start script (no stale service)', () => {
    const expected = new Set(start.readServices(pkg).flatMap((s) => [s.name, `${s.name}-worker`]));
    for (const [name] of appServices) expect(expected.has(name), `compose service ${name} has no start:<name> script`).toBe(true);
  });

  it('builds the one image once (only the api service has build:, with NODE_VERSION) and runs it everywhere without pulling', () => {
    expect(appServices.length).toBeGreaterThanOrEqual(7);
    const builders = Object.entries(services).filter(([, s]) => s.build !== undefined);
    expect(builders.map(([n]) => n)).toEqual(['api']);
    expect(services.api!.build).toEqual({ context: '.', args: { NODE_VERSION: '${NODE_VERSION:-20}' } });
    for (const [name, svc] of [...appServices, ['fixtures', services.fixtures!] as [string, ComposeService]]) {
      expect(svc.image, `${name}: image`).toBe(IMAGE);
      // The image exists only once built here: a pull could only fail (or fetch someone else's image).
      expect(svc.pull_policy, `${name}: pull_policy`).toBe('never');
    }
    // Nothing else of the image: rabbitmq and redis are pinned upstream images.
    expect(Object.keys(services).filter((n) => services[n]!.image !== IMAGE).sort()).toEqual(['rabbitmq', 'redis', ...OBSERVABILITY].sort());
  });

  it('lets saga and the workers scale: no container_name and no host ports', () => {
    for (const [name, svc] of appServices) {
      expect(svc.container_name, `${name} has a container_name`).toBeUndefined();
      if (name !== 'api') expect(svc.ports, `${name} publishes host ports`).toBeUndefined();
    }
  });

  it('publishes only on 127.0.0.1 (the API on API_PUBLISH_ADDRESS), on host ports set in .env: RabbitMQ, its console, Redis, the API', async () => {
    const defaults = await renderedAsync(SECRETS);
    const published = (out: ComposeFile) =>
      Object.fromEntries(
        Object.entries(out.services).map(([name, s]) => [name, (s.ports ?? []).map(portBinding).map((p) => `${p.hostIp}:${p.published}:${p.target}`).sort()]),
      );
    expect(published(defaults)).toEqual({
      rabbitmq: ['127.0.0.1:15672:15672', '127.0.0.1:5672:5672'],
      redis: ['127.0.0.1:6379:6379'],
      api: ['127.0.0.1:8080:8080'],
      saga: [], ...Object.fromEntries(LOOKUP_WORKERS.map((w) => [w, []])), 'resource-worker': [],
      ...(defaults.services.fixtures ? { fixtures: [] } : {}),
      // docker-compose v1 renders the services of every profile; v2 only those of the active profiles.
      ...(defaults.services.prometheus ? OBSERVABILITY_PORTS : {}),
    });
    const moved = await renderedAsync({
      ...SECRETS, RABBITMQ_HOST_PORT: '25672', RABBITMQ_MANAGEMENT_HOST_PORT: '25673', REDIS_HOST_PORT: '26379',
      API_HOST_PORT: '28080', API_PUBLISH_ADDRESS: '0.0.0.0',
    });
    expect(published(moved)).toMatchObject({
      rabbitmq: ['127.0.0.1:25672:5672', '127.0.0.1:25673:15672'],
      redis: ['127.0.0.1:26379:6379'],
      api: ['0.0.0.0:28080:8080'],
    });
  });

  it('health-checks every service: the API on /health/ready, saga and workers on their metrics listener\'s /health/ready', async () => {
    const out = await renderedAsync(SECRETS, ALL);
    expect(Object.keys(out.services).sort()).toEqual(Object.keys(services).sort()); // fixtures and observability included
    for (const [name, svc] of Object.entries(out.services)) {
      const hc = svc.healthcheck;
      // The collector's and Jaeger's images carry no shell or HTTP client to run a check with (the collector's is
      // distroless); their own health endpoints (13133, 14269) are there for outside probes.
      if (name === 'otel-collector' || name === 'jaeger') {
        // `disable: true`, which docker-compose v1 renders as test: [NONE].
        expect(hc?.disable === true || (hc?.test as string[] | undefined)?.[0] === 'NONE', `${name}: healthcheck disabled`).toBe(true);
        continue;
      }
      expect(hc?.disable, `${name}: healthcheck disabled`).not.toBe(true);
      expect(Array.isArray(hc?.test) && (hc!.test as unknown[]).length > 1, `${name}: healthcheck test`).toBe(true);
      expect((hc!.test as string[])[0], `${name}: healthcheck runs a command (CMD)`).toBe('CMD');
    }
    const test = (name: string) => out.services[name]!.healthcheck!.test as string[];
    expect(test('api')).toEqual(['CMD', 'node', 'scripts/healthcheck.mjs', '--http', 'http://127.0.0.1:8080/health/ready']);
    for (const [name] of appServices.filter(([n]) => n !== 'api')) {
      expect(test(name), name).toEqual(['CMD', 'node', 'scripts/healthcheck.mjs', '--http', 'http://127.0.0.1:9464/health/ready']);
      // ...where each listens, inside its own container (.env cannot move it away from the healthcheck).
      expect(out.services[name]!.environment, name).toMatchObject({ METRICS_HOST: '0.0.0.0', METRICS_PORT: '9464' });
    }
    expect(test('fixtures')).toEqual(['CMD', 'node', 'scripts/healthcheck.mjs', '--http', 'http://127.0.0.1:8081/domain/example.test']);
    expect(test('rabbitmq')).toEqual(['CMD', 'rabbitmq-diagnostics', '-q', 'ping']);
    expect(test('redis')).toEqual(['CMD', 'redis-cli', 'ping']);
    // The script the checks run is in the image (scripts/ is copied into it).
    expect(read('scripts/healthcheck.mjs')).toContain('--http');
  });

  it('restarts every service, and app services wait for healthy RabbitMQ and Redis', () => {
    for (const [name, svc] of Object.entries(services)) expect(svc.restart, `${name}: restart`).toBe('unless-stopped');
    for (const [name, svc] of appServices) {
      expect(svc.depends_on, `${name}: depends_on`).toEqual({
        rabbitmq: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
      });
      const env = svc.environment as Record<string, unknown>;
      expect(env.AMQP_URL, `${name}: AMQP_URL`).toMatch(/^amqp:\/\/\$\{RABBITMQ_USER:-lookup\}:\$\{RABBITMQ_PASSWORD:\?[^}]+\}@rabbitmq:5672$/);
      expect(env.REDIS_URL, `${name}: REDIS_URL`).toMatch(/^redis:\/\/:\$\{REDIS_PASSWORD:\?[^}]+\}@redis:6379$/);
    }
    expect(services['ping-worker']?.cap_add).toContain('NET_RAW');
    // The Ping worker's in-process ICMP datagram socket needs the non-root user's group in ping_group_range.
    expect(services['ping-worker']?.sysctls).toEqual({ 'net.ipv4.ping_group_range': '0 2147483647' });
    // Append-only persistence, the password from a file (not argv), started through the image's entrypoint.
    const redisCommand = (services.redis?.command as string[]).join(' ');
    expect(redisCommand).toMatch(/exec docker-entrypoint\.sh redis-server \/tmp\/redis-auth\.conf --appendonly yes$/);
    expect(redisCommand).toContain('requirepass');
    expect(redisCommand).not.toMatch(/--requirepass/);
  });

  it('has an offline demo: the fixtures under profile demo, and compose.demo.yml pointing the API and lookup workers at them', async () => {
    const fixtures = services.fixtures!;
    expect(fixtures.profiles).toEqual(['demo']);
    expect(fixtures.command).toEqual(['node', 'tests/fixtures/dist/serve.mjs']); // bundled by the Dockerfile
    const fixtureEnv = asEnv(fixtures.environment);
    expect(fixtureEnv.FIXTURE_LISTEN_HOST).toBe('0.0.0.0'); // other containers are its clients
    // Without the override nothing points at the fixtures, and the profile is off by default.
    for (const [name, svc] of appServices) {
      expect(asEnv(svc.environment).RDAP_BASE_URL, name).toBeUndefined();
      expect(asEnv(svc.environment).DNS_SERVERS, name).toBeUndefined();
    }

    const out = await renderedAsync(SECRETS, DEMO);
    const demoIp = (out.services.fixtures!.networks as Record<string, { ipv4_address?: string } | null>).demo?.ipv4_address;
    expect(demoIp).toBe('10.253.53.53');
    const subnet = out.networks?.demo?.ipam?.config?.[0]?.subnet;
    expect(subnet).toBe('10.253.53.0/24');
    for (const name of LOOKUP_WORKERS) {
      const svc = out.services[name]!;
      const env = asEnv(svc.environment);
      expect(env, name).toMatchObject({
        RDAP_BASE_URL: `http://fixtures:${fixtureEnv.RDAP_FIXTURE_PORT}`,
        DNS_SERVERS: `${demoIp}:${fixtureEnv.DNS_FIXTURE_PORT}`, // an IP address: DNS_SERVERS takes no names
        ALLOW_PRIVATE_TARGETS: 'true',
        AMQP_URL: 'amqp://lookup:rmqTestSecret42@rabbitmq:5672', // the base file's environment is kept
      });
      const networks = Array.isArray(svc.networks) ? svc.networks : Object.keys(svc.networks ?? {});
      expect(networks.sort(), name).toEqual(['default', 'demo']);
      expect((svc.depends_on as Record<string, { condition?: string }>).fixtures, name).toEqual({ condition: 'service_healthy' });
    }
    expect(asEnv(out.services.api!.environment).ALLOW_PRIVATE_TARGETS).toBe('true');
    // The prefix moves both the subnet and the fixture's address.
    const moved = await renderedAsync({ ...SECRETS, DEMO_NETWORK_PREFIX: '10.99.7' }, DEMO);
    expect(moved.networks?.demo?.ipam?.config?.[0]?.subnet).toBe('10.99.7.0/24');
    expect(asEnv(moved.services['reverse-dns-worker']!.environment).DNS_SERVERS).toBe('10.99.7.53:5353');
  });

  describe('the observability profile', () => {
    const OBS_DIR = 'deploy/observability';
    const svc = (name: string) => services[name]!;
    /** The host files a service mounts from the repository (`./path:/target[:ro]`), as [repo path, target]. */
    const mounts = (name: string) =>
      ((svc(name) as { volumes?: string[] }).volumes ?? [])
        .filter((v) => v.startsWith('./'))
        .map((v) => v.split(':') as [string, string, string?])
        .map(([from, to]) => [path.normalize(from), to] as const);
    const prometheus = parse(read(`${OBS_DIR}/prometheus.yml`)) as {
      scrape_configs: Array<{ job_name: string; metrics_path?: string; dns_sd_configs?: Array<{ names: string[]; type: string; port: number }>; static_configs?: Array<{ targets: string[] }> }>;
    };
    const dashboard = JSON.parse(read(`${OBS_DIR}/grafana/dashboards/lookup-suite.json`)) as {
      uid: string; templating: { list: Array<{ name: string; query: string }> }; panels: Array<{ type: string; title: string; datasource?: { uid?: string }; targets?: Array<{ expr: string; datasource?: { uid?: string } }> }>;
    };
    const queries = dashboard.panels.filter((p) => p.type !== 'row').flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, ...t })));

    it('adds Prometheus, Grafana, an OpenTelemetry collector and Jaeger, only under the profile, on pinned images', () => {
      expect(OBSERVABILITY).toEqual(['grafana', 'jaeger', 'otel-collector', 'prometheus']);
      for (const name of OBSERVABILITY) {
        expect(svc(name).profiles, name).toEqual(['observability']);
        expect(svc(name).image, `${name}: a pinned tag`).toMatch(/^[a-z0-9./-]+:v?\d+\.\d+\.\d+$/);
        expect(svc(name).restart, name).toBe('unless-stopped');
      }
      // The suite itself runs with or without it.
      for (const [name, s] of appServices) expect(s.profiles, name).toBeUndefined();
      expect(svc('prometheus').depends_on).toEqual({ rabbitmq: { condition: 'service_healthy' } });
      expect(svc('grafana').depends_on).toEqual({ prometheus: { condition: 'service_healthy' } });
      expect(svc('otel-collector').depends_on).toEqual({ jaeger: { condition: 'service_started' } });
    });

    it('publishes Grafana 3000, Prometheus 9090, Jaeger 16686 and OTLP 4317/4318 on 127.0.0.1, on host ports set in .env', async () => {
      const published = (out: ComposeFile) =>
        Object.fromEntries(OBSERVABILITY.map((n) => [n, (out.services[n]!.ports ?? []).map(portBinding).map((p) => `${p.hostIp}:${p.published}:${p.target}`).sort()]));
      expect(published(await renderedAsync(SECRETS, OBSERVE))).toEqual(OBSERVABILITY_PORTS);
      const moved = await renderedAsync(
        { ...SECRETS, PROMETHEUS_HOST_PORT: '24090', GRAFANA_HOST_PORT: '24030', JAEGER_HOST_PORT: '24686', OTLP_HTTP_HOST_PORT: '24318', OTLP_GRPC_HOST_PORT: '24317' },
        OBSERVE,
      );
      expect(published(moved)).toEqual({
        prometheus: ['127.0.0.1:24090:9090'], grafana: ['127.0.0.1:24030:3000'], jaeger: ['127.0.0.1:24686:16686'],
        'otel-collector': ['127.0.0.1:24317:4317', '127.0.0.1:24318:4318'],
      });
    });

    it('mounts only files that exist in the repository and parse: YAML, JSON and the RabbitMQ plugins list', () => {
      const all = ['rabbitmq', ...OBSERVABILITY].flatMap((name) => mounts(name).map(([from, to]) => ({ name, from, to })));
      expect(all.length).toBeGreaterThanOrEqual(5);
      for (const { name, from } of all) {
        expect(from.startsWith(`${OBS_DIR}/`), `${name} mounts ${from}`).toBe(true);
        expect(existsSync(path.join(ROOT, from)), `${name}: ${from} exists`).toBe(true);
        const files = statSync(path.join(ROOT, from)).isDirectory() ? listFiles(from) : [from];
        expect(files.length, from).toBeGreaterThan(0);
        for (const file of files) {
          if (/\.ya?ml$/.test(file)) expect(() => parse(read(file)), file).not.toThrow();
          else if (file.endsWith('.json')) expect(() => JSON.parse(read(file)), file).not.toThrow();
          else expect(file).toBe(`${OBS_DIR}/rabbitmq/enabled_plugins`);
        }
      }
      // RabbitMQ loads the management console and the Prometheus plugin (an Erlang list, ending with a full stop).
      expect(mounts('rabbitmq')).toContainEqual([`${OBS_DIR}/rabbitmq/enabled_plugins`, '/etc/rabbitmq/enabled_plugins']);
      const plugins = /^\[([a-z_,\s]*)\]\.\s*$/.exec(read(`${OBS_DIR}/rabbitmq/enabled_plugins`))?.[1]?.split(',').map((p) => p.trim());
      expect(plugins?.sort()).toEqual(['rabbitmq_management', 'rabbitmq_prometheus']);
    });

    it('scrapes every replica of every app service (A records of its compose name) on its metrics port, and RabbitMQ per queue', () => {
      expect(mounts('prometheus')).toContainEqual([`${OBS_DIR}/prometheus.yml`, '/etc/prometheus/prometheus.yml']);
      expect(svc('prometheus').command).toContain('--config.file=/etc/prometheus/prometheus.yml');
      const jobs = new Map(prometheus.scrape_configs.map((j) => [j.job_name, j]));
      expect(jobs.size, 'job names are unique').toBe(prometheus.scrape_configs.length);
      expect([...jobs.keys()].sort()).toEqual([...appServices.map(([n]) => n), 'rabbitmq'].sort());
      for (const [name] of appServices) {
        const job = jobs.get(name)!;
        expect(job.metrics_path ?? '/metrics', name).toBe('/metrics');
        // The API serves /metrics on API_PORT (compose: 8080); the others on their METRICS_PORT listener, 9464.
        expect(job.dns_sd_configs, name).toEqual([expect.objectContaining({ names: [name], type: 'A', port: name === 'api' ? 8080 : 9464 })]);
      }
      const rabbit = jobs.get('rabbitmq')!;
      expect(rabbit.metrics_path).toBe('/metrics/per-object'); // per-queue series: rabbitmq_queue_messages_ready{queue=...}
      expect(rabbit.static_configs).toEqual([{ targets: ['rabbitmq:15692'] }]);
    });

    it('provisions Grafana with the Prometheus datasource and a dashboard whose queries name only the suite\'s and RabbitMQ\'s metrics', () => {
      const provisioning = mounts('grafana').find(([, to]) => to === '/etc/grafana/provisioning')?.[0];
      const dashboards = mounts('grafana').find(([, to]) => to === '/var/lib/grafana/dashboards')?.[0];
      expect(provisioning).toBe(`${OBS_DIR}/grafana/provisioning`);
      expect(dashboards).toBe(`${OBS_DIR}/grafana/dashboards`);
      const datasources = parse(read(`${provisioning}/datasources/prometheus.yml`)) as { datasources: Array<{ uid: string; type: string; url: string }> };
      expect(datasources.datasources).toEqual([expect.objectContaining({ type: 'prometheus', url: 'http://prometheus:9090' })]);
      const uid = datasources.datasources[0]!.uid;
      const providers = parse(read(`${provisioning}/dashboards/lookup.yml`)) as { providers: Array<{ type: string; options: { path: string } }> };
      expect(providers.providers).toEqual([expect.objectContaining({ type: 'file', options: expect.objectContaining({ path: '/var/lib/grafana/dashboards' }) })]);
      const home = asEnv(svc('grafana').environment).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
      expect(home).toBe('/var/lib/grafana/dashboards/lookup-suite.json');

      expect(queries.length).toBeGreaterThanOrEqual(10);
      const seen = new Set<string>();
      for (const q of queries) {
        expect(q.datasource?.uid, `${q.panel}: datasource`).toBe(uid);
        const names = promqlMetricNames(q.expr);
        expect(names.length, `${q.panel}: ${q.expr} selects a metric`).toBeGreaterThan(0);
        for (const name of names) {
          expect(isKnownSeries(name), `${q.panel}: ${name} is neither an agreed lookup_* metric nor rabbitmq_*`).toBe(true);
          seen.add(name);
        }
      }
      // What the issue asks the dashboard to show.
      const panel = (title: RegExp) => queries.filter((q) => title.test(q.panel)).map((q) => q.expr).join('\n');
      expect(panel(/^Jobs per second$/)).toMatch(/rate\(lookup_jobs_submitted_total\[/);
      for (const quantile of ['0.5', '0.95', '0.99']) {
        expect(panel(/^Job latency/)).toContain(`histogram_quantile(${quantile}, sum by (le) (rate(lookup_job_duration_seconds_bucket[`);
      }
      expect(panel(/outcomes per service/)).toMatch(/sum by \(service, outcome\) \(rate\(lookup_tasks_total\[/);
      expect(panel(/^Queue depth$/)).toMatch(/rabbitmq_queue_messages_ready\{[^}]*queue=~/);
      expect(panel(/^Queue depth$/)).toMatch(/rabbitmq_queue_messages_unacked\{/);
      // The queue panels show every work queue of the topology, the per-priority and callback queues too: each
      // `queue=~"..."` matcher, with the dashboard's NAMESPACE, matches them all (PromQL regexes are fully anchored).
      const namespace = dashboard.templating.list.find((v) => v.name === 'namespace')!.query;
      const t = topology(namespace);
      const workQueues = declarations(namespace).queues.filter((q) => q.arguments?.['x-dead-letter-exchange'] === t.exchanges.deadLetter).map((q) => q.name);
      expect(workQueues).toEqual(expect.arrayContaining([t.queues.callbacks, ...SERVICE_CATALOGUE.map((s) => t.queues.lookupPriority(s.slug, 'high'))]));
      for (const q of queries.filter((x) => /^(Queue depth|Consumers per queue)$/.test(x.panel))) {
        const matchers = [...q.expr.matchAll(/queue=~"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1').replaceAll('$namespace', namespace));
        expect(matchers.length, `${q.panel}: ${q.expr} selects queues by a regex`).toBeGreaterThan(0);
        for (const re of matchers) for (const queue of workQueues) expect(queue, `${q.panel}: ${re}`).toMatch(new RegExp(`^(?:${re})$`));
      }
      expect(panel(/^Dead letters$/)).toMatch(/lookup_dead_letters_total/);
      // Every agreed metric has a panel (histograms through their buckets).
      for (const name of [...SUITE_METRICS, ...SUITE_HISTOGRAMS.map((h) => `${h}_bucket`)]) expect(seen, name).toContain(name);
    });

    it('sends traces over OTLP to the collector, which forwards them to Jaeger', () => {
      expect(mounts('otel-collector')).toContainEqual([`${OBS_DIR}/otel-collector.yml`, '/etc/otelcol-contrib/config.yaml']);
      expect(svc('otel-collector').command).toEqual(['--config=/etc/otelcol-contrib/config.yaml']);
      const collector = parse(read(`${OBS_DIR}/otel-collector.yml`)) as {
        receivers: { otlp: { protocols: { grpc: { endpoint: string }; http: { endpoint: string } } } };
        exporters: Record<string, { endpoint: string }>;
        service: { pipelines: { traces: { receivers: string[]; exporters: string[] } } };
      };
      expect(collector.receivers.otlp.protocols.http.endpoint).toBe('0.0.0.0:4318');
      expect(collector.receivers.otlp.protocols.grpc.endpoint).toBe('0.0.0.0:4317');
      const traces = collector.service.pipelines.traces;
      expect(traces.receivers).toEqual(['otlp']);
      expect(traces.exporters.map((e) => collector.exporters[e]?.endpoint)).toEqual(['jaeger:4317']); // Jaeger's OTLP gRPC
      expect(asEnv(svc('jaeger').environment).COLLECTOR_OTLP_ENABLED).toBe('true');
    });

    it('points every app service at the collector and opens its metrics listener to Prometheus with compose.observability.yml, and only then; commands unchanged', async () => {
      const [plain, observed, both] = await Promise.all([renderedAsync(SECRETS), renderedAsync(SECRETS, OBSERVE), renderedAsync(SECRETS, ALL)]);
      for (const [name] of appServices) {
        expect(asEnv(plain.services[name]!.environment).OTEL_EXPORTER_OTLP_ENDPOINT, name).toBeUndefined();
        for (const out of [observed, both]) {
          const env = asEnv(out.services[name]!.environment);
          expect(env.OTEL_EXPORTER_OTLP_ENDPOINT, name).toBe('http://otel-collector:4318');
          // Prometheus scrapes the metrics listener from another container: every interface, not 127.0.0.1.
          expect(env.METRICS_HOST, name).toBe('0.0.0.0');
          expect(env.AMQP_URL, `${name}: the base file's environment is kept`).toBe('amqp://lookup:rmqTestSecret42@rabbitmq:5672');
          expect(out.services[name]!.command, name).toEqual(services[name]!.command);
        }
      }
      // With the demo as well, its settings stay.
      expect(asEnv(both.services['rdap-worker']!.environment).RDAP_BASE_URL).toBe('http://fixtures:8081');
      // The override touches the app services' environment only.
      const override = parse(read('compose.observability.yml'), { merge: true }) as ComposeFile;
      expect(Object.keys(override.services).sort()).toEqual(appServices.map(([n]) => n).sort());
      for (const [name, s] of Object.entries(override.services)) expect(Object.keys(s), name).toEqual(['environment']);
    });
  });
});

// Adding a lookup service is a catalogue entry plus its package: the wiring below is checked for every entry, so a
// missing piece fails here rather than as a job whose commands no worker consumes.
describe('the service catalogue', () => {
  const demo = parse(read('compose.demo.yml'), { merge: true }) as ComposeFile;
  const startScript = (slug: string) =>
    `node --heap-growing-percent=50 --conditions=lookup-dist --enable-source-maps --import ./libs/telemetry/dist/src/register.js services/workers/${slug}/dist/src/main.js`;

  it('has one worker package per entry, services/workers/<slug> with src/main.ts, and no worker outside it', () => {
    for (const { slug } of SERVICE_CATALOGUE) {
      const dir = path.join(ROOT, 'services', 'workers', slug);
      const manifest = JSON.parse(read(`services/workers/${slug}/package.json`)) as { name: string };
      expect(manifest.name, slug).toBe(`@lookup/worker-${slug}`);
      expect(existsSync(path.join(dir, 'src', 'main.ts')), `${slug}: src/main.ts`).toBe(true);
    }
    const folders = readdirSync(path.join(ROOT, 'services', 'workers')).filter((n) => existsSync(path.join(ROOT, 'services', 'workers', n, 'package.json')));
    expect(folders.sort()).toEqual(SERVICE_CATALOGUE.map((s) => s.slug).sort());
  });

  it('has a start:<slug> script of the same shape as every worker, built first, which `npm start` runs', () => {
    const names = start.readServices(pkg).map((s) => s.name);
    for (const { slug } of SERVICE_CATALOGUE) {
      expect(pkg.scripts[`start:${slug}`], `start:${slug}`).toBe(startScript(slug));
      expect(pkg.scripts[`prestart:${slug}`], `prestart:${slug}`).toBe('npm run build --silent');
      expect(names, `npm start's processes include ${slug}`).toContain(slug);
    }
  });

  it('has a compose service <slug>-worker running exactly that script, in the demo too', () => {
    for (const { slug } of SERVICE_CATALOGUE) {
      const service = services[`${slug}-worker`];
      expect(service, `docker-compose.yml: ${slug}-worker`).toBeDefined();
      expect(service!.command, `${slug}-worker's command`).toEqual(start.splitCommand(pkg.scripts[`start:${slug}`]!));
      expect(demo.services[`${slug}-worker`], `compose.demo.yml: ${slug}-worker`).toBeDefined();
    }
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile').replace(/\\\n/g, ' ');
  const instructions = dockerfile
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const froms = instructions.filter((l) => /^FROM\s/i.test(l));
  const finalStage = instructions.slice(instructions.map((l) => /^FROM\s/i.test(l)).lastIndexOf(true));
  /** The instructions of the stage named `name` (FROM ... AS name), up to the next FROM. */
  const stage = (name: string) => {
    const start = instructions.findIndex((l) => new RegExp(`^FROM\\s.*\\sAS\\s+${name}\\s*$`, 'i').test(l));
    if (start < 0) return [];
    const next = instructions.findIndex((l, i) => i > start && /^FROM\s/i.test(l));
    return instructions.slice(start, next < 0 ? undefined : next);
  };
  /** A stage and the stages it is built FROM, base first. */
  const lineage = (name: string): string[][] => {
    const own = stage(name);
    const base = /^FROM\s+(\S+)/i.exec(own[0] ?? '')?.[1];
    return base && stage(base).length > 0 ? [...lineage(base), own] : [own];
  };
  /** The COPY --from=<stage> <source> <dest> instructions of `lines`, as [stage, source]. */
  const copiesFrom = (lines: string[]) =>
    lines
      .filter((l) => /^COPY\s.*--from=/i.test(l))
      .map((l) => {
        const tokens = l.split(/\s+/).slice(1);
        const paths = tokens.filter((t) => !t.startsWith('--'));
        return [tokens.find((t) => t.startsWith('--from='))!.slice('--from='.length), paths[0]!] as const;
      });

  it('runs the `start` script by default (CMD is its argv)', () => {
    const cmds = finalStage.filter((l) => /^CMD\s/i.test(l));
    expect(cmds.length, 'one CMD in the final stage').toBe(1);
    const argv = JSON.parse(cmds[0]!.replace(/^CMD\s+/i, '')) as string[];
    expect(argv).toEqual(start.splitCommand(pkg.scripts.start!));
    expect(argv).toEqual(['node', 'scripts/start.mjs']);
  });

  it('takes the Node version from one ARG, NODE_VERSION (default 20), in every stage', () => {
    const args = instructions.filter((l) => /^ARG\s+NODE_VERSION\b/i.test(l));
    expect(args).toEqual(['ARG NODE_VERSION=20']);
    expect(instructions.indexOf(args[0]!)).toBeLessThan(instructions.indexOf(froms[0]!)); // global: usable in FROM
    expect(froms.length).toBeGreaterThanOrEqual(3);
    const stageNames = new Set(froms.map((l) => /\sAS\s+(\S+)\s*$/i.exec(l)?.[1]).filter(Boolean));
    for (const from of froms) {
      const base = /^FROM\s+(\S+)/i.exec(from)![1]!;
      if (stageNames.has(base)) continue; // built on an earlier stage, so on the same Node
      expect(base, from).toBe('node:${NODE_VERSION}-bookworm-slim');
    }
    // No Node version written in any other instruction.
    expect(instructions.filter((l) => l !== 'ARG NODE_VERSION=20').join('\n')).not.toMatch(/node:\d|NODE_VERSION=\d/);
  });

  it('runs on bookworm-slim with ping and tini, as the non-root node user', () => {
    expect(finalStage[0]).toMatch(/^FROM\s+node:\$\{NODE_VERSION\}-bookworm-slim(\s+AS\s+\w+)?\s*$/i);
    expect(finalStage.some((l) => /^RUN\s.*apt-get install.*\biputils-ping\b.*\btini\b/.test(l))).toBe(true);
    expect(finalStage.filter((l) => /^USER\s/i.test(l)).at(-1)).toBe('USER node');
  });

  it('gives the image production dependencies only: node_modules from `npm ci --omit=dev`, never from the build stage', () => {
    // The final stage installs nothing itself.
    expect(finalStage.filter((l) => /\bnpm\s+(ci|install|i)\b/.test(l))).toEqual([]);
    const copies = copiesFrom(finalStage);
    expect(copies.length).toBeGreaterThanOrEqual(2);
    const installs = (stageName: string) => lineage(stageName).flat().filter((l) => /^RUN\s.*\bnpm\s+(ci|install)\b/.test(l));
    let nodeModules = 0;
    for (const [from, source] of copies) {
      if (/^\/app\/?$|node_modules/.test(source)) {
        // What brings node_modules into the image: a stage (and its bases) whose only installs are --omit=dev.
        const npm = installs(from);
        expect(npm.length, `COPY --from=${from} ${source}: the stage installs packages`).toBeGreaterThan(0);
        for (const line of npm) expect(line, `${from}: ${line}`).toMatch(/\bnpm ci\b.*--omit=dev/);
        nodeModules += 1;
      }
    }
    expect(nodeModules, 'node_modules comes from exactly one stage').toBe(1);
    // What the build stage (full dependencies) hands over is assembled from package.json, scripts/, each package's
    // dist/ and the fixture bundle: never its node_modules.
    const assembly = instructions.filter((l) => /^RUN\s.*\/tmp\/runtime/.test(l)).join('\n');
    expect(assembly).toContain('dist');
    expect(assembly).not.toMatch(/node_modules/);
    expect(copies.filter(([from]) => installs(from).some((l) => !/--omit=dev/.test(l))).map(([, source]) => source)).toEqual(['/tmp/runtime/']);
  });

  it('installs and builds in a stage with a C compiler (the Ping ICMP addon) and bundles the demo fixture', () => {
    const build = lineage('build').flat();
    expect(build.some((l) => /^RUN\s.*apt-get install.*\bgcc\b.*\blibc6-dev\b/.test(l))).toBe(true);
    expect(build.some((l) => /^RUN\s.*\bnpm ci\b/.test(l))).toBe(true);
    expect(build.some((l) => /^RUN\s.*\bnpm run build\b.*icmp\.node/.test(l))).toBe(true);
    expect(build.some((l) => /^RUN\s+npx esbuild tests\/fixtures\/serve\.ts --bundle .*--outfile=tests\/fixtures\/dist\/serve\.mjs/.test(l))).toBe(true);
    const assembly = instructions.find((l) => /^RUN\s.*\/tmp\/runtime/.test(l))!;
    expect(assembly).toContain('cp -R tests/fixtures/dist');
    expect(assembly).toMatch(/cp -R package\.json scripts /);
  });
});

// The supervisor itself (scripts/start.mjs): tests/supervisor.test.ts.
