import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

export interface LaunchResult {
  code: number;
  /** stdout and stderr together, in order. */
  output: string;
}

/**
 * Runs short-lived commands (ping) through one long-lived /bin/sh instead of spawning each from Node.
 * Spawning forks the worker: with a ~150 MB Node process that is most of the Ping worker's CPU and it
 * blocks the event loop. The shell is small, so its forks are cheap, and Node never forks per lookup.
 *
 * Protocol: one line per run on the shell's stdin, `<id> <arg0> <arg1> ...` (arguments must not contain
 * whitespace: callers pass IP addresses, numbers and flags). The command's output goes to `<dir>/<id>` (in
 * tmpfs where there is one) and the shell answers `<id> <exit code>` when it ends: two forks per run (the
 * background subshell and the command), no pipes to multiplex.
 */
const SCRIPT = [
  'set -f',
  'dir=$1',
  'while IFS= read -r line; do',
  '  id=${line%% *}; args=${line#* }',
  '  ( set -- $args; LC_ALL=C "$@" >"$dir/$id" 2>&1; echo "$id $?" ) &',
  'done',
].join('\n');

const SAFE_ARG = /^[^\s\x00-\x1f]+$/;

export class CommandLauncher {
  private child?: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<string, { resolve: (r: LaunchResult) => void; reject: (e: Error) => void }>();
  private dir?: string;

  constructor(private readonly shell = '/bin/sh') {}

  /** Whether these arguments can go through the launcher (else use execFile). */
  static accepts(args: string[]): boolean {
    return args.every((a) => SAFE_ARG.test(a));
  }

  run(argv: string[], signal: AbortSignal, timeoutMs: number): Promise<LaunchResult> {
    const child = this.ensure();
    const id = String(this.nextId++);
    return new Promise<LaunchResult>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.pending.delete(id);
      };
      // The command itself is bounded (ping -c/-W); on timeout or abort we stop waiting for it.
      const timer = setTimeout(() => {
        done();
        reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      const onAbort = () => {
        done();
        reject(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' }));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        resolve: (r) => {
          done();
          resolve(r);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      child.stdin!.write(`${id} ${argv.join(' ')}\n`);
    });
  }

  close(): void {
    this.child?.kill();
    this.child = undefined;
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }

  private ensure(): ChildProcess {
    if (this.child && this.child.exitCode === null && !this.child.killed) return this.child;
    this.dir ??= mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'lookup-ping-'));
    const child = spawn(this.shell, ['-c', SCRIPT, 'launcher', this.dir], { stdio: ['pipe', 'pipe', 'ignore'] });
    child.stdin!.on('error', () => undefined);
    child.on('error', (err) => this.failAll(err));
    child.on('exit', () => {
      if (this.child === child) this.child = undefined;
      this.failAll(new Error('the command launcher exited'));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => this.onLine(line));
    child.unref();
    (child.stdout as unknown as { unref?: () => void }).unref?.();
    this.child = child;
    return child;
  }

  private onLine(line: string): void {
    const [id, code] = line.split(' ');
    const entry = id === undefined ? undefined : this.pending.get(id);
    const file = path.join(this.dir!, id ?? '');
    if (!entry) {
      void unlink(file).catch(() => undefined); // a run we stopped waiting for
      return;
    }
    readFile(file, 'utf8').then(
      (output) => {
        void unlink(file).catch(() => undefined);
        entry.resolve({ code: Number(code), output: output.replace(/\n+$/, '') });
      },
      (err: Error) => entry.reject(err),
    );
  }

  private failAll(err: Error): void {
    for (const entry of [...this.pending.values()]) entry.reject(err);
  }
}
