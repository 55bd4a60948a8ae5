import type { Logger } from 'pino';

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
 * even if one before it failed, under an overall time cap. installSignalHandlers wires SIGTERM/SIGINT.
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
      for (const step of steps) {
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

export function installSignalHandlers(shutdown: (reason?: string) => Promise<void>, logger: Logger): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => void shutdown(signal));
  }
  process.on('unhandledRejection', (err) => {
    logger.error({ err }, 'unhandled rejection');
  });
}
