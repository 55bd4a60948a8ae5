// Keeps docker-compose.yml, the Dockerfile and the root package.json's start scripts in step, and checks the
// process supervisor (scripts/start.mjs) that `npm start` and the image's CMD run.
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const START = path.join(ROOT, 'scripts', 'start.mjs');

interface StartModule {
  splitCommand(command: string): string[];
  readServices(pkg: unknown): Array<{ name: string; command: string; argv: string[] }>;
}

interface ComposeService {
  build?: unknown;
  image?: string;
  command?: unknown;
  container_name?: string;
  ports?: unknown[];
  restart?: string;
  healthcheck?: { test?: unknown; disable?: boolean };
  depends_on?: Record<string, { condition?: string }> | string[];
  environment?: Record<string, unknown> | string[];
  cap_add?: string[];
  sysctls?: Record<string, string> | string[];
}

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
};
const services = compose.services;
// Services built from this repository (as opposed to rabbitmq and redis, which are images).
const appServices = Object.entries(services).filter(([, s]) => s.build !== undefined);

let start: StartModule;
beforeAll(async () => {
  start = (await import(pathToFileURL(START).href)) as StartModule;
});

/** `docker-compose` (v1, Debian's package) or, failing that, the `docker compose` v2 plugin. */
function findCompose(): { cmd: string; prefix: string[] } | null {
  const v1 = spawnSync('docker-compose', ['version'], { encoding: 'utf8' });
  if (!v1.error && v1.status === 0) return { cmd: 'docker-compose', prefix: [] };
  const v2 = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
  if (!v2.error && v2.status === 0) return { cmd: 'docker', prefix: ['compose'] };
  return null;
}

