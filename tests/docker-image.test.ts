// What the Docker image relies on, checked without a Docker engine: the container healthcheck script, the demo
// profile's fixture bundle (built exactly as the Dockerfile builds it, run with plain node and no node_modules), and
// that a production-only install (`npm ci --omit=dev`) has every package the services import, on any Node from 20.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { promises as dnsPromises } from 'node:dns';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HEALTHCHECK = path.join(ROOT, 'scripts', 'healthcheck.mjs');

interface LockEntry {
  version?: string;
  dev?: boolean;
  devOptional?: boolean;
  link?: boolean;
  engines?: Record<string, string> | string[];
  hasInstallScript?: boolean;
}
const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };

/** Runs the healthcheck with only these variables (and PATH). */
function healthcheck(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [HEALTHCHECK, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env }, timeout: 20_000 });
  expect(r.error).toBeUndefined();
  return { code: r.status, stderr: r.stderr };
}

describe('scripts/healthcheck.mjs --connected (saga and workers)', () => {
  const servers: net.Server[] = [];
  const sockets: net.Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
  });
  async function listen(): Promise<number> {
    const server = net.createServer((socket) => sockets.push(socket));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as net.AddressInfo).port;
  }
  async function connect(port: number): Promise<net.Socket> {
    const socket = net.connect(port, '127.0.0.1');
    sockets.push(socket);
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return socket;
  }

  it('is healthy only while the process holds an established connection to RabbitMQ and one to Redis', async () => {
    const amqpPort = await listen();
    const redisPort = await listen();
    const env = { AMQP_URL: `amqp://user:secret@127.0.0.1:${amqpPort}`, REDIS_URL: `redis://:secret@127.0.0.1:${redisPort}` };

    const none = healthcheck(['--connected'], env);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`RabbitMQ (port ${amqpPort})`);
    expect(none.stderr).toContain(`Redis (port ${redisPort})`);

    await connect(amqpPort);
    const onlyAmqp = healthcheck(['--connected'], env);
    expect(onlyAmqp.code).toBe(1);
    expect(onlyAmqp.stderr).toContain(`Redis (port ${redisPort})`);
    expect(onlyAmqp.stderr).not.toContain('RabbitMQ');

    const redis = await connect(redisPort);
    expect(healthcheck(['--connected'], env)).toEqual({ code: 0, stderr: '' });

    // A connection that is closing (Redis went away, the client reconnects) is not one.
    redis.destroy();
    await new Promise((resolve) => redis.once('close', resolve));
    const lost = healthcheck(['--connected'], env);
    expect(lost.code).toBe(1);
    expect(lost.stderr).toContain(`Redis (port ${redisPort})`);
  });

  it('reads IPv6 connections (tcp6) and the schemes\' default ports', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'proc-net-'));
    try {
      const header = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
      const v6 = (remotePort: number, state: string) =>
        `   0: 0000000000000000FFFF00000A00000B:C350 0000000000000000FFFF00000A00000C:${remotePort.toString(16).toUpperCase().padStart(4, '0')} ${state} 00000000:00000000 00:00000000 00000000  1000        0 1 1 0000000000000000 20 4 30 10 -1\n`;
      // No tcp file at all: an IPv6-only namespace; 5672 established, 6379 only in TIME_WAIT (06).
      writeFileSync(path.join(dir, 'tcp6'), header + v6(5672, '01') + v6(6379, '06'));
      const env = { HEALTHCHECK_PROC_NET: dir, AMQP_URL: 'amqp://u:p@rabbitmq', REDIS_URL: 'redis://:p@redis' };
      const waiting = healthcheck(['--connected'], env);
      expect(waiting.code).toBe(1);
      expect(waiting.stderr).toMatch(/no established connection to Redis \(port 6379\)\n$/);
      writeFileSync(path.join(dir, 'tcp6'), header + v6(5672, '01') + v6(6379, '01'));
      expect(healthcheck(['--connected'], env).code).toBe(0);
      // amqps defaults to 5671.
      expect(healthcheck(['--connected'], { ...env, AMQP_URL: 'amqps://u:p@rabbitmq' }).stderr).toContain('RabbitMQ (port 5671)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects bad usage with exit code 2', () => {
    expect(healthcheck([]).code).toBe(2);
    expect(healthcheck(['--http']).code).toBe(2);
    expect(healthcheck(['--connected', 'extra']).code).toBe(2);
  });
});

