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
  it('is valid for docker-compose (config -q exits 0)', () => {
    const tool = findCompose();
    if (!tool) {
      // Fail, never skip: a skipped check is one nobody notices.
      throw new Error(
        'neither `docker-compose` nor `docker compose` is installed: install docker-compose ' +
          '(Debian: apt-get install docker-compose) to run this test; .ci/run does so',
      );
    }
    const r: SpawnSyncReturns<string> = spawnSync(tool.cmd, [...tool.prefix, '-f', 'docker-compose.yml', 'config', '-q'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(r.error).toBeUndefined();
    expect(r.status, `${tool.cmd} ${tool.prefix.join(' ')} config -q said:\n${r.stdout}${r.stderr}`).toBe(0);
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
      expect(env.AMQP_URL, `${name}: AMQP_URL`).toBe('amqp://guest:guest@rabbitmq:5672');
      expect(env.REDIS_URL, `${name}: REDIS_URL`).toBe('redis://redis:6379');
    }
    expect(services['ping-worker']?.cap_add).toContain('NET_RAW');
    // The Ping worker's in-process ICMP datagram socket needs the non-root user's group in ping_group_range.
    expect(services['ping-worker']?.sysctls).toEqual({ 'net.ipv4.ping_group_range': '0 2147483647' });
    expect(services.redis?.command).toEqual(['redis-server', '--appendonly', 'yes']);
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

describe('scripts/start.mjs', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'start-mjs-'));
    // `a` logs a JSON line and stops on SIGTERM; `flaky` exits 1 on its first run and stays up on its second.
    writeFileSync(
      path.join(dir, 'package.json'),
      JSON.stringify({
        scripts: { start: 'node start.mjs', 'start:a': 'node a.mjs', 'start:flaky': 'node flaky.mjs', 'start:dies': 'node dies.mjs' },
      }),
    );
    writeFileSync(
      path.join(dir, 'a.mjs'),
      // The SIGTERM handler goes in before the ready line: the test sends SIGTERM as soon as it sees that line.
      "process.on('SIGTERM', () => { console.log('stopping'); process.exit(0); });\n" +
        "console.log(JSON.stringify({ level: 30, msg: 'ready', svc: 'a' }));\nsetInterval(() => {}, 1000);\n",
    );
    writeFileSync(
      path.join(dir, 'flaky.mjs'),
      "import { existsSync, writeFileSync } from 'node:fs';\n" +
        "if (!existsSync('flaky.ran')) { writeFileSync('flaky.ran', ''); console.error('first run: crashing'); process.exit(1); }\n" +
        "console.log('second run: up');\nprocess.on('SIGTERM', () => process.exit(0));\nsetInterval(() => {}, 1000);\n",
    );
    writeFileSync(path.join(dir, 'dies.mjs'), "console.error('dying'); process.exit(3);\n");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Starts the supervisor; `until(output)` decides when to send SIGTERM. Resolves with the exit code and output. */
  function run(args: string[], until?: (output: string) => boolean): Promise<{ code: number | null; output: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [START, '--root', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      let signalled = false;
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (until && !signalled && until(output)) {
          signalled = true;
          child.kill('SIGTERM');
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, output }));
    });
  }

  it('splits script commands into argv and refuses shell syntax', () => {
    expect(start.splitCommand('node --import tsx services/api/src/main.ts')).toEqual(['node', '--import', 'tsx', 'services/api/src/main.ts']);
    expect(start.splitCommand(`node -e "console.log('a b')"`)).toEqual(['node', '-e', "console.log('a b')"]);
    expect(() => start.splitCommand('npm ci && npm test')).toThrow(/shell syntax/);
    expect(start.readServices(pkg).map((s) => s.name)).toEqual(
      Object.keys(pkg.scripts).filter((k) => k.startsWith('start:')).map((k) => k.slice('start:'.length)),
    );
  });

  it('prints --help and exits 0', () => {
    const r = spawnSync(process.execPath, [START, '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('--only');
    expect(r.stdout).toContain('--no-restart');
  });

  it('rejects an unknown --only service', async () => {
    const { code, output } = await run(['--only', 'a,nope']);
    expect(code).toBe(2);
    expect(output).toContain('unknown service(s) in --only: nope');
  });

  it('prefixes each line with [name], keeps JSON intact, and exits 0 after a clean SIGTERM shutdown', async () => {
    const { code, output } = await run(['--only', 'a'], (out) => out.includes('[a] {'));
    expect(code).toBe(0);
    const line = output.split('\n').find((l) => l.startsWith('[a] {'))!;
    expect(JSON.parse(line.slice('[a] '.length))).toEqual({ level: 30, msg: 'ready', svc: 'a' });
    expect(output).toContain('[a] stopping');
    expect(output).not.toContain('[dies]'); // --only
  });

  it('restarts a service that exits unexpectedly', async () => {
    const { code, output } = await run(['--only', 'flaky'], (out) => out.includes('[flaky] second run: up'));
    expect(output).toContain('[flaky] first run: crashing');
    expect(output).toMatch(/flaky exited with code 1 unexpectedly; restarting in 1s/);
    expect(code).toBe(0);
  });

  it('with --no-restart, leaves a dead service down and exits 1 once none is left', async () => {
    const { code, output } = await run(['--only', 'dies', '--no-restart']);
    expect(output).toContain('[dies] dying');
    expect(output).toContain('not restarting (--no-restart)');
    expect(code).toBe(1);
  });
});