describe('docker-compose.yml', () => {
  /** Runs `<compose> --env-file <file> -f docker-compose.yml config [args]` with the given variables and no others. */
  function composeConfig(vars: Record<string, string>, args: string[] = ['-q']): SpawnSyncReturns<string> {
    const tool = findCompose();
    if (!tool) {
      // Fail, never skip: a skipped check is one nobody notices.
      throw new Error(
        'neither `docker-compose` nor `docker compose` is installed: install docker-compose ' +
          '(Debian: apt-get install docker-compose) to run this test; .ci/run does so',
      );
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'compose-env-'));
    try {
      const envFile = path.join(dir, 'test.env');
      writeFileSync(envFile, Object.entries(vars).map(([k, v]) => `${k}=${v}\n`).join(''));
      // Only PATH and HOME from this shell: a developer's RABBITMQ_PASSWORD must not make the test pass.
      const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir };
      const r = spawnSync(tool.cmd, [...tool.prefix, '--env-file', envFile, '-f', 'docker-compose.yml', 'config', ...args], { cwd: ROOT, encoding: 'utf8', env });
      expect(r.error).toBeUndefined();
      return r;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const SECRETS = { RABBITMQ_PASSWORD: 'rmqTestSecret42', REDIS_PASSWORD: 'redisTestSecret42', ADMIN_API_KEY: 'adminTestKey42', API_KEYS: 'k1,k2' };

  it('is valid for docker-compose (config -q exits 0) once the secrets are set', () => {
    const r = composeConfig(SECRETS);
    expect(r.status, `config -q said:\n${r.stdout}${r.stderr}`).toBe(0);
  });

  it('refuses to start without the RabbitMQ and Redis passwords, naming them', () => {
    const r = composeConfig({});
    expect(r.status).not.toBe(0);
    expect(`${r.stdout}${r.stderr}`).toMatch(/RABBITMQ_PASSWORD|REDIS_PASSWORD/);
    const noRedis = composeConfig({ RABBITMQ_PASSWORD: 'x1' });
    expect(noRedis.status).not.toBe(0);
    expect(`${noRedis.stdout}${noRedis.stderr}`).toMatch(/REDIS_PASSWORD/);
  });

  it('takes every secret from the environment (.env): rendered into the services, never written in the file', () => {
    const rendered = parse(composeConfig(SECRETS, []).stdout) as { services: Record<string, ComposeService> };
    const env = (name: string) => rendered.services[name]!.environment as Record<string, string>;
    expect(env('api').AMQP_URL).toBe('amqp://lookup:rmqTestSecret42@rabbitmq:5672');
    expect(env('api').REDIS_URL).toBe('redis://:redisTestSecret42@redis:6379');
    expect(env('api').ADMIN_API_KEY).toBe('adminTestKey42');
    expect(env('api').API_KEYS).toBe('k1,k2');
    expect(env('saga').ADMIN_API_KEY).toBeUndefined(); // only the API gets the keys
    expect(env('rabbitmq')).toMatchObject({ RABBITMQ_DEFAULT_USER: 'lookup', RABBITMQ_DEFAULT_PASS: 'rmqTestSecret42' });
    expect(env('redis')).toMatchObject({ REDISCLI_AUTH: 'redisTestSecret42' });

    const raw = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
    expect(raw).not.toMatch(/guest/);
    // Every password, key or URL credential is a ${VARIABLE}, never a literal.
    for (const line of raw.split('\n').filter((l) => !l.trim().startsWith('#'))) {
      const m = /^\s*(\w*(?:PASS|PASSWORD|KEY|KEYS|AUTH))\s*:\s*(.*)$/.exec(line);
      if (m) expect(m[2], line).toMatch(/^\$\{\w+:[-?][^}]*\}(\s*#.*)?$/);
    }
    expect(raw).not.toMatch(/:\/\/[^$\s/]*:[^$\s@]+@/); // no user:password@ literal in a URL
  });

  it('documents every variable it reads in .env.example, and keeps .env out of git and the image', () => {
    const raw = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
    const used = new Set([...raw.matchAll(/\$\{(\w+)/g)].map((m) => m[1]!));
    const example = readFileSync(path.join(ROOT, '.env.example'), 'utf8');
    const documented = new Set([...example.matchAll(/^(\w+)=/gm)].map((m) => m[1]!));
    for (const name of used) expect(documented.has(name), `${name} in .env.example`).toBe(true);
    // The example holds no secret: the required ones are blank.
    expect(example).toMatch(/^RABBITMQ_PASSWORD=$/m);
    expect(example).toMatch(/^REDIS_PASSWORD=$/m);
    expect(example).toMatch(/^ADMIN_API_KEY=$/m);
    expect(readFileSync(path.join(ROOT, '.gitignore'), 'utf8').split('\n')).toContain('.env');
    expect(readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n')).toContain('.env');
  });

  it('has a service for every start:<name> script, whose command is exactly the script argv', () => {
    const scripts = start.readServices(pkg);
    expect(scripts.map((s) => s.name)).toEqual(expect.arrayContaining(['api', 'saga', 'geoip', 'ping', 'rdap', 'reverse-dns']));
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

  it('lets saga and the workers scale: no container_name and no host ports', () => {
    expect(appServices.length).toBeGreaterThanOrEqual(6);
    for (const [name, svc] of appServices) {
      expect(svc.container_name, `${name} has a container_name`).toBeUndefined();
      if (name !== 'api') expect(svc.ports, `${name} publishes host ports`).toBeUndefined();
    }
    expect(services.api?.ports).toEqual(['8080:8080']);
  });

  it('restarts every service and health-checks the ones others wait for', () => {
    for (const [name, svc] of Object.entries(services)) {
      expect(svc.restart, `${name}: restart`).toBe('unless-stopped');
    }
    const waitedFor = new Set<string>();
    for (const [, svc] of Object.entries(services)) {
      if (svc.depends_on && !Array.isArray(svc.depends_on)) {
        for (const [dep, cond] of Object.entries(svc.depends_on)) if (cond.condition === 'service_healthy') waitedFor.add(dep);
      }
    }
    expect([...waitedFor].sort()).toEqual(['rabbitmq', 'redis']);
    for (const name of [...waitedFor, 'api']) {
      const hc = services[name]?.healthcheck;
      expect(hc?.disable, `${name}: healthcheck disabled`).not.toBe(true);
      expect(Array.isArray(hc?.test) && (hc!.test as unknown[]).length > 1, `${name}: healthcheck test`).toBe(true);
    }
    expect((services.api!.healthcheck!.test as string[]).join(' ')).toContain('http://127.0.0.1:8080/health/ready');
    expect(services.rabbitmq!.healthcheck!.test).toEqual(['CMD', 'rabbitmq-diagnostics', '-q', 'ping']);
    expect(services.redis!.healthcheck!.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  it('wires every app service to RabbitMQ and Redis and waits for them to be healthy', () => {
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
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const instructions = dockerfile
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const finalStage = instructions.slice(instructions.map((l) => /^FROM\s/i.test(l)).lastIndexOf(true));
  /** The instructions of the stage named `name` (FROM ... AS name), up to the next FROM. */
  const stage = (name: string) => {
    const start = instructions.findIndex((l) => new RegExp(`^FROM\\s.*\\sAS\\s+${name}\\s*$`, 'i').test(l));
    if (start < 0) return [];
    const next = instructions.findIndex((l, i) => i > start && /^FROM\s/i.test(l));
    return instructions.slice(start, next < 0 ? undefined : next);
  };

  it('runs the `start` script by default (CMD is its argv)', () => {
    const cmds = finalStage.filter((l) => /^CMD\s/i.test(l));
    expect(cmds.length, 'one CMD in the final stage').toBe(1);
    const argv = JSON.parse(cmds[0]!.replace(/^CMD\s+/i, '')) as string[];
    expect(argv).toEqual(start.splitCommand(pkg.scripts.start!));
    expect(argv).toEqual(['node', 'scripts/start.mjs']);
  });

  it('builds on node:20-bookworm-slim with ping, and runs as the non-root node user', () => {
    expect(finalStage[0]).toMatch(/^FROM\s+node:20-bookworm-slim\s*$/i);
    expect(finalStage.some((l) => /^RUN\s.*apt-get install.*\biputils-ping\b/.test(l))).toBe(true);
    const users = finalStage.filter((l) => /^USER\s/i.test(l));
    expect(users.at(-1)).toBe('USER node');
  });

  it('installs and builds in a stage with a C compiler (the Ping ICMP addon), and the image copies /app from it', () => {
    const copy = finalStage.map((l) => /^COPY\s.*--from=(\S+)\s+.*\/app\/?\s+\.\/?$/.exec(l)).find(Boolean);
    expect(copy, 'the final stage copies /app from a build stage').toBeTruthy();
    const build = stage(copy![1]!);
    expect(build[0]).toMatch(/^FROM\s+node:20-bookworm-slim\s/i); // same libc and node headers as the image
    expect(build.some((l) => /^RUN\s.*apt-get install.*\bgcc\b.*\blibc6-dev\b/.test(l))).toBe(true);
    expect(build.some((l) => /^RUN\s.*\bnpm ci\b/.test(l))).toBe(true);
    expect(build.some((l) => /^RUN\s.*\bnpm run build\b.*icmp\.node/.test(l))).toBe(true);
  });
});

// The supervisor itself (scripts/start.mjs): tests/supervisor.test.ts.