describe('scripts/healthcheck.mjs --http (the API, the demo fixture)', () => {
  let server: http.Server;
  let base: string;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      res.statusCode = req.url === '/health/ready' ? 200 : 503;
      res.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  /** As healthcheck(), without blocking this process's event loop (the server under test lives in it). */
  function healthcheckAsync(args: string[]): Promise<{ code: number | null; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [HEALTHCHECK, ...args], { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr }));
    });
  }

  it('is healthy on a 2xx answer only', async () => {
    expect(await healthcheckAsync(['--http', `${base}/health/ready`])).toEqual({ code: 0, stderr: '' });
    const notReady = await healthcheckAsync(['--http', `${base}/other`]);
    expect(notReady.code).toBe(1);
    expect(notReady.stderr).toContain('answered 503');
    // Nothing listening.
    const closed = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const refused = healthcheck(['--http', `http://127.0.0.1:${closed}/health/ready`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('ECONNREFUSED');
  });
});

describe('the demo fixture bundle (Dockerfile: npx esbuild tests/fixtures/serve.ts --bundle ...)', () => {
  let dir: string;
  let child: ChildProcess | undefined;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fixture-bundle-'));
  });
  afterAll(() => {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  /** The Dockerfile's esbuild RUN line, as argv (double-quoted arguments kept whole). */
  function dockerfileEsbuildArgs(): string[] {
    const line = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')
      .replace(/\\\n/g, ' ')
      .split('\n')
      .find((l) => /^RUN\s+npx esbuild\s/.test(l.trim()));
    expect(line, 'the Dockerfile bundles the fixture with esbuild').toBeDefined();
    const tokens = line!.trim().match(/(?:[^\s"]+|"[^"]*")+/g)!.map((t) => t.replace(/"/g, ''));
    return tokens.slice(3); // after RUN npx esbuild
  }

  it('runs with plain node and no node_modules, serving RDAP and DNS on FIXTURE_LISTEN_HOST through its relays', async () => {
    const outfile = path.join(dir, 'serve.mjs');
    const args = dockerfileEsbuildArgs().map((a) => (a.startsWith('--outfile=') ? `--outfile=${outfile}` : a));
    expect(args).toContain('tests/fixtures/serve.ts');
    const esbuild = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'esbuild'), args, { cwd: ROOT, encoding: 'utf8' });
    expect(esbuild.status, esbuild.stderr).toBe(0);

    // Loopback only here; in the container FIXTURE_LISTEN_HOST is 0.0.0.0.
    child = spawn(process.execPath, [outfile], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', FIXTURE_LISTEN_HOST: '127.0.0.1', RDAP_FIXTURE_PORT: '0', DNS_FIXTURE_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child!.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const found = out.split('\n').find((l) => l.startsWith('FIXTURES '));
        if (found) resolve(found);
      });
      child!.once('exit', (code) => reject(new Error(`fixture exited ${code}: ${stderr}`)));
    });
    const { rdapUrl, dnsAddress } = JSON.parse(line.slice('FIXTURES '.length)) as { rdapUrl: string; dnsAddress: string };
    expect(rdapUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(dnsAddress).toMatch(/^127\.0\.0\.1:\d+$/);

    const res = await fetch(`${rdapUrl}/domain/example.test`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ldhName: expect.stringMatching(/^example\.test$/i) });

    const resolver = new dnsPromises.Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([dnsAddress]);
    expect(await resolver.resolve4('example.test')).toEqual(['127.0.0.2']);
    expect(await resolver.reverse('127.0.0.2')).toEqual(['fixture-host.example.test']);

    const exit = new Promise<number | null>((resolve) => child!.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    child = undefined;
  });
});

