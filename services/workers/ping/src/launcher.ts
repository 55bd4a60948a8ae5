import { spawn, type ChildProcess } from 'node:child_process';
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
 * whitespace: callers pass IP addresses, numbers and flags); the shell answers every output line as
 * `<id> <line>` and finally `<id> \x01exit <code>`. Lines are shorter than PIPE_BUF, so concurrent runs never
 * interleave within a line.
 */
const SCRIPT = [
  'set -f',
  'while IFS= read -r line; do',
  '  id=${line%% *}; args=${line#* }',
  '  ( set -- $args; o=$(LC_ALL=C "$@" 2>&1); c=$?',
  '    printf "%s\\n" "$o" | while IFS= read -r l; do printf "%s %s\\n" "$id" "$l"; done',
  '    printf "%s \\001exit %s\\n" "$id" "$c" ) &',
  'done',
].join('\n');

const SAFE_ARG = /^[^\s\x00-\x1f]+$/;

export class CommandLauncher {
  private child?: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<string, { lines: string[]; resolve: (r: LaunchResult) => void; reject: (e: Error) => void }>();

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
        lines: [],
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
  }

  private ensure(): ChildProcess {
    if (this.child && this.child.exitCode === null && !this.child.killed) return this.child;
    const child = spawn(this.shell, ['-c', SCRIPT], { stdio: ['pipe', 'pipe', 'ignore'] });
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
    const space = line.indexOf(' ');
    const id = space === -1 ? line : line.slice(0, space);
    const rest = space === -1 ? '' : line.slice(space + 1);
    const entry = this.pending.get(id);
    if (!entry) return; // a run we stopped waiting for
    if (rest.startsWith('\x01exit ')) {
      entry.resolve({ code: Number(rest.slice(6)), output: entry.lines.join('\n') });
    } else {
      entry.lines.push(rest);
    }
  }

  private failAll(err: Error): void {
    for (const entry of [...this.pending.values()]) entry.reject(err);
  }
}
