import { readFileSync } from 'node:fs';
import { flushTraces, type Logger } from '@lookup/logging';

export interface ShutdownStep {
  name: string;
  run: () => Promise<unknown> | unknown;
}

export interface ShutdownOptions {
  logger: Logger;
  /** Overall cap: past it the process exits anyway. */
  timeoutMs: number;
  steps: ShutdownStep[];
  /** Exit the process when done (default true). */
  exit?: boolean;
}

/**
 * Returns shutdown(): safe to call many times (the promise is cached); runs every step in order, each
 * even if one before it failed, then exports the spans still buffered (when the process traces), under an
 * overall time cap. installSignalHandlers wires SIGTERM/SIGINT/SIGHUP
 * and the parent watch.
 */
export function createShutdown({ logger, timeoutMs, steps, exit = true }: ShutdownOptions): (reason?: string) => Promise<void> {
  let pending: Promise<void> | undefined;
  return (reason = 'shutdown requested') => {
    pending ??= (async () => {
      logger.info({ reason }, 'shutting down');
      const cap = setTimeout(() => {
        logger.error({ timeoutMs }, 'shutdown took too long; exiting');
        if (exit) process.exit(1);
      }, timeoutMs);
      cap.unref();
      let failed = false;
      for (const step of [...steps, { name: 'flush traces', run: flushTraces }]) {
        try {
          await step.run();
        } catch (err) {
          failed = true;
          logger.warn({ step: step.name, err: (err as Error)?.message }, 'shutdown step failed');
        }
      }
      clearTimeout(cap);
      logger.info('stopped');
      if (exit) {
        logger.flush?.();
        process.exit(failed ? 1 : 0);
      }
    })();
    return pending;
  };
}

export interface SignalHandlerOptions {
  /**
   * Stop when the process that started this one exits (EXIT_WITH_PARENT): the parent process id is checked every
   * `parentCheckMs`, and a change (the process was re-parented: its parent died, e.g. `npm run`'s shell killed by
   * the SIGTERM npm passed on) shuts down. When the parent is a shell running a command string (`sh -c ...`, as
   * npm runs every script), the shell's parent (npm) is watched too: npm killed by a signal it does not pass on
   * (SIGHUP, SIGKILL) leaves the shell waiting, but stops this process. Nothing is watched when the process
   * started with parent pid 0 or 1 (a container's init, systemd): there the parent never changes.
   */
  exitWithParent?: boolean;
  parentCheckMs?: number;
  /** The parent pid to compare against (tests); defaults to process.ppid at the call. */
  initialParentPid?: number;
  /** How the current parent pid is read (tests); defaults to process.ppid. */
  readParentPid?: () => number;
  /** How another process is looked up (tests); defaults to /proc (Linux; elsewhere only the parent is watched). */
  proc?: ProcReader;
}

/** What the parent watch needs to know about another process. */
export interface ProcReader {
  /** Parent pid, start time (a reused pid has another) and state ('Z' = exited, not yet reaped), or undefined if gone. */
  stat(pid: number): { ppid: number; startTime: string; state: string } | undefined;
  /** The process's argv, or undefined when unreadable. */
  cmdline(pid: number): string[] | undefined;
}

export const procFs: ProcReader = {
  stat(pid) {
    try {
      const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      return { state: fields[0] ?? '', ppid: Number(fields[1]), startTime: fields[19] ?? '' };
    } catch {
      return undefined;
    }
  },
  cmdline(pid) {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    } catch {
      return undefined;
    }
  },
};

/**
 * SIGTERM, SIGINT and SIGHUP (a closed terminal) call shutdown(); so does the death of the parent process when
 * `exitWithParent` is set, so no service is left running orphaned under PID 1. Returns a function that stops the
 * parent watch (the signal handlers stay).
 */
export function installSignalHandlers(shutdown: (reason?: string) => Promise<void>, logger: Logger, options: SignalHandlerOptions = {}): () => void {
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(signal, () => void shutdown(signal));
  }
  process.on('unhandledRejection', (err) => {
    logger.error({ err }, 'unhandled rejection');
  });
  return options.exitWithParent ? watchParent(shutdown, logger, options) : () => undefined;
}

/** Calls shutdown() once the parent (or the pass-through shell's parent) has exited; see SignalHandlerOptions. */
export function watchParent(shutdown: (reason?: string) => Promise<void>, logger: Logger, options: SignalHandlerOptions = {}): () => void {
  const read = options.readParentPid ?? (() => process.ppid);
  const proc = options.proc ?? procFs;
  const initial = options.initialParentPid ?? read();
  if (initial <= 1) return () => undefined;
  const grandparent = passThroughShellParent(initial, proc);
  const timer = setInterval(() => {
    const now = read();
    let gone: Record<string, number> | undefined;
    if (now !== initial) gone = { parentPid: initial, newParentPid: now };
    else if (grandparent && !sameProcess(grandparent, proc)) gone = { parentPid: initial, shellParentPid: grandparent.pid };
    if (!gone) return;
    clearInterval(timer);
    logger.warn(gone, 'parent process exited; stopping');
    void shutdown('parent process exited');
  }, options.parentCheckMs ?? 1000);
  timer.unref();
  return () => clearInterval(timer);
}

/** When `parent` is a shell running a command string (`sh -c ...`), its own parent (pid and start time). */
function passThroughShellParent(parent: number, proc: ProcReader): { pid: number; startTime: string } | undefined {
  const argv = proc.cmdline(parent);
  if (!argv || argv[1] !== '-c' || !/(^|\/)(sh|dash|bash|ash|zsh)$/.test(argv[0] ?? '')) return undefined;
  const grand = proc.stat(parent)?.ppid;
  if (grand === undefined || grand <= 1) return undefined;
  const startTime = proc.stat(grand)?.startTime;
  return startTime === undefined ? undefined : { pid: grand, startTime };
}

function sameProcess(p: { pid: number; startTime: string }, proc: ProcReader): boolean {
  const now = proc.stat(p.pid);
  return now !== undefined && now.startTime === p.startTime && now.state !== 'Z';
}
