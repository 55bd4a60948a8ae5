import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '@lookup/logging';
import { watchParent, type ProcReader } from './lifecycle.ts';

const logger = createLogger({ service: 'test', level: 'silent' });
/** No other process is visible (as on a system without /proc). */
const noProc: ProcReader = { stat: () => undefined, cmdline: () => undefined };

afterEach(() => {
  vi.useRealTimers();
});

describe('watchParent (EXIT_WITH_PARENT)', () => {
  it('shuts down once the parent pid changes (the process was re-parented: its parent died)', () => {
    vi.useFakeTimers();
    let ppid = 4242;
    const shutdown = vi.fn(async () => undefined);
    watchParent(shutdown, logger, { readParentPid: () => ppid, parentCheckMs: 100, proc: noProc });
    vi.advanceTimersByTime(1000);
    expect(shutdown).not.toHaveBeenCalled();
    ppid = 1;
    vi.advanceTimersByTime(100);
    expect(shutdown).toHaveBeenCalledTimes(1);
    expect(shutdown).toHaveBeenCalledWith('parent process exited');
    vi.advanceTimersByTime(1000);
    expect(shutdown).toHaveBeenCalledTimes(1);
  });

  it('watches nothing when started by PID 1 or with no parent (a container, systemd)', () => {
    vi.useFakeTimers();
    for (const initial of [0, 1]) {
      let ppid = initial;
      const shutdown = vi.fn(async () => undefined);
      watchParent(shutdown, logger, { readParentPid: () => ppid, parentCheckMs: 100, proc: noProc });
      ppid = 999;
      vi.advanceTimersByTime(1000);
      expect(shutdown).not.toHaveBeenCalled();
    }
  });

  it('stops watching when the returned function is called', () => {
    vi.useFakeTimers();
    let ppid = 10;
    const shutdown = vi.fn(async () => undefined);
    const stop = watchParent(shutdown, logger, { readParentPid: () => ppid, parentCheckMs: 100, proc: noProc });
    stop();
    ppid = 1;
    vi.advanceTimersByTime(1000);
    expect(shutdown).not.toHaveBeenCalled();
  });

  it('when the parent is a shell running a command string (npm runs scripts with sh -c), watches the shell\'s parent too', () => {
    vi.useFakeTimers();
    // npm (100) -> sh -c (200) -> this process. npm dies of a signal it does not pass on; the shell stays.
    let npmAlive = true;
    const proc: ProcReader = {
      stat: (pid) => (pid === 200 ? { ppid: 100, startTime: 's200', state: 'S' } : pid === 100 && npmAlive ? { ppid: 50, startTime: 's100', state: 'S' } : undefined),
      cmdline: (pid) => (pid === 200 ? ['sh', '-c', 'node services/workers/ping/dist/src/main.js'] : undefined),
    };
    const shutdown = vi.fn(async () => undefined);
    watchParent(shutdown, logger, { readParentPid: () => 200, parentCheckMs: 100, proc });
    vi.advanceTimersByTime(1000);
    expect(shutdown).not.toHaveBeenCalled();
    npmAlive = false;
    vi.advanceTimersByTime(100);
    expect(shutdown).toHaveBeenCalledWith('parent process exited');
  });

  it('does not watch the grandparent of an ordinary parent (an interactive shell, a process manager)', () => {
    vi.useFakeTimers();
    const proc: ProcReader = {
      stat: (pid) => (pid === 200 ? { ppid: 100, startTime: 's200', state: 'S' } : undefined),
      cmdline: (pid) => (pid === 200 ? ['-bash'] : undefined),
    };
    const shutdown = vi.fn(async () => undefined);
    watchParent(shutdown, logger, { readParentPid: () => 200, parentCheckMs: 100, proc });
    vi.advanceTimersByTime(1000);
    expect(shutdown).not.toHaveBeenCalled();
  });
});