describe('a production install (npm ci --omit=dev, the image\'s node_modules)', () => {
  const entry = (name: string) => lock.packages[`node_modules/${name}`];
  const isProduction = (e: LockEntry | undefined) => e !== undefined && e.dev !== true && e.devOptional !== true;

  /** Bare import specifiers of every non-test TypeScript file the services run, with the file. */
  function productionImports(): Array<{ file: string; specifier: string }> {
    const found: Array<{ file: string; specifier: string }> = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const full = path.join(dir, name);
        if (statSync(full).isDirectory()) {
          // src/testing/ is test support (it imports vitest); the build leaves it out of dist/ (scripts/build.mjs).
          if (name !== 'node_modules' && name !== 'dist' && name !== '__fixtures__' && name !== 'testing') walk(full);
        } else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts')) {
          const text = readFileSync(full, 'utf8');
          for (const m of text.matchAll(/\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm)) {
            const specifier = m[1] ?? m[2] ?? m[3]!;
            if (!/^(\.|\/|node:)/.test(specifier)) found.push({ file: path.relative(ROOT, full), specifier });
          }
        }
      }
    };
    for (const base of ['libs', 'services', 'services/workers']) {
      for (const pkgDir of readdirSync(path.join(ROOT, base))) {
        const src = path.join(ROOT, base, pkgDir, 'src');
        if (existsSync(src)) walk(src);
      }
    }
    return found;
  }
  /** Imports allowed from devDependencies, each with the reason it never runs in the image. */
  const DEV_ONLY_IMPORTS: Record<string, string> = {
    // services/resource-worker/src/sqlite.ts: only when running from TypeScript sources (vitest, tsx): it forks
    // sqlite-child.ts with tsx's loader; from dist/ it forks sqlite-child.js with plain node.
    tsx: 'TypeScript sources only',
  };

  it('has every package the services import (a devDependency import would crash the container at start)', () => {
    const imports = productionImports();
    expect(imports.length).toBeGreaterThan(50);
    const missing = imports.filter(({ specifier }) => {
      const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;
      return !(name in DEV_ONLY_IMPORTS) && !isProduction(entry(name));
    });
    expect(missing).toEqual([]);
  });

  it('leaves out the development tools (typescript, vitest, testcontainers, tsx, esbuild, dependency-cruiser)', () => {
    for (const name of ['typescript', 'vitest', 'testcontainers', 'tsx', 'esbuild', 'dependency-cruiser']) {
      expect(entry(name), name).toBeDefined();
      expect(isProduction(entry(name)), `${name} would be in the image`).toBe(false);
    }
  });

  /** The Dockerfile's stages by name: `FROM <image> AS <name>` up to the next FROM, continuation lines joined. */
  function dockerStages(): Record<string, { from: string; body: string }> {
    const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
    const stages: Record<string, { from: string; body: string }> = {};
    let current: { from: string; body: string } | undefined;
    for (const line of text.split('\n')) {
      const m = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
      if (m) {
        current = { from: m[1]!, body: '' };
        stages[m[2] ?? `stage${Object.keys(stages).length}`] = current;
      } else if (current && !line.startsWith('#')) {
        current.body += `${line}\n`;
      }
    }
    return stages;
  }

  it('compiles better-sqlite3 (native, node-gyp) where the compilers are, and ships only the result', () => {
    const sqlite = entry('better-sqlite3');
    expect(isProduction(sqlite), 'better-sqlite3 is a production dependency').toBe(true);
    expect(sqlite?.version).toMatch(/^12\./); // 13 needs Node 22
    expect(sqlite?.hasInstallScript).toBe(true);
    // npm runs its install script (prebuild-install || node-gyp rebuild) without a warning, and will once npm
    // blocks unapproved install scripts by default.
    const rootPkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
    expect(rootPkg.allowScripts?.['better-sqlite3']).toBe(true);

    const stages = dockerStages();
    // node-gyp's needs: python3, make, g++ (and the image's Node headers) in the toolchain stage...
    const toolchain = stages.toolchain!;
    expect(toolchain, 'a toolchain stage').toBeDefined();
    for (const tool of ['python3', 'make', 'g++']) expect(toolchain.body, tool).toMatch(new RegExp(`apt-get install[^\n]*\\s${tool.replace('+', '\\+')}(\\s|$)`));
    // ...which the production install builds on, running install scripts...
    expect(stages.deps?.from).toBe('toolchain');
    expect(stages.deps?.body).toMatch(/npm ci --omit=dev/);
    expect(stages.deps?.body).not.toMatch(/--ignore-scripts/);
    // ...and the image takes its node_modules (the compiled addon included), without the compilers.
    const runtime = stages.runtime!;
    expect(runtime.from).toMatch(/^node:\$\{NODE_VERSION\}/);
    expect(runtime.body).toMatch(/COPY --from=deps [^\n]*\/app\/ \.\//);
    expect(runtime.body).not.toMatch(/\b(g\+\+|gcc|make|python3)\b/);
  });

  /**
   * Packages whose engines.node refuses Node 20 although they run on 20.19+ (package.json engines), with why. None
   * today: content-disposition 3 (@fastify/static 10's) required Node 22; package.json overrides it with 2.0.1,
   * the same `create` API in CommonJS.
   */
  const RUNS_ON_20_19: Record<string, string> = {};

  it('installs on Node 22 and 24, and on 20.19 (CI): no locked package\'s engines refuses them', () => {
    const semver = createRequire(import.meta.url)('semver') as { satisfies(version: string, range: string): boolean };
    const refusing: string[] = [];
    for (const [key, e] of Object.entries(lock.packages)) {
      const range = Array.isArray(e.engines) ? undefined : e.engines?.node;
      if (!range) continue;
      for (const version of ['20.19.0', '22.12.0', '24.0.0']) {
        if (version.startsWith('20.') && RUNS_ON_20_19[key] === range) continue;
        if (!semver.satisfies(version, range)) refusing.push(`${key || '(root)'}@${e.version ?? ''} engines.node '${range}' refuses ${version}`);
      }
    }
    expect(refusing).toEqual([]);
    // The check can fail: a range like better-sqlite3 13's is caught.
    expect(semver.satisfies('20.19.0', '>=22')).toBe(false);
  });
});
