// The process supervisor (scripts/start.mjs) that `npm start` and the image's CMD run: its output stays JSON lines,
// it restarts what crashes but not what is misconfigured (exit 78), and it never leaves a child behind, whatever
// ends it. (Moved here from compose.test.ts; the real services under `npm start`: tests/signals.test.ts.)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { descendants, stillRunning } from './support/proc-tree.ts';
import { waitFor } from './support/processes.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const START = path.join(ROOT, 'scripts', 'start.mjs');

interface StartModule {
  splitCommand(command: string): string[];
  readServices(pkg: unknown): Array<{ name: string; command: string; argv: string[] }>;
  relayLine(line: string, meta: { name: string; pid?: number; stream: 'stdout' | 'stderr' }, pretty?: boolean): string;
  prettyWanted(env: Record<string, string | undefined>, stdoutIsTty: boolean): boolean;
  metricsPorts(services: Array<{ name: string }>, envPort: string | undefined): Map<string, number>;
}

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
let start: StartModule;
let dir: string;

beforeAll(async () => {
  start = (await import(pathToFileURL(START).href)) as StartModule;
  dir = mkdtempSync(path.join(tmpdir(), 'start-mjs-'));
  writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({
      scripts: {
        start: 'node start.mjs',
        'start:a': 'node a.mjs',
        'start:b': 'node a.mjs',
        'start:flaky': 'node flaky.mjs',
        'start:dies': 'node dies.mjs',
        'start:misconfigured': 'node misconfigured.mjs',
        'start:port': 'node port.mjs',
      },
    }),
  );
  // `a` logs a JSON line (and its LOG_FORMAT) and stops on SIGTERM, printing a plain-text line on the way out.
  // The SIGTERM handler goes in before the ready line: the tests signal as soon as they see that line.
  writeFileSync(
    path.join(dir, 'a.mjs'),
    "process.on('SIGTERM', () => { console.log('stopping'); process.exit(0); });\n" +
      "console.log(JSON.stringify({ level: 'info', service: 'a', msg: 'ready', format: process.env.LOG_FORMAT ?? null }));\nsetInterval(() => {}, 1000);\n",
  );
  writeFileSync(
    path.join(dir, 'flaky.mjs'),
    "import { existsSync, writeFileSync } from 'node:fs';\n" +
      "if (!existsSync('flaky.ran')) { writeFileSync('flaky.ran', ''); console.error('first run: crashing'); process.exit(1); }\n" +
      "console.log('second run: up');\nprocess.on('SIGTERM', () => process.exit(0));\nsetInterval(() => {}, 1000);\n",
  );
  writeFileSync(
    path.join(dir, 'port.mjs'),
    "process.on('SIGTERM', () => process.exit(0));\n" +
      "console.log(JSON.stringify({ level: 'info', service: 'port', msg: 'metrics port', port: process.env.METRICS_PORT ?? null }));\nsetInterval(() => {}, 1000);\n",
  );
  writeFileSync(path.join(dir, 'dies.mjs'), "console.error('dying'); process.exit(3);\n");
  writeFileSync(path.join(dir, 'misconfigured.mjs'), "console.error('API_PORT 8080 is in use'); process.exit(78);\n");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts the supervisor; `until(stdout)` decides when to send SIGTERM. Resolves with the exit code and output. */
function run(
  args: string[],
  until?: (stdout: string) => boolean,
  env: Record<string, string> = { LOG_FORMAT: 'json' },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [START, '--root', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    const check = () => {
      if (until && !signalled && until(stdout)) {
        signalled = true;
        child.kill('SIGTERM');
      }
    };
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      check();
    });
    child.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const jsonLines = (text: string) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('scripts/start.mjs', () => {
  it('splits script commands into argv and refuses shell syntax', () => {
    expect(start.splitCommand('node --import tsx services/api/src/main.ts')).toEqual(['node', '--import', 'tsx', 'services/api/src/main.ts']);
    expect(start.splitCommand(`node -e "console.log('a b')"`)).toEqual(['node', '-e', "console.log('a b')"]);
    expect(() => start.splitCommand('npm ci && npm test')).toThrow(/shell syntax/);
    expect(start.readServices(pkg).map((s) => s.name)).toEqual(
      Object.keys(pkg.scripts).filter((k) => k.startsWith('start:')).map((k) => k.slice('start:'.length)),
    );
  });

  it('gives each service but the API its own METRICS_PORT: the base plus its position, whatever --only selects', async () => {
    const services = [{ name: 'api' }, { name: 'saga' }, { name: 'geoip' }, { name: 'ping' }];
    expect([...start.metricsPorts(services, undefined)]).toEqual([['saga', 9464], ['geoip', 9465], ['ping', 9466]]);
    expect([...start.metricsPorts(services, '21000')]).toEqual([['saga', 21000], ['geoip', 21001], ['ping', 21002]]);
    expect([...start.metricsPorts(services, '0')]).toEqual([['saga', 0], ['geoip', 0], ['ping', 0]]);
    expect(() => start.metricsPorts(services, 'abc')).toThrow(/METRICS_PORT must be a port number/);
    expect(() => start.metricsPorts(services, '65535')).toThrow(/no room/);
    // In the test package, `port` is the sixth service (a, b, flaky, dies, misconfigured, port): base + 5.
    const { code, stdout } = await run(['--only', 'port'], (out) => out.includes('"msg":"metrics port"'), { LOG_FORMAT: 'json', METRICS_PORT: '21300' });
    expect(code).toBe(0);
    const lines = jsonLines(stdout);
    expect(lines).toContainEqual(expect.objectContaining({ service: 'port', msg: 'metrics port', port: '21305' }));
    expect(lines).toContainEqual(expect.objectContaining({ service: 'start', child: 'port', metricsPort: 21305, msg: expect.stringMatching(/metrics on :21305$/) }));
    expect((await run(['--only', 'port'], undefined, { LOG_FORMAT: 'json', METRICS_PORT: 'x' })).code).toBe(2);
  });

  it('prints --help and exits 0', () => {
    const r = spawnSync(process.execPath, [START, '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('--only');
    expect(r.stdout).toContain('--no-restart');
  });

  it('rejects an unknown --only service with exit 2', async () => {
    const { code, stderr } = await run(['--only', 'a,nope']);
    expect(code).toBe(2);
    expect(stderr).toContain('unknown service(s) in --only: nope');
  });

  it('keeps every output line JSON: a JSON line unchanged, a plain one wrapped with the child as `service`; exit 0 after SIGTERM', async () => {
    const { code, stdout } = await run(['--only', 'a'], (out) => out.includes('"msg":"ready"'));
    expect(code).toBe(0);
    const lines = jsonLines(stdout); // throws on any line that is not JSON
    expect(stdout.split('\n')).toContain(JSON.stringify({ level: 'info', service: 'a', msg: 'ready', format: 'json' }));
    expect(lines).toContainEqual(expect.objectContaining({ service: 'a', msg: 'stopping', stream: 'stdout' }));
    expect(lines).toContainEqual(expect.objectContaining({ service: 'start', msg: expect.stringMatching(/^a started \(pid \d+\)/) }));
    expect(lines).toContainEqual(expect.objectContaining({ service: 'start', msg: 'all services stopped' }));
    expect(stdout).not.toMatch(/^\[/m);
    for (const line of stdout.split('\n').filter(Boolean)) expect(line.match(/"service":/g), line).toHaveLength(1);
  });

  it('with LOG_FORMAT=pretty (or a terminal) renders lines for a human and tells the children to do the same', async () => {
    const { code, stdout } = await run(['--only', 'a'], (out) => out.includes('"msg":"ready"'), { LOG_FORMAT: 'pretty' });
    expect(code).toBe(0);
    expect(stdout).toContain('"format":"pretty"'); // the child's line, passed through as it wrote it
    expect(stdout).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  start\[\d+\] a started/m);
    expect(start.prettyWanted({}, true)).toBe(true);
    expect(start.prettyWanted({}, false)).toBe(false);
    expect(start.prettyWanted({ LOG_FORMAT: 'json' }, true)).toBe(false);
    expect(start.prettyWanted({ LOG_FORMAT: 'pretty' }, false)).toBe(true);
  });

  it('wraps a child stderr line into a JSON line on stderr', () => {
    const line = start.relayLine('Error: boom', { name: 'api', pid: 7, stream: 'stderr' });
    expect(JSON.parse(line)).toMatchObject({ level: 'warn', service: 'api', pid: 7, msg: 'Error: boom', stream: 'stderr' });
    expect(start.relayLine('{"a":1}', { name: 'api', stream: 'stdout' })).toBe('{"a":1}\n');
  });

  it('restarts a service that exits unexpectedly', async () => {
    rmSync(path.join(dir, 'flaky.ran'), { force: true });
    const { code, stdout, stderr } = await run(['--only', 'flaky'], (out) => out.includes('second run: up'));
    expect(stderr).toContain('first run: crashing');
    expect(stdout).toMatch(/flaky exited with code 1 unexpectedly; restarting in 1s/);
    expect(code).toBe(0);
  });

  it('with --no-restart, leaves a dead service down and exits 1 once none is left', async () => {
    const { code, stdout, stderr } = await run(['--only', 'dies', '--no-restart']);
    expect(stderr).toContain('dying');
    expect(stdout).toContain('not restarting (--no-restart)');
    expect(code).toBe(1);
  });

  it('does not restart a service that exits 78 (a configuration error) and exits 78 itself once none is left', async () => {
    const { code, stdout, stderr } = await run(['--only', 'misconfigured']);
    expect(code).toBe(78);
    expect(stderr).toContain('API_PORT 8080 is in use');
    expect(stdout.match(/misconfigured started/g)).toHaveLength(1);
    expect(stdout).toContain('configuration error); not restarting');
  });

  it('stops itself and its children when its parent dies without passing a signal on (npm/sh killed)', async () => {
    // sh stands for `npm start`'s shell: the supervisor is its child; SIGKILL on sh passes nothing on.
    const sh = spawn('sh', ['-c', `"${process.execPath}" "${START}" --root "${dir}" --only a,b & wait`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_FORMAT: 'json' },
    });
    let out = '';
    sh.stdout!.on('data', (c: Buffer) => void (out += c.toString()));
    await waitFor(async () => ((out.match(/"msg":"ready"/g) ?? []).length >= 2 ? true : undefined), 20_000);
    const tree = descendants(sh.pid!);
    expect(tree.filter((p) => p.cmdline.includes('a.mjs'))).toHaveLength(2);
    expect(tree.some((p) => p.cmdline.includes('start.mjs'))).toBe(true);
    sh.kill('SIGKILL');
    await waitFor(async () => (tree.every((p) => !stillRunning(p)) ? true : undefined), 20_000).catch(() => undefined);
    const left = tree.filter((p) => stillRunning(p));
    for (const p of left) process.kill(p.pid, 'SIGKILL');
    expect(left.map((p) => p.cmdline)).toEqual([]);
    expect(out).toContain('parent process exited: stopping');
  });
});
