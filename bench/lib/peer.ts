import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SpawnedService } from './suite.ts';

/** Where the BullMQ build of the suite lives (read-only; it is run from a scratch copy, never from the project). */
export const PEER_SOURCE = process.env.BULLMQ_PEER_DIR || '/work/shared/peers/bullmq-suite';

/** Copies every file but node_modules (the source may be read-only: files are written anew, writable). */
function copyTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from)) {
    if (entry === 'node_modules') continue;
    const src = join(from, entry);
    const dst = join(to, entry);
    if (statSync(src).isDirectory()) copyTree(src, dst);
    else writeFileSync(dst, readFileSync(src));
  }
}

/**
 * A runnable copy of the peer outside the repository: os.tmpdir()/bullmq-peer-<hash of package.json and
 * package-lock.json>. Its files are copied every time (cheap); `npm install` runs only when that hash has no
 * finished install yet.
 */
export function preparePeer(log: (line: string) => void, source = PEER_SOURCE): string {
  const hash = createHash('sha256')
    .update(readFileSync(join(source, 'package.json')))
    .update(readFileSync(join(source, 'package-lock.json')))
    .digest('hex')
    .slice(0, 12);
  const dir = join(tmpdir(), `bullmq-peer-${hash}`);
  copyTree(source, dir);
  const marker = join(dir, 'node_modules', '.bench-installed');
  if (!existsSync(marker)) {
    log(`installing the BullMQ peer's dependencies in ${dir} (once per package-lock)`);
    execFileSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
    writeFileSync(marker, `${new Date().toISOString()}\n`);
  }
  return dir;
}

export interface RunningPeer {
  apiUrl: string;
  /** The launcher (start.mjs). */
  launcher: SpawnedService;
  /** Its six processes by role (api, lookup, geoip, ping, rdap, reverse-dns). */
  roles: Record<string, number>;
  stop(): Promise<void>;
}

/** Parses start.mjs's `PEER ready <url> {role: pid}` line; undefined for any other line. */
export function parseReadyLine(line: string): { apiUrl: string; roles: Record<string, number> } | undefined {
  const m = /^PEER ready (\S+) (\{.*\})\s*$/.exec(line);
  if (!m) return undefined;
  return { apiUrl: m[1]!, roles: JSON.parse(m[2]!) as Record<string, number> };
}

/** Starts the peer (node start.mjs --port P) with its own key prefix; resolves once it printed that it is ready. */
export async function startPeer(o: { dir: string; port: number; prefix: string; rdapUrl: string; dnsAddress: string; redisUrl: string }): Promise<RunningPeer> {
  const child = spawn(process.execPath, ['start.mjs', '--port', String(o.port)], {
    cwd: o.dir,
    env: { ...process.env, PEER_PREFIX: o.prefix, REDIS_URL: o.redisUrl, RDAP_BASE_URL: o.rdapUrl, DNS_SERVERS: o.dnsAddress, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const launcher: SpawnedService = { name: 'peer', entry: 'start.mjs', child, pid: child.pid!, tail, exited };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM'); // start.mjs stops its six processes and deletes its keys
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    const ready = await new Promise<{ apiUrl: string; roles: Record<string, number> }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`BullMQ peer not ready within 90 s:\n${tail.join('\n')}`)), 90_000);
      const onData = (chunk: Buffer) => {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (!line) continue;
          tail.push(line);
          if (tail.length > 200) tail.shift();
          const r = parseReadyLine(line);
          if (r) {
            clearTimeout(timer);
            resolve(r);
          }
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`BullMQ peer exited (${code}) during start-up:\n${tail.join('\n')}`));
      });
    });
    return { ...ready, launcher, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
